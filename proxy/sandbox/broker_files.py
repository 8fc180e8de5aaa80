"""File bodies of the fake Broker: streamed to disk, never held in memory.

Invariants:

* An upload is written to ``.partial-<id>-<random>`` in the storage folder and renamed to
  ``<id>.bin`` only when the body is complete, within the limit and (if asked) matches its MD5.
  Whatever ends the upload otherwise (a refusal, the client going away, cancellation) removes the
  partial file before the exception leaves :meth:`FileStore.receive`.
* Disk writes and hashing run in worker threads, in batches of ``flush_bytes``, so the event loop
  never waits on the disk. A per-upload lock orders the last write before the clean-up, since a
  cancelled ``to_thread`` call keeps running in its thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import threading
import uuid
import zipfile
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

PARTIAL_PREFIX = ".partial-"


class BodyTooLarge(Exception):
    """The upload went past the size limit; the partial file is already gone."""


class ChecksumMismatch(Exception):
    """The MD5 of the body differs from the expected one; the partial file is already gone."""


@dataclass(frozen=True)
class StoredBody:
    """A complete upload under its final name."""

    path: Path
    size: int
    md5_hex: str


class _PartialFile:
    """One upload in progress: an open file, its running MD5, and the lock that orders writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.digest = hashlib.md5(usedforsecurity=False)
        self.size = 0
        self._lock = threading.Lock()
        self._handle: BinaryIO | None = path.open("xb")

    def append(self, data: bytes) -> None:
        """Write and hash one batch (runs in a worker thread)."""
        with self._lock:
            if self._handle is None:
                return
            self._handle.write(data)
            self.digest.update(data)

    def close(self) -> None:
        """Close the file (runs in a worker thread)."""
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None

    def discard(self) -> None:
        """Close and delete the file (runs in a worker thread)."""
        self.close()
        self.path.unlink(missing_ok=True)


class FileStore:
    """The storage folder of the fake Broker."""

    def __init__(self, directory: Path, *, flush_bytes: int = 1 << 20) -> None:
        self.directory = directory
        self.flush_bytes = flush_bytes
        directory.mkdir(parents=True, exist_ok=True)

    def path_for(self, transfer_id: uuid.UUID) -> Path:
        """Where the complete body of ``transfer_id`` lives."""
        return self.directory / f"{transfer_id}.bin"

    def partial_files(self) -> list[Path]:
        """Uploads in progress (or left behind by a bug: tests assert there are none)."""
        return sorted(self.directory.glob(f"{PARTIAL_PREFIX}*"))

    async def receive(
        self,
        transfer_id: uuid.UUID,
        chunks: AsyncIterable[bytes],
        *,
        limit: int,
        expected_md5: str | None = None,
    ) -> StoredBody:
        """Stream ``chunks`` to disk and publish them under the final name.

        Raises BodyTooLarge or ChecksumMismatch, or whatever reading ``chunks`` raised; in every such
        case no file is left behind.
        """
        partial_path = self.directory / f"{PARTIAL_PREFIX}{transfer_id}-{secrets.token_hex(4)}"
        partial = await asyncio.to_thread(_PartialFile, partial_path)
        completed = False
        try:
            batch = bytearray()
            async for chunk in chunks:
                partial.size += len(chunk)
                if partial.size > limit:
                    raise BodyTooLarge(f"the body is larger than {limit} bytes")
                batch += chunk
                if len(batch) >= self.flush_bytes:
                    await asyncio.to_thread(partial.append, bytes(batch))
                    batch.clear()
            if batch:
                await asyncio.to_thread(partial.append, bytes(batch))
            md5_hex = partial.digest.hexdigest()
            if expected_md5 is not None and md5_hex != expected_md5.lower():
                raise ChecksumMismatch("the body does not match the checksum given at initialize")
            final = self.path_for(transfer_id)
            await asyncio.to_thread(_publish, partial, final)
            completed = True
            return StoredBody(final, partial.size, md5_hex)
        finally:
            if not completed:
                # Shielded so that a second cancellation cannot leave the partial file behind.
                await asyncio.shield(asyncio.to_thread(partial.discard))

    async def remove(self, transfer_id: uuid.UUID) -> None:
        """Delete the body of ``transfer_id`` if there is one."""
        await asyncio.to_thread(self.path_for(transfer_id).unlink, True)

    async def is_zip(self, transfer_id: uuid.UUID) -> bool:
        """True when the stored body is a ZIP archive (central directory readable)."""
        return await asyncio.to_thread(zipfile.is_zipfile, self.path_for(transfer_id))


def _publish(partial: _PartialFile, final: Path) -> None:
    partial.close()
    os.replace(partial.path, final)
