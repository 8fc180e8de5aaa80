"""The streaming manifest shim: ZIPs in, fed in awkward chunk sizes, read back by Python's zipfile."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import AsyncIterator

import pytest
from lxml import etree

from proxy.broker.manifest import (
    MANIFEST_NAMESPACE,
    BrokerManifest,
    ManifestInjector,
    ZipRewriteError,
    with_manifest,
)

TRANSFER = {
    "fileTransferId": "6f1c2b1e-0c55-4f39-a6b5-0a3e4c7d9e01",
    "fileName": "payload.zip",
    "sender": "0192:310000019",
    "sendersFileTransferReference": "ref-1",
    "published": "2026-01-01T10:00:05+00:00",
    "propertyList": {"kind": "test"},
}
MANIFEST = BrokerManifest.from_transfer(TRANSFER, "4712", "1").to_xml()


class _Unseekable(io.RawIOBase):
    """A write-only sink: zipfile then writes data descriptors, as streaming senders do."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        chunk = bytes(data)  # type: ignore[call-overload]
        self.data += chunk
        return len(chunk)


def _zip(entries: dict[str, bytes], *, streamed: bool, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    sink: io.BytesIO | _Unseekable = _Unseekable() if streamed else io.BytesIO()
    with zipfile.ZipFile(sink, "w", compression=method) as archive:  # type: ignore[arg-type]
        for name, data in entries.items():
            archive.writestr(name, data)
    return bytes(sink.data) if isinstance(sink, _Unseekable) else sink.getvalue()


def _rewrite(data: bytes, chunk: int) -> bytes:
    injector = ManifestInjector(MANIFEST)
    out: list[bytes] = []
    for index in range(0, len(data), chunk):
        out += injector.feed(data[index : index + chunk])
    out += injector.close()
    return b"".join(out)


ENTRIES = {
    "a.txt": b"hello " * 1000,
    "dir/b.bin": bytes(range(256)) * 300,
    "manifest.xml": b"<old/>",
    "Recipients.xml": b"<old/>",
    "empty.txt": b"",
}


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
@pytest.mark.parametrize("streamed", [True, False], ids=["descriptors", "sizes-in-headers"])
def test_entries_survive_and_the_manifest_replaces_old_ones(chunk: int, streamed: bool) -> None:
    result = _rewrite(_zip(ENTRIES, streamed=streamed), chunk)

    with zipfile.ZipFile(io.BytesIO(result)) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        assert names == ["a.txt", "dir/b.bin", "empty.txt", "manifest.xml"]
        for name in ("a.txt", "dir/b.bin", "empty.txt"):
            assert archive.read(name) == ENTRIES[name]
        manifest = etree.fromstring(archive.read("manifest.xml"))
    ns = {"m": MANIFEST_NAMESPACE}
    assert manifest.tag == f"{{{MANIFEST_NAMESPACE}}}BrokerServiceManifest"
    assert manifest.findtext("m:ExternalServiceCode", namespaces=ns) == "4712"
    assert manifest.findtext("m:ExternalServiceEditionCode", namespaces=ns) == "1"
    assert manifest.findtext("m:Reportee", namespaces=ns) == "310000019"
    assert manifest.findtext("m:SendersReference", namespaces=ns) == "ref-1"
    assert manifest.findtext("m:FileList/m:File/m:FileName", namespaces=ns) == "payload.zip"
    assert manifest.findtext("m:PropertyList/m:Property/m:PropertyValue", namespaces=ns) == "test"


def test_stored_entries_with_known_sizes_pass_through() -> None:
    result = _rewrite(_zip({"x.bin": b"\x00" * 70000}, streamed=False, method=zipfile.ZIP_STORED), 1000)

    with zipfile.ZipFile(io.BytesIO(result)) as archive:
        assert archive.read("x.bin") == b"\x00" * 70000
        assert archive.namelist() == ["x.bin", "manifest.xml"]


def test_large_entry_chunks_are_passed_on_without_copying() -> None:
    data = _zip({"big.bin": b"\x01" * 300_000}, streamed=False, method=zipfile.ZIP_STORED)
    injector = ManifestInjector(MANIFEST)
    injector.feed(data[:100])  # the local header and the first data bytes
    middle = data[100:200_000]

    assert injector.feed(middle)[0] is middle


def test_an_empty_download_becomes_a_zip_with_only_the_manifest() -> None:
    with zipfile.ZipFile(io.BytesIO(_rewrite(b"", 10))) as archive:
        assert archive.namelist() == ["manifest.xml"]
        assert archive.read("manifest.xml") == MANIFEST


def test_a_download_that_is_not_a_zip_is_passed_through_untouched() -> None:
    data = b"%PDF-1.7 not a zip" * 100

    assert _rewrite(data, 5) == data


def test_a_stored_entry_with_a_data_descriptor_is_refused_clearly() -> None:
    data = _zip({"x.bin": b"abc"}, streamed=True, method=zipfile.ZIP_STORED)

    with pytest.raises(ZipRewriteError, match="stored with a data descriptor"):
        _rewrite(data, 4096)


def test_a_truncated_zip_is_an_error_not_a_silently_short_file() -> None:
    data = _zip({"a.txt": b"hello " * 1000}, streamed=False)

    with pytest.raises(ZipRewriteError, match="ended inside"):
        _rewrite(data[:60], 7)


def test_zip64_entries_are_read() -> None:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w") as archive, archive.open("z.bin", "w", force_zip64=True) as entry:
        entry.write(b"zip64" * 1000)

    with zipfile.ZipFile(io.BytesIO(_rewrite(sink.getvalue(), 333))) as archive:
        assert archive.read("z.bin") == b"zip64" * 1000
        assert "manifest.xml" in archive.namelist()


def test_offsets_past_four_gibibytes_get_zip64_records() -> None:
    """A 5 GiB stored entry streamed through (the same 1 MiB block, never stored): the trailer is ZIP64."""
    size = 5 * 1024**3
    block = b"\x00" * (1 << 20)
    crc = 0
    name = b"huge.bin"
    extra = struct.pack("<HHQQ", 1, 16, size, size)
    header = struct.pack(
        "<4sHHHHHIIIHH", b"PK\x03\x04", 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF, 8, 20
    )
    injector = ManifestInjector(MANIFEST)
    passed = sum(len(piece) for piece in injector.feed(header + name + extra))
    for _ in range(size // len(block)):
        passed += sum(len(piece) for piece in injector.feed(block))
    tail = b"".join(injector.close())

    manifest_offset = passed
    end = tail[-22:]
    assert struct.unpack("<4sHHHHIIH", end)[6] == 0xFFFFFFFF  # the directory offset lives in ZIP64
    locator = tail[-42:-22]
    assert locator[:4] == b"PK\x06\x07"
    record_offset = struct.unpack("<Q", locator[8:16])[0]
    record = tail[record_offset - passed : record_offset - passed + 56]
    assert record[:4] == b"PK\x06\x06"
    count, directory_size, directory_offset = struct.unpack("<QQQ", record[32:56])
    assert count == 2
    assert directory_offset == manifest_offset + 30 + len("manifest.xml") + len(MANIFEST)
    directory = tail[directory_offset - passed : directory_offset - passed + directory_size]
    # Entry 1: the huge file, sizes in its ZIP64 extra; entry 2: the manifest, offset in its ZIP64 extra.
    first_extra = directory[46 + len(name) : 46 + len(name) + 20]
    assert struct.unpack("<HHQQ", first_extra) == (1, 16, size, size)
    second = directory[46 + len(name) + 20 :]
    assert struct.unpack("<Q", second[46 + 12 + 4 : 46 + 12 + 12])[0] == manifest_offset
    assert zlib.crc32(MANIFEST) == struct.unpack("<I", second[16:20])[0]


async def test_with_manifest_closes_its_source() -> None:
    closed: list[bool] = []

    async def source() -> AsyncIterator[bytes]:
        try:
            yield _zip({"a.txt": b"x"}, streamed=True)
        finally:
            closed.append(True)

    stream = with_manifest(source(), MANIFEST)
    first = await stream.__anext__()
    await stream.aclose()  # type: ignore[attr-defined]

    assert first.startswith(b"PK\x03\x04")
    assert closed == [True]
