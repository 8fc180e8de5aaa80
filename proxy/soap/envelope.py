"""SOAP 1.1 and 1.2: versions, content types, and splitting a parsed envelope into header and body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from lxml import etree

from proxy.errors import MalformedRequest, SoapVersionMismatch, UnsupportedMediaType
from proxy.soap.names import SOAP11_NS, SOAP12_NS


class SoapVersion(Enum):
    """A SOAP version with the wire details that differ between them."""

    SOAP11 = "1.1"
    SOAP12 = "1.2"

    @property
    def namespace(self) -> str:
        """The envelope namespace."""
        return SOAP11_NS if self is SoapVersion.SOAP11 else SOAP12_NS

    @property
    def media_type(self) -> str:
        """The bare media type of a message in this version."""
        return "text/xml" if self is SoapVersion.SOAP11 else "application/soap+xml"

    @property
    def content_type(self) -> str:
        """The Content-Type WCF sends for a plain (non-MTOM) message."""
        return f"{self.media_type}; charset=utf-8"

    @classmethod
    def for_namespace(cls, namespace: str) -> SoapVersion | None:
        """The version whose envelope namespace is ``namespace``, or None."""
        if namespace == SOAP11_NS:
            return cls.SOAP11
        if namespace == SOAP12_NS:
            return cls.SOAP12
        return None


@dataclass(frozen=True)
class ContentType:
    """A parsed Content-Type header: lower-cased media type and parameters (names lower-cased)."""

    media_type: str
    params: Mapping[str, str]

    @classmethod
    def parse(cls, header: str | None) -> ContentType:
        """Parse a Content-Type header leniently (quoted values, stray semicolons)."""
        if not header:
            return cls("", {})
        parts = _split_params(header)
        media_type = parts[0].strip().lower()
        params: dict[str, str] = {}
        for part in parts[1:]:
            name, sep, value = part.partition("=")
            if not sep:
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            params[name.strip().lower()] = value
        return cls(media_type, params)


def _split_params(header: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


MULTIPART_RELATED = "multipart/related"
XOP_MEDIA_TYPE = "application/xop+xml"


def version_from_content_type(content_type: ContentType) -> SoapVersion:
    """The SOAP version a Content-Type announces (for MTOM: the root part's ``start-info``/``type``)."""
    media = content_type.media_type
    if media == MULTIPART_RELATED:
        if content_type.params.get("type", "").lower() != XOP_MEDIA_TYPE:
            raise UnsupportedMediaType("multipart/related requests must be MTOM (type=application/xop+xml)")
        media = content_type.params.get("start-info", "").strip().lower()
    if media == "text/xml":
        return SoapVersion.SOAP11
    if media == "application/soap+xml":
        return SoapVersion.SOAP12
    raise UnsupportedMediaType(
        "Content-Type must be text/xml (SOAP 1.1), application/soap+xml (SOAP 1.2) or MTOM multipart/related"
    )


def action_from_headers(content_type: ContentType, soap_action_header: str | None) -> str:
    """The SOAP action: the ``SOAPAction`` header (1.1) or the Content-Type ``action`` parameter (1.2)."""
    action = soap_action_header or content_type.params.get("action", "")
    if not action and content_type.media_type == MULTIPART_RELATED:
        action = ContentType.parse(content_type.params.get("start-info", "")).params.get("action", "")
    return action.strip().strip('"').strip()


@dataclass(frozen=True)
class Envelope:
    """A parsed envelope: its version, header blocks and the single body element."""

    version: SoapVersion
    headers: tuple[etree._Element, ...]
    body: etree._Element


def split_envelope(root: etree._Element, expected: SoapVersion) -> Envelope:
    """Check ``root`` is an envelope of ``expected`` version and return its header blocks and body child."""
    qname = etree.QName(root)
    version = SoapVersion.for_namespace(qname.namespace or "")
    if qname.localname != "Envelope" or version is None:
        raise MalformedRequest("the document element is not a SOAP Envelope")
    if version is not expected:
        raise SoapVersionMismatch(
            f"the envelope is SOAP {version.value} but the Content-Type announces SOAP {expected.value}"
        )
    ns = version.namespace
    header = root.find(f"{{{ns}}}Header")
    body = root.find(f"{{{ns}}}Body")
    if body is None:
        raise MalformedRequest("the SOAP Envelope has no Body")
    body_children = [child for child in body if isinstance(child.tag, str)]
    if len(body_children) != 1:
        raise MalformedRequest("the SOAP Body must contain exactly one operation element")
    headers = tuple(child for child in header if isinstance(child.tag, str)) if header is not None else ()
    return Envelope(version, headers, body_children[0])
