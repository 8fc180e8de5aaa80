"""zeep clients, built from our served WSDL and from the original Altinn 2 WSDLs, against the proxy."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import zeep
import zeep.exceptions
from aiohttp.test_utils import TestServer
from lxml import etree

from proxy.soap.catalogue import default_catalogue
from proxy.soap.names import FAULT_NS
from tests.soap.conftest import Recorder

WSDL = "http://schemas.xmlsoap.org/wsdl/"


def _client(url: str) -> zeep.Client:
    transport = zeep.Transport(timeout=10, operation_timeout=10)
    return zeep.Client(url, transport=transport)


@pytest.mark.parametrize(
    "service_name", ["CorrespondenceAgencyExternalBasic", "CorrespondenceAgencyExternal"]
)
async def test_test_operation_from_served_wsdl_on_both_bindings(
    server: TestServer, service_name: str
) -> None:
    service = default_catalogue().by_name(service_name)
    assert service is not None
    url = str(server.make_url(service.paths[0])) + "?singleWsdl"

    def call() -> Any:
        client = _client(url)
        return client.service.Test()

    assert await asyncio.to_thread(call) is None


async def test_declared_operation_round_trips_with_authentication(
    server: TestServer, recorder: Recorder
) -> None:
    url = str(server.make_url("/ServiceEngineExternal/CorrespondenceAgencyExternalBasic.svc")) + "?wsdl"

    def call(password: str) -> Any:
        client = _client(url)
        return client.service.InsertCorrespondenceBasicV2(
            systemUserName="sys1", systemPassword=password, text="hello"
        )

    result = await asyncio.to_thread(call, "s3cret")
    assert result == "sys1s3crethello"[-200:]
    principal = recorder.principals[-1]
    assert principal is not None
    assert principal.caller_id == "sys1"
    with pytest.raises(zeep.exceptions.Fault) as fault:
        await asyncio.to_thread(call, "wrong")
    assert fault.value.detail is not None
    assert fault.value.detail.findtext(f"{{{FAULT_NS}}}AltinnFault/{{{FAULT_NS}}}ErrorID") == "989"


def _basic_wsdls(reference: Path) -> list[Path]:
    """The stored Basic WSDLs that are self-contained (one imports its schemas from www.altinn.no)."""
    paths = sorted((Path(reference) / "altinn2").glob("*/Basic/*.wsdl"))
    return [path for path in paths if b'schemaLocation="http' not in path.read_bytes()]


@pytest.mark.reference
async def test_original_basic_wsdls_call_test_and_parse_altinn_fault(
    server: TestServer, reference: Path
) -> None:
    catalogue = default_catalogue()

    def run(path: Path) -> tuple[str, int]:
        client = _client(str(path))
        root = etree.parse(str(path), etree.XMLParser(no_network=True, resolve_entities=False)).getroot()
        binding = next(root.iter(f"{{{WSDL}}}binding"))
        address = next(el for el in root.iter() if isinstance(el.tag, str) and el.tag.endswith("}address"))
        service = catalogue.for_path("/" + address.get("location").split("/", 3)[3])
        assert service is not None
        proxy = client.create_service(
            f"{{{root.get('targetNamespace')}}}{binding.get('name')}", str(server.make_url(service.paths[0]))
        )
        assert proxy.Test() is None
        fault_element = client.get_element(f"{{{FAULT_NS}}}AltinnFault")
        faults = 0
        for op in binding.findall(f"{{{WSDL}}}operation"):
            name = op.get("name")
            if name == "Test" or (service.name, name) in {
                ("CorrespondenceAgencyExternalBasic", "GetCorrespondenceStatusHistoryBasic"),
                ("CorrespondenceAgencyExternalBasic", "InsertCorrespondenceBasicV2"),
                ("CorrespondenceAgencyExternalBasic", "CreateSimpleCorrespondenceServiceBasic"),
                ("BrokerServiceExternalBasicStreamed", "UploadFileStreamedBasic"),
                ("BrokerServiceExternalBasicStreamed", "DownloadFileStreamedBasic"),
            }:
                continue
            try:
                getattr(proxy, name)()
            except zeep.exceptions.ValidationError:
                continue  # the original contract needs arguments we do not invent here
            except zeep.exceptions.Fault as fault:
                parsed = fault_element.parse(fault.detail[0], client.wsdl.types)
                assert parsed.ErrorID == 30001
                assert name in parsed.AltinnErrorMessage
                assert "no Altinn 3 equivalent" in parsed.AltinnErrorMessage
                assert parsed.ErrorGuid
                faults += 1
            else:
                raise AssertionError(f"{name} did not fault")
        return service.name, faults

    results = []
    for path in _basic_wsdls(reference):
        results.append(await asyncio.to_thread(run, path))
    assert len(results) >= 10
    assert sum(faults for _, faults in results) >= len(results)
