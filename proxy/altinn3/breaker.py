"""A circuit breaker per upstream host, on an injected monotonic clock.

Closed: calls pass; ``failure_threshold`` consecutive failures open it. Open: calls fail at once with
``UpstreamUnavailable`` until ``reset_after`` seconds have passed. Then half-open: one trial call
passes; success closes the circuit, failure opens it again for another ``reset_after``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from proxy.errors import UpstreamUnavailable

Clock = Callable[[], float]


class State(StrEnum):
    """Circuit states."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    """When a circuit opens and how long it stays open."""

    failure_threshold: int = 5
    reset_after: float = 30.0


class CircuitBreaker:
    """The circuit of one host."""

    def __init__(self, host: str, policy: BreakerPolicy, clock: Clock = time.monotonic) -> None:
        self.host = host
        self._policy = policy
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> State:
        """The current state (an open circuit turns half-open once ``reset_after`` has passed)."""
        if self._opened_at is None:
            return State.CLOSED
        if self._clock() - self._opened_at >= self._policy.reset_after:
            return State.HALF_OPEN
        return State.OPEN

    def before_call(self) -> None:
        """Raise ``UpstreamUnavailable`` when the circuit does not let a call through."""
        state = self.state
        if state is State.OPEN or (state is State.HALF_OPEN and self._trial_running):
            raise UpstreamUnavailable(
                "Altinn 3 is not available right now", extended=f"circuit open for {self.host}"
            )
        if state is State.HALF_OPEN:
            self._trial_running = True

    def record_success(self) -> None:
        """A call got an answer that says the host works."""
        self._failures = 0
        self._opened_at = None
        self._trial_running = False

    def record_failure(self) -> None:
        """A call failed in a way that says the host does not work (connection, timeout, 5xx)."""
        self._failures += 1
        if self._trial_running or self._failures >= self._policy.failure_threshold:
            self._opened_at = self._clock()
        self._trial_running = False


class Breakers:
    """One :class:`CircuitBreaker` per host, created on first use."""

    def __init__(self, policy: BreakerPolicy = BreakerPolicy(), clock: Clock = time.monotonic) -> None:
        self._policy = policy
        self._clock = clock
        self._by_host: dict[str, CircuitBreaker] = {}

    def for_host(self, host: str) -> CircuitBreaker:
        """The breaker of ``host``."""
        breaker = self._by_host.get(host)
        if breaker is None:
            breaker = self._by_host[host] = CircuitBreaker(host, self._policy, self._clock)
        return breaker
