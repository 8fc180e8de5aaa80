"""Altinn 3's broker *manifest shim*, streaming: put ``manifest.xml`` into a downloaded ZIP.

Altinn 2 broker files were ZIPs that carried a ``manifest.xml`` (``BrokerServiceManifest``), and many
receiving systems read it. Altinn 3 keeps only the file, so on download the shim drops any
``manifest.xml``/``recipients.xml`` entry and appends a fresh manifest built from the file
transfer's metadata, exactly as Altinn 3's ``ManifestDownloadStream`` did for its legacy path.

Invariants:
* The file is never held whole. Entries are copied through as they arrive (local header, data,
  data descriptor, byte for byte); only each entry's central-directory facts are kept (tens of
  bytes per entry). The original central directory is discarded and rewritten at the end, followed
  by the manifest entry, so the output is a valid ZIP whatever the input's trailer said.
* An entry's end is known from its local header sizes, or, for a deflated entry written with a data
  descriptor (general purpose bit 3), by inflating it (output discarded) until the deflate stream
  ends. A *stored* entry with a data descriptor has no findable end without the central directory:
  it is refused with :class:`ZipRewriteError`, as is an encrypted or otherwise unreadable header.
* ZIP64 is read (local extra field 0x0001, 8-byte data descriptors) and written (central extra
  field, ZIP64 end records) whenever a size, offset or entry count passes the classic limits.
* An empty download becomes a ZIP holding only the manifest (Altinn 3 did this for Altinn 2 senders
  that uploaded nothing); a download that does not start like a ZIP is passed through untouched.

Pure: no I/O and no aiohttp; :func:`with_manifest` adapts it to an async byte stream.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Any

from lxml import etree

MANIFEST_NAMESPACE = "http://schema.altinn.no/services/ServiceEngine/Broker/2015/06"
MANIFEST_NAME = "manifest.xml"
#: Entries the shim removes (compared case-insensitively), as Altinn 3 did.
DROPPED_NAMES = frozenset({"manifest.xml", "recipients.xml"})

_LOCAL = b"PK\x03\x04"
_CENTRAL = b"PK\x01\x02"
_DESCRIPTOR = b"PK\x07\x08"
_END = b"PK\x05\x06"
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL_HEADER = struct.Struct("<4sHHHHHHIIIHHHHHII")
_END_RECORD = struct.Struct("<4sHHHHIIH")
_ZIP64_END_RECORD = struct.Struct("<4sQHHIIQQQQ")
_ZIP64_LOCATOR = struct.Struct("<4sIQI")
_U32 = 0xFFFFFFFF
_U16 = 0xFFFF
_FLAG_ENCRYPTED = 0x0001
_FLAG_DESCRIPTOR = 0x0008
_FLAG_UTF8 = 0x0800
_STORED, _DEFLATED = 0, 8
#: Inflate output is discarded; this only bounds the memory one inflate call may use.
_INFLATE_WINDOW = 1 << 20


class ZipRewriteError(ValueError):
    """The download is a ZIP the shim cannot rewrite while streaming (the message says why)."""


@dataclass(frozen=True)
class BrokerManifest:
    """The ``BrokerServiceManifest`` of one file transfer (the legacy ``manifest.xml``)."""

    service_code: str
    service_edition: str
    #: The sender's organisation number, without the ``0192:`` prefix.
    reportee: str
    sent_date: str
    senders_reference: str | None = None
    file_names: tuple[str, ...] = ()
    properties: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_transfer(
        cls, transfer: Mapping[str, Any], service_code: str, service_edition: str
    ) -> BrokerManifest:
        """The manifest of an Altinn 3 ``FileTransferOverviewExt`` routed to this legacy service."""
        sender = str(transfer.get("sender") or "")
        for prefix in ("0192:", "urn:altinn:organization:identifier-no:"):
            sender = sender.removeprefix(prefix)
        properties = transfer.get("propertyList") or {}
        return cls(
            service_code=str(service_code),
            service_edition=str(service_edition),
            reportee=sender,
            sent_date=str(transfer.get("published") or transfer.get("created") or ""),
            senders_reference=transfer.get("sendersFileTransferReference") or None,
            file_names=(str(transfer["fileName"]),) if transfer.get("fileName") else (),
            properties=tuple((str(key), str(value)) for key, value in properties.items()),
        )

    def to_xml(self) -> bytes:
        """UTF-8 XML with a declaration, elements in the order Altinn 3's shim wrote them."""

        def add(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
            child = etree.SubElement(parent, f"{{{MANIFEST_NAMESPACE}}}{name}")
            child.text = text
            return child

        nsmap = {None: MANIFEST_NAMESPACE}
        root = etree.Element(f"{{{MANIFEST_NAMESPACE}}}BrokerServiceManifest", nsmap=nsmap)  # type: ignore[arg-type]
        add(root, "ExternalServiceCode", self.service_code)
        add(root, "ExternalServiceEditionCode", self.service_edition)
        add(root, "SendersReference", self.senders_reference or "")
        add(root, "Reportee", self.reportee)
        add(root, "SentDate", self.sent_date)
        files = add(root, "FileList")
        for name in self.file_names:
            add(add(files, "File"), "FileName", name)
        properties = add(root, "PropertyList")
        for key, value in self.properties:
            item = add(properties, "Property")
            add(item, "PropertyKey", key)
            add(item, "PropertyValue", value)
        return etree.tostring(root, xml_declaration=True, encoding="utf-8")


@dataclass
class _Entry:
    """What the rewritten central directory needs to know about one copied entry."""

    name: bytes
    version: int
    flags: int
    method: int
    time: int
    date: int
    offset: int
    crc: int = 0
    compressed: int = 0
    size: int = 0


class _State(Enum):
    START = auto()
    HEADER = auto()
    DATA = auto()
    INFLATE = auto()
    DESCRIPTOR = auto()
    TRAILER = auto()
    PASSTHROUGH = auto()


@dataclass
class ManifestInjector:
    """Sans-IO ZIP rewriter: ``feed`` chunks in order, then ``close``; both return bytes to send."""

    manifest: bytes
    dropped: frozenset[str] = DROPPED_NAMES
    _state: _State = _State.START
    _buffer: bytearray = field(default_factory=bytearray)
    _entries: list[_Entry] = field(default_factory=list)
    _entry: _Entry | None = None
    _keep: bool = True
    _zip64: bool = False
    _remaining: int = 0
    _inflater: Any = None
    _written: int = 0

    def __repr__(self) -> str:
        return f"ManifestInjector(<{len(self._entries)} entries, {self._written} bytes written>)"

    def feed(self, data: bytes) -> list[bytes]:
        """The bytes that can be sent now (may be empty); raises :class:`ZipRewriteError`."""
        out: list[bytes] = []
        if self._state is _State.PASSTHROUGH:
            return [data] if data else []
        if self._state is _State.TRAILER:
            return out
        if self._state is _State.DATA and not self._buffer and 0 < len(data) <= self._remaining:
            # The hot path: the middle of a large entry passes through without a copy.
            self._remaining -= len(data)
            self._emit(out, data)
            if self._remaining == 0:
                self._data_done()
                self._drain(out)
            return out
        self._buffer += data
        self._drain(out)
        return out

    def close(self) -> list[bytes]:
        """The rest: the manifest entry, the rewritten central directory and end records."""
        if self._state is _State.PASSTHROUGH:
            return []
        if self._state is _State.START and not self._buffer:
            pass  # an empty upload: a ZIP with only the manifest
        elif self._state is _State.START:
            # Fewer than four bytes in all: not a ZIP, pass them through.
            self._state = _State.PASSTHROUGH
            return [bytes(self._buffer)]
        elif self._state is not _State.TRAILER and not (self._state is _State.HEADER and not self._buffer):
            raise ZipRewriteError("the file ended inside a ZIP entry")
        self._state = _State.TRAILER
        out: list[bytes] = []
        self._emit(out, self._manifest_entry())
        self._emit(out, self._central_directory())
        return out

    # -- parsing ---------------------------------------------------------------------------------

    def _drain(self, out: list[bytes]) -> None:
        while self._step(out):
            pass

    def _step(self, out: list[bytes]) -> bool:
        state = self._state
        if state is _State.START:
            if len(self._buffer) < 4:
                return False
            if bytes(self._buffer[:4]) not in (_LOCAL, _END):
                self._state = _State.PASSTHROUGH
                out.append(bytes(self._buffer))
                self._buffer.clear()
                return False
            self._state = _State.HEADER
            return True
        if state is _State.HEADER:
            return self._header(out)
        if state is _State.DATA:
            return self._data(out)
        if state is _State.INFLATE:
            return self._inflate(out)
        if state is _State.DESCRIPTOR:
            return self._descriptor(out)
        self._buffer.clear()  # TRAILER: the old central directory is rewritten, not copied
        return False

    def _header(self, out: list[bytes]) -> bool:
        if len(self._buffer) < 4:
            return False
        signature = bytes(self._buffer[:4])
        if signature in (_CENTRAL, _END) or signature.startswith(b"PK\x06"):
            self._state = _State.TRAILER
            self._buffer.clear()
            return False
        if signature != _LOCAL:
            raise ZipRewriteError("the file is not a well-formed ZIP (no local header where one belongs)")
        if len(self._buffer) < _LOCAL_HEADER.size:
            return False
        (_, version, flags, method, time, date, crc, compressed, size, name_length, extra_length) = (
            _LOCAL_HEADER.unpack_from(self._buffer)
        )
        total = _LOCAL_HEADER.size + name_length + extra_length
        if len(self._buffer) < total:
            return False
        if flags & _FLAG_ENCRYPTED:
            raise ZipRewriteError("encrypted ZIP entries cannot be rewritten")
        name = bytes(self._buffer[_LOCAL_HEADER.size : _LOCAL_HEADER.size + name_length])
        extra = bytes(self._buffer[_LOCAL_HEADER.size + name_length : total])
        self._zip64 = _has_zip64(extra)
        if compressed == _U32 or size == _U32:
            size, compressed = _zip64_sizes(extra, size, compressed)
        self._keep = _decode_name(name, flags).lower() not in self.dropped
        self._entry = _Entry(name, version, flags, method, time, date, self._written, crc, compressed, size)
        header = bytes(self._buffer[:total])
        del self._buffer[:total]
        self._emit(out, header)
        if flags & _FLAG_DESCRIPTOR:
            if method == _DEFLATED:
                self._inflater = zlib.decompressobj(-15)
                self._remaining = 0
                self._state = _State.INFLATE
                return True
            if compressed == 0:
                raise ZipRewriteError(
                    f"entry {_decode_name(name, flags)[:100]!r} is stored with a data descriptor: "
                    "its end cannot be found while streaming"
                )
        self._remaining = compressed
        self._state = _State.DATA
        return True

    def _data(self, out: list[bytes]) -> bool:
        if self._remaining and not self._buffer:
            return False
        take = min(self._remaining, len(self._buffer))
        if take:
            self._emit(out, bytes(self._buffer[:take]))
            del self._buffer[:take]
            self._remaining -= take
        if self._remaining:
            return False
        self._data_done()
        return True

    def _data_done(self) -> None:
        assert self._entry is not None
        if self._entry.flags & _FLAG_DESCRIPTOR:
            self._state = _State.DESCRIPTOR
        else:
            self._finish_entry()

    def _inflate(self, out: list[bytes]) -> bool:
        if not self._buffer:
            return False
        data = bytes(self._buffer)
        self._buffer.clear()
        inflater = self._inflater
        try:
            inflater.decompress(data, _INFLATE_WINDOW)
            while inflater.unconsumed_tail and not inflater.eof:
                inflater.decompress(inflater.unconsumed_tail, _INFLATE_WINDOW)
        except zlib.error as error:
            raise ZipRewriteError("a deflated ZIP entry is corrupt") from error
        if not inflater.eof:
            self._remaining += len(data)
            self._emit(out, data)
            return False
        rest = len(inflater.unused_data)
        used = len(data) - rest
        self._remaining += used
        self._emit(out, data[:used])
        self._buffer += data[used:]
        self._inflater = None
        assert self._entry is not None
        self._entry.compressed = self._remaining
        self._state = _State.DESCRIPTOR
        return True

    def _descriptor(self, out: list[bytes]) -> bool:
        width = 8 if self._zip64 else 4
        if len(self._buffer) < 4:
            return False
        signed = bytes(self._buffer[:4]) == _DESCRIPTOR
        length = (4 if signed else 0) + 4 + 2 * width
        if len(self._buffer) < length:
            return False
        body = bytes(self._buffer[4 if signed else 0 : length])
        crc, compressed, size = struct.unpack("<IQQ" if width == 8 else "<III", body)
        assert self._entry is not None
        if self._entry.method == _DEFLATED and compressed != self._entry.compressed:
            raise ZipRewriteError("a ZIP data descriptor disagrees with its entry's data")
        self._entry.crc, self._entry.compressed, self._entry.size = crc, compressed, size
        self._emit(out, bytes(self._buffer[:length]))
        del self._buffer[:length]
        self._finish_entry()
        return True

    def _finish_entry(self) -> None:
        entry = self._entry
        assert entry is not None
        if self._keep:
            self._entries.append(entry)
        self._entry = None
        self._keep = True
        self._state = _State.HEADER

    def _emit(self, out: list[bytes], data: bytes) -> None:
        if self._keep:
            out.append(data)
            self._written += len(data)

    # -- writing ---------------------------------------------------------------------------------

    def _manifest_entry(self) -> bytes:
        name = MANIFEST_NAME.encode()
        crc = zlib.crc32(self.manifest)
        size = len(self.manifest)
        # A manifest past 4 GiB gets its offset from the central directory's ZIP64 extra field.
        header = _LOCAL_HEADER.pack(_LOCAL, 20, _FLAG_UTF8, _STORED, 0, 0x21, crc, size, size, len(name), 0)
        self._entries.append(_Entry(name, 20, _FLAG_UTF8, _STORED, 0, 0x21, self._written, crc, size, size))
        return header + name + self.manifest

    def _central_directory(self) -> bytes:
        start = self._written
        parts: list[bytes] = []
        for entry in self._entries:
            parts.append(_central_record(entry))
        directory = b"".join(parts)
        count = len(self._entries)
        end = start + len(directory)
        trailer = b""
        if count >= _U16 or start >= _U32 or len(directory) >= _U32:
            trailer += _ZIP64_END_RECORD.pack(
                b"PK\x06\x06", _ZIP64_END_RECORD.size - 12, 45, 45, 0, 0, count, count, len(directory), start
            )
            trailer += _ZIP64_LOCATOR.pack(b"PK\x06\x07", 0, end, 1)
        trailer += _END_RECORD.pack(
            _END, 0, 0, min(count, _U16), min(count, _U16), min(len(directory), _U32), min(start, _U32), 0
        )
        return directory + trailer


def _central_record(entry: _Entry) -> bytes:
    values: list[int] = []
    size, compressed, offset = entry.size, entry.compressed, entry.offset
    if size >= _U32:
        values.append(size)
        size = _U32
    if compressed >= _U32:
        values.append(compressed)
        compressed = _U32
    if offset >= _U32:
        values.append(offset)
        offset = _U32
    extra = struct.pack(f"<HH{len(values)}Q", 1, 8 * len(values), *values) if values else b""
    version = max(entry.version, 45 if values else 20) & 0xFF
    return (
        _CENTRAL_HEADER.pack(
            _CENTRAL,
            version,  # made by: MS-DOS attributes, the version the entry needs
            version,
            entry.flags,
            entry.method,
            entry.time,
            entry.date,
            entry.crc,
            compressed,
            size,
            len(entry.name),
            len(extra),
            0,
            0,
            0,
            0,
            offset,
        )
        + entry.name
        + extra
    )


def _zip64_sizes(extra: bytes, size: int, compressed: int) -> tuple[int, int]:
    """Sizes from a local header's ZIP64 extra field (present only for the fields set to 0xFFFFFFFF)."""
    position = 0
    while position + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, position)
        body = extra[position + 4 : position + 4 + length]
        if tag == 1:
            values = [struct.unpack_from("<Q", body, index)[0] for index in range(0, len(body) - 7, 8)]
            if size == _U32 and values:
                size = values.pop(0)
            if compressed == _U32 and values:
                compressed = values.pop(0)
            return size, compressed
        position += 4 + length
    raise ZipRewriteError("a ZIP64 entry has no ZIP64 extra field")


