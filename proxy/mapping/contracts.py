"""The legacy side of a mapping file: ``namespaces``, ``types`` and each operation's ``contract``.

Compiled here into :mod:`proxy.soap.contracts` values, which dispatch (:mod:`proxy.soap.surface`),
the served WSDL (:mod:`proxy.soap.wsdl`) and the answer check (:mod:`proxy.soap.conformance`) read.
Pure: values in, values out; every problem is a :class:`~proxy.mapping.source.Located` with the YAML path of the
key at fault, which the compiler turns into ``file:line``.

Invariants:
* A complex type is named ``prefix:Name`` with a prefix from the file's ``namespaces``. Types are
  shared by every file of the directory, keyed by (namespace, name); a file may repeat an equal
  declaration (so that it stands alone) but never declare the same name differently.
* Each declared type is one :class:`ComplexType` object; references between types, recursive ones
  included (``Receipt`` → ``ReceiptList`` → ``Receipt``), point at that object.
* An alias (e.g. the WS twin of a Basic operation) derives its contract from the operation's:
  the ``{Op}``/``{Op}Response`` elements and the ``{Op}Result`` child take the alias's name, and a
  WS alias drops the ``systemUserName``/``systemPassword`` children (WS-Security carries them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from proxy.mapping.schema import ContractDecl, FieldDecl, FieldDecls, MappingFile, MessageDecl
from proxy.mapping.source import Loc, Located, Positions, Problem
from proxy.soap.catalogue import Binding, Service
from proxy.soap.conformance import BUILTIN_TYPES
from proxy.soap.contracts import ComplexType, ElementDecl, Field, HeaderDecl, OperationContract

_FLAGS = frozenset({"required", "nillable", "repeated", "mtom"})
_BODY_CREDENTIALS = frozenset({"systemusername", "systempassword"})

TypeKey = tuple[str, str]
"""(namespace, name) of a complex type."""
TypeRef = str | TypeKey
"""A built-in's name, or the key of a declared complex type."""


@dataclass(frozen=True)
class _FieldSig:
    """A field with its type reference unresolved: what two equal declarations share."""

    name: str
    type: TypeRef
    required: bool
    nillable: bool
    repeated: bool
    list_item: str | None
    mtom: bool
    loc: Loc = dataclasses.field(compare=False)


@dataclass(frozen=True)
class _Declared:
    fields: tuple[_FieldSig, ...]
    positions: Positions = dataclasses.field(compare=False)
    loc: Loc = dataclasses.field(compare=False)

    @property
    def where(self) -> str:
        return f"{self.positions.file}:{self.positions.line(self.loc)}"


TypeTable = Mapping[TypeKey, ComplexType]
"""Every complex type the mapping directory declares."""


def resolve_qname(text: str, namespaces: Mapping[str, str], default: str | None, loc: Loc) -> TypeKey:
    """``prefix:Name`` (or a bare ``Name`` in ``default``) as (namespace, name)."""
    prefix, colon, name = text.rpartition(":")
    if not colon:
        if default is None:
            raise Located(loc, f"{text!r} needs a namespace prefix (prefix:{text})")
        return default, text
    namespace = namespaces.get(prefix)
    if namespace is None:
        known = ", ".join(sorted(namespaces)) or "none declared"
        raise Located(loc, f"unknown namespace prefix {prefix!r} (the file's 'namespaces': {known})")
    return namespace, name


