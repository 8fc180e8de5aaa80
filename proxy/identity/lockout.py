"""Brute-force protection: failures per user name and per source address are slowed, then refused.

Invariants:
* Memory is bounded: each scope is a ``cachetools.TTLCache`` of at most ``max_tracked_keys`` entries,
  and an entry is forgotten ``forget_after_seconds`` after its last failure (or when its lock ends).
* Time comes only from the injected clock, so tests move time instead of sleeping.
* Nothing here knows whether a user name exists: unknown names are tracked exactly like known ones,
  so lockouts reveal nothing either.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TTLCache

from proxy.errors import ConfigurationError
from proxy.identity import metrics

Clock = Callable[[], float]
MAX_USERNAME_KEY = 256


@dataclass(frozen=True)
class LockoutPolicy:
    """How repeated authentication failures are slowed down and then refused.

    From the ``delay_after_failures``-th failure on, each further attempt waits ``delay_step_seconds``
    more (at most ``max_delay_seconds``); the ``lock_after_failures``-th failure locks the user name
    (or address) for ``lock_seconds``, during which even a correct password is refused. Failures are
    forgotten ``forget_after_seconds`` after the last one. A ``delay_after_failures`` above
    ``lock_after_failures`` means attempts are never slowed, only locked.
    """

    delay_after_failures: int = 3
    delay_step_seconds: float = 0.5
    max_delay_seconds: float = 4.0
    lock_after_failures: int = 10
    lock_seconds: float = 900.0
    forget_after_seconds: float = 900.0
    max_tracked_keys: int = 100_000

    def __post_init__(self) -> None:
        if self.delay_after_failures < 1 or self.lock_after_failures < 1:
            raise ConfigurationError(
                "delay_after_failures and lock_after_failures must be >= 1", location="identity.lockout"
            )
        numbers = (
            self.delay_step_seconds,
            self.max_delay_seconds,
            self.lock_seconds,
            self.forget_after_seconds,
        )
        if min(numbers) < 0 or self.max_tracked_keys < 1:
            raise ConfigurationError(
                "durations must be >= 0 and max_tracked_keys >= 1", location="identity.lockout"
            )

    def delay_for(self, failures: int) -> float:
        """The wait imposed on the next attempt after ``failures`` recent failures."""
        if failures < self.delay_after_failures:
            return 0.0
        steps = failures - self.delay_after_failures + 1
        return min(self.max_delay_seconds, steps * self.delay_step_seconds)


@dataclass(frozen=True)
class _Record:
    failures: int
    locked_until: float | None = None


@dataclass(frozen=True)
class Assessment:
    """What the tracker says about an attempt before its credentials are checked."""

    locked: bool
    delay: float


def peer_address(peer: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address of a TCP peer string (zone id dropped, IPv4-mapped IPv6 unwrapped), or None."""
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_key(peer: str) -> str:
    """The key a source address is counted under: the IPv4 address, or the IPv6 /64 a host controls."""
    address = peer_address(peer)
    if address is None:
        return peer[:64]
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class _Scope:
    """Failure records for one kind of key (user names or addresses)."""

    def __init__(self, name: str, policy: LockoutPolicy, clock: Clock) -> None:
        self._name = name
        self._policy = policy
        self._clock = clock
        ttl = max(policy.forget_after_seconds, policy.lock_seconds)
        self._records: TTLCache[str, _Record] = TTLCache(
            maxsize=policy.max_tracked_keys, ttl=ttl, timer=clock
        )

    def _live(self, key: str) -> _Record | None:
        record = self._records.get(key)
        if record is not None and record.locked_until is not None and record.locked_until <= self._clock():
            # The lock has run out: counting starts afresh.
            del self._records[key]
            return None
        return record

    def assess(self, key: str) -> Assessment:
        record = self._live(key)
        if record is None:
            return Assessment(locked=False, delay=0.0)
        if record.locked_until is not None:
            return Assessment(locked=True, delay=0.0)
        return Assessment(locked=False, delay=self._policy.delay_for(record.failures))

    def record_failure(self, key: str) -> None:
        record = self._live(key) or _Record(0)
        if record.locked_until is not None:
            return  # already locked: failures during a lock neither extend nor re-count it
        failures = record.failures + 1
        if failures >= self._policy.lock_after_failures:
            metrics.LOCKOUTS.labels(scope=self._name).inc()
            self._records[key] = _Record(failures, self._clock() + self._policy.lock_seconds)
        else:
            self._records[key] = _Record(failures)

    def forget(self, key: str) -> None:
        self._records.pop(key, None)


class FailureTracker:
    """Counts authentication failures per user name and per source address."""

    def __init__(self, policy: LockoutPolicy, clock: Clock) -> None:
        self._users = _Scope("user", policy, clock)
        self._addresses = _Scope("address", policy, clock)

    def assess(self, username: str | None, peer: str) -> Assessment:
        """Whether an attempt is locked out and how long it must wait first (the larger of both scopes)."""
        by_address = self._addresses.assess(address_key(peer))
        by_user = self._users.assess(username[:MAX_USERNAME_KEY]) if username is not None else by_address
        if by_user.delay or by_address.delay:
            metrics.THROTTLED.labels(scope="user" if by_user.delay >= by_address.delay else "address").inc()
        return Assessment(by_user.locked or by_address.locked, max(by_user.delay, by_address.delay))

    def record_failure(self, username: str | None, peer: str) -> None:
        """Count a failed attempt against the user name (if any) and the source address."""
        if username is not None:
            self._users.record_failure(username[:MAX_USERNAME_KEY])
        self._addresses.record_failure(address_key(peer))

    def record_success(self, username: str) -> None:
        """Forget the user name's failures. The address keeps its count: one valid login from an
        address must not wipe out guesses it made at other user names."""
        self._users.forget(username[:MAX_USERNAME_KEY])
