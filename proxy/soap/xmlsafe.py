"""Hardened XML parsing for untrusted SOAP bodies.

Invariants (each enforced here, for every byte string that reaches lxml from the network):

* No DTD of any kind: a ``<!DOCTYPE`` in the prolog is refused before lxml sees the bytes, and the
  parsed tree is checked again. Without a DTD no entity can be declared, so the only entity
  references libxml2 accepts are the five predefined ones; any other is a well-formedness error.
  This is what stops billion laughs, external entities and external DTDs.
* The parser never opens a file or a URL: ``no_network``, ``load_dtd=False``,
  ``resolve_entities=False``, no ``base_url``, and input is only ever bytes we hand it.
* Processing instructions are refused (they have no business in SOAP).
* Limits on bytes, nesting depth, element count and text length are checked while feeding in
  small slices, so a hostile document is stopped long before it is fully built.
* The body must be UTF-8 (what every Altinn client sends); the parser is told so and ignores any
  other declared encoding only after we refused it.

Every failure is a :class:`proxy.errors.MalformedRequest` (well-formedness) or
:class:`proxy.errors.HostileXml` (forbidden construct or limit); messages never quote the input.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from lxml import etree

from proxy.errors import HostileXml, MalformedRequest, RequestTooLarge

_FEED_SLICE = 64 * 1024
_LIBXML_TEXT_LIMIT = 10_000_000
_UTF8_BOM = b"\xef\xbb\xbf"
# The prolog: optional XML declaration, then any mix of whitespace, comments and PIs.
_XML_DECL = re.compile(rb"<\?xml\s[^>]*?\?>")
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_PROLOG_ITEM = re.compile(rb"\s+|<!--.*?-->|<\?.*?\?>", re.DOTALL)
_ACCEPTED_ENCODINGS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
#: What both parsers (pull and one-shot) are told; see the module docstring.
_PARSER_OPTIONS: dict[str, Any] = {
    "encoding": "utf-8",
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "remove_comments": True,
    "collect_ids": False,
}


@dataclass(frozen=True)
class XmlLimits:
    """Bounds on one XML document from a client; the integrator maps settings onto these."""

    max_bytes: int = 32 * 1024 * 1024
    max_depth: int = 64
    max_elements: int = 100_000
    max_text_length: int = 32 * 1024 * 1024


DEFAULT_LIMITS = XmlLimits()


def parse_xml(data: bytes, limits: XmlLimits = DEFAULT_LIMITS) -> etree._Element:
    """Parse an untrusted XML document into its root element, enforcing every invariant above."""
    if not data.strip():
        raise MalformedRequest("the request body is empty; a SOAP envelope was expected")
    if len(data) > limits.max_bytes:
        raise RequestTooLarge(f"the XML message is larger than {limits.max_bytes} bytes")
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    _check_prolog(data)
    if len(data) <= _FEED_SLICE:
        return _parse_small(data, limits)
    parser = etree.XMLPullParser(
        events=("start", "end", "pi"),
        huge_tree=limits.max_text_length > _LIBXML_TEXT_LIMIT,
        **_PARSER_OPTIONS,
    )
    walker = _LimitWalker(limits)
    try:
        for offset in range(0, len(data), _FEED_SLICE):
            parser.feed(data[offset : offset + _FEED_SLICE])
            walker.consume(parser.read_events())
        root = parser.close()
        walker.consume(parser.read_events())
    except etree.XMLSyntaxError as error:
        raise _syntax_error(error, limits) from None
    _refuse_doctype(root)
    return root


def _parse_small(data: bytes, limits: XmlLimits) -> etree._Element:
    """A document of at most one feed slice: parsed in one call, then walked for the limits.

    The pull parser would have been fed the whole of it at once too, so parsing it in one call with
    a reusable parser changes nothing about what reaches lxml. The limits are then checked on the
    finished tree: in C (two compiled XPaths) when the document is too small to break the element
    and text limits at all (an element takes at least 4 bytes, a text no more than the document),
    else by walking it event by event as the pull parser's events are. Comments are already removed.
    """
    try:
        root = etree.fromstring(data, parser=_small_parser(limits.max_text_length > _LIBXML_TEXT_LIMIT))
    except etree.XMLSyntaxError as error:
        raise _syntax_error(error, limits) from None
    if len(data) // 4 <= limits.max_elements and len(data) <= limits.max_text_length:
        if _HAS_PI(root):
            raise HostileXml("processing instructions are not allowed in a SOAP message")
        if _TOO_DEEP(root, depth=limits.max_depth):
            raise HostileXml(f"the XML is nested deeper than {limits.max_depth} levels")
    else:
        _LimitWalker(limits).consume(etree.iterwalk(root, events=("start", "end", "pi")))
        if any(True for _ in root.itersiblings()) or any(True for _ in root.itersiblings(preceding=True)):
            raise HostileXml("processing instructions are not allowed in a SOAP message")
    _refuse_doctype(root)
    return root


def _refuse_doctype(root: etree._Element) -> None:
    """The second check of the no-DTD invariant, on the parsed tree."""
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None or docinfo.system_url:
        raise HostileXml("a DOCTYPE is not allowed in a SOAP message")


_PARSERS = threading.local()
#: Anywhere in the document, before, inside or after the root element.
_HAS_PI = etree.XPath("boolean(//processing-instruction())")
#: An element below ``depth`` others is nested deeper than ``depth`` levels (the root is level 1).
_TOO_DEEP = etree.XPath("boolean(//*[count(ancestor::*) >= $depth])")


def _small_parser(huge_tree: bool) -> etree.XMLParser:
    """This thread's reusable parser (lxml parsers must not be shared between threads)."""
    name = "huge" if huge_tree else "normal"
    parser: etree.XMLParser | None = getattr(_PARSERS, name, None)
    if parser is None:
        parser = etree.XMLParser(huge_tree=huge_tree, **_PARSER_OPTIONS)
        setattr(_PARSERS, name, parser)
    return parser


