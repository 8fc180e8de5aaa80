"""Whether an XML element conforms to a declared contract type (sans-IO; lxml only).

The mapping loader runs every operation's example and checks its answer here, so an answer
template that emits elements in the wrong order, leaves out a required element, puts ``i:nil`` on
an element that is not nillable or writes ``yes`` into an ``xs:boolean`` is refused at load with
the path of the offending element, instead of reaching a legacy client whose generated proxy
classes would silently drop the value. The rules are those of the generated schema
(:mod:`proxy.soap.wsdl`): a sequence in declaration order, children qualified with the namespace of
the type that declares them (``elementFormDefault="qualified"``), list wrappers holding only their
item elements, and the lexical forms of the XSD built-ins the contracts use.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lxml import etree

from proxy.soap.contracts import ComplexType, ElementDecl, Field
from proxy.soap.names import XSI_NS

_NIL = f"{{{XSI_NS}}}nil"
_INTEGER = re.compile(r"[+-]?\d+")
_DATETIME = re.compile(r"-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")


def _float(text: str) -> bool:
    if text in ("INF", "-INF", "NaN"):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


_LEXICAL: dict[str, Callable[[str], bool]] = {
    **{
        name: lambda text: _INTEGER.fullmatch(text) is not None
        for name in (
            "int",
            "long",
            "short",
            "byte",
            "integer",
            "unsignedInt",
            "unsignedLong",
            "unsignedShort",
        )
    },
    "boolean": lambda text: text in ("true", "false", "1", "0"),
    "dateTime": lambda text: _DATETIME.fullmatch(text) is not None,
    "decimal": lambda text: _DECIMAL.fullmatch(text) is not None,
    "double": _float,
    "float": _float,
    "base64Binary": lambda text: _BASE64.fullmatch(text) is not None,
}
#: Built-ins the contracts may name; ``anyType`` accepts any content.
BUILTIN_TYPES = frozenset({*_LEXICAL, "string", "anyType", "guid"})


def check_element(element: etree._Element, decl: ElementDecl) -> list[str]:
    """Every way ``element`` breaks ``decl`` (``[]`` when it conforms), each naming the element's path."""
    problems: list[str] = []
    expected = f"{{{decl.namespace}}}{decl.name}"
    if element.tag != expected:
        return [f"the element is {element.tag}, not {expected}"]
    _sequence(element, decl.fields, decl.namespace, decl.name, problems)
    return problems


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _sequence(
    parent: etree._Element, fields: tuple[Field, ...], namespace: str, path: str, problems: list[str]
) -> None:
    if (parent.text or "").strip():
        problems.append(f"{path}: text {(parent.text or '').strip()[:40]!r} where only elements may be")
    children = [child for child in parent if isinstance(child.tag, str)]
    position = 0
    for item in fields:
        name = f"{{{namespace}}}{item.name}"
        count = 0
        while position < len(children) and children[position].tag == name:
            _value(children[position], item, namespace, f"{path}/{item.name}", problems)
            position += 1
            count += 1
            if not item.repeated:
                break
        if count == 0 and item.min_occurs > 0:
            if any(child.tag == name for child in children[position:]):
                problems.append(_out_of_order(item.name, children[position], fields, path))
                return
            problems.append(f"{path}/{item.name} is required but missing")
    if position < len(children):
        problems.append(_unexpected(children, position, fields, namespace, path))


def _unexpected(
    children: list[etree._Element], position: int, fields: tuple[Field, ...], namespace: str, path: str
) -> str:
    child = children[position]
    names = [f"{{{namespace}}}{item.name}" for item in fields]
    if child.tag in names and position > 0:
        return _out_of_order(_local(child.tag), children[position - 1], fields, path)
    if _local(child.tag) in {item.name for item in fields}:
        return f"{path}/{_local(child.tag)} is in namespace {etree.QName(child).namespace}, not {namespace}"
    if child.tag in names:
        return f"{path}/{_local(child.tag)} appears more often than declared"
    return f"{path}/{_local(child.tag)} is not declared (declared: {', '.join(item.name for item in fields)})"


def _out_of_order(name: str, later: etree._Element, fields: tuple[Field, ...], path: str) -> str:
    return (
        f"{path}/{name} is out of order: it must come before {_local(later.tag)}"
        f" (declared order: {', '.join(item.name for item in fields)})"
    )


def _value(element: etree._Element, item: Field, namespace: str, path: str, problems: list[str]) -> None:
    if element.get(_NIL) in ("true", "1"):
        if not item.nillable:
            problems.append(f"{path} is nil but not nillable")
        elif len(element) or (element.text or "").strip():
            problems.append(f"{path} is nil but has content")
        return
    if item.list_item is not None:
        _items(element, item, namespace, path, problems)
        return
    _typed(element, item.type, path, problems)


def _items(element: etree._Element, item: Field, namespace: str, path: str, problems: list[str]) -> None:
    """A list wrapper: only ``list_item`` elements (qualified like the wrapper), each of the field's type."""
    if (element.text or "").strip():
        problems.append(f"{path}: text where only {item.list_item} elements may be")
    name = f"{{{namespace}}}{item.list_item}"
    for index, child in enumerate(c for c in element if isinstance(c.tag, str)):
        if child.tag != name:
            problems.append(f"{path}/{_local(child.tag)} is not a {item.list_item} of {namespace}")
            return
        _typed(child, item.type, f"{path}/{item.list_item}[{index + 1}]", problems)


def _typed(element: etree._Element, kind: str | ComplexType, path: str, problems: list[str]) -> None:
    if isinstance(kind, ComplexType):
        _sequence(element, kind.fields, kind.namespace, path, problems)
        return
    if kind == "anyType":
        return
    if len(element):
        problems.append(f"{path} has child elements but is declared {kind}")
        return
    text = (element.text or "").strip()
    valid = _LEXICAL.get(kind)
    if valid is not None and not valid(text):
        problems.append(f"{path} is {text[:40]!r}, not a valid {kind}")
