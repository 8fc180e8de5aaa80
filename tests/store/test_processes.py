"""Real OS processes sharing one database: concurrent replicas, and kill -9 mid-burst."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from proxy.store import RECEIPT_KIND, BeginState, IdempotencyKey, ReceiptReference, open_store
from tests.store.worker import CALLER, OPERATION, numbered_guid

REPO = Path(__file__).resolve().parents[2]
ORG = "310000019"
READ_DEADLINE_SECONDS = 60  # a safety net against a hung child, not a measurement


async def spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.store.worker",
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def read_all(process: asyncio.subprocess.Process) -> list[str]:
    stdout, stderr = await asyncio.wait_for(process.communicate(), READ_DEADLINE_SECONDS)
    assert process.returncode == 0, stderr.decode()
    return stdout.decode().splitlines()


@pytest.mark.postgres
@pytest.mark.slow
async def test_two_replicas_allocate_10000_guids_without_a_duplicate(postgres_dsn: str) -> None:
    await (await open_store(postgres_dsn)).close()  # both replicas would migrate; one less race to wait on
    first, second = await asyncio.gather(
        spawn("allocate", postgres_dsn, ORG, "0", "7000", "1"),
        spawn("allocate", postgres_dsn, ORG, "3000", "10000", "2"),
    )
    outputs = await asyncio.gather(read_all(first), read_all(second))

    mapping: dict[str, int] = {}
    for lines in outputs:
        assert lines[-1] == "done"
        for line in lines[:-1]:
            guid, legacy_id = line.split()
            assert mapping.setdefault(guid, int(legacy_id)) == int(legacy_id), f"{guid} got two ids"
    assert set(mapping) == {numbered_guid(number) for number in range(10_000)}
    assert len(set(mapping.values())) == 10_000
    assert all(0 < legacy_id < 2**31 for legacy_id in mapping.values())

    store = await open_store(postgres_dsn)
    try:
        sample = sorted(mapping)[::97]
        assert await store.allocate_ids("correspondence", sample, ORG) == {
            guid: mapping[guid] for guid in sample
        }
        for guid in sample[:20]:
            assert await store.resolve_id("correspondence", mapping[guid], ORG) == guid
    finally:
        await store.close()


@pytest.mark.slow
async def test_kill_9_during_a_burst_loses_nothing_acknowledged(store_url: str) -> None:
    await (await open_store(store_url)).close()
    worker = await spawn("burst", store_url, ORG)
    assert worker.stdout is not None
    acknowledged: list[str] = []
    try:
        while len(acknowledged) < 150:
            line = await asyncio.wait_for(worker.stdout.readline(), READ_DEADLINE_SECONDS)
            if not line:
                stderr = await worker.stderr.read() if worker.stderr else b""
                pytest.fail(f"the worker died on its own: {stderr.decode()}")
            acknowledged.append(line.decode())
        worker.send_signal(signal.SIGKILL)
        rest, _ = await asyncio.wait_for(worker.communicate(), READ_DEADLINE_SECONDS)
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    assert worker.returncode == -signal.SIGKILL
    # Only whole lines were acknowledged; a line cut by the kill was not.
    acknowledged += [line + "\n" for line in rest.decode().split("\n")[:-1]]

    store = await open_store(store_url)
    try:
        for acknowledgement in acknowledged:
            reference, guid, receipt_id = acknowledgement.split()
            assert await store.resolve_id(RECEIPT_KIND, int(receipt_id), ORG) == guid
            receipt = await store.get_receipt(int(receipt_id), ORG)
            assert receipt.references == (ReceiptReference("ExternalShipmentReference", reference),)
            resend = await store.begin(IdempotencyKey(CALLER, OPERATION, reference))
            assert resend.state is BeginState.COMPLETED
            assert resend.outcome == {"receipt_id": int(receipt_id)}
    finally:
        await store.close()
