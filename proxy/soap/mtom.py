"""An incremental, sans-IO reader of MTOM/XOP ``multipart/related`` bodies.

Feed it bytes as they arrive; it returns events. The first part (the XOP root, i.e. the SOAP
envelope) is small and the caller collects it; every later part is handed on as data events the
caller streams onward, so no binary part is ever held whole. Invariants: the buffer never holds
more than one incoming chunk plus the delimiter length; part headers are bounded by
``max_header_bytes``; anything that does not follow RFC 2046 framing is a ``MalformedRequest``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, auto

from proxy.errors import HostileXml, MalformedRequest
from proxy.soap.envelope import ContentType

_CRLF = b"\r\n"


@dataclass(frozen=True)
class PartStart:
    """A new part begins; ``headers`` have lower-cased names."""

    headers: Mapping[str, str]

    @property
    def content_id(self) -> str:
        """The part's Content-ID without angle brackets."""
        return self.headers.get("content-id", "").strip().strip("<>")


@dataclass(frozen=True)
class PartData:
    """Some bytes of the current part."""

    data: bytes


@dataclass(frozen=True)
class PartEnd:
    """The current part is complete."""


@dataclass(frozen=True)
class MessageEnd:
    """The closing delimiter was seen; anything after it is ignored."""


Event = PartStart | PartData | PartEnd | MessageEnd


class _State(Enum):
    PREAMBLE = auto()
    HEADERS = auto()
    DATA = auto()
    AFTER_DELIMITER = auto()
    DONE = auto()


@dataclass(frozen=True)
class MtomInfo:
    """What the outer Content-Type says about an MTOM message."""

    boundary: str
    start: str | None

    @classmethod
    def from_content_type(cls, content_type: ContentType) -> MtomInfo:
        """Read boundary and start from a ``multipart/related`` Content-Type."""
        boundary = content_type.params.get("boundary", "")
        if not boundary or len(boundary) > 200:
            raise MalformedRequest(
                "the multipart/related Content-Type needs a boundary of 1 to 200 characters"
            )
        start = content_type.params.get("start")
        return cls(boundary, start.strip().strip("<>") if start else None)


class MultipartReader:
    """The incremental multipart parser (see module docstring)."""

    def __init__(self, boundary: str, *, max_header_bytes: int = 16 * 1024) -> None:
        self._dash_boundary = b"--" + boundary.encode("latin-1")
        self._delimiter = _CRLF + self._dash_boundary
        self._max_header_bytes = max_header_bytes
        self._buffer = bytearray()
        self._state = _State.PREAMBLE

    @property
    def finished(self) -> bool:
        """True once the closing delimiter was read."""
        return self._state is _State.DONE

    @property
    def buffered(self) -> int:
        """Bytes fed but not yet handed out as events (at most one delimiter's worth in a part)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Event]:
        """Consume ``data`` and return the events it completes."""
        if self._state is _State.DONE:
            return []
        self._buffer += data
        events: list[Event] = []
        while self._step(events):
            pass
        return events

    def close(self) -> None:
        """Signal the end of input; a message that did not finish is malformed."""
        if self._state is not _State.DONE:
            raise MalformedRequest("the multipart/related body ended before its closing boundary")

    def _step(self, events: list[Event]) -> bool:
        buffer = self._buffer
        if self._state is _State.PREAMBLE:
            # The first delimiter may come without the leading CRLF.
            at = buffer.find(self._dash_boundary)
            if at < 0:
                if len(buffer) > self._max_header_bytes:
                    raise MalformedRequest("no multipart boundary found at the start of the body")
                return False
            del buffer[: at + len(self._dash_boundary)]
            self._state = _State.AFTER_DELIMITER
            return True
        if self._state is _State.AFTER_DELIMITER:
            if len(buffer) < 2:
                return False
            if buffer[:2] == b"--":
                self._state = _State.DONE
                events.append(MessageEnd())
                buffer.clear()
                return False
            end = buffer.find(_CRLF)
            if end < 0:
                if len(buffer) > 256:
                    raise MalformedRequest("malformed multipart delimiter line")
                return False
            del buffer[: end + 2]  # transport padding after the boundary is allowed
            self._state = _State.HEADERS
            return True
        if self._state is _State.HEADERS:
            end = buffer.find(_CRLF + _CRLF)
            if end < 0 and buffer.startswith(_CRLF):
                end = -2  # a part with no headers at all
            if end == -1:
                if len(buffer) > self._max_header_bytes:
                    raise HostileXml("multipart part headers are larger than allowed")
                return False
            raw = bytes(buffer[: max(end, 0)])
            del buffer[: end + 4]
            events.append(PartStart(_parse_headers(raw)))
            self._state = _State.DATA
            return True
        if self._state is _State.DATA:
            at = buffer.find(self._delimiter)
            if at < 0:
                safe = len(buffer) - len(self._delimiter)
                if safe > 0:
                    events.append(PartData(bytes(buffer[:safe])))
                    del buffer[:safe]
                return False
            if at:
                events.append(PartData(bytes(buffer[:at])))
            del buffer[: at + len(self._delimiter)]
            events.append(PartEnd())
            self._state = _State.AFTER_DELIMITER
            return True
        return False


def _parse_headers(raw: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in raw.split(_CRLF):
        if not line.strip():
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            raise MalformedRequest("malformed header line in a multipart part")
        headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    return headers
