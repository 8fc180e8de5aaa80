"""Message-contract SOAP headers in the generated WSDLs: bound as WCF binds them, understood by zeep.

The declarations of the real header operations are checked against the ORIGINAL Altinn 2 WSDLs: the
same header elements, bound in the same order, around the same body element.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import zeep
from lxml import etree

from proxy.soap.catalogue import Service, default_catalogue
from proxy.soap.contracts import (
    ComplexType,
    ContractRegistry,
    ElementDecl,
    Field,
    HeaderDecl,
    OperationContract,
)
from proxy.soap.names import XS_NS
from proxy.soap.wsdl import WSDL_NS, WSDL_SOAP11_NS, WSDL_SOAP12_NS, describe
from tests.shipped import shipped_surface

NS = "http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10"
OTHER_NS = "urn:test:headers"
ADDRESS = "http://127.0.0.1:9/service.svc"

_TICKET = ComplexType(OTHER_NS, "Ticket", (Field("Number", "int"), Field("Issuer", nillable=True)))
CREDENTIALS = (HeaderDecl(NS, "SystemPassword"), HeaderDecl(NS, "SystemUserName"))


def _contract(operation: str, *, response_headers: tuple[HeaderDecl, ...] = ()) -> OperationContract:
    return OperationContract(
        request=ElementDecl(NS, f"{operation}Request", (Field("Text"),)),
        response=ElementDecl(NS, f"{operation}Result", (Field("Echo"),)),
        request_headers=CREDENTIALS,
        response_headers=response_headers,
    )


def _service(name: str) -> Service:
    service = default_catalogue().by_name(name)
    assert service is not None
    return service


def _registry(service: Service, *contracts: tuple[str, OperationContract]) -> ContractRegistry:
    return ContractRegistry({(service.name, operation): contract for operation, contract in contracts})


def _root(wsdl: bytes) -> etree._Element:
    return etree.fromstring(wsdl, etree.XMLParser(resolve_entities=False, no_network=True))


def _bound_headers(root: etree._Element, operation: str, direction: str) -> list[tuple[str, str]]:
    """``(message, part)`` of every soap:header/soap12:header of ``operation``'s ``direction``."""
    [bound] = root.xpath(
        f"wsdl:binding/wsdl:operation[@name=$name]/wsdl:{direction}",
        name=operation,
        namespaces={"wsdl": WSDL_NS},
    )
    return [(header.get("message"), header.get("part")) for header in bound if header.tag.endswith("}header")]


def _header_elements(root: etree._Element, operation: str, direction: str) -> list[str]:
    """The element (Clark notation) of each header part bound on ``operation``'s ``direction``."""
    found = []
    for message, part in _bound_headers(root, operation, direction):
        prefix, local = message.split(":")
        [element] = root.xpath(
            "wsdl:message[@name=$message]/wsdl:part[@name=$part]",
            message=local,
            part=part,
            namespaces={"wsdl": WSDL_NS},
        )
        assert root.nsmap[prefix] == root.get("targetNamespace")
        element_prefix, element_local = element.get("element").split(":")
        found.append(f"{{{element.nsmap[element_prefix]}}}{element_local}")
    return found


def _zeep_operation(tmp_path: Path, wsdl: bytes, operation: str) -> Any:
    path = tmp_path / "served.wsdl"
    path.write_bytes(wsdl)
    client = zeep.Client(str(path))
    port = next(iter(next(iter(client.wsdl.services.values())).ports.values()))
    return client, port.binding.get(operation)


def _zeep_headers(message: Any) -> list[str]:
    return [element.qname.text for _, element in message.header.type.elements]


