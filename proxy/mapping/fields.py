"""Request field extraction with lenient local-name paths, compiled once into walkers.

Legacy clients disagree on namespaces (several put every child in the operation namespace) and
WCF never cared about prefixes, so a path matches on local names only. An absent, empty or
``xsi:nil`` element reads as ``None``. A path ``a/b`` becomes the ElementPath ``{*}a/{*}b`` ("this
local name in any namespace or none"), which lxml evaluates in C from a cached compiled form: far
cheaper than XPath with ``local-name()`` predicates.

An operation reads all its fields at once with :func:`read_fields`: one walk over the request, down
only the branches some field's path goes through (a trie of local names compiled once per field
set), collects every field's elements in document order, so that a dozen fields cost one short walk
instead of a dozen ElementPath searches from the top. It finds exactly what ``find``/``iterfind``
with the ElementPath find (the reference, :func:`_walk`): the first match is the first element at
the path in document order.

A REST request arrives as plain values instead (``{"route": {...}, "query": {...}, "body": ...}``, see
``proxy.web.rest``): the same path walks dict keys, a JSON list under a ``list`` field gives one
record per item, and a JSON scalar is read as its text (type ``json`` keeps any value as it is).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from proxy.errors import InvalidField
from proxy.mapping.expressions import b64decode, xs_to_iso

_XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


def _walk(element: etree._Element, steps: tuple[str, ...]) -> Iterator[etree._Element]:
    """Every element at ``steps`` below ``element``, in document order (the reference for ``find``)."""
    if not steps:
        yield element
        return
    for child in element.iterchildren("{*}" + steps[0]):
        yield from _walk(child, steps[1:])


def element_path(steps: tuple[str, ...]) -> str:
    """The ElementPath that finds ``steps`` by local name, in any namespace or none."""
    return "/".join("{*}" + step for step in steps)


def _text(element: etree._Element) -> str | None:
    if element.get(_XSI_NIL) in ("true", "1"):
        return None
    text = element.text
    if text is None or text.strip() == "":
        return None
    return text


def _to_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError(text)


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "string": lambda text: text,
    "int": lambda text: int(text.strip()),
    "bool": _to_bool,
    "datetime": xs_to_iso,
    "base64": b64decode,
}


@dataclass(frozen=True)
class CompiledField:
    """One field: where it is, how to read it, and (for records) its sub-fields."""

    name: str
    path: str
    steps: tuple[str, ...]
    type: str = "string"
    many: bool = False
    required: bool = False
    children: tuple[CompiledField, ...] = ()
    #: The ElementPath of this field's elements (derived from ``steps``).
    search: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "search", element_path(self.steps))

    def read(self, element: etree._Element | Mapping[str, Any]) -> Any:
        """The field's value below ``element`` (a list when ``many``)."""
        if isinstance(element, Mapping):
            return self._read_values(element)
        if self.many:
            return [self._one(found) for found in element.iterfind(self.search)]
        found = element.find(self.search)
        value = None if found is None else self._one(found)
        if value is None and self.required:
            raise InvalidField(f"{self.path} is required")
        return value

    def _read_values(self, document: Mapping[str, Any]) -> Any:
        found: Any = document
        for step in self.steps:
            found = found.get(step) if isinstance(found, Mapping) else None
        if self.many:
            items = found if isinstance(found, list) else [] if found is None else [found]
            return [self._one_value(item) for item in items]
        value = self._one_value(found)
        if value is None and self.required:
            raise InvalidField(f"{self.path} is required")
        return value

    def _one_value(self, value: Any) -> Any:
        if self.children:
            record = value if isinstance(value, Mapping) else {}
            return {child.name: child.read(record) for child in self.children}
        if self.type == "json" or value is None:
            return value
        if isinstance(value, Mapping | list):
            raise InvalidField(f"{self.path} must be a single value")
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if text.strip() == "":
            return None
        try:
            return _CONVERTERS[self.type](text)
        except (ValueError, TypeError, KeyError):
            raise InvalidField(f"{self.path} is not a valid {self.type}") from None

    def _one(self, element: etree._Element) -> Any:
        if self.children:
            return {child.name: child.read(element) for child in self.children}
        if self.type == "xml":
            return element
        text = _text(element)
        if text is None:
            return None
        try:
            return _CONVERTERS[self.type](text)
        except (ValueError, TypeError):
            raise InvalidField(f"{self.path} is not a valid {self.type}") from None


