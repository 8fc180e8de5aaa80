"""A fault-injecting reverse proxy between altinn-proxy and the fake Altinn 3 platform.

Requests pass through to the fakes unless a queued :class:`Fault` matches them (method and path
prefix); each fault applies to its next ``times`` matching requests. What it does:

* ``status``: answer that status with a ProblemDetails body (the request body is drained first);
* ``hang``: never answer (the handler ends when the proxy gives up and closes the connection);
* ``slow``: forward, then drip the answer one byte per ``drip`` seconds;
* ``reset``: forward, then cut the connection after ``after_bytes`` of the *request* body (an
  upload) or, for a request without a body, of the *answer* body (a download).

Every request is recorded, and ``open_requests`` counts handlers still running: once the proxy
has answered its caller, none of its upstream requests may still be open. ``close_connections``
closes the proxy's idle keep-alive connections from this side, after which the proxy must hold no
socket to us at all (``tests/e2e/proc_sockets.py`` counts them).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal

import aiohttp
from aiohttp import web

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length"}
)


@dataclass
class Fault:
    """What to do to the next ``times`` requests matching ``method`` and ``path`` (a prefix)."""

    #: ``drop``: the request reaches the target, which does the work; its answer is lost on the way
    #: back (the connection is cut), as when the proxy dies between a create and recording its id.
    kind: Literal["status", "hang", "slow", "reset", "drop"]
    path: str
    method: str | None = None
    times: int = 1
    status: int = 503
    after_bytes: int = 64 * 1024
    drip: float = 0.5


class Chaos:
    """The reverse proxy's state; serve it with :func:`serve_chaos`."""

    def __init__(self, target: str, session: aiohttp.ClientSession) -> None:
        self.target = target.rstrip("/")
        self._session = session
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.faulted: list[tuple[str, str, str]] = []
        self.open_requests = 0
        #: The server once it runs (its connections are the proxy's upstream connections).
        self.server: web.Server | None = None
        #: Set while no request is open.
        self.idle = asyncio.Event()
        self.idle.set()

    def inject(self, fault: Fault) -> None:
        """Queue ``fault``."""
        self.faults.append(fault)

    def close_connections(self) -> None:
        """Close every connection to us once its request is done (idle keep-alives at once)."""
        assert self.server is not None
        for connection in list(self.server.connections):
            connection.close()

    def count(self, method: str, path: str) -> int:
        """How many requests with ``method`` and a path starting with ``path`` arrived."""
        return sum(1 for m, p in self.requests if m == method and p.startswith(path))

    def _take(self, request: web.Request) -> Fault | None:
        for fault in self.faults:
            if request.path.startswith(fault.path) and fault.method in (None, request.method):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                self.faulted.append((fault.kind, request.method, request.path))
                return fault
        return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Pass ``request`` on to the target, or apply the fault that matches it."""
        self.requests.append((request.method, request.path))
        self.open_requests += 1
        self.idle.clear()
        try:
            fault = self._take(request)
            if fault is None:
                return await self._forward(request, None)
            if fault.kind == "status":
                await request.read()
                return web.json_response(
                    {"title": "injected", "status": fault.status, "detail": "injected by the chaos proxy"},
                    status=fault.status,
                    content_type="application/problem+json",
                )
            if fault.kind == "hang":
                await asyncio.Event().wait()  # cancelled when the proxy closes the connection
            if fault.kind == "drop":
                return await self._drop(request)
            try:
                return await self._forward(request, fault)
            except (ConnectionResetError, aiohttp.ClientError):
                if fault.kind != "reset":
                    raise
                return web.Response(status=599)  # the connection is already cut; nobody reads this
        finally:
            self.open_requests -= 1
            if not self.open_requests:
                self.idle.set()

    async def _forward(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        body: AsyncIterator[bytes] | None = None
        if request.can_read_body:
            body = self._request_body(request, fault)
            if request.content_length is not None:
                headers["Content-Length"] = str(request.content_length)
        async with self._session.request(
            request.method,
            self.target + request.path_qs,
            headers=headers,
            data=body,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=120),
            auto_decompress=False,
        ) as upstream:
            response = web.StreamResponse(status=upstream.status)
            for key, value in upstream.headers.items():
                if key.lower() not in _HOP_BY_HOP:
                    response.headers[key] = value
            if upstream.content_length is not None and (fault is None or fault.kind != "slow"):
                response.content_length = upstream.content_length
            await response.prepare(request)
            sent = 0
            async for chunk in upstream.content.iter_chunked(16 * 1024):
                if fault is not None and fault.kind == "reset" and not request.can_read_body:
                    chunk = chunk[: max(0, fault.after_bytes - sent)]
                    await response.write(chunk)
                    sent += len(chunk)
                    if sent >= fault.after_bytes:
                        _cut(request)
                        return response
                elif fault is not None and fault.kind == "slow":
                    for index in range(len(chunk)):
                        await response.write(chunk[index : index + 1])
                        await asyncio.sleep(fault.drip)
                else:
                    await response.write(chunk)
            await response.write_eof()
            return response

    async def _drop(self, request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._session.request(
            request.method, self.target + request.path_qs, headers=headers, data=await request.read()
        ) as upstream:
            await upstream.read()
        _cut(request)
        return web.Response(status=599)  # the connection is already cut; nobody reads this

    async def _request_body(self, request: web.Request, fault: Fault | None) -> AsyncIterator[bytes]:
        received = 0
        async for chunk in request.content.iter_chunked(16 * 1024):
            received += len(chunk)
            if fault is not None and fault.kind == "reset" and received >= fault.after_bytes:
                _cut(request)
                raise ConnectionResetError("cut by the chaos proxy")
            yield chunk


async def until(condition: Callable[[], bool], interval: float = 0.1) -> None:
    """Return once ``condition()`` holds (for state of another process, which cannot signal us)."""
    while True:
        if condition():
            return
        await asyncio.sleep(interval)


def _cut(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


@contextlib.asynccontextmanager
async def serve_chaos(target: str) -> AsyncIterator[tuple[Chaos, str]]:
    """Run a :class:`Chaos` proxy for ``target`` on loopback; yields it and its base URL."""
    async with aiohttp.ClientSession() as session:
        chaos = Chaos(target, session)
        app = web.Application(client_max_size=2 * 1024**3)
        app.router.add_route("*", "/{tail:.*}", chaos.handle)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await runner.setup()
        chaos.server = runner.server
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            yield chaos, f"http://127.0.0.1:{runner.addresses[0][1]}"
        finally:
            await runner.cleanup()
