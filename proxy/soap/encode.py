"""Emitting replies and Altinn faults exactly the way WCF did.

WCF writes no XML declaration, no whitespace, the envelope prefix ``s`` and, for wsHttpBinding
(SOAP 1.2), WS-Addressing ``Action``/``RelatesTo`` headers with prefix ``a``. The operation's response
element is emitted as the handler built it: its element order, namespaces and ``i:nil`` convention
are the mapping's contract.

A mapped answer arrives as bytes (``SoapReply.xml``, rendered from the mapping's template) and is
spliced between the envelope's serialised head and tail instead of being parsed and serialised again.
Invariant: only bytes that are one element, free of characters XML forbids, are spliced; the
template's shape was proven well-formed when the mapping was loaded and every value in it is escaped.
Anything else (a carriage return, a control character from upstream data, a leading comment) takes
the old path: parsed (ill-formed bytes fail there, as before) and serialised by lxml.

A streamed download is emitted in three pieces so the binary part never sits in memory: ``head``
(bytes), then the chunks of ``stream``, then ``tail``. An endpoint with WCF's MTOM policy (every
``*Streamed`` binding) answers MTOM whatever the request's encoding, as WCF did: a plain-XML client
gets the file as a binary MIME part, never as one base64 text node (which standard parsers refuse
above 10 MB and which costs 4/3 of the file in the client). Only a stream on an endpoint without that
policy is base64-encoded on the fly (unless the client itself called with MTOM).
"""

from __future__ import annotations

import base64
import re
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from lxml import etree

from proxy.errors import ProxyError, RequestTooLarge, SoapVersionMismatch, UnsupportedMediaType
from proxy.soap.catalogue import Binding, Operation
from proxy.soap.envelope import SoapVersion
from proxy.soap.names import FAULT_NS, WSA10_NS, XML_NS, XOP_NS, XSI_NS
from proxy.soap.request import SoapCall, find_local

#: What ``AltinnExtendedErrorMessage`` says when there is nothing more to say (as Altinn did).
NO_INFORMATION = "No information available"
#: What Altinn put in ``UserGuid`` when it had none.
NO_VALUE = "-no value-"
FAULT_LANGUAGE = "en-US"


@dataclass(frozen=True)
class SoapReply:
    """What an operation handler returns.

    ``element`` is the whole response element (``{Op}Response`` or the message-contract element);
    it is moved into the reply envelope, so build a fresh one per call. Instead of ``element``, a
    non-streamed reply may carry the element already serialised as ``xml`` (UTF-8, no XML
    declaration), which is spliced into the envelope (see the module docstring). For a streamed download,
    ``stream`` yields the binary payload and ``stream_element`` is the descendant of ``element``
    that carries it (default: the ``{Op}Result`` element, else ``element`` itself).
    """

    element: etree._Element | None
    stream: AsyncIterator[bytes] | None = None
    stream_element: etree._Element | None = None
    stream_content_type: str = "application/octet-stream"
    xml: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.element is None) == (self.xml is None):
            raise ValueError("a SoapReply carries either element or xml")
        if self.xml is not None and self.stream is not None:
            raise ValueError("a streamed SoapReply carries an element, not xml")

    def tree(self) -> etree._Element:
        """The response element (parsed from ``xml`` when the reply carries bytes)."""
        if self.element is not None:
            return self.element
        assert self.xml is not None
        return etree.fromstring(self.xml, parser=_answer_parser())


_PARSERS = threading.local()


def _answer_parser() -> etree.XMLParser:
    """This thread's parser for answers (an lxml parser must not be shared between threads)."""
    parser: etree.XMLParser | None = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return parser


#: What may not be spliced: characters XML 1.0 forbids, and CR (a parser would turn it into LF,
#: lxml writes ``&#13;``).
_NOT_SPLICEABLE = re.compile(rb"[\x00-\x08\x0b-\x0d\x0e-\x1f]|\xef\xbf[\xbe\xbf]|\xed[\xa0-\xbf]")
_NAME_START = re.compile(rb"<[A-Za-z_]")


def spliceable(xml: bytes) -> bool:
    """True when ``xml`` may be spliced into an envelope byte for byte (see the module docstring)."""
    return _NAME_START.match(xml) is not None and xml.endswith(b">") and _NOT_SPLICEABLE.search(xml) is None


