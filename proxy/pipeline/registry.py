"""The active mapping set, and hot reload that never serves a half-checked change (the file watcher).

Beside the executor rather than in :mod:`proxy.mapping`: it polls the directory and swaps sets while
the proxy runs; the mapping package itself only compiles.

Invariants:
* ``current()`` always returns a fully validated :class:`MappingSet`; a swap is one reference
  assignment, so a request sees either the old set or the new one, never a mix. A plan keeps the
  set it started with (see ``Engine.start``), so in-flight requests finish on the old set.
* A changed directory is validated completely (off the event loop) before it can be swapped in;
  a broken change is refused and logged, and the old set keeps serving. The same broken content
  is not re-validated on every poll: only a further change triggers another attempt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from proxy.mapping.engine import MappingSet
from proxy.mapping.metrics import observe_active_set
from proxy.mapping.source import Problem
from proxy.pipeline.loading import directory_digest, load_directory, load_mapping_set

log = logging.getLogger("proxy.mapping")

Sleep = Callable[[float], Awaitable[None]]


class MappingRegistry:
    """Holds the active mapping set of one directory and reloads it when the directory changes."""

    def __init__(
        self,
        directory: Path,
        initial: MappingSet,
        *,
        interval: float = 5.0,
        sleep: Sleep = asyncio.sleep,
        on_swap: Callable[[MappingSet], None] = observe_active_set,
    ) -> None:
        self._directory = directory
        self._current = initial
        self._interval = interval
        self._sleep = sleep
        self._on_swap = on_swap
        self._seen_digest = initial.digest
        self.last_problems: tuple[Problem, ...] = ()
        on_swap(initial)

    @classmethod
    async def open(cls, directory: Path, **options: object) -> MappingRegistry:
        """Load ``directory`` (raising ConfigurationError with file:line when broken) and hold it."""
        initial = await asyncio.to_thread(load_mapping_set, directory)
        return cls(directory, initial, **options)  # type: ignore[arg-type]

    def current(self) -> MappingSet:
        """The active set (pass this method to ``Engine``)."""
        return self._current

    @property
    def active_hash(self) -> str:
        """The active set's content hash, for the metric label and ``/readyz`` details."""
        return self._current.digest

    def readiness(self) -> dict[str, object]:
        """Details for ``/readyz``: active hash, files, and the last refused change (if any)."""
        return {
            "mappings_hash": self._current.digest,
            "mapping_files": list(self._current.files),
            "operations": len(self._current.operations),
            "refused_change": [str(p) for p in self.last_problems[:5]],
        }

    async def reload(self) -> bool:
        """Check the directory once; True when a new set was swapped in."""
        digest = await asyncio.to_thread(directory_digest, self._directory)
        if digest == self._seen_digest:
            return False
        self._seen_digest = digest
        candidate, problems = await asyncio.to_thread(load_directory, self._directory)
        if candidate is None:
            self.last_problems = tuple(problems)
            log.error(
                "mapping change refused; still serving %s: %s",
                self._current.digest[:12],
                "; ".join(str(p) for p in problems[:10]),
            )
            return False
        self._current = candidate
        self.last_problems = ()
        self._on_swap(candidate)
        log.info("mapping set %s active (%d operations)", candidate.digest[:12], len(candidate.operations))
        return True

    async def watch(self) -> None:
        """Poll forever (run it as a task; cancel it to stop). A failing poll is logged, not fatal."""
        while True:
            await self._sleep(self._interval)
            try:
                await self.reload()
            except OSError as error:
                log.error("mapping directory unreadable, keeping %s: %s", self._current.digest[:12], error)
