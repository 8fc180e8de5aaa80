"""The baseline: a bare aiohttp reverse proxy that forwards a SOAP POST to a canned upstream.

It does what any proxy must do at the least (read the request, one upstream HTTP call on a pooled
session, copy the answer back) and nothing else, so ``translated / bare`` tells what translation,
identity, tokens, logging and metrics cost.

    python -m bench.bare_proxy --port 0 --upstream http://127.0.0.1:PORT/ [--event-loop auto]

It runs on the same event loop as the proxy (``proxy.web.loop``: uvloop when installed).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from proxy.web.loop import run

UPSTREAM = web.AppKey("upstream", str)
SESSION = web.AppKey("session", ClientSession)


async def forward(request: web.Request) -> web.Response:
    """Forward the body to the upstream and copy status, content type and body back."""
    body = await request.read()
    async with request.app[SESSION].post(
        request.app[UPSTREAM],
        data=body,
        headers={"Content-Type": request.headers.get("Content-Type", "text/xml")},
    ) as upstream:
        payload = await upstream.read()
        return web.Response(status=upstream.status, body=payload, content_type=upstream.content_type)


async def _session(app: web.Application) -> AsyncIterator[None]:
    timeout = ClientTimeout(total=30, connect=5, sock_read=30)
    async with ClientSession(connector=TCPConnector(limit=200), timeout=timeout) as session:
        app[SESSION] = session
        yield


def create_app(upstream: str) -> web.Application:
    """The bare reverse proxy application."""
    app = web.Application()
    app[UPSTREAM] = upstream
    app.cleanup_ctx.append(_session)
    app.router.add_post("/{tail:.*}", forward)
    return app


async def _main(host: str, port: int, upstream: str) -> None:
    runner = web.AppRunner(create_app(upstream), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    print(f"listening {runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--event-loop", choices=["auto", "asyncio", "uvloop"], default="auto")
    args = parser.parse_args()
    run(_main(args.host, args.port, args.upstream), args.event_loop)