@dataclass(frozen=True)
class EncodedMessage:
    """An HTTP answer: status, Content-Type, and ``head`` + streamed chunks + ``tail`` as the body."""

    status: int
    content_type: str
    head: bytes
    stream: AsyncIterator[bytes] | None = None
    tail: bytes = b""

    @property
    def body(self) -> bytes:
        """The whole body of a non-streamed message."""
        if self.stream is not None:
            raise ValueError("a streamed message has no single body")
        return self.head + self.tail


def _envelope(
    version: SoapVersion, action: str | None, relates_to: str | None
) -> tuple[etree._Element, etree._Element]:
    ns = version.namespace
    nsmap: dict[str | None, str] = {"s": ns}
    if version is SoapVersion.SOAP12 and action:
        nsmap["a"] = WSA10_NS
    envelope = etree.Element(f"{{{ns}}}Envelope", nsmap=nsmap)  # type: ignore[arg-type]
    if version is SoapVersion.SOAP12 and action:
        header = etree.SubElement(envelope, f"{{{ns}}}Header")
        action_element = etree.SubElement(header, f"{{{WSA10_NS}}}Action")
        action_element.set(f"{{{ns}}}mustUnderstand", "1")
        action_element.text = action
        if relates_to:
            etree.SubElement(header, f"{{{WSA10_NS}}}RelatesTo").text = relates_to
    body = etree.SubElement(envelope, f"{{{ns}}}Body")
    return envelope, body


_FRAME_MARKER = "SPLICE-7c1d3f0e"
_FRAMES: dict[tuple[SoapVersion, str | None], tuple[bytes, bytes]] = {}
_MAX_FRAMES = 1024


def _frame(version: SoapVersion, action: str | None, relates_to: str | None) -> tuple[bytes, bytes]:
    """The envelope serialised around an empty body: the bytes before and after the answer.

    Remembered per (version, action) when there is no per-call ``RelatesTo`` header.
    """
    key = (version, action)
    if relates_to is None and (frame := _FRAMES.get(key)) is not None:
        return frame
    envelope, body = _envelope(version, action, relates_to)
    body.text = _FRAME_MARKER
    head, _, tail = _serialize(envelope).partition(_FRAME_MARKER.encode("ascii"))
    if relates_to is None and len(_FRAMES) < _MAX_FRAMES:
        _FRAMES[key] = (head, tail)
    return head, tail


def _serialize(element: etree._Element) -> bytes:
    return etree.tostring(element, encoding="utf-8", xml_declaration=False)


def encode_reply(call: SoapCall, reply: SoapReply) -> EncodedMessage:
    """The HTTP 200 answer to ``call`` carrying ``reply`` (a stream goes MTOM where the endpoint has the
    MTOM policy or the call itself was MTOM)."""
    if reply.xml is not None:
        xml = reply.xml.strip()
        if spliceable(xml):
            head, tail = _frame(call.version, call.operation.reply_action, call.message_id)
            return EncodedMessage(200, call.version.content_type, head + xml + tail)
    element = reply.tree()
    envelope, body = _envelope(call.version, call.operation.reply_action, call.message_id)
    body.append(element)
    if reply.stream is None:
        return EncodedMessage(200, call.version.content_type, _serialize(envelope))
    target = reply.stream_element
    if target is None:
        found = find_local(element, f"{call.operation.name}Result")
        target = found if found is not None else element
    if call.mtom or call.service.binding is Binding.BASIC_STREAMED:
        return _mtom(call.version, envelope, target, reply)
    marker = f"STREAM-{uuid.uuid4().hex}"
    target.text = marker
    head, _, tail = _serialize(envelope).partition(marker.encode("ascii"))
    return EncodedMessage(200, call.version.content_type, head, _base64_stream(reply.stream), tail)


