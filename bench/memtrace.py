"""Run ``altinn-proxy`` with its memory watched from inside: is a growing RSS a leak or warm-up?

    python -m bench.memtrace OUT.jsonl EVERY_SECONDS FRAMES -- serve --config settings.yaml

A daemon thread writes one JSON line to ``OUT.jsonl`` every ``EVERY_SECONDS``: the RSS, what glibc's
malloc holds from the system and how much of it is in use (``mallinfo2``), the garbage collector's
counts, the number of objects it tracks and the object types whose count grew most since the
previous line. With ``FRAMES`` > 0, :mod:`tracemalloc` (that many frames per allocation) is started
before the proxy imports anything, and each line also gives what Python has allocated and not freed
and the allocation sites that grew most since the previous line (costly: a busy proxy slows down).

RSS that grows while Python's allocations and the object counts stay flat is the allocator keeping
freed memory (arenas, fragmentation), not a leak; a type or site that grows minute after minute at
a steady load is a leak, and the line names it. :mod:`bench.soak` starts the proxy through this
with ``--trace-memory`` (``FRAMES`` 0: counting objects costs little).
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import functools
import gc
import json
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

TOP_SITES = 8


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@functools.cache
def _libc() -> Any:
    """glibc, when it offers ``mallinfo2`` (else None)."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name is not None else None
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _MallInfo2
    return libc


def _mallinfo() -> dict[str, int]:
    """glibc's view: bytes taken from the system (heap + mmapped) and bytes handed out."""
    libc = _libc()
    if libc is None:
        return {}
    info = libc.mallinfo2()
    return {
        "malloc_system_kib": (info.arena + info.hblkhd) // 1024,
        "malloc_in_use_kib": (info.uordblks + info.hblkhd) // 1024,
    }


def _rss_kib() -> int:
    status = Path("/proc/self/status").read_text(encoding="ascii")
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))


def _site(statistic: tracemalloc.StatisticDiff) -> dict[str, Any]:
    frames = [
        f"{frame.filename.rsplit('/site-packages/', 1)[-1]}:{frame.lineno}" for frame in statistic.traceback
    ]
    return {"grew_kib": statistic.size_diff // 1024, "count_grew": statistic.count_diff, "at": frames[-3:]}


def _type_counts() -> collections.Counter[str]:
    return collections.Counter(type(item).__qualname__ for item in gc.get_objects())


def _watch(out: Path, every: float) -> None:
    previous: tracemalloc.Snapshot | None = None
    previous_types: collections.Counter[str] = collections.Counter()
    begin = time.monotonic()
    with out.open("a", encoding="utf-8") as sink:
        while True:
            types = _type_counts()
            grown = types - previous_types
            line: dict[str, Any] = {
                "t": round(time.monotonic() - begin),
                "rss_kib": _rss_kib(),
                **_mallinfo(),
                "gc_counts": gc.get_count(),
                "gc_objects": sum(types.values()),
                "types_grew": dict(grown.most_common(TOP_SITES)) if previous_types else {},
                "threads": threading.active_count(),
            }
            previous_types = types
            if tracemalloc.is_tracing():
                snapshot = tracemalloc.take_snapshot().filter_traces(
                    [tracemalloc.Filter(False, tracemalloc.__file__)]
                )
                current, peak = tracemalloc.get_traced_memory()
                line |= {
                    "python_kib": current // 1024,
                    "python_peak_kib": peak // 1024,
                    "tracemalloc_kib": tracemalloc.get_tracemalloc_memory() // 1024,
                }
                if previous is not None:
                    growth = snapshot.compare_to(previous, "traceback")
                    line["sites_grew"] = [_site(stat) for stat in growth[:TOP_SITES] if stat.size_diff > 0]
                previous = snapshot
            sink.write(json.dumps(line) + "\n")
            sink.flush()
            del types
            time.sleep(every)


def main() -> None:
    """``OUT EVERY FRAMES -- proxy arguments``: watch, then hand over to the proxy's command line."""
    out, every, frames, separator, *proxy_args = sys.argv[1:]
    if separator != "--":
        raise SystemExit(__doc__)
    if int(frames) > 0:
        tracemalloc.start(int(frames))
    from proxy.cli import main as proxy_main

    threading.Thread(target=_watch, args=(Path(out), float(every)), daemon=True, name="memtrace").start()
    sys.exit(proxy_main(proxy_args))


if __name__ == "__main__":
    main()