def _signature(name: str, source: str | FieldDecl, namespaces: Mapping[str, str], loc: Loc) -> _FieldSig:
    if isinstance(source, str):
        type_text, *flags = source.split() or [""]
        unknown = sorted(set(flags) - _FLAGS)
        if unknown or not type_text:
            raise Located(loc, f"{source!r}: write 'type' followed by any of {', '.join(sorted(_FLAGS))}")
        decl = FieldDecl(type=type_text, **dict.fromkeys(flags, True))
    else:
        decl = source
    if ":" in decl.type:
        type_ref: TypeRef = resolve_qname(decl.type, namespaces, None, loc)
    elif decl.type in BUILTIN_TYPES:
        type_ref = decl.type
    else:
        raise Located(
            loc,
            f"unknown type {decl.type!r}: an XSD built-in ({', '.join(sorted(BUILTIN_TYPES))}) or prefix:Name",
        )
    if decl.mtom and type_ref != "base64Binary":
        raise Located(loc, "an 'mtom' payload is a base64Binary")
    if decl.list_item is not None and decl.repeated:
        raise Located(loc, "a list wrapper ('list_item') does not repeat itself")
    return _FieldSig(
        name, type_ref, decl.required, decl.nillable, decl.repeated, decl.list_item, decl.mtom, loc
    )


def _signatures(fields: FieldDecls, namespaces: Mapping[str, str], loc: Loc) -> tuple[_FieldSig, ...]:
    return tuple(_signature(name, source, namespaces, (*loc, name)) for name, source in fields.items())


def collect_types(files: Iterable[tuple[MappingFile, Positions]]) -> tuple[TypeTable, list[Problem]]:
    """The complex types of every file, resolved against each other; problems with file:line."""
    declared: dict[TypeKey, _Declared] = {}
    problems: list[Problem] = []
    for spec, positions in files:
        for key_text, fields in spec.types.items():
            loc: Loc = ("types", key_text)
            try:
                key = resolve_qname(key_text, spec.namespaces, None, loc)
                here = _Declared(_signatures(fields, spec.namespaces, loc), positions, loc)
            except Located as error:
                problems.append(positions.problem(error.loc, error.message))
                continue
            earlier = declared.setdefault(key, here)
            if earlier is not here and earlier != here:
                problems.append(
                    positions.problem(
                        loc, f"type {key_text} is also declared, differently, at {earlier.where}"
                    )
                )
    types = {key: ComplexType(key[0], key[1]) for key in declared}
    for key, found in declared.items():
        resolved = []
        for sig in found.fields:
            if isinstance(sig.type, tuple) and sig.type not in types:
                problems.append(
                    found.positions.problem(sig.loc, f"type {{{sig.type[0]}}}{sig.type[1]} is not declared")
                )
                continue
            resolved.append(_field(sig, types))
        # Closing the cycles of recursive types: each type object is created first, then filled.
        object.__setattr__(types[key], "fields", tuple(resolved))
    return types, problems


def _field(sig: _FieldSig, types: Mapping[TypeKey, ComplexType]) -> Field:
    return Field(
        sig.name,
        sig.type if isinstance(sig.type, str) else types[sig.type],
        min_occurs=1 if sig.required else 0,
        nillable=sig.nillable,
        list_item=sig.list_item,
        repeated=sig.repeated,
        mtom=sig.mtom,
    )


def _resolved(sig: _FieldSig, types: TypeTable) -> Field:
    if isinstance(sig.type, tuple) and sig.type not in types:
        raise Located(sig.loc, f"type {{{sig.type[0]}}}{sig.type[1]} is not declared in any mapping file")
    return _field(sig, types)


def _fields(
    fields: FieldDecls, namespaces: Mapping[str, str], types: TypeTable, loc: Loc
) -> tuple[Field, ...]:
    return tuple(_resolved(sig, types) for sig in _signatures(fields, namespaces, loc))


def _headers(
    decl: MessageDecl, namespaces: Mapping[str, str], service: Service, types: TypeTable, loc: Loc
) -> tuple[HeaderDecl, ...]:
    headers = []
    for name_text, source in decl.headers.items():
        here: Loc = (*loc, "headers", name_text)
        namespace, name = resolve_qname(name_text, namespaces, service.namespace, here)
        sig = _signature(name, source, namespaces, here)
        if sig.required or sig.repeated or sig.list_item or sig.mtom:
            raise Located(here, "a SOAP header takes only a type and 'nillable'")
        headers.append(HeaderDecl(namespace, name, _resolved(sig, types).type, nillable=sig.nillable))
    return tuple(headers)


