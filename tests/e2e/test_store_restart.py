"""PostgreSQL restarts in the middle of a burst of ``InsertCorrespondenceBasicV2`` to two replicas.

Both ``altinn-proxy serve`` processes share one throwaway PostgreSQL cluster of this test's own
(``tests/e2e/pg_cluster.py``; the shared server is never touched). What must hold:

* while the store is down, ``/readyz`` of both replicas says not ready, and a call gets a Server
  fault a legacy client may resend (never a hang, never a client fault);
* calls in flight across the restart fail that way or succeed; a legacy client resending each
  reference until it is acknowledged ends with every reference acknowledged once, one
  correspondence per reference at Altinn 3 and no two references sharing a ``ReceiptId``;
* both replicas recover by themselves, without a restart of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from proxy.errors import InProgress, StoreUnavailable, UpstreamUnavailable
from proxy.sandbox.world import SandboxKeys
from tests.e2e.pg_cluster import Cluster, postgres_bin, throwaway_cluster
from tests.e2e.test_durability import (
    REQUEST_TIMEOUT,
    Deployment,
    SoapFault,
    correspondences_by_reference,
    deploy,
    gather_bounded,
    insert,
)
from tests.foundation.process import ProxyProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL's server programs are not installed"),
]

BURST = 120
LEASE_SECONDS = 5.0
RESTART_AFTER = 30
#: Faults a legacy client may resend: the store or Altinn 3 unavailable, or the twin still running.
RESENDABLE = {str(StoreUnavailable.error_id), str(InProgress.error_id), str(UpstreamUnavailable.error_id)}


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """Made and started before the test's loop runs (initdb takes seconds)."""
    with throwaway_cluster() as running:
        yield running


@pytest.fixture
async def replicas(
    tmp_path: Path, sandbox_keys: SandboxKeys, altinn3_contract: Any, cluster: Cluster
) -> AsyncIterator[tuple[Deployment, list[ProxyProcess]]]:
    async with deploy(tmp_path, sandbox_keys, altinn3_contract, cluster.dsn, workers=1) as deployed:
        # A claim whose release the restart swallowed blocks resends for the lease: keep it short.
        document = yaml.safe_load(await asyncio.to_thread(deployed.config.read_text))
        document["store"]["idempotency_lease_seconds"] = LEASE_SECONDS
        await asyncio.to_thread(deployed.config.write_text, yaml.safe_dump(document, sort_keys=False))
        yield deployed, list(await asyncio.gather(deployed.start_proxy(), deployed.start_proxy()))


async def _ready(session: aiohttp.ClientSession, proxy: ProxyProcess) -> bool:
    async with session.get(proxy.base_url + "/readyz") as response:
        return response.status == 200


async def _resend_until_acknowledged(session: aiohttp.ClientSession, url: str, reference: str) -> int:
    """What a legacy client does: resend on a resendable fault or a broken connection."""
    while True:
        try:
            return await insert(session, url, reference)
        except SoapFault as fault:
            if fault.status < 500 or fault.error_id not in RESENDABLE:
                raise
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)


async def test_a_postgresql_restart_mid_burst_loses_and_duplicates_nothing(
    replicas: tuple[Deployment, list[ProxyProcess]], cluster: Cluster
) -> None:
    deployment, proxies = replicas
    async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as session:
        assert [await _ready(session, proxy) for proxy in proxies] == [True, True]

        # Down: not ready, and a call is a resendable Server fault.
        await asyncio.to_thread(cluster.stop)
        ready = [await _ready(session, proxy) for proxy in proxies]
        assert ready == [False, False]
        with pytest.raises(SoapFault) as refused:
            await insert(session, proxies[0].base_url, "while-down")
        assert refused.value.status >= 500
        assert refused.value.error_id == str(StoreUnavailable.error_id)
        await asyncio.to_thread(cluster.start)

        # Restart in the middle of a burst spread over both replicas.
        references = [f"restart-{number:03d}" for number in range(BURST)]
        acknowledged: dict[str, int] = {}
        restarted = asyncio.Event()

        async def send(index: int, reference: str) -> int:
            receipt = await _resend_until_acknowledged(session, proxies[index % 2].base_url, reference)
            acknowledged[reference] = receipt
            if len(acknowledged) == RESTART_AFTER:
                restarted.set()
            return receipt

        async def restart() -> None:
            await restarted.wait()
            await asyncio.to_thread(cluster.stop)
            await asyncio.to_thread(cluster.start)

        restarting = asyncio.create_task(restart())
        receipts = await gather_bounded(12, (send(i, ref) for i, ref in enumerate(references)))
        await restarting

        # A resend of an acknowledged reference (to the other replica) gets the same receipt.
        again = await gather_bounded(
            12, (insert(session, proxies[(i + 1) % 2].base_url, ref) for i, ref in enumerate(references))
        )
        assert again == receipts
        assert [await _ready(session, proxy) for proxy in proxies] == [True, True]

    assert len(set(receipts)) == BURST, "two references share a ReceiptId"
    created = correspondences_by_reference(deployment.fakes)
    assert {ref: created[ref] for ref in references} == dict.fromkeys(references, 1)
    assert "while-down" not in created