def test_request_and_response_headers_are_bound_as_wcf_binds_them(tmp_path: Path) -> None:
    service = _service("CorrespondenceAgencyExternalBasic")
    ticket = HeaderDecl(OTHER_NS, "CurrentTicket", _TICKET, nillable=False)
    registry = _registry(
        service, ("InsertCorrespondenceBasicV2", _contract("Insert", response_headers=(ticket,)))
    )

    description = describe(service, registry, ADDRESS)
    root = _root(description.wsdl)

    base = f"tns:{service.interface}_InsertCorrespondenceBasicV2"
    assert _bound_headers(root, "InsertCorrespondenceBasicV2", "input") == [
        (f"{base}_InputMessage_Headers", "SystemPassword"),
        (f"{base}_InputMessage_Headers", "SystemUserName"),
    ]
    assert _bound_headers(root, "InsertCorrespondenceBasicV2", "output") == [
        (f"{base}_OutputMessage_Headers", "CurrentTicket")
    ]
    assert _header_elements(root, "InsertCorrespondenceBasicV2", "output") == [f"{{{OTHER_NS}}}CurrentTicket"]
    [bound_input] = root.xpath(
        "wsdl:binding/wsdl:operation[@name='InsertCorrespondenceBasicV2']/wsdl:input",
        namespaces={"wsdl": WSDL_NS},
    )
    assert [etree.QName(child).localname for child in bound_input] == ["header", "header", "body"]
    assert {etree.QName(child).namespace for child in bound_input} == {WSDL_SOAP11_NS}
    # The header elements are global elements of their namespace's schema, typed as declared.
    [password] = root.xpath(
        "//xs:schema[@targetNamespace=$ns]/xs:element[@name='SystemPassword']",
        ns=NS,
        namespaces={"xs": XS_NS},
    )
    assert (password.get("nillable"), password.get("type")) == ("true", "xsd:string")
    [ticket_element] = root.xpath(
        "//xs:schema[@targetNamespace=$ns]/xs:element[@name='CurrentTicket' and not(@nillable)]",
        ns=OTHER_NS,
        namespaces={"xs": XS_NS},
    )
    prefix, local = ticket_element.get("type").split(":")
    assert (root.nsmap[prefix], local) == (OTHER_NS, "Ticket")
    assert root.xpath(
        "//xs:schema[@targetNamespace=$ns]/xs:complexType[@name='Ticket']",
        ns=OTHER_NS,
        namespaces={"xs": XS_NS},
    )

    client, operation = _zeep_operation(tmp_path, description.wsdl, "InsertCorrespondenceBasicV2")
    assert _zeep_headers(operation.input) == [f"{{{NS}}}SystemPassword", f"{{{NS}}}SystemUserName"]
    assert _zeep_headers(operation.output) == [f"{{{OTHER_NS}}}CurrentTicket"]
    assert [name for name, _ in operation.input.body.type.elements] == ["Text"]
    envelope = client.create_message(
        client.service,
        "InsertCorrespondenceBasicV2",
        Text="hello",
        _soapheaders={"SystemUserName": "user", "SystemPassword": "secret"},
    )
    header = envelope.find("{http://schemas.xmlsoap.org/soap/envelope/}Header")
    assert [(child.tag, child.text) for child in header] == [
        (f"{{{NS}}}SystemPassword", "secret"),
        (f"{{{NS}}}SystemUserName", "user"),
    ]


def test_a_soap12_binding_binds_its_headers_with_soap12_header(tmp_path: Path) -> None:
    service = _service("CorrespondenceAgencyExternal")
    registry = _registry(service, ("InsertCorrespondenceV2", _contract("Insert")))

    description = describe(service, registry, ADDRESS)
    root = _root(description.wsdl)

    [bound_input] = root.xpath(
        "wsdl:binding/wsdl:operation[@name='InsertCorrespondenceV2']/wsdl:input", namespaces={"wsdl": WSDL_NS}
    )
    assert [child.tag for child in bound_input] == [
        f"{{{WSDL_SOAP12_NS}}}header",
        f"{{{WSDL_SOAP12_NS}}}header",
        f"{{{WSDL_SOAP12_NS}}}body",
    ]
    _, operation = _zeep_operation(tmp_path, description.wsdl, "InsertCorrespondenceV2")
    assert type(operation.binding).__name__ == "Soap12Binding"
    assert _zeep_headers(operation.input) == [f"{{{NS}}}SystemPassword", f"{{{NS}}}SystemUserName"]


def test_operations_without_headers_bind_only_the_body() -> None:
    service = _service("CorrespondenceAgencyExternalBasic")
    root = _root(describe(service, shipped_surface().contracts, ADDRESS).wsdl)

    assert _bound_headers(root, "InsertCorrespondenceBasicV2", "input") == []
    assert _bound_headers(root, "Test", "input") == []
    assert not root.xpath(
        "wsdl:message[contains(@name, 'InsertCorrespondenceBasicV2_InputMessage_Headers')]",
        namespaces={"wsdl": WSDL_NS},
    )


