"""The suite's own guards work: a blocked loop is caught."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from tests import loopguard
from tests.conftest import SLOW_CALLBACK_SECONDS, _blocking


def _run_alone(guard: loopguard.BlockingGuard, work: Callable[[], None]) -> float:
    """Run ``work`` as the one callback of a new guarded loop on this thread; the loop's wall time."""
    loop = loopguard.guarded_loop(guard)
    try:
        loop.call_soon(work)
        loop.call_soon(loop.stop)
        started = time.perf_counter()
        loop.run_forever()
        return time.perf_counter() - started
    finally:
        loop.close()


def _burn_cpu(seconds: float) -> None:
    """Burn ``seconds`` of this thread's CPU in pure Python (which needs the GIL throughout)."""
    deadline = time.thread_time() + seconds
    while time.thread_time() < deadline:
        pass


def _new_records(before: int) -> list[str]:
    records = _blocking.records[before:]
    del _blocking.records[before:]  # the guard itself must not fail the test that proves it
    return records


async def test_a_sleeping_callback_is_caught() -> None:
    before = len(_blocking.records)
    time.sleep(SLOW_CALLBACK_SECONDS + 0.1)  # noqa: ASYNC251  (blocks the loop on purpose)
    await asyncio.sleep(0)
    assert _new_records(before), "a callback that sleeps on the loop thread must be reported"


async def test_a_cpu_bound_callback_is_caught() -> None:
    before = len(_blocking.records)
    _burn_cpu(SLOW_CALLBACK_SECONDS + 0.1)  # burns the loop thread's own CPU on purpose
    await asyncio.sleep(0)
    assert _new_records(before), "a callback that burns CPU on the loop thread must be reported"


def test_garbage_collection_is_not_the_callbacks_blocking() -> None:
    """A full collection over a large heap inside a callback is not reported; the callback's own work is."""
    guard = loopguard.BlockingGuard(limit_seconds=0.03)
    heap: list[list[int]] = [
        [] for _ in range(2_000_000)
    ]  # tracked containers, so a full collection walks them all
    collected: list[float] = []

    def collect() -> None:
        started = time.thread_time()
        gc.collect()
        collected.append(time.thread_time() - started)

    _run_alone(guard, collect)
    del heap
    if collected[0] < guard.limit_seconds:
        pytest.skip(f"the collection took only {collected[0]:.3f} s of CPU")
    assert guard.records == [], "time in the garbage collector is the interpreter's, not the callback's"
    _run_alone(guard, lambda: _burn_cpu(guard.limit_seconds + 0.02))
    assert guard.records, "a callback's own CPU around the collector is still judged"


@pytest.mark.skipif(loopguard._open_schedstat() is None, reason="this kernel keeps no per-thread schedstat")
def test_starvation_is_not_blocking() -> None:
    """A callback that only waited for a CPU (other processes took both cores) is not reported.

    Starvation is produced for real: the loop thread is pinned to one core with the lowest priority
    while a busy process at normal priority is pinned to the same core.
    """
    guard = loopguard.BlockingGuard(limit_seconds=0.2)
    core = min(os.sched_getaffinity(0))
    walls: list[float] = []

    def starved_loop() -> None:
        # Its own thread, so the lowered priority and the pinning end with it.
        os.sched_setaffinity(0, {core})
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        # About 50 ms of CPU, stretched to far more wall time by the competing process.
        walls.append(_run_alone(guard, lambda: _burn_cpu(0.05)))

    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        os.sched_setaffinity(burner.pid, {core})
        thread = threading.Thread(target=starved_loop)
        thread.start()
        thread.join()
    finally:
        burner.kill()
        burner.wait()
    wall = walls[0]
    if wall < 0.2:
        pytest.skip(f"the competing process did not starve the loop ({wall:.3f} s wall)")
    assert guard.records == [], "waiting for a CPU is starvation, not blocking"


@pytest.mark.skipif(loopguard._open_schedstat() is None, reason="this kernel keeps no per-thread schedstat")
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores")
def test_waiting_for_the_gil_of_a_starved_thread_is_not_blocking() -> None:
    """A callback that waited for the GIL while a starved worker thread held it is not reported.

    This is how a busy machine reaches the loop thread through ``asyncio.to_thread``: the worker is
    taken off its CPU while it holds the GIL. Produced for real: a pure-Python worker at the lowest
    priority shares one core with a busy process, the loop thread has the other core to itself.
    """
    guard = loopguard.BlockingGuard(limit_seconds=0.2)
    worker_core, loop_core = sorted(os.sched_getaffinity(0))[:2]
    stop = threading.Event()
    walls: list[float] = []

    def starved_worker() -> None:
        os.sched_setaffinity(0, {worker_core})
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        while not stop.is_set():  # pure Python: it holds the GIL whenever it runs
            pass

    def loop_thread() -> None:
        os.sched_setaffinity(0, {loop_core})
        walls.append(_run_alone(guard, lambda: _burn_cpu(0.02)))  # needs the GIL back again and again

    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    worker = threading.Thread(target=starved_worker)
    try:
        os.sched_setaffinity(burner.pid, {worker_core})
        worker.start()
        thread = threading.Thread(target=loop_thread)
        thread.start()
        thread.join()
    finally:
        stop.set()
        burner.kill()
        burner.wait()
        worker.join()
    wall = walls[0]
    if wall < 0.2:
        pytest.skip(f"the starved worker did not hold up the loop thread ({wall:.3f} s wall)")
    assert guard.records == [], "waiting for the GIL of a starved thread is starvation, not blocking"


@pytest.mark.skipif(loopguard._open_schedstat() is None, reason="this kernel keeps no per-thread schedstat")
def test_waiting_for_the_gil_of_a_busy_thread_is_not_blocking() -> None:
    """A callback that waited while another thread held the GIL in one long C call is not reported.

    The thread stays alive afterwards, as ``asyncio.to_thread``'s workers do (the kernel's accounts of
    an ended thread are gone).
    """
    guard = loopguard.BlockingGuard(limit_seconds=0.2)
    done = threading.Event()

    def long_c_call() -> None:
        sum(range(40_000_000))  # one C call: it keeps the GIL for its whole run (~0.5 s of CPU)
        done.wait()

    def light_work() -> None:
        threading.Thread(target=long_c_call).start()
        _burn_cpu(0.02)  # needs the GIL back, so waits for the sum

    try:
        wall = _run_alone(guard, light_work)
    finally:
        done.set()
    if wall < 0.2:
        pytest.skip(f"the other thread did not hold the GIL long enough ({wall:.3f} s wall)")
    assert guard.records == [], "waiting for the GIL is not blocking"


@pytest.mark.postgres
async def test_postgres_fixture_gives_an_empty_database(postgres_dsn: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(postgres_dsn, timeout=5)
    try:
        assert await connection.fetchval("select count(*) from pg_tables where schemaname = 'public'") == 0
    finally:
        await connection.close()
