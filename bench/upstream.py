"""The bare proxy's upstream: answers every POST like Altinn 3's ``POST /correspondence``.

It reads the body and answers a fixed ``InitializeCorrespondencesResponseExt``-shaped JSON, so the
baseline pays for the same request and answer sizes as the translated run, but no fake logic.

    python -m bench.upstream --port 0
"""

from __future__ import annotations

import argparse
import asyncio
import json

from aiohttp import web

CANNED_ANSWER = json.dumps(
    {
        "correspondences": [
            {
                "correspondenceId": "0f4e2c1a-5b6d-4e7f-8a9b-0c1d2e3f4a5b",
                "status": "Published",
                "recipient": "urn:altinn:organization:identifier-no:310000019",
                "notifications": [],
            }
        ],
        "attachmentIds": [],
    }
).encode()


async def initialize(request: web.Request) -> web.Response:
    """Read the request and give the canned answer."""
    await request.read()
    return web.Response(body=CANNED_ANSWER, content_type="application/json")


def create_app() -> web.Application:
    """The canned upstream application."""
    app = web.Application()
    app.router.add_post("/{tail:.*}", initialize)
    return app


async def _main(host: str, port: int) -> None:
    runner = web.AppRunner(create_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(f"listening {runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(_main(args.host, args.port))
