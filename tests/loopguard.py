"""A guard that tells a blocked event loop from a starved one.

asyncio's debug mode reports a callback whose *wall* time exceeds ``slow_callback_duration``. On a
shared 2-core CI machine a callback that merely lost its CPU to another process looks exactly like one
that blocked, so that report fails healthy tests. This guard measures what a callback really held the
loop for: its wall time minus the time the loop thread sat runnable on the run queue waiting for a CPU,
as the kernel accounts it in ``/proc/thread-self/schedstat`` (second field, nanoseconds).

What remains is CPU the callback burned plus time it slept in the kernel (``time.sleep``, a blocking
socket, a synchronous ``fsync``): both are blocking, both are caught. Starvation is not.

Starvation also reaches the loop thread second-hand, through the GIL: while a worker thread of the
same process (``asyncio.to_thread`` compiling mappings, zeep parsing a WSDL) holds the GIL, running or
taken off its CPU, the loop thread sleeps. So the time the process's *other* threads were busy
(running, or runnable and waiting for a CPU) during the callback is subtracted too, never below the
loop thread's own CPU time: a callback that burns CPU is always caught, one that sleeps is caught
unless other threads were busy meanwhile. (A callback that blocks on ``thread.join()`` of a busy
thread therefore escapes; nothing in this code base does that.) The other threads' readings are
refreshed at most every ``OTHERS_REFRESH_SECONDS`` at a callback's start (reading every thread costs
~30 µs), so a stale start reading can only subtract a little more.

Garbage collection is the interpreter's, not the callback's: a full collection walks every live
object of the test process (the parsed OpenAPI specifications alone are millions) inside whichever
callback happens to allocate. The collector's own time on the loop thread (measured by a ``gc``
callback) is subtracted as well; a callback that allocates so much that it collects for half a second
is still caught by its own work around it.

Where the kernel offers no schedstat (another OS, a kernel without ``CONFIG_SCHED_INFO``), the guard
falls back to the thread's CPU time, which still catches CPU-bound blocking but not sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_SCHEDSTAT = "/proc/thread-self/schedstat"
OTHERS_REFRESH_SECONDS = 0.02


class _CollectorClock:
    """Thread CPU time each thread spent in the garbage collector, summed (seconds)."""

    def __init__(self) -> None:
        self.spent: dict[int, float] = {}
        self._started: dict[int, float] = {}

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        ident = threading.get_ident()
        if phase == "start":
            self._started[ident] = time.thread_time()
        elif (started := self._started.pop(ident, None)) is not None:
            self.spent[ident] = self.spent.get(ident, 0.0) + time.thread_time() - started


_collector = _CollectorClock()


def _open_schedstat() -> int | None:
    try:
        return os.open(_SCHEDSTAT, os.O_RDONLY)
    except OSError:
        return None


def _run_queue_ns(fd: int) -> int:
    return int(os.pread(fd, 64, 0).split()[1])


class _OtherThreads:
    """The run-queue time of every thread of this process, by native thread id (nanoseconds)."""

    def __init__(self) -> None:
        self._fds: dict[int, int | None] = {}
        self._read_at = float("-inf")
        self._last: dict[int, int] = {}

    def read(self, *, now: float, fresh: bool) -> dict[int, int]:
        """All threads' readings; a reading younger than the refresh period is reused unless ``fresh``."""
        if fresh or now - self._read_at >= OTHERS_REFRESH_SECONDS:
            alive = {t.native_id for t in threading.enumerate() if t.native_id is not None}
            for ident in self._fds.keys() - alive:  # ended threads (their ids may be reused)
                if (fd := self._fds.pop(ident)) is not None:
                    os.close(fd)
            readings: dict[int, int] = {}
            for ident in alive:
                if ident not in self._fds:
                    self._fds[ident] = _open_task_schedstat(ident)
                fd = self._fds[ident]
                if fd is not None:
                    with contextlib.suppress(OSError, IndexError, ValueError):  # it ended meanwhile
                        readings[ident] = _run_queue_ns(fd)
            self._last, self._read_at = readings, now
        return self._last


def _open_task_schedstat(ident: int) -> int | None:
    try:
        return os.open(f"/proc/self/task/{ident}/schedstat", os.O_RDONLY)
    except OSError:
        return None


@dataclass
class BlockingGuard:
    """Records every callback that held its loop longer than ``limit_seconds`` of non-starved time."""

    limit_seconds: float
    records: list[str] = field(default_factory=list)
    _fds: dict[int, int | None] = field(default_factory=dict)
    _others: _OtherThreads = field(default_factory=_OtherThreads)

    def _schedstat_fd(self) -> int | None:
        # The file is per thread: /proc/thread-self resolves at open time, so keep one fd per thread.
        ident = threading.get_ident()
        if ident not in self._fds:
            self._fds[ident] = _open_schedstat()
        return self._fds[ident]

    def run(self, handle: asyncio.Handle, original: Callable[[asyncio.Handle], Any]) -> None:
        """Run ``handle`` and record it if it blocked its loop."""
        fd = self._schedstat_fd()
        wall_start = time.perf_counter()
        cpu_start = time.thread_time()
        collecting_start = _collector.spent.get(threading.get_ident(), 0.0)
        process_start = time.process_time()  # every thread's CPU, also of threads that end meanwhile
        # Run-queue time where the kernel has it; else the thread's CPU time alone is judged.
        start = _run_queue_ns(fd) if fd is not None else 0
        others_start = self._others.read(now=wall_start, fresh=False) if fd is not None else {}
        try:
            original(handle)
        finally:
            wall = time.perf_counter() - wall_start
            if wall >= self.limit_seconds:
                collecting = _collector.spent.get(threading.get_ident(), 0.0) - collecting_start
                cpu = time.thread_time() - cpu_start - collecting
                held = cpu
                if fd is not None:
                    own = threading.get_native_id()
                    others_end = self._others.read(now=time.perf_counter(), fresh=True)
                    others_queued = sum(
                        queued - others_start.get(ident, 0)
                        for ident, queued in others_end.items()
                        if ident != own
                    )
                    others_cpu = time.process_time() - process_start - cpu
                    waited = (_run_queue_ns(fd) - start + max(0, others_queued)) / 1e9 + max(0.0, others_cpu)
                    held = max(cpu, wall - waited - collecting)
                if held >= self.limit_seconds:
                    self.records.append(
                        f"{handle!r} held the loop for {held:.3f} s ({wall:.3f} s wall, "
                        f"{cpu:.3f} s of its own CPU, {collecting:.3f} s collecting garbage; "
                        "the rest it waited for a CPU or the GIL)"
                    )


_original_run = asyncio.events.Handle._run


def _guarded_run(handle: asyncio.Handle) -> None:
    guard: BlockingGuard | None = getattr(handle._loop, "_blocking_guard", None)  # type: ignore[attr-defined]
    if guard is None:
        _original_run(handle)
    else:
        guard.run(handle, _original_run)


def install() -> None:
    """Route every asyncio callback through the guard of its loop, where that loop has one."""
    asyncio.events.Handle._run = _guarded_run  # type: ignore[method-assign,assignment]
    if _collector not in gc.callbacks:
        gc.callbacks.append(_collector)


def guarded_loop(guard: BlockingGuard) -> asyncio.AbstractEventLoop:
    """A new debug event loop whose callbacks ``guard`` judges (asyncio's wall-time report is off)."""
    loop = asyncio.new_event_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = float("inf")
    loop._blocking_guard = guard  # type: ignore[attr-defined]
    return loop