def compile_field(name: str, path: str, **options: Any) -> CompiledField:
    """Compile one field; ``path`` is ``a/b/c`` of local names (no wildcards, no predicates)."""
    steps = tuple(part for part in path.split("/") if part)
    if not steps or any(not part.lstrip("$").replace("_", "a").replace("-", "a").isalnum() for part in steps):
        raise ValueError(f"field path {path!r} must be '/'-separated element local names")
    return CompiledField(name=name, path=path, steps=steps, **options)


#: local name -> (the trie below it, the paths that end here); :func:`_collect` also adds namespaced
#: tags (``{ns}name``) it resolved to a local name, at most :data:`_TAGS_PER_NODE` keys per node.
_Trie = dict[str, tuple["_Trie", list[tuple[str, ...]]]]
_TAGS_PER_NODE = 64


class FieldReader:
    """Reads a set of fields (and their records' sub-fields) with one walk per element (module doc)."""

    def __init__(self, fields: tuple[CompiledField, ...]) -> None:
        self.fields = fields
        self._trie: _Trie = {}
        for item in fields:
            node = self._trie
            for depth, step in enumerate(item.steps):
                below, ends = node.setdefault(step, ({}, []))
                if depth == len(item.steps) - 1 and item.steps not in ends:
                    ends.append(item.steps)  # once, however many fields share the path
                node = below
        #: Per field: name, path, steps, whether it repeats, whether required, how one element is read.
        self._plan = tuple(
            (item.name, item.path, item.steps, item.many, item.required, _element_reader(item))
            for item in fields
        )

    def read(self, element: etree._Element) -> dict[str, Any]:
        """Every field's value below ``element``, by name."""
        found: dict[tuple[str, ...], list[etree._Element]] = {}
        _collect(element, self._trie, found)
        values: dict[str, Any] = {}
        for name, path, steps, many, required, read_one in self._plan:
            elements = found.get(steps)
            if many:
                values[name] = [read_one(each) for each in elements] if elements else []
                continue
            value = read_one(elements[0]) if elements else None
            if value is None and required:
                raise InvalidField(f"{path} is required")
            values[name] = value
        return values


def _element_reader(item: CompiledField) -> Callable[[etree._Element], Any]:
    """How :class:`FieldReader` reads one element of ``item``: what ``item._one`` does, chosen once."""
    if item.children:
        return FieldReader(item.children).read
    if item.type == "string":
        return _text
    return item._one


def _collect(
    element: etree._Element, trie: _Trie, found: dict[tuple[str, ...], list[etree._Element]]
) -> None:
    for child in element:
        tag = child.tag
        node = trie.get(tag)  # a local name without a namespace, or a namespaced tag seen before
        if node is None:
            if not isinstance(tag, str) or not tag.startswith("{"):
                continue  # a comment or processing instruction, or a local name no path has
            node = trie.get(tag[tag.find("}") + 1 :])  # by local name, in any namespace
            if node is None:
                continue
            if len(trie) < _TAGS_PER_NODE:
                trie[tag] = node  # bounded: a caller's made-up namespaces cannot grow it further
        below, ends = node
        for steps in ends:
            found.setdefault(steps, []).append(child)
        if below:
            _collect(child, below, found)


_READERS: dict[int, FieldReader] = {}
#: Field sets (one per operation; a reload brings new ones) whose readers are kept at most.
_MAX_READERS = 1024


def read_fields(
    fields: tuple[CompiledField, ...], element: etree._Element | Mapping[str, Any]
) -> dict[str, Any]:
    """All fields of an operation from its body element (with a reader compiled once per field set),
    or from a REST request's values."""
    if isinstance(element, Mapping):
        return {field.name: field.read(element) for field in fields}
    reader = _READERS.get(id(fields))
    if reader is None or reader.fields is not fields:
        if len(_READERS) >= _MAX_READERS:
            _READERS.clear()
        reader = _READERS[id(fields)] = FieldReader(fields)
    return reader.read(element)
