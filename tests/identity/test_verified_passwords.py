"""Remembered successes: scrypt once per caller and TTL, never for failures, lockouts or new passwords."""

from __future__ import annotations

import pytest

from proxy.errors import AuthenticationFailed
from proxy.identity.authenticator import Authenticator
from proxy.identity.credentials import CredentialBook, parse_credentials
from proxy.identity.lockout import LockoutPolicy
from proxy.identity.passwords import PasswordHash, verify_password
from proxy.identity.principal import LegacyCredentials
from proxy.identity.verified import VerifiedPasswords
from tests.identity.conftest import cheap_hash, credentials_document

PEER = "192.0.2.10"
POLICY = LockoutPolicy(
    delay_after_failures=10, lock_after_failures=2, lock_seconds=60.0, forget_after_seconds=120.0
)


class ReloadableCredentials:
    """A credential book that a test swaps, as a file reload would."""

    def __init__(self, book: CredentialBook) -> None:
        self.book = book

    async def current(self) -> CredentialBook:
        return self.book


class Harness:
    """An authenticator with a fake clock and a counting password check."""

    def __init__(self, ttl: float = 300.0, document: dict[str, object] | None = None) -> None:
        self.now = 0.0
        self.checks = 0
        self.book = parse_credentials(document or credentials_document())
        self.credentials = ReloadableCredentials(self.book)
        self.authenticator = Authenticator(
            self.credentials,
            policy=POLICY,
            clock=lambda: self.now,
            check_password=self._check,
            verified=VerifiedPasswords(ttl=ttl, clock=lambda: self.now),
        )

    def _check(self, stored: PasswordHash, password: str) -> bool:
        self.checks += 1
        return verify_password(stored, password)

    async def login(self, username: str, password: str) -> str:
        principal = await self.authenticator.authenticate(LegacyCredentials(username, password), PEER)
        return principal.caller_id


async def test_a_repeated_success_costs_no_further_password_check() -> None:
    harness = Harness()
    for _ in range(5):
        assert await harness.login("eus", "correct horse") == "eus"
    assert harness.checks == 1


async def test_a_wrong_password_is_always_checked_and_refused() -> None:
    harness = Harness()
    await harness.login("eus", "correct horse")
    with pytest.raises(AuthenticationFailed):
        await harness.login("eus", "correct horsf")
    assert harness.checks == 2


async def test_the_memory_expires_after_its_ttl() -> None:
    harness = Harness(ttl=30.0)
    await harness.login("eus", "correct horse")
    harness.now += 29.0
    await harness.login("eus", "correct horse")
    assert harness.checks == 1
    harness.now += 2.0
    await harness.login("eus", "correct horse")
    assert harness.checks == 2


async def test_a_locked_caller_is_refused_even_with_a_remembered_password() -> None:
    harness = Harness()
    await harness.login("eus", "correct horse")
    for _ in range(POLICY.lock_after_failures):
        with pytest.raises(AuthenticationFailed):
            await harness.login("eus", "guess")
    checks = harness.checks
    with pytest.raises(AuthenticationFailed):
        await harness.login("eus", "correct horse")
    assert harness.checks == checks + 1, "a locked caller costs one scrypt run, like every failure"


async def test_a_changed_password_hash_is_not_matched_by_the_old_memory() -> None:
    harness = Harness()
    await harness.login("eus", "correct horse")
    document = credentials_document()
    callers = document["callers"]
    assert isinstance(callers, dict)
    callers["eus"]["password_hash"] = cheap_hash("correct horse")  # same password, new salt
    harness.credentials.book = parse_credentials(document)  # what a reload does
    await harness.login("eus", "correct horse")
    assert harness.checks == 2


async def test_a_zero_ttl_turns_the_memory_off() -> None:
    harness = Harness(ttl=0)
    await harness.login("eus", "correct horse")
    await harness.login("eus", "correct horse")
    assert harness.checks == 2


def test_the_memory_keeps_no_password_and_shows_none() -> None:
    memory = VerifiedPasswords(clock=lambda: 0.0)
    book = parse_credentials(credentials_document())
    stored = book.caller("eus").password_hash  # type: ignore[union-attr]
    assert stored is not None
    memory.remember("eus", "correct horse", stored)
    assert memory.matches("eus", "correct horse", stored)
    assert not memory.matches("eus", "correct horse ", stored)
    assert "correct horse" not in repr(memory)
    assert all(b"correct horse" not in mac for mac, _ in memory._entries.values())


def test_the_least_recently_used_caller_is_forgotten_first() -> None:
    memory = VerifiedPasswords(max_entries=2, clock=lambda: 0.0)
    stored = parse_credentials(credentials_document()).decoy
    for name in ("a", "b", "c"):
        memory.remember(name, "pw", stored)
    assert not memory.matches("a", "pw", stored)
    assert memory.matches("b", "pw", stored)
    assert memory.matches("c", "pw", stored)
