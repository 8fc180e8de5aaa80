"""The catalogue against the original Altinn 2 WSDLs."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from lxml import etree

from proxy.soap.catalogue import Binding, default_catalogue

WSDL = "http://schemas.xmlsoap.org/wsdl/"
SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"

pytestmark = pytest.mark.reference


def _basic_wsdls(reference: Path) -> list[Path]:
    return sorted((Path(reference) / "altinn2").glob("*/Basic/*.wsdl"))


def test_every_basic_wsdl_operation_and_action_is_catalogued(reference: Path) -> None:
    catalogue = default_catalogue()
    files = _basic_wsdls(reference)
    assert len(files) >= 10
    for path in files:
        root = etree.parse(str(path), etree.XMLParser(no_network=True, resolve_entities=False)).getroot()
        address = next(root.iter(f"{{{SOAP}}}address")).get("location")
        service = catalogue.for_path(urlsplit(address).path)
        assert service is not None, f"{path.name}: no service at {address}"
        assert service.binding in (Binding.BASIC, Binding.BASIC_STREAMED)
        assert service.namespace == root.get("targetNamespace")
        for operation in root.iter(f"{{{WSDL}}}binding"):
            for op in operation.findall(f"{{{WSDL}}}operation"):
                action = op.find(f"{{{SOAP}}}operation").get("soapAction")
                ours = service.operation(op.get("name"))
                assert ours is not None, f"{service.name} lacks {op.get('name')}"
                assert ours.soap_action == action


def test_paths_are_case_insensitive_and_every_service_has_test() -> None:
    catalogue = default_catalogue()
    service = catalogue.for_path("/serviceengineexternal/CORRESPONDENCEAGENCYEXTERNALBASIC.svc")
    assert service is not None
    assert service.name == "CorrespondenceAgencyExternalBasic"
    for service in catalogue:
        test = service.operation("Test")
        assert test is not None
        assert test.soap_action == "http://www.altinn.no/services/2009/10/IAltinnContractBase/Test"


def test_ws_twins_are_soap12_with_wsse() -> None:
    service = default_catalogue().by_name("CorrespondenceAgencyExternal")
    assert service is not None
    assert service.binding is Binding.WS
    op = service.operation("InsertCorrespondenceV2")
    assert op is not None
    assert op.soap_action.endswith("/ICorrespondenceAgencyExternal/InsertCorrespondenceV2")
    assert op.credentials.value == "wsse"
