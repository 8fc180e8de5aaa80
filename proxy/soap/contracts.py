"""Legacy request/response types as values: what a mapping file's ``contract`` compiles to.

The mapping files declare them (``proxy.mapping.contracts`` compiles the YAML); dispatch, the served
WSDL/XSD (:mod:`proxy.soap.wsdl`), field paths and answer checks (:mod:`proxy.soap.conformance`) all
read these values, so an operation's legacy types are written down exactly once.

An operation's contract is two element declarations (request and response) built from fields. A
field is an XSD built-in (``string``, ``int``, ``boolean``, ``dateTime``, ``base64Binary``, ...) or a
:class:`ComplexType`; ``list_item`` makes the field a list wrapper (``ReferenceList/Reference*``).

WCF message contracts also carry SOAP headers (``SystemUserName``/``SystemPassword``, or the
``FileName``/``Reference``/``Reportee`` of a streamed upload): each is a :class:`HeaderDecl`, a global
element listed in the contract's ``request_headers`` or ``response_headers`` in the order the
original binds them. The generated WSDL declares the element in the schema, puts one part per header
in a ``{message}_Headers`` message and binds each part with ``soap:header``/``soap12:header``, as
WCF's own WSDLs do; zeep then accepts them as ``_soapheaders={"FileName": ...}``. Within a service
a header element is declared once: operations may share one only with an equal declaration.

A :class:`ContractRegistry` holds one :class:`OperationContract` per ``(service name, operation
name)``; ``Test`` needs no declaration. A field marked ``mtom`` is the binary payload of a streamed
operation: it travels as the MTOM part (or inline base64) and is handed on as a stream.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from proxy.soap.names import XName


@dataclass(frozen=True, eq=False)
class ComplexType:
    """A named complex type (an ``xs:sequence`` of fields) in ``namespace``.

    Compared by identity: types may refer to each other recursively (a ``Receipt`` holds a
    ``ReceiptList`` of ``Receipt``), so each declared type is one shared object.
    """

    namespace: str
    name: str
    fields: tuple[Field, ...] = ()


@dataclass(frozen=True)
class Field:
    """One child element of a sequence, emitted in declaration order."""

    name: str
    type: str | ComplexType = "string"
    min_occurs: int = 0
    nillable: bool = False
    #: When set, this field is a wrapper holding any number of ``list_item`` elements of ``type``.
    list_item: str | None = None
    #: The element itself may repeat (``maxOccurs="unbounded"``), as in WCF's named list types
    #: (``ReporteeElementBEV2List/ReporteeElementBEV2*``) whose items share the list's namespace.
    repeated: bool = False
    #: The binary payload of a streamed operation (``base64Binary``; an MTOM part on the wire).
    mtom: bool = False


@dataclass(frozen=True)
class ElementDecl:
    """A global element with an anonymous sequence type (operation wrappers)."""

    namespace: str
    name: str
    fields: tuple[Field, ...] = ()


@dataclass(frozen=True)
class HeaderDecl:
    """A global element that travels as a SOAP header block (a WCF message-contract header)."""

    namespace: str
    name: str
    type: str | ComplexType = "string"
    #: WCF declares its message headers nillable.
    nillable: bool = True


@dataclass(frozen=True)
class OperationContract:
    """The request and response wrappers of one operation, and its SOAP headers if any."""

    request: ElementDecl
    response: ElementDecl
    request_headers: tuple[HeaderDecl, ...] = ()
    response_headers: tuple[HeaderDecl, ...] = ()

    @property
    def request_name(self) -> XName:
        """The body element of a request."""
        return XName(self.request.namespace, self.request.name)

    @property
    def response_name(self) -> XName:
        """The body element of an answer."""
        return XName(self.response.namespace, self.response.name)

    def stream_field(self, direction: str) -> Field | None:
        """The ``mtom`` child of the request (``"request"``) or the response (``"response"``), if any."""
        decl = self.request if direction == "request" else self.response
        return next((item for item in decl.fields if item.mtom), None)


@dataclass(frozen=True)
class ContractRegistry:
    """Operation contracts by ``(service name, operation name)``."""

    contracts: Mapping[tuple[str, str], OperationContract] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "contracts", MappingProxyType(dict(self.contracts)))

    def get(self, service: str, operation: str) -> OperationContract | None:
        """The contract of ``operation`` on ``service``, or None when undeclared."""
        return self.contracts.get((service, operation))

    def with_contract(self, service: str, operation: str, contract: OperationContract) -> ContractRegistry:
        """A registry with one more contract."""
        return ContractRegistry({**self.contracts, (service, operation): contract})

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.contracts)


def header_fields(headers: tuple[HeaderDecl, ...]) -> tuple[Field, ...]:
    """The headers as fields, so that :func:`complex_types` reaches the types they use."""
    return tuple(Field(header.name, header.type, nillable=header.nillable) for header in headers)


def complex_types(fields: tuple[Field, ...]) -> Iterator[ComplexType]:
    """Every complex type reachable from ``fields`` (depth first, each once per walk)."""
    seen: set[tuple[str, str]] = set()

    def walk(items: tuple[Field, ...]) -> Iterator[ComplexType]:
        for item in items:
            if isinstance(item.type, ComplexType):
                key = (item.type.namespace, item.type.name)
                if key not in seen:
                    seen.add(key)
                    yield item.type
                    yield from walk(item.type.fields)

    yield from walk(fields)
