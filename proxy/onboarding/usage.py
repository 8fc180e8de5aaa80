"""Which legacy operations each caller used recently, for the migration board.

In memory, per process, bounded: one entry per (caller, service, operation), forgotten after
``retention`` seconds without a call, at most ``max_entries`` entries (the oldest go first). Caller ids
come from the credentials file once a caller is authenticated; an unauthenticated call is recorded
under no caller, so a stranger cannot fill the board with names of its choosing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

DAY = 86400.0


@dataclass
class OperationUse:
    """How one caller used one legacy operation."""

    caller: str | None
    service: str
    operation: str
    translated: bool
    calls: int = 0
    faults: int = 0
    last_seen: float = 0.0
    last_outcome: str = "ok"


class UsageLog:
    """Recent use of legacy operations per caller."""

    def __init__(
        self, *, retention: float = 7 * DAY, max_entries: int = 5000, clock: Callable[[], float] = time.time
    ) -> None:
        self.retention = retention
        self._max = max_entries
        self._clock = clock
        self._entries: dict[tuple[str | None, str, str], OperationUse] = {}

    def record(
        self, caller: str | None, service: str, operation: str, *, translated: bool, outcome: str
    ) -> None:
        """Count one call; ``outcome`` is ``ok`` or the fault's kind."""
        key = (caller, service, operation)
        entry = self._entries.pop(key, None) or OperationUse(caller, service, operation, translated)
        entry.calls += 1
        entry.faults += outcome != "ok"
        entry.last_seen = self._clock()
        entry.last_outcome = outcome
        self._entries[key] = entry  # re-inserted last: the dict's order is least recently used first
        while len(self._entries) > self._max:
            del self._entries[next(iter(self._entries))]

    def recent(self) -> list[OperationUse]:
        """Entries seen within the retention, most recent first (forgetting older ones)."""
        horizon = self._clock() - self.retention
        for key in [k for k, e in self._entries.items() if e.last_seen < horizon]:
            del self._entries[key]
        return sorted(self._entries.values(), key=lambda e: e.last_seen, reverse=True)