def test_a_header_shared_by_two_operations_is_declared_once() -> None:
    service = _service("CorrespondenceAgencyExternalBasic")
    registry = _registry(
        service,
        ("InsertCorrespondenceBasicV2", _contract("Insert")),
        ("GetCorrespondenceStatusDetailsBasicV3", _contract("Details")),
    )

    root = _root(describe(service, registry, ADDRESS).wsdl)

    declared = root.xpath(
        "//xs:schema[@targetNamespace=$ns]/xs:element[@name='SystemUserName']",
        ns=NS,
        namespaces={"xs": XS_NS},
    )
    assert len(declared) == 1
    assert _header_elements(root, "GetCorrespondenceStatusDetailsBasicV3", "input") == [
        f"{{{NS}}}SystemPassword",
        f"{{{NS}}}SystemUserName",
    ]


@pytest.mark.parametrize(
    "second",
    [
        # The same header element declared with another type.
        OperationContract(
            request=ElementDecl(NS, "DetailsRequest"),
            response=ElementDecl(NS, "DetailsResult"),
            request_headers=(HeaderDecl(NS, "SystemUserName", "int"),),
        ),
        # A header element named like another operation's body element.
        OperationContract(
            request=ElementDecl(NS, "DetailsRequest"),
            response=ElementDecl(NS, "DetailsResult"),
            request_headers=(HeaderDecl(NS, "InsertRequest"),),
        ),
    ],
    ids=["conflicting-type", "clashing-name"],
)
def test_two_different_global_elements_of_one_name_are_refused(second: OperationContract) -> None:
    service = _service("CorrespondenceAgencyExternalBasic")
    registry = _registry(
        service,
        ("InsertCorrespondenceBasicV2", _contract("Insert")),
        ("GetCorrespondenceStatusDetailsBasicV3", second),
    )

    with pytest.raises(ValueError, match="header element"):
        describe(service, registry, ADDRESS)


ORIGINALS = {
    ("BrokerServiceExternalBasicStreamed", "UploadFileStreamedBasic"): (
        "BrokerServiceExternalStreamed/Basic/BrokerServiceExternalBasicStreamed.wsdl"
    ),
    ("BrokerServiceExternalBasicStreamed", "DownloadFileStreamedBasic"): (
        "BrokerServiceExternalStreamed/Basic/BrokerServiceExternalBasicStreamed.wsdl"
    ),
    ("CorrespondenceAgencyExternalBasic", "GetCorrespondenceStatusHistoryBasic"): (
        "CorrespondenceAgencyExternal/Basic/CorrespondenceAgencyExternalBasic.wsdl"
    ),
}


def _body_element(root: etree._Element, operation: str, direction: str) -> str:
    [message] = root.xpath(
        "wsdl:portType/wsdl:operation[@name=$name]/*[local-name()=$direction]/@message",
        name=operation,
        direction=direction,
        namespaces={"wsdl": WSDL_NS},
    )
    [part] = root.xpath(
        "wsdl:message[@name=$name]/wsdl:part", name=str(message).split(":")[1], namespaces={"wsdl": WSDL_NS}
    )
    prefix, local = part.get("element").split(":")
    return f"{{{part.nsmap[prefix]}}}{local}"


@pytest.mark.parametrize(("service_name", "operation"), sorted(ORIGINALS))
def test_served_headers_are_the_original_wsdls_headers(
    service_name: str, operation: str, reference: os.PathLike[str]
) -> None:
    original = _root((Path(reference) / "altinn2" / ORIGINALS[(service_name, operation)]).read_bytes())
    served = _root(describe(_service(service_name), shipped_surface().contracts, ADDRESS).wsdl)

    for direction in ("input", "output"):
        assert _header_elements(served, operation, direction) == _header_elements(
            original, operation, direction
        )
        assert _body_element(served, operation, direction) == _body_element(original, operation, direction)


def test_every_service_of_the_catalogue_describes_its_declared_contracts() -> None:
    described = {
        service.name: _root(describe(service, shipped_surface().contracts, ADDRESS).wsdl)
        for service in default_catalogue().services
    }

    with_headers = {
        (name, operation.get("name"))
        for name, root in described.items()
        for operation in root.xpath("wsdl:binding/wsdl:operation", namespaces={"wsdl": WSDL_NS})
        if _bound_headers(root, operation.get("name"), "input")
    }
    assert with_headers == {
        ("BrokerServiceExternalBasicStreamed", "UploadFileStreamedBasic"),
        ("CorrespondenceAgencyExternalBasic", "GetCorrespondenceStatusHistoryBasic"),
    }
