"""WSDL 1.1 documents generated from the catalogue and the declared contracts.

One self-contained document per service (``?wsdl``, ``?singleWsdl`` and ``?wsdl=wsdl0`` all answer
it; ``?xsd=xsdN`` answers its N-th schema). It declares ``Test``, every operation with a declared
contract, and the ``AltinnFault`` detail, on the service's own binding (SOAP 1.1 ``BasicHttpBinding``
or SOAP 1.2 for WS endpoints), with the address set to the proxy's external URL. Message-contract
headers are bound as WCF binds them: a ``{message}_Headers`` message with one part per header
element, referenced from the operation's input/output by ``soap:header`` (``soap12:header``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from lxml import etree

from proxy.soap.catalogue import TEST_OPERATION_NAME, Binding, Operation, Service
from proxy.soap.contracts import (
    ComplexType,
    ContractRegistry,
    ElementDecl,
    Field,
    HeaderDecl,
    OperationContract,
    complex_types,
    header_fields,
)
from proxy.soap.envelope import SoapVersion
from proxy.soap.names import CONTRACT_BASE_NS, FAULT_NS, XS_NS

WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP11_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
WSDL_SOAP12_NS = "http://schemas.xmlsoap.org/wsdl/soap12/"
HTTP_TRANSPORT = "http://schemas.xmlsoap.org/soap/http"

_TEST = OperationContract(
    request=ElementDecl(CONTRACT_BASE_NS, "Test"),
    response=ElementDecl(CONTRACT_BASE_NS, "TestResponse"),
)
_FAULT_TYPE = ComplexType(
    FAULT_NS,
    "AltinnFault",
    (
        Field("AltinnErrorMessage", nillable=True),
        Field("AltinnExtendedErrorMessage", nillable=True),
        Field("AltinnLocalizedErrorMessage", nillable=True),
        Field("ErrorGuid", nillable=True),
        Field("ErrorID", "int"),
        Field("UserGuid", nillable=True),
        Field("UserId", nillable=True),
    ),
)


@dataclass(frozen=True)
class ServiceDescription:
    """The generated documents of one service."""

    wsdl: bytes
    schemas: tuple[bytes, ...]


def _x(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


class _Prefixes:
    def __init__(self) -> None:
        self.by_ns: dict[str, str] = {}

    def __call__(self, ns: str) -> str:
        if ns not in self.by_ns:
            self.by_ns[ns] = f"q{len(self.by_ns)}"
        return self.by_ns[ns]


def operation_contracts(
    service: Service, contracts: ContractRegistry
) -> list[tuple[Operation, OperationContract]]:
    """The operations of ``service`` a WSDL can describe: Test and those with a declared contract."""
    found: list[tuple[Operation, OperationContract]] = []
    for op in service.operations:
        contract = _TEST if op.name == TEST_OPERATION_NAME else contracts.get(service.name, op.name)
        if contract is not None:
            found.append((op, contract))
    return found


@dataclass
class _Declarations:
    """The global elements and named types of one service's schemas, by namespace."""

    elements: dict[str, list[ElementDecl]] = field(default_factory=lambda: defaultdict(list))
    headers: dict[str, list[HeaderDecl]] = field(default_factory=lambda: defaultdict(list))
    types: dict[str, list[ComplexType]] = field(default_factory=lambda: defaultdict(list))

    @property
    def namespaces(self) -> list[str]:
        """Every namespace that gets a schema, in emission order."""
        return sorted(set(self.elements) | set(self.headers) | set(self.types))


def _collect(pairs: list[tuple[Operation, OperationContract]]) -> _Declarations:
    found = _Declarations()
    seen_types: set[tuple[str, str]] = set()
    seen_headers: dict[tuple[str, str], HeaderDecl] = {}
    for _, contract in pairs:
        headers = (*contract.request_headers, *contract.response_headers)
        for header in headers:
            key = (header.namespace, header.name)
            if key not in seen_headers:
                seen_headers[key] = header
                found.headers[header.namespace].append(header)
            elif seen_headers[key] != header:
                raise ValueError(f"header element {{{key[0]}}}{key[1]} is declared twice, differently")
        for fields in (contract.request.fields, contract.response.fields, header_fields(headers)):
            for ctype in complex_types(fields):
                if (ctype.namespace, ctype.name) not in seen_types:
                    seen_types.add((ctype.namespace, ctype.name))
                    found.types[ctype.namespace].append(ctype)
        for decl in (contract.request, contract.response):
            found.elements[decl.namespace].append(decl)
    found.types[FAULT_NS].append(_FAULT_TYPE)
    # Two global elements of one name make the schema invalid, and zeep would quietly keep one.
    others = {(ns, item.name) for ns, items in found.elements.items() for item in items}
    others |= {(ns, item.name) for ns, items in found.types.items() for item in items}
    clashes = sorted(others & set(seen_headers))
    if clashes:
        ns, name = clashes[0]
        raise ValueError(f"header element {{{ns}}}{name} clashes with another global element")
    return found


