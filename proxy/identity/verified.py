"""A short memory of password checks that succeeded, so scrypt runs once per caller, not per call.

Legacy clients send their system password with every SOAP call. A memory-hard hash per call would
cost tens of milliseconds of CPU each time, hundreds of times what the translation itself costs, so
after a successful check the authenticator remembers it here for a short while.

Invariants:
* Only *successes* are remembered, and only a repeat of the exact same (user name, password) against
  the exact same stored hash matches: a rotated password (new salt/digest) or a reloaded credentials
  file that changes the entry forgets it without being told.
* What is kept is an HMAC-SHA256 of user name, password and the stored hash under a random key made
  for this process; the password itself is never kept, and the comparison is constant-time.
* Entries expire ``ttl`` seconds after the check that created them (a hit does not extend them), and
  at most ``max_entries`` callers are remembered (least recently used go first).
* Failures, unknown users and locked-out users never consult this memory (the authenticator's rule),
  so every failing attempt still costs exactly one scrypt run and they stay indistinguishable.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from proxy.identity.passwords import PasswordHash

Clock = Callable[[], float]


class VerifiedPasswords:
    """Remembers (user, password, stored hash) triples that passed the password check."""

    def __init__(
        self, *, ttl: float = 300.0, max_entries: int = 10_000, clock: Clock = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()

    def __repr__(self) -> str:
        return f"VerifiedPasswords(ttl={self._ttl}, entries={len(self._entries)})"

    @property
    def enabled(self) -> bool:
        """Whether anything is remembered at all (``ttl`` 0 turns the memory off)."""
        return self._ttl > 0 and self._max_entries > 0

    def _mac(self, username: str, password: str, stored: PasswordHash) -> bytes:
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in (username.encode(), password.encode(), stored.salt, stored.digest):
            mac.update(len(part).to_bytes(4, "big"))  # length-prefixed: no two triples collide
            mac.update(part)
        mac.update(f"{stored.n}/{stored.r}/{stored.p}".encode())
        return mac.digest()

    def matches(self, username: str, password: str, stored: PasswordHash) -> bool:
        """Whether this exact triple passed the check less than ``ttl`` seconds ago."""
        entry = self._entries.get(username)
        if entry is None:
            return False
        mac, expires = entry
        if self._clock() >= expires:
            del self._entries[username]
            return False
        if not hmac.compare_digest(mac, self._mac(username, password, stored)):
            return False
        self._entries.move_to_end(username)
        return True

    def remember(self, username: str, password: str, stored: PasswordHash) -> None:
        """Record a successful check of this triple."""
        if not self.enabled:
            return
        self._entries[username] = (self._mac(username, password, stored), self._clock() + self._ttl)
        self._entries.move_to_end(username)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def forget(self, username: str) -> None:
        """Drop what is remembered for ``username`` (e.g. after a failed attempt)."""
        self._entries.pop(username, None)
