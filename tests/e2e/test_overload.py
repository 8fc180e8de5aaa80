"""One call more than ``limits.max_in_flight`` is refused at once, on both fronts, and nothing is queued.

The first call is held in flight by a client that sends half its body and waits; the next call gets
a retryable Server fault (REST: the legacy error with 503) before anything reaches Altinn 3; once
the first call ends, calls are served again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from lxml import etree

from proxy.app import ADMISSION
from proxy.errors import Overloaded
from proxy.sandbox.world import SandboxKeys
from proxy.settings import Settings
from tests.e2e.conftest import run_world
from tests.e2e.rest_world import EUS, rest_world
from tests.e2e.test_identity import INBOX_PATH, call, fault, inbox_request, outbound

TIMEOUT = aiohttp.ClientTimeout(total=60)
HEADERS = {
    "Content-Type": "text/xml; charset=utf-8",
    "SOAPAction": '"http://www.altinn.no/services/ServiceEngine/ReporteeElementList/2010/10/'
    'IReporteeElementListExternalBasic/GetReporteeElementListBasicV2"',
}


def _one_at_a_time(settings: Settings) -> Settings:
    limits = settings.limits.model_copy(update={"max_in_flight": 1})
    return settings.model_copy(update={"limits": limits})


async def _held_call(url: str, body: bytes, release: asyncio.Event, answer: asyncio.Future[int]) -> None:
    """POST ``body``: its first half at once, the rest once ``release`` is set; the status to ``answer``."""

    async def halves() -> AsyncIterator[bytes]:
        yield body[: len(body) // 2]
        await release.wait()
        yield body[len(body) // 2 :]

    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.post(url, data=halves(), headers=HEADERS) as response,
    ):
        await response.read()
        answer.set_result(response.status)


async def _until_in_flight(app: web.Application) -> None:
    """Wait until the held call is being served (the proxy counts it; no clock involved)."""
    async with asyncio.timeout(30):
        while app[ADMISSION].serving < 1:  # noqa: ASYNC110  (a counter, not an event, is what there is)
            await asyncio.sleep(0.01)


async def test_the_call_over_the_limit_is_a_soap_fault_and_the_next_after_it_is_served(
    tmp_path: Path, altinn3_contract: Any, sandbox_keys: SandboxKeys, mappings_dir: Path
) -> None:
    request = inbox_request("demo-eus", "demo-eus-password", "310000019")
    async with run_world(
        tmp_path, altinn3_contract, sandbox_keys, mappings_dir, adjust=_one_at_a_time
    ) as world:
        release, first = asyncio.Event(), asyncio.get_running_loop().create_future()
        held = asyncio.create_task(_held_call(world.proxy_url + INBOX_PATH, request, release, first))
        await _until_in_flight(world.app)
        sent_before = outbound(world, altinn3_contract)

        status, answer = await call(world, request)
        fields = fault(answer)
        assert status == 500
        assert answer.findtext(".//faultcode") == "s:Server"
        assert "limits.max_in_flight = 1" in fields["AltinnErrorMessage"]
        assert "retry" in fields["AltinnErrorMessage"]
        assert outbound(world, altinn3_contract) == sent_before, "a refused call reached Altinn 3"

        release.set()
        await held
        assert await first == 200
        status, answer = await call(world, request)
        assert status == 200, etree.tostring(answer)


async def test_the_rest_call_over_the_limit_is_the_legacy_error_with_503(
    tmp_path: Path, altinn3_contract: Any, sandbox_keys: SandboxKeys
) -> None:
    async with rest_world(tmp_path, altinn3_contract, sandbox_keys, adjust=_one_at_a_time) as world:
        release, first = asyncio.Event(), asyncio.get_running_loop().create_future()
        request = inbox_request("demo-eus", "demo-eus-password", "310000019")
        held = asyncio.create_task(_held_call(world.http_url + INBOX_PATH, request, release, first))
        await _until_in_flight(world.app)
        async with world.client(EUS) as client:
            body = await client.json("GET", "/api/my/messages", status=503)
            assert body == {"ErrorCode": Overloaded.error_id, "ErrorMessage": body["ErrorMessage"]}
            assert "limits.max_in_flight = 1" in body["ErrorMessage"]
            release.set()
            await held
            assert await first == 200
            await client.json("GET", "/api/my/messages")