def _schemas(parent: etree._Element, found: _Declarations, prefixes: _Prefixes) -> list[etree._Element]:
    namespaces = found.namespaces
    schemas: list[etree._Element] = []
    for ns in namespaces:
        schema = etree.SubElement(
            parent, _x(XS_NS, "schema"), elementFormDefault="qualified", targetNamespace=ns
        )
        for other in namespaces:
            if other != ns:
                etree.SubElement(schema, _x(XS_NS, "import"), namespace=other)
        for ctype in found.types.get(ns, []):
            complex_type = etree.SubElement(schema, _x(XS_NS, "complexType"), name=ctype.name)
            _sequence(complex_type, ctype.fields, prefixes)
            etree.SubElement(
                schema,
                _x(XS_NS, "element"),
                name=ctype.name,
                nillable="true",
                type=f"{prefixes(ns)}:{ctype.name}",
            )
        for decl in found.elements.get(ns, []):
            element = etree.SubElement(schema, _x(XS_NS, "element"), name=decl.name)
            _sequence(etree.SubElement(element, _x(XS_NS, "complexType")), decl.fields, prefixes)
        for header in found.headers.get(ns, []):
            element = etree.SubElement(schema, _x(XS_NS, "element"), name=header.name)
            if header.nillable:
                element.set("nillable", "true")
            element.set("type", _type_ref(header.type, prefixes))
        schemas.append(schema)
    return schemas


def _type_ref(field_type: str | ComplexType, prefixes: _Prefixes) -> str:
    if isinstance(field_type, ComplexType):
        return f"{prefixes(field_type.namespace)}:{field_type.name}"
    return f"xsd:{field_type}"


def _sequence(parent: etree._Element, fields: tuple[Field, ...], prefixes: _Prefixes) -> None:
    sequence = etree.SubElement(parent, _x(XS_NS, "sequence"))
    for item in fields:
        element = etree.SubElement(
            sequence, _x(XS_NS, "element"), minOccurs=str(item.min_occurs), name=item.name
        )
        if item.repeated:
            element.set("maxOccurs", "unbounded")
        if item.nillable:
            element.set("nillable", "true")
        if item.list_item is None:
            element.set("type", _type_ref(item.type, prefixes))
            continue
        wrapper = etree.SubElement(etree.SubElement(element, _x(XS_NS, "complexType")), _x(XS_NS, "sequence"))
        etree.SubElement(
            wrapper,
            _x(XS_NS, "element"),
            minOccurs="0",
            maxOccurs="unbounded",
            name=item.list_item,
            type=_type_ref(item.type, prefixes),
        )


