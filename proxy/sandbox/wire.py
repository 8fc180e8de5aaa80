"""What the fake Altinn 3 APIs share on the wire: body reads under a deadline, JSON without nulls."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

#: aiohttp has no body-read timeout; a client that stalls mid-body must not hold a handler forever.
BODY_READ_SECONDS = 30.0


async def read_body(request: web.Request) -> bytes:
    """The whole request body (bounded by the app's ``client_max_size``), or 408 when it stalls."""
    try:
        async with asyncio.timeout(BODY_READ_SECONDS):
            return await request.read()
    except TimeoutError:
        raise web.HTTPRequestTimeout(text="request body not received in time") from None


def without_nulls(value: Any) -> Any:
    """``value`` with every ``None`` member left out: the published schemas (OpenAPI 3.1 style) do not
    admit ``null`` for most optional fields, so absent is the only conforming way to say "not set"."""
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value
