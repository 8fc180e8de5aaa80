"""The project's own declaration of legacy request/response types, from which WSDLs are generated.

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

Mapping work adds operations by registering a :class:`OperationContract` under
``(service name, operation name)`` in a :class:`ContractRegistry`. ``Test`` needs no declaration.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class ComplexType:
    """A named complex type (an ``xs:sequence`` of fields) in ``namespace``."""

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


#: Contracts declared by the SOAP front itself; the mapping work registers the operations it translates.


def builtin_contracts() -> ContractRegistry:
    """Every operation contract the project declares, one module per service family."""
    from proxy.soap import (
        contracts_broker,
        contracts_correspondence_agency,
        contracts_correspondence_enduser,
        contracts_receipt,
    )

    families = (
        contracts_correspondence_agency,
        contracts_correspondence_enduser,
        contracts_broker,
        contracts_receipt,
    )
    return ContractRegistry(
        {key: contract for family in families for key, contract in family.CONTRACTS.items()}
    )


BUILTIN_CONTRACTS = builtin_contracts()