def _has_zip64(extra: bytes) -> bool:
    position = 0
    while position + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, position)
        if tag == 1:
            return True
        position += 4 + length
    return False


def _decode_name(name: bytes, flags: int) -> str:
    return name.decode("utf-8" if flags & _FLAG_UTF8 else "cp437", errors="replace")


async def with_manifest(source: AsyncIterable[bytes], manifest: bytes) -> AsyncIterator[bytes]:
    """``source`` (a ZIP download) with ``manifest`` injected; closing this closes ``source``."""
    injector = ManifestInjector(manifest)
    try:
        async for chunk in source:
            for piece in injector.feed(chunk):
                yield piece
        for piece in injector.close():
            yield piece
    finally:
        close = getattr(source, "aclose", None)
        if close is not None:
            await close()


def shim_download(stream: Any, transfer: Mapping[str, Any] | None, route: Any) -> Any:
    """The download as the legacy client gets it: with ``manifest.xml`` when ``route`` asks for it.

    ``route`` is the :class:`proxy.mapping.routing.Route` of the transfer's resource (or None); only a
    route with ``manifest_shim`` set changes the stream. Exposed to mappings as the
    ``broker_manifest`` filter: ``results.download | broker_manifest(results.transfer, route)``.
    """
    if stream is None or transfer is None or route is None or not getattr(route, "manifest_shim", False):
        return stream
    manifest = BrokerManifest.from_transfer(transfer, route.service_code, route.service_edition)
    return with_manifest(stream, manifest.to_xml())
