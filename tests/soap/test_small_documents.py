"""Documents of one feed slice take the one-call parse: every limit and refusal still holds."""

from __future__ import annotations

import pytest

from proxy.errors import HostileXml, MalformedRequest, ProxyError
from proxy.soap.xmlsafe import XmlLimits, parse_xml

#: Small enough limits that a small document can break them: checked by walking the tree.
LIMITS = XmlLimits(max_depth=64, max_elements=1000, max_text_length=100)
#: Limits no small document can break but depth: checked by compiled XPaths.
ROOMY = XmlLimits(max_depth=64)
#: Enough trailing whitespace to push a document past one feed slice (the pull-parser path).
PADDING = b" " * (70 * 1024)


@pytest.mark.parametrize(
    ("document", "refusal"),
    [
        (b"<a>" * 100 + b"</a>" * 100, HostileXml),  # deeper than 64, shallower than libxml2's own limit
        (b"<a>" + b"<x/>" * 1001 + b"</a>", HostileXml),
        (b"<a>" + b"t" * 101 + b"</a>", HostileXml),
        (b"<a><b/>" + b"t" * 101 + b"</a>", HostileXml),  # a tail counts as text too
        (b"<a><?pi inside?></a>", HostileXml),
        (b"<a/><?pi after?>", HostileXml),
        (b"<a><b></a>", MalformedRequest),
        (b"<a>&undefined;</a>", MalformedRequest),
    ],
)
def test_small_and_large_documents_are_refused_alike(document: bytes, refusal: type[ProxyError]) -> None:
    with pytest.raises(refusal) as small:
        parse_xml(document, LIMITS)
    with pytest.raises(refusal) as large:
        parse_xml(document + PADDING, LIMITS)
    if refusal is HostileXml:
        assert small.value.message == large.value.message


@pytest.mark.parametrize(
    "document",
    [
        b"<a>" * 65 + b"</a>" * 65,
        b"<a><b><?pi inside?></b></a>",
        b"<?pi before?><a/>",
        b"<a/><?pi after?>",
    ],
)
def test_with_roomy_limits_depth_and_processing_instructions_are_still_refused(document: bytes) -> None:
    with pytest.raises(HostileXml) as small:
        parse_xml(document, ROOMY)
    with pytest.raises(HostileXml) as large:
        parse_xml(document + PADDING, ROOMY)
    assert small.value.message == large.value.message


def test_exactly_the_depth_limit_is_accepted() -> None:
    assert parse_xml(b"<a>" * 64 + b"</a>" * 64, ROOMY).tag == "a"


def test_a_small_document_parses_to_the_same_tree() -> None:
    document = b'<a xmlns="urn:x"><!-- gone --><b c="1">text &amp; more</b><d/></a>'
    small = parse_xml(document, LIMITS)
    large = parse_xml(document + PADDING, LIMITS)
    assert [(e.tag, e.text, dict(e.attrib)) for e in small.iter()] == [
        (e.tag, e.text, dict(e.attrib)) for e in large.iter()
    ]