def _mtom(
    version: SoapVersion, envelope: etree._Element, target: etree._Element, reply: SoapReply
) -> EncodedMessage:
    assert reply.stream is not None
    token = uuid.uuid4()
    boundary = f"uuid:{token}+id=1"
    root_id = "http://tempuri.org/0"
    part_id = f"http://tempuri.org/1/{token.int % 10**18}"
    include = etree.SubElement(target, f"{{{XOP_NS}}}Include", nsmap={"xop": XOP_NS})
    include.set("href", "cid:" + part_id.replace(":", "%3A").replace("/", "%2F"))
    crlf = "\r\n"
    head = (
        f"{crlf}--{boundary}{crlf}"
        f"Content-ID: <{root_id}>{crlf}"
        f"Content-Transfer-Encoding: 8bit{crlf}"
        f'Content-Type: application/xop+xml;charset=utf-8;type="{version.media_type}"{crlf}{crlf}'
    ).encode("ascii")
    head += _serialize(envelope)
    # The binary part names no Content-Transfer-Encoding (WCF wrote "binary"): zeep strips CR and LF
    # from both ends of a part it is told is binary, so a file ending in a newline would arrive one
    # byte short. Without the header every MTOM reader (WCF, CXF, zeep) takes the bytes as they are.
    head += (
        f"{crlf}--{boundary}{crlf}"
        f"Content-ID: <{part_id}>{crlf}"
        f"Content-Type: {reply.stream_content_type}{crlf}{crlf}"
    ).encode("ascii")
    tail = f"{crlf}--{boundary}--{crlf}".encode("ascii")
    content_type = (
        f'multipart/related; type="application/xop+xml"; start="<{root_id}>"; '
        f'boundary="{boundary}"; start-info="{version.media_type}"'
    )
    return EncodedMessage(200, content_type, head, reply.stream, tail)


async def _base64_stream(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    remainder = b""
    try:
        async for chunk in stream:
            data = remainder + chunk
            cut = len(data) - len(data) % 3
            remainder = data[cut:]
            if cut:
                yield base64.b64encode(data[:cut])
        if remainder:
            yield base64.b64encode(remainder)
    finally:
        # Closing this wrapper (client gone) must close the upstream stream it reads.
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()


def fault_status(error: ProxyError) -> int:
    """HTTP status of a fault: 413 and 415 keep theirs, every other SOAP fault is 500 as in WCF."""
    if isinstance(error, RequestTooLarge | UnsupportedMediaType):
        return error.http_status
    return 500


def _fault_code(error: ProxyError, version: SoapVersion) -> str:
    if isinstance(error, SoapVersionMismatch):
        return "s:VersionMismatch"
    if version is SoapVersion.SOAP11:
        return "s:Client" if error.client_fault else "s:Server"
    return "s:Sender" if error.client_fault else "s:Receiver"


def altinn_fault_element(error: ProxyError, request_id: str, user_id: str | None = None) -> etree._Element:
    """The ``AltinnFault`` detail: all seven fields in contract order; ``ErrorGuid`` is the request id."""
    fault = etree.Element(f"{{{FAULT_NS}}}AltinnFault", nsmap={None: FAULT_NS, "i": XSI_NS})  # type: ignore[dict-item]
    fields = (
        ("AltinnErrorMessage", error.message),
        ("AltinnExtendedErrorMessage", error.extended or NO_INFORMATION),
        ("AltinnLocalizedErrorMessage", error.message),
        ("ErrorGuid", request_id),
        ("ErrorID", str(error.error_id)),
        ("UserGuid", NO_VALUE),
        ("UserId", user_id or ""),
    )
    for name, value in fields:
        etree.SubElement(fault, f"{{{FAULT_NS}}}{name}").text = value or None
    return fault


def encode_fault(
    error: ProxyError,
    version: SoapVersion,
    request_id: str,
    *,
    operation: Operation | None = None,
    user_id: str | None = None,
) -> EncodedMessage:
    """The Altinn fault for ``error`` in ``version``, as Altinn's WCF services sent it."""
    ns = version.namespace
    action = operation.fault_action if operation is not None else None
    envelope, body = _envelope(version, action, None)
    fault = etree.SubElement(body, f"{{{ns}}}Fault")
    if version is SoapVersion.SOAP11:
        etree.SubElement(fault, "faultcode").text = _fault_code(error, version)
        faultstring = etree.SubElement(fault, "faultstring")
        faultstring.set(f"{{{XML_NS}}}lang", FAULT_LANGUAGE)
        faultstring.text = error.message
        detail = etree.SubElement(fault, "detail")
    else:
        code = etree.SubElement(fault, f"{{{ns}}}Code")
        etree.SubElement(code, f"{{{ns}}}Value").text = _fault_code(error, version)
        reason = etree.SubElement(fault, f"{{{ns}}}Reason")
        text = etree.SubElement(reason, f"{{{ns}}}Text")
        text.set(f"{{{XML_NS}}}lang", FAULT_LANGUAGE)
        text.text = error.message
        detail = etree.SubElement(fault, f"{{{ns}}}Detail")
    detail.append(altinn_fault_element(error, request_id, user_id))
    return EncodedMessage(fault_status(error), version.content_type, _serialize(envelope))