def compile_contract(
    decl: ContractDecl,
    service: Service,
    operation: str,
    namespaces: Mapping[str, str],
    types: TypeTable,
    loc: Loc,
) -> OperationContract:
    """The contract ``decl`` declares for ``operation`` of ``service``."""
    messages = []
    for direction, message, default in (
        ("request", decl.request, operation),
        ("response", decl.response, f"{operation}Response"),
    ):
        here: Loc = (*loc, direction)
        namespace, name = resolve_qname(
            message.element or default, namespaces, service.namespace, (*here, "element")
        )
        fields = _fields(message.fields, namespaces, types, (*here, "fields"))
        streams = [item.name for item in fields if item.mtom]
        if len(streams) > 1:
            raise Located((*here, "fields"), f"at most one 'mtom' payload per message ({', '.join(streams)})")
        messages.append(
            (ElementDecl(namespace, name, fields), _headers(message, namespaces, service, types, here))
        )
    (request, request_headers), (response, response_headers) = messages
    return OperationContract(request, response, request_headers, response_headers)


def alias_contract(
    contract: OperationContract, operation: str, alias: Service, alias_operation: str
) -> OperationContract:
    """The contract of an alias of ``operation`` (see the module docstring)."""

    def renamed(decl: ElementDecl, default: str, alias_default: str) -> ElementDecl:
        if decl.name != default:
            return decl  # a message contract names its elements itself
        return ElementDecl(alias.namespace, alias_default, decl.fields)

    request = renamed(contract.request, operation, alias_operation)
    request_headers = contract.request_headers
    if alias.binding is Binding.WS:
        request = dataclasses.replace(
            request, fields=tuple(f for f in request.fields if f.name.lower() not in _BODY_CREDENTIALS)
        )
        request_headers = tuple(h for h in request_headers if h.name.lower() not in _BODY_CREDENTIALS)
    response = renamed(contract.response, f"{operation}Response", f"{alias_operation}Response")
    response = dataclasses.replace(
        response,
        fields=tuple(
            dataclasses.replace(f, name=f"{alias_operation}Result") if f.name == f"{operation}Result" else f
            for f in response.fields
        ),
    )
    return OperationContract(request, response, request_headers, contract.response_headers)


def path_problem(
    contract: OperationContract, steps: tuple[str, ...], children: Iterable[tuple[str, ...]] = ()
) -> str | None:
    """Why the request field at ``steps`` (local names below the body element, or a header) cannot
    exist under ``contract``; None when it can. ``children`` are a record's paths below that element."""
    roots = (*contract.request.fields, *(Field(h.name, h.type) for h in contract.request_headers))
    found = _walk(roots, steps, contract.request.name)
    if isinstance(found, str):
        return found
    if found is None:
        return None
    for child in children:
        problem = _walk(found, child, "/".join(steps))
        if isinstance(problem, str):
            return problem
    return None


def _walk(fields: tuple[Field, ...], steps: tuple[str, ...], where: str) -> tuple[Field, ...] | str | None:
    """The fields below the element at ``steps``, None below an ``anyType``, or why there is no such element."""
    current = fields
    position = 0
    while position < len(steps):
        step = steps[position]
        match = next((item for item in current if item.name == step), None)
        if match is None:
            declared = ", ".join(item.name for item in current) or "no children"
            return f"{where} has no element {step!r} (declared: {declared})"
        position += 1
        where = f"{where}/{step}"
        if match.list_item is not None and position < len(steps):
            if steps[position] != match.list_item:
                return f"{where} holds only {match.list_item} elements, not {steps[position]!r}"
            position += 1
            where = f"{where}/{match.list_item}"
        if isinstance(match.type, ComplexType):
            current = match.type.fields
        elif match.type == "anyType":
            return None
        elif position < len(steps):
            return f"{where} is a {match.type}: it has no element {steps[position]!r}"
        else:
            current = ()
    return current
