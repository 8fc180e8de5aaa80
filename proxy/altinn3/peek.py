"""A look at the first bytes of a streamed upload before it is sent on (the executor's answer to ``PeekStream``).

Some refusals depend on what a file *is* (Altinn 2 refused a non-ZIP file for a broker service that
requires ZIP), and must be made before the Altinn 3 upload starts: once the call is under way,
Altinn 3 holds a partial upload. :func:`peek` reads just enough chunks to see ``size`` bytes and
hands back a :class:`~proxy.mapping.peek.PeekedStream` that replays them before the rest.

Invariants:
* Only the chunks read to see ``size`` bytes are held (one chunk, for any sensible chunk size), never
  more: the rest of the stream is read on demand as before.
* It reads the legacy request's own stream (the client's socket or an inline payload); this is the
  I/O the pure mapping engine leaves to the executor.
"""

from __future__ import annotations

from collections.abc import AsyncIterable

from proxy.mapping.peek import PeekedStream


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
