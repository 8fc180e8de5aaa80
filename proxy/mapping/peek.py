"""The answer to a plan's ``PeekStream``: a stream whose first bytes were read ahead (a value).

The reading itself is the executor's (:func:`proxy.altinn3.peek.peek`); a dry run builds one from
canned bytes. A :class:`PeekedStream` yields exactly the bytes of its source, in order, and keeps
the source's ``length`` so a sized upload still goes out with its ``Content-Length``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator


class PeekedStream:
    """A stream whose first bytes (:attr:`head`) were read ahead; iterating it yields all of it."""

    def __init__(
        self, head: bytes, chunks: list[bytes], rest: AsyncIterator[bytes], length: int | None
    ) -> None:
        #: The first bytes of the stream: at least the peeked size, unless the stream is shorter.
        self.head = head
        #: The stream's length when the front knew it up front (:class:`proxy.soap.payload.SizedStream`).
        self.length = length
        self._replay = chunks
        self._rest = rest

    def __repr__(self) -> str:
        return f"PeekedStream(<{len(self.head)} bytes peeked>)"

    def __aiter__(self) -> PeekedStream:
        return self

    async def __anext__(self) -> bytes:
        if self._replay:
            return self._replay.pop(0)
        return await self._rest.__anext__()

    async def aclose(self) -> None:
        """Close the underlying stream (releases its socket or file)."""
        self._replay.clear()
        close = getattr(self._rest, "aclose", None)
        if close is not None:
            await close()
