"""Identity through the whole proxy: who may act for whom is decided before any Altinn 3 call.

Raw SOAP 1.1 over loopback (the fault is what a legacy client reads), against the sandbox world.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import aiohttp
import pytest
from lxml import etree
from prometheus_client import REGISTRY

from tests.e2e.conftest import World

INBOX_PATH = "/ServiceEngineExternal/ReporteeElementListExternalBasic.svc"
INBOX_NS = "http://www.altinn.no/services/ServiceEngine/ReporteeElementList/2009/10"
SEARCH_NS = "http://schemas.altinn.no/services/Archive/ReporteeArchive/2009/10"
FAULT_NS = "http://www.altinn.no/services/common/fault/2009/10"
TIMEOUT = aiohttp.ClientTimeout(total=30)
INBOX_OPERATION = "ReporteeElementListExternalBasic/GetReporteeElementListBasicV2"


def inbox_request(username: str, password: str, reportee: str) -> bytes:
    """A GetReporteeElementListBasicV2 envelope (written for this test)."""
    return f"""<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
<GetReporteeElementListBasicV2 xmlns="{INBOX_NS}">
 <systemUserName>{username}</systemUserName><systemPassword>{password}</systemPassword>
 <searchBE xmlns:b="{SEARCH_NS}"><b:FromDate>2020-01-01T00:00:00</b:FromDate>
  <b:Reportee>{reportee}</b:Reportee><b:ToDate>2099-01-01T00:00:00</b:ToDate></searchBE>
 <languageID>1044</languageID>
</GetReporteeElementListBasicV2></s:Body></s:Envelope>""".encode()


async def call(world: World, body: bytes) -> tuple[int, etree._Element]:
    """POST a Basic SOAP request; the HTTP status and the parsed answer."""
    headers = {
        "Content-Type": "text/xml; charset=utf-8",
        "SOAPAction": f'"{INBOX_NS}/IReporteeElementListExternalBasic/GetReporteeElementListBasicV2"',
    }
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.post(world.proxy_url + INBOX_PATH, data=body, headers=headers) as response,
    ):
        return response.status, etree.fromstring(await response.read())


def fault(answer: etree._Element) -> dict[str, str]:
    """The AltinnFault detail fields of a fault answer."""
    detail = answer.find(f".//{{{FAULT_NS}}}AltinnFault")
    assert detail is not None, etree.tostring(answer)
    return {etree.QName(child).localname: child.text or "" for child in detail}


def outbound(world: World, contract: Any) -> tuple[int, Counter[tuple[str, str | None]]]:
    """Requests the Altinn 3 fakes received so far, and grants Maskinporten issued."""
    return contract.checked + contract.unchecked, Counter(world.fakes.maskinporten.grants)


async def test_the_own_reportee_is_served(world: World) -> None:
    labels = {"caller": "demo-eus", "front": "soap", "operation": INBOX_OPERATION}
    before = REGISTRY.get_sample_value("altinn_proxy_legacy_calls_total", labels) or 0
    status, answer = await call(world, inbox_request("demo-eus", "demo-eus-password", "310000019"))
    assert status == 200, etree.tostring(answer)
    assert answer.find(f".//{{{INBOX_NS}}}GetReporteeElementListBasicV2Response") is not None
    assert REGISTRY.get_sample_value("altinn_proxy_legacy_calls_total", labels) == before + 1, (
        "who calls what"
    )


async def test_another_orgs_reportee_is_refused_before_any_outbound_call(
    world: World, altinn3_contract: Any
) -> None:
    before = outbound(world, altinn3_contract)
    status, answer = await call(world, inbox_request("demo-eus", "demo-eus-password", "310000027"))
    assert status == 500
    details = fault(answer)
    assert details["ErrorID"] == "5"
    assert "not authorized" in details["AltinnErrorMessage"].lower()
    assert outbound(world, altinn3_contract) == before, "no Altinn 3 or Maskinporten call may be made"


async def test_a_malformed_reportee_is_an_invalid_reportee_fault(world: World, altinn3_contract: Any) -> None:
    before = outbound(world, altinn3_contract)
    status, answer = await call(world, inbox_request("demo-eus", "demo-eus-password", "310000018"))
    assert status == 500
    assert "reportee" in fault(answer)["AltinnErrorMessage"].lower()
    assert outbound(world, altinn3_contract) == before


@pytest.mark.parametrize(
    ("username", "password"),
    [("demo-eus", "wrong-password"), ("no-such-system", "demo-eus-password"), ("demo-eus", "")],
)
async def test_bad_credentials_all_get_the_same_fault(
    world: World, altinn3_contract: Any, username: str, password: str
) -> None:
    before = outbound(world, altinn3_contract)
    status, answer = await call(world, inbox_request(username, password, "310000019"))
    assert status == 500
    details = fault(answer)
    assert details["ErrorID"] == "989"
    assert details["AltinnErrorMessage"] == "Incorrect username/password/pin given for user"
    if password:
        assert password not in etree.tostring(answer).decode()
    assert outbound(world, altinn3_contract) == before
