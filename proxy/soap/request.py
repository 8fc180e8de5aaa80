"""From an HTTP request's parts to a dispatched :class:`SoapCall` (sans-IO).

Dispatch order: the SOAPAction (header for 1.1, ``action`` parameter or WS-Addressing ``Action``
for 1.2) picks the operation; when it is empty or names no operation of the endpoint, the body's
root element decides (hand-written clients send either wrong). When both name an operation and
they disagree, the body wins: it is what the operation will read.
"""

from __future__ import annotations

import binascii
from collections.abc import AsyncIterator
from dataclasses import dataclass

from lxml import etree

from proxy.errors import MalformedRequest, SoapVersionMismatch, UnknownOperation, UnsupportedMediaType
from proxy.identity.principal import LegacyCredentials
from proxy.soap.catalogue import Catalogue, Operation, Service, Streaming
from proxy.soap.credentials import extract_credentials
from proxy.soap.envelope import (
    MULTIPART_RELATED,
    ContentType,
    SoapVersion,
    action_from_headers,
    split_envelope,
    version_from_content_type,
)
from proxy.soap.names import WSA10_NS, WSA200408_NS, XOP_NS, XName
from proxy.soap.payload import SizedStream
from proxy.soap.xmlsafe import DEFAULT_LIMITS, XmlLimits, parse_xml

#: Size of the chunks an inline base64 payload is handed on in.
INLINE_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class SoapCall:
    """One dispatched legacy SOAP call, ready for identity and the mapping engine.

    ``body`` is the operation element (e.g. ``InsertCorrespondenceBasicV2``); ``headers`` the SOAP
    header blocks. ``attachment`` is the binary payload of a streamed upload (the MTOM part or the
    decoded inline base64), consumed once, as it arrives.
    """

    service: Service
    operation: Operation
    version: SoapVersion
    body: etree._Element
    headers: tuple[etree._Element, ...]
    credentials: LegacyCredentials | None
    action: str
    message_id: str | None = None
    attachment: AsyncIterator[bytes] | None = None
    mtom: bool = False

    @property
    def key(self) -> tuple[str, str]:
        """``(service name, operation name)``: the key handlers are registered under."""
        return (self.service.name, self.operation.name)


def request_version(content_type: str | None, default: SoapVersion) -> SoapVersion:
    """The version to answer a failed request in: the client's when recognisable, else ``default``."""
    try:
        return version_from_content_type(ContentType.parse(content_type))
    except UnsupportedMediaType:
        return default


def parse_request(
    service: Service,
    *,
    content_type: str | None,
    soap_action: str | None,
    body: bytes,
    limits: XmlLimits = DEFAULT_LIMITS,
    attachment: AsyncIterator[bytes] | None = None,
) -> SoapCall:
    """Parse and dispatch one request to ``service``.

    ``body`` is the whole message for plain SOAP, or the root (XOP) part for MTOM, in which case
    ``attachment`` streams the binary part. Raises a :class:`proxy.errors.ProxyError` on any problem.
    """
    parsed_type = ContentType.parse(content_type)
    version = version_from_content_type(parsed_type)
    if version is not service.soap_version:
        raise SoapVersionMismatch(
            f"{service.name} speaks SOAP {service.soap_version.value}; the request is SOAP {version.value}"
        )
    envelope = split_envelope(parse_xml(body, limits), version)
    action = action_from_headers(parsed_type, soap_action) or _addressing(envelope.headers, "Action") or ""
    operation = dispatch(service, action, envelope.body)
    credentials = extract_credentials(operation.credentials, envelope.body, envelope.headers)
    mtom = parsed_type.media_type == MULTIPART_RELATED
    if operation.streaming is Streaming.UPLOAD and attachment is None:
        attachment = _inline_payload(operation, envelope.body)
    return SoapCall(
        service=service,
        operation=operation,
        version=version,
        body=envelope.body,
        headers=envelope.headers,
        credentials=credentials,
        action=action,
        message_id=_addressing(envelope.headers, "MessageID"),
        attachment=attachment,
        mtom=mtom,
    )


def dispatch(service: Service, action: str, body: etree._Element) -> Operation:
    """The operation of ``service`` that ``action`` and the body element name (see module doc)."""
    by_action = service.by_action(action) if action else None
    by_body = service.by_element(XName.from_clark(body.tag))
    if by_body is not None:
        return by_body
    if by_action is not None:
        return by_action
    local = etree.QName(body).localname
    raise UnknownOperation(
        f"{service.name} has no operation for SOAPAction '{action[:200]}' or body element '{local[:100]}'"
    )


def _addressing(headers: tuple[etree._Element, ...], name: str) -> str | None:
    for header in headers:
        qname = etree.QName(header)
        if qname.localname == name and qname.namespace in (WSA10_NS, WSA200408_NS):
            return (header.text or "").strip() or None
    return None


def find_local(root: etree._Element, local: str) -> etree._Element | None:
    """The first descendant (or ``root`` itself) with local name ``local``, in any namespace."""
    for element in root.iter():
        if isinstance(element.tag, str) and etree.QName(element).localname == local:
            return element
    return None


def _inline_payload(operation: Operation, body: etree._Element) -> AsyncIterator[bytes] | None:
    if operation.stream_element is None:
        return None
    holder = find_local(body, operation.stream_element)
    if holder is None:
        return None
    if holder.find(f"{{{XOP_NS}}}Include") is not None:
        raise MalformedRequest("the request refers to an MTOM part but is not a multipart/related message")
    try:
        data = binascii.a2b_base64((holder.text or "").encode("ascii"))
    except (binascii.Error, UnicodeEncodeError):
        raise MalformedRequest(f"{operation.stream_element} is not valid base64") from None
    return SizedStream(_chunks(data), len(data))


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for offset in range(0, len(view), INLINE_CHUNK_BYTES):
        yield bytes(view[offset : offset + INLINE_CHUNK_BYTES])


def service_for_path(catalogue: Catalogue, path: str) -> Service | None:
    """The service at ``path`` (case-insensitive), or None."""
    return catalogue.for_path(path)
