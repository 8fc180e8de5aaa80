"""A look at the first bytes of a streamed upload before it is sent on (the answer to ``PeekStream``).

Some refusals depend on what a file *is* (Altinn 2 refused a non-ZIP file for a broker service that
requires ZIP), and must be made before the Altinn 3 upload starts: once the call is under way,
Altinn 3 holds a partial upload. :func:`peek` reads just enough chunks to see ``size`` bytes and
hands back a :class:`PeekedStream` that replays them before the rest.

Invariants:
* Only the chunks read to see ``size`` bytes are held (one chunk, for any sensible chunk size), never
  more: the rest of the stream is read on demand as before.
* A :class:`PeekedStream` yields exactly the bytes of its source, in order, and keeps the source's
  ``length`` so a sized upload still goes out with its ``Content-Length``.
* Nothing here opens a socket or a file: the executor awaits :func:`peek` on the legacy request's
  own stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator


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


async def peek(source: AsyncIterable[bytes], size: int) -> PeekedStream:
    """Read ``source`` until at least ``size`` bytes are seen (or it ends); replay them, then the rest."""
    rest = aiter(source)
    chunks: list[bytes] = []
    seen = 0
    while seen < size:
        try:
            chunk = await anext(rest)
        except StopAsyncIteration:
            break
        if chunk:
            chunks.append(chunk)
            seen += len(chunk)
    length = getattr(source, "length", None)
    return PeekedStream(b"".join(chunks)[:size], chunks, rest, length if isinstance(length, int) else None)