def _syntax_error(error: etree.XMLSyntaxError, limits: XmlLimits) -> HostileXml | MalformedRequest:
    if "depth" in str(error.msg).lower():
        return HostileXml(f"the XML is nested deeper than {limits.max_depth} levels")
    line, column = error.position
    return MalformedRequest(f"the request body is not well-formed XML (line {line}, column {column})")


def _check_prolog(data: bytes) -> None:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or data[:1] == b"\x00" or data[1:2] == b"\x00":
        raise MalformedRequest("the request body must be UTF-8 encoded")
    position = 0
    declaration = _XML_DECL.match(data)
    if declaration:
        encoding = _ENCODING.search(declaration.group())
        if encoding and encoding.group(1).decode("ascii").lower() not in _ACCEPTED_ENCODINGS:
            raise MalformedRequest("the request body must be UTF-8 encoded")
        position = declaration.end()
    while True:
        item = _PROLOG_ITEM.match(data, position)
        if item is None:
            break
        if item.group().startswith(b"<?"):
            raise HostileXml("processing instructions are not allowed in a SOAP message")
        position = item.end()
    if data.startswith(b"<!", position):
        raise HostileXml("a DOCTYPE is not allowed in a SOAP message")


class _LimitWalker:
    """Applies :class:`XmlLimits` to the parser's events as they arrive."""

    def __init__(self, limits: XmlLimits) -> None:
        self._limits = limits
        self._depth = 0
        self._elements = 0

    def consume(self, events: object) -> None:
        """Check ``(event, element)`` pairs from the pull parser or ``iterwalk`` against the limits."""
        limits = self._limits
        for event, node in events:  # type: ignore[attr-defined]
            if event == "start":
                self._depth += 1
                self._elements += 1
                if self._depth > limits.max_depth:
                    raise HostileXml(f"the XML is nested deeper than {limits.max_depth} levels")
                if self._elements > limits.max_elements:
                    raise HostileXml(f"the XML has more than {limits.max_elements} elements")
            elif event == "end":
                self._depth -= 1
                if node.text is not None and len(node.text) > limits.max_text_length:
                    raise HostileXml(f"an XML text is longer than {limits.max_text_length} characters")
                for child in node:
                    if child.tail is not None and len(child.tail) > limits.max_text_length:
                        raise HostileXml(f"an XML text is longer than {limits.max_text_length} characters")
            else:
                raise HostileXml("processing instructions are not allowed in a SOAP message")
