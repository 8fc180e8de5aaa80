"""The one-walk field reader finds exactly what each field's own ElementPath search finds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from proxy.errors import InvalidField
from proxy.mapping.fields import CompiledField, FieldReader, compile_field, read_fields

NAMESPACES = [None, "urn:a", "urn:b"]
NAMES = ["A", "B", "C"]


@st.composite
def trees(draw: Any, depth: int = 0) -> etree._Element:
    """Small trees of A/B/C elements in mixed namespaces, with text, empty and nil leaves."""
    namespace = draw(st.sampled_from(NAMESPACES))
    name = draw(st.sampled_from(NAMES))
    element = etree.Element(f"{{{namespace}}}{name}" if namespace else name)
    if depth < 3 and draw(st.booleans()):
        for child in draw(st.lists(trees(depth + 1), max_size=3)):
            element.append(child)
        if draw(st.booleans()):
            element.append(etree.Comment("a comment"))
    else:
        element.text = draw(st.sampled_from([None, "", " ", "x", "1"]))
        if draw(st.booleans()):
            element.set("{http://www.w3.org/2001/XMLSchema-instance}nil", "true")
    return element


def field_set() -> tuple[CompiledField, ...]:
    """Every path of up to three steps, single and many, plus a record with sub-fields."""
    paths = list(NAMES) + [f"{a}/{b}" for a in NAMES for b in NAMES]
    paths += [f"{a}/{b}/{c}" for a in NAMES for b in NAMES for c in NAMES]
    fields = [compile_field(f"one {path}", path) for path in paths]
    fields += [compile_field(f"many {path}", path, many=True) for path in paths]
    record = compile_field(
        "record", "A/B", many=True, children=(compile_field("c", "C"), compile_field("a", "A/A"))
    )
    return (*fields, record)


FIELDS = field_set()


@settings(max_examples=300, deadline=None)
@given(trees())
def test_one_walk_reads_what_each_field_search_reads(body: etree._Element) -> None:
    expected = {field.name: field.read(body) for field in FIELDS}
    assert FieldReader(FIELDS).read(body) == expected
    assert read_fields(FIELDS, body) == expected


def test_a_required_field_that_is_missing_is_refused() -> None:
    body = etree.fromstring(b"<Op><A/></Op>")
    with pytest.raises(InvalidField, match="A/B is required"):
        read_fields((compile_field("b", "A/B", required=True),), body)


def test_a_reader_reads_every_namespace_also_beyond_the_tags_it_remembers() -> None:
    reader = FieldReader((compile_field("b", "A/B", many=True),))
    for round_ in range(2):  # the second round finds the remembered tags
        namespaces = [f"urn:n{n}" for n in range(200)]
        children = "".join(
            f'<x:A xmlns:x="{ns}"><y:B xmlns:y="{ns}">{n}</y:B></x:A>' for n, ns in enumerate(namespaces)
        )
        body = etree.fromstring(f"<Op>{children}<!-- c --><A><B>plain</B></A></Op>".encode())
        assert reader.read(body) == {"b": [*(str(n) for n in range(200)), "plain"]}, round_
