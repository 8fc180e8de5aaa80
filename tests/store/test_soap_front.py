"""Org isolation of legacy ids, seen by a legacy client through the real SOAP front.

The SOAP front (``proxy.web.soap``) parses the request, authenticates the caller and turns the
store's ``NotFound`` into the Altinn fault; the handler here is the thin glue the mapping engine
will provide (resolve the ``ReceiptId`` for the caller's org, answer the receipt).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from lxml import etree

from proxy.errors import AuthenticationFailed
from proxy.identity.principal import CallerKind, LegacyCredentials, OrgGrant, Principal
from proxy.soap.encode import SoapReply
from proxy.soap.handler import SoapContext
from proxy.soap.request import SoapCall
from proxy.store import RECEIPT_KIND, Receipt, ReceiptStatus, Store
from proxy.web.soap import SoapConfig, add_soap_routes
from tests.shipped import shipped_surface

ORG_A = "310000019"
ORG_B = "310000027"
SERVICE_NS = "http://www.altinn.no/services/Intermediary/Receipt/2009/10"
RECEIPT_NS = "http://schemas.altinn.no/services/Intermediary/Receipt/2015/06"
PATH = "/IntermediaryExternal/ReceiptExternalBasic.svc"
ACTION = f"{SERVICE_NS}/IReceiptExternalBasic/GetReceiptBasicV2"
CALLERS = {"system-a": ORG_A, "system-b": ORG_B}

ClientFactory = Callable[[web.Application], Coroutine[Any, Any, TestClient[web.Request, web.Application]]]


async def authenticate(credentials: LegacyCredentials, call: SoapCall, peer: str | None) -> Principal:
    org = CALLERS.get(credentials.username)
    if org is None or credentials.password != "correct horse":
        raise AuthenticationFailed("wrong system user name or password")
    return Principal(credentials.username, CallerKind.END_USER_SYSTEM, orgs={org: OrgGrant(org)})


def receipt_handler(store: Store) -> Callable[[SoapCall, SoapContext], Coroutine[Any, Any, SoapReply]]:
    async def get_receipt(call: SoapCall, context: SoapContext) -> SoapReply:
        assert context.principal is not None
        (org,) = context.principal.orgs
        receipt_id = int(call.body.xpath("string(.//*[local-name()='ReceiptId'])"))
        receipt = await store.get_receipt(receipt_id, org)
        response = etree.Element(f"{{{SERVICE_NS}}}GetReceiptBasicV2Response", nsmap={None: SERVICE_NS})
        result = etree.SubElement(response, f"{{{SERVICE_NS}}}GetReceiptBasicV2Result")
        for name, value in (
            ("ReceiptId", str(receipt.receipt_id)),
            ("ReceiptStatus", str(receipt.status)),
            ("ReceiptText", receipt.text),
        ):
            etree.SubElement(result, f"{{{RECEIPT_NS}}}{name}").text = value
        return SoapReply(response)

    return get_receipt


def envelope(user: str, receipt_id: int) -> bytes:
    return f"""<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
      <GetReceiptBasicV2 xmlns="{SERVICE_NS}">
        <systemUserName>{user}</systemUserName><systemPassword>correct horse</systemPassword>
        <receipt><ReceiptId xmlns="{RECEIPT_NS}">{receipt_id}</ReceiptId></receipt>
      </GetReceiptBasicV2></s:Body></s:Envelope>""".encode()


async def test_org_b_cannot_read_org_a_receipt_through_soap(
    store: Store, aiohttp_client: ClientFactory
) -> None:
    receipt_id = await store.allocate_id(RECEIPT_KIND, str(uuid.uuid4()), ORG_A)
    await store.save_receipt(
        Receipt(
            receipt_id=receipt_id,
            owner_org=ORG_A,
            status=ReceiptStatus.OK,
            text="Shipment received",
            type_name="FormTask",
            last_changed=datetime(2026, 7, 1, 12, 0, tzinfo=UTC),
        )
    )
    unknown_id = receipt_id + 1_000_000
    app = web.Application()
    add_soap_routes(
        app,
        handlers={("ReceiptExternalBasic", "GetReceiptBasicV2"): receipt_handler(store)},
        config=SoapConfig(),
        authenticate=authenticate,
        surface=shipped_surface,
    )
    await asyncio.to_thread(shipped_surface)  # compiled off the loop, once
    client = await aiohttp_client(app)

    async def ask(user: str, legacy_id: int) -> tuple[int, str]:
        response = await client.post(
            PATH,
            data=envelope(user, legacy_id),
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{ACTION}"'},
        )
        return response.status, await response.text()

    status, body = await ask("system-a", receipt_id)
    assert status == 200, body
    assert "Shipment received" in body

    foreign_status, foreign = await ask("system-b", receipt_id)
    missing_status, missing = await ask("system-b", unknown_id)
    assert foreign_status == missing_status == 500
    assert "Shipment received" not in foreign
    assert ORG_A not in foreign

    def comparable(fault: str, legacy_id: int) -> list[tuple[str, str]]:
        """Every element's name and text, with the per-request ErrorGuid and the asked id masked."""
        elements = etree.fromstring(fault.encode()).iter()
        return [
            (
                etree.QName(element).localname,
                "<guid>"
                if etree.QName(element).localname == "ErrorGuid"
                else re.sub(rf"\b{legacy_id}\b", "<id>", element.text or ""),
            )
            for element in elements
        ]

    assert comparable(foreign, receipt_id) == comparable(missing, unknown_id)
    assert f"no receipt with id {receipt_id}" in foreign
