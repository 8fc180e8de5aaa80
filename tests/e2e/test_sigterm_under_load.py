"""SIGTERM in the middle of a burst of ``InsertCorrespondenceBasicV2`` (the real process).

As Kubernetes does it: SIGTERM, the load balancer sees ``/readyz`` turn 503 and sends nothing new
(here: the client stops starting submissions), the requests in flight finish, a second signal ends
the drain delay, and the process exits 0. Every submission that was started was answered; Altinn 3
holds one correspondence for each; and a new process over the same store finds each acknowledged
receipt (``GetReceiptBasicV2``) and answers a resend of each reference with it, creating nothing.

Run on a SQLite file and on a fresh PostgreSQL database, with one process and with
``serve --workers 2`` (the supervisor passes both signals on; every worker turns not ready).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from proxy.sandbox.world import SandboxKeys
from tests.e2e.test_durability import (
    REQUEST_TIMEOUT,
    Deployment,
    correspondences_by_reference,
    deploy,
    gather_bounded,
    insert,
    read_receipt,
    store_url,
    workers,
)

pytestmark = pytest.mark.slow

BURST = 200
CONCURRENCY = 16
SIGTERM_AFTER = 40
#: Fresh connections that must all find ``/readyz`` 503 (the kernel spreads them over the workers).
READINESS_PROBES = 8

__all__ = ["store_url", "workers"]  # fixtures shared with the kill -9 tests


@pytest.fixture
async def draining(
    tmp_path: Path, sandbox_keys: SandboxKeys, altinn3_contract: Any, store_url: str, workers: int
) -> AsyncIterator[Deployment]:
    async with deploy(tmp_path, sandbox_keys, altinn3_contract, store_url, workers) as deployed:
        document = yaml.safe_load(await asyncio.to_thread(deployed.config.read_text))
        document["timeouts"].update(drain_delay=600.0, drain=60.0)  # the second signal ends the delay
        await asyncio.to_thread(deployed.config.write_text, yaml.safe_dump(document, sort_keys=False))
        yield deployed


async def test_sigterm_mid_burst_finishes_what_is_in_flight_and_loses_nothing(draining: Deployment) -> None:
    proxy = await draining.start_proxy()
    references = [f"sigterm-{number:03d}" for number in range(BURST)]
    acknowledged: dict[str, int] = {}
    started: list[str] = []
    not_ready = asyncio.Event()
    enough = asyncio.Event()
    gate = asyncio.Semaphore(CONCURRENCY)

    async def submit(session: aiohttp.ClientSession, reference: str) -> None:
        async with gate:
            if not_ready.is_set():
                return  # the load balancer no longer sends here
            started.append(reference)
            acknowledged[reference] = await insert(session, proxy.base_url, reference)
            if len(acknowledged) >= SIGTERM_AFTER:
                enough.set()

    async def watch_readiness(session: aiohttp.ClientSession) -> None:
        await enough.wait()
        proxy.process.send_signal(signal.SIGTERM)
        while not not_ready.is_set():
            async with session.get(proxy.base_url + "/readyz") as response:
                if response.status == 503:
                    not_ready.set()
            await asyncio.sleep(0.02)
        refusing = False
        while not refusing:  # the workers received the signal one after the other
            refusing = await _every_worker_refuses(proxy.base_url)
            await asyncio.sleep(0.02)

    connector = aiohttp.TCPConnector(limit=CONCURRENCY + 2)
    async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT, connector=connector) as session:
        watcher = asyncio.create_task(watch_readiness(session))
        await asyncio.wait_for(asyncio.gather(*(submit(session, ref) for ref in references)), 120)
        await watcher
    assert sorted(acknowledged) == sorted(started), "a submission in flight at SIGTERM was not answered"
    assert SIGTERM_AFTER <= len(started) < BURST

    assert await proxy.terminate(signal.SIGTERM) == 0  # ends the drain delay
    events = [line["event"] for line in proxy.lines]
    assert events.index("draining") < events.index("stopped")

    created = correspondences_by_reference(draining.fakes)
    assert created == dict.fromkeys(started, 1)
    fresh = await draining.start_proxy()
    async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as session:
        found = await gather_bounded(
            8, (read_receipt(session, fresh.base_url, acknowledged[ref]) for ref in started)
        )
        assert found == [(acknowledged[ref], ref) for ref in started]
        resent = await gather_bounded(8, (insert(session, fresh.base_url, ref) for ref in started))
    assert resent == [acknowledged[ref] for ref in started]
    assert correspondences_by_reference(draining.fakes) == created
    assert await fresh.terminate(signal.SIGINT) == 0  # SIGINT skips the drain delay


async def _every_worker_refuses(base_url: str) -> bool:
    """Whether ``/readyz`` answers 503 on each of several fresh connections (each worker's answer)."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT, connector=connector) as session:
        for _ in range(READINESS_PROBES):
            async with session.get(base_url + "/readyz") as response:
                if response.status != 503:
                    return False
    return True