def describe(service: Service, contracts: ContractRegistry, address: str) -> ServiceDescription:
    """Generate the WSDL (and its schemas) of ``service`` with ``address`` as the endpoint URL."""
    pairs = operation_contracts(service, contracts)
    found = _collect(pairs)
    soap_ns = WSDL_SOAP12_NS if service.soap_version is SoapVersion.SOAP12 else WSDL_SOAP11_NS
    prefixes = _Prefixes()
    for ns in found.namespaces:
        prefixes(ns)
    nsmap = {
        "wsdl": WSDL_NS,
        "soap": soap_ns,
        "xsd": XS_NS,
        "tns": service.namespace,
        **{prefix: ns for ns, prefix in prefixes.by_ns.items()},
    }
    root = etree.Element(
        _x(WSDL_NS, "definitions"), nsmap=nsmap, name=service.name, targetNamespace=service.namespace
    )
    schemas = _schemas(etree.SubElement(root, _x(WSDL_NS, "types")), found, prefixes)
    port_type_name = service.interface
    fault_ref = f"{prefixes(FAULT_NS)}:AltinnFault"
    for op, contract in pairs:
        base = f"{port_type_name}_{op.name}"
        for suffix, decl, headers in (
            ("InputMessage", contract.request, contract.request_headers),
            ("OutputMessage", contract.response, contract.response_headers),
        ):
            message = etree.SubElement(root, _x(WSDL_NS, "message"), name=f"{base}_{suffix}")
            etree.SubElement(
                message,
                _x(WSDL_NS, "part"),
                name="parameters",
                element=f"{prefixes(decl.namespace)}:{decl.name}",
            )
            if headers:
                message = etree.SubElement(root, _x(WSDL_NS, "message"), name=f"{base}_{suffix}_Headers")
                for header in headers:
                    etree.SubElement(
                        message,
                        _x(WSDL_NS, "part"),
                        name=header.name,
                        element=f"{prefixes(header.namespace)}:{header.name}",
                    )
        fault = etree.SubElement(root, _x(WSDL_NS, "message"), name=f"{base}_AltinnFaultFault_FaultMessage")
        etree.SubElement(fault, _x(WSDL_NS, "part"), name="detail", element=fault_ref)
    port_type = etree.SubElement(root, _x(WSDL_NS, "portType"), name=port_type_name)
    for op, _ in pairs:
        base = f"tns:{port_type_name}_{op.name}"
        operation = etree.SubElement(port_type, _x(WSDL_NS, "operation"), name=op.name)
        etree.SubElement(operation, _x(WSDL_NS, "input"), message=f"{base}_InputMessage")
        etree.SubElement(operation, _x(WSDL_NS, "output"), message=f"{base}_OutputMessage")
        etree.SubElement(
            operation,
            _x(WSDL_NS, "fault"),
            name="AltinnFaultFault",
            message=f"{base}_AltinnFaultFault_FaultMessage",
        )
    binding_name = (
        f"{'BasicHttpBinding' if service.binding is not Binding.WS else 'WSHttpBinding'}_{port_type_name}"
    )
    binding = etree.SubElement(root, _x(WSDL_NS, "binding"), name=binding_name, type=f"tns:{port_type_name}")
    etree.SubElement(binding, _x(soap_ns, "binding"), transport=HTTP_TRANSPORT)
    for op, contract in pairs:
        operation = etree.SubElement(binding, _x(WSDL_NS, "operation"), name=op.name)
        etree.SubElement(operation, _x(soap_ns, "operation"), soapAction=op.soap_action, style="document")
        for direction, suffix, headers in (
            ("input", "InputMessage", contract.request_headers),
            ("output", "OutputMessage", contract.response_headers),
        ):
            bound = etree.SubElement(operation, _x(WSDL_NS, direction))
            for header in headers:
                etree.SubElement(
                    bound,
                    _x(soap_ns, "header"),
                    message=f"tns:{port_type_name}_{op.name}_{suffix}_Headers",
                    part=header.name,
                    use="literal",
                )
            etree.SubElement(bound, _x(soap_ns, "body"), use="literal")
        fault = etree.SubElement(operation, _x(WSDL_NS, "fault"), name="AltinnFaultFault")
        etree.SubElement(fault, _x(soap_ns, "fault"), name="AltinnFaultFault", use="literal")
    wsdl_service = etree.SubElement(root, _x(WSDL_NS, "service"), name=service.name)
    port = etree.SubElement(
        wsdl_service, _x(WSDL_NS, "port"), name=binding_name, binding=f"tns:{binding_name}"
    )
    etree.SubElement(port, _x(soap_ns, "address"), location=address)
    return ServiceDescription(
        wsdl=etree.tostring(root, encoding="utf-8", xml_declaration=True),
        schemas=tuple(etree.tostring(schema, encoding="utf-8", xml_declaration=True) for schema in schemas),
    )


def rewrite_addresses(wsdl: bytes, address: str) -> bytes:
    """An operator-supplied original WSDL with every ``soap:address``/``soap12:address`` set to ``address``.

    The file is trusted configuration, but it is still parsed without network or entity expansion.
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(wsdl, parser)
    for ns in (WSDL_SOAP11_NS, WSDL_SOAP12_NS):
        for element in root.iter(_x(ns, "address")):
            element.set("location", address)
    return etree.tostring(root, encoding="utf-8", xml_declaration=True)
