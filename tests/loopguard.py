"""A guard that tells a blocked event loop from a starved one.

asyncio's debug mode reports a callback whose *wall* time exceeds ``slow_callback_duration``. On a
shared 2-core CI machine a callback that merely lost its CPU to another process looks exactly like one
that blocked, so that report fails healthy tests. This guard measures what a callback really held the
loop for: its wall time minus the time the loop thread sat runnable on the run queue waiting for a CPU,
as the kernel accounts it in ``/proc/thread-self/schedstat`` (second field, nanoseconds).

What remains is CPU the callback burned plus time it slept in the kernel (``time.sleep``, a blocking
socket, a synchronous ``fsync``): both are blocking, both are caught. Starvation is not.

Where the kernel offers no schedstat (another OS, a kernel without ``CONFIG_SCHED_INFO``), the guard
falls back to the thread's CPU time, which still catches CPU-bound blocking but not sleeping.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_SCHEDSTAT = "/proc/thread-self/schedstat"


def _open_schedstat() -> int | None:
    try:
        return os.open(_SCHEDSTAT, os.O_RDONLY)
    except OSError:
        return None


def _run_queue_ns(fd: int) -> int:
    return int(os.pread(fd, 64, 0).split()[1])


@dataclass
class BlockingGuard:
    """Records every callback that held its loop longer than ``limit_seconds`` of non-starved time."""

    limit_seconds: float
    records: list[str] = field(default_factory=list)
    _fds: dict[int, int | None] = field(default_factory=dict)

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
        # Two readings: run-queue time where the kernel has it, else the thread's CPU time.
        start = _run_queue_ns(fd) if fd is not None else time.thread_time()
        try:
            original(handle)
        finally:
            wall = time.perf_counter() - wall_start
            if wall >= self.limit_seconds:
                if fd is not None:
                    held = wall - (_run_queue_ns(fd) - start) / 1e9
                else:
                    held = time.thread_time() - start
                if held >= self.limit_seconds:
                    self.records.append(
                        f"{handle!r} held the loop for {held:.3f} s "
                        f"({wall:.3f} s wall, the rest waiting for a CPU)"
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
    asyncio.events.Handle._run = _guarded_run  # type: ignore[method-assign]


def guarded_loop(guard: BlockingGuard) -> asyncio.AbstractEventLoop:
    """A new debug event loop whose callbacks ``guard`` judges (asyncio's wall-time report is off)."""
    loop = asyncio.new_event_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = float("inf")
    loop._blocking_guard = guard  # type: ignore[attr-defined]
    return loop
