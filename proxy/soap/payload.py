"""A streamed binary payload that knows its length before the first byte is read.

Altinn 3 uploads need a ``Content-Length`` up front, while the legacy payload arrives as a stream
(an MTOM part, or inline base64 already decoded). Wrapping the stream in :class:`SizedStream` lets
the front say how long it will be; the outbound client then sends a fixed-length body instead of
buffering. Invariant: a ``SizedStream`` yields exactly ``length`` bytes or raises
:class:`proxy.errors.MalformedRequest`, so an upstream never receives a body that disagrees with
the length it was promised (a mismatch aborts the upload rather than silently truncating it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from proxy.errors import MalformedRequest


class SizedStream:
    """An async iterator of byte chunks that yields exactly ``length`` bytes (see module docstring)."""

    def __init__(self, source: AsyncIterator[bytes], length: int) -> None:
        if length < 0:
            raise ValueError("a payload length cannot be negative")
        self.length = length
        self._source = source
        self._seen = 0

    def __repr__(self) -> str:
        return f"SizedStream(<{self.length} bytes>)"

    def __aiter__(self) -> SizedStream:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._source.__anext__()
        except StopAsyncIteration:
            if self._seen != self.length:
                raise MalformedRequest(
                    f"the attachment ended after {self._seen} of the {self.length} bytes announced"
                ) from None
            raise
        self._seen += len(chunk)
        if self._seen > self.length:
            raise MalformedRequest(f"the attachment is longer than the {self.length} bytes announced")
        return chunk

    async def aclose(self) -> None:
        """Close the underlying stream (releases its socket or file)."""
        close = getattr(self._source, "aclose", None)
        if close is not None:
            await close()
