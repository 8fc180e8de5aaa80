"""The clock the token provider reads, injected so tests can move time without sleeping."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic time for deadlines, wall time for JWT claims, and a sleep that follows the clock."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (cache deadlines)."""
        ...

    def wall(self) -> float:
        """Seconds since the Unix epoch (``iat``/``exp`` of grants)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` have passed on this clock."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def wall(self) -> float:
        """``time.time()``."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep(seconds)``."""
        await asyncio.sleep(max(seconds, 0.0))
