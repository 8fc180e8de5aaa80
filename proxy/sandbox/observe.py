"""A seam through which every request a fake Altinn 3 API receives can be judged.

Tests install an observer that runs Altinn's published OpenAPI contract on each request (see
``tests/contract.py``); the sandbox runs without one. Streamed binary bodies are not read here (the
fake streams them to disk): the observer gets a short placeholder for an octet-stream body (the
contract only checks that a required body is present) and ``None`` for a multipart one.

The sandbox serves every app under ``/apps/{org}`` of its platform host; the observer sees such a
request at the address it stands for, ``{scheme}://{org}.apps.<host>/{org}/{app}/...``, as Altinn's
contract addresses apps.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from proxy.sandbox.wire import read_body

RequestObserver = Callable[[str, str, Mapping[str, str], bytes | None], None]
"""``observer(method, absolute_url, headers, body_or_None)``; raising is allowed and fails the request."""

_STREAMED_PLACEHOLDER = b"<streamed>"
_APPS_PREFIX = "/apps/"


def observed_url(request: web.Request) -> str:
    """The request's absolute URL as Altinn would see it (an app's own host for ``/apps/{org}/...``)."""
    url = request.url
    if not url.path.startswith(_APPS_PREFIX):
        return str(url)
    org, _, rest = url.path_qs.removeprefix(_APPS_PREFIX).partition("/")
    return f"{url.scheme}://{org}.apps.{url.host}:{url.port}/{rest}"


def observing_middleware(observer: RequestObserver | None) -> Callable[..., Awaitable[web.StreamResponse]]:
    """An aiohttp middleware that hands each request to ``observer`` before the handler runs."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if observer is not None:
            body: bytes | None
            if request.content_type == "application/octet-stream":
                body = _STREAMED_PLACEHOLDER if request.content_length != 0 else b""
            elif request.content_type.startswith("multipart/"):
                body = None  # the contract tool cannot parse a placeholder as multipart
            else:
                body = await read_body(request) if request.can_read_body else None
            observer(request.method, observed_url(request), dict(request.headers), body)
        return await handler(request)

    return middleware
