"""A seam through which every request a fake Altinn 3 API receives can be judged.

Tests install an observer that runs Altinn's published OpenAPI contract on each request (see
``tests/contract.py``); the sandbox runs without one. Streamed binary bodies are not read here (the
fake streams them to disk), so the observer gets ``None`` as body for those.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

RequestObserver = Callable[[str, str, Mapping[str, str], bytes | None], None]
"""``observer(method, absolute_url, headers, body_or_None)``; raising is allowed and fails the request."""

_STREAMED_TYPES = ("application/octet-stream", "multipart/")


def observing_middleware(observer: RequestObserver | None) -> Callable[..., Awaitable[web.StreamResponse]]:
    """An aiohttp middleware that hands each request to ``observer`` before the handler runs."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if observer is not None:
            streamed = request.content_type.startswith(_STREAMED_TYPES)
            body = None if streamed or not request.can_read_body else await request.read()
            observer(request.method, str(request.url), dict(request.headers), body)
        return await handler(request)

    return middleware
