"""Password and ApiKey authentication: one answer for every failure, throttling and lockout."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from proxy.errors import AuthenticationFailed
from proxy.identity.authenticator import AUTHENTICATION_FAILED_MESSAGE, Authenticator
from proxy.identity.credentials import StaticCredentials, parse_credentials
from proxy.identity.lockout import LockoutPolicy
from proxy.identity.passwords import PasswordHash, hash_api_key, hash_password, verify_password
from proxy.identity.principal import CallerKind, CredentialSource, LegacyCredentials, Principal
from tests.identity.conftest import ORG_A, credentials_document

PEER = "192.0.2.10"
POLICY = LockoutPolicy(
    delay_after_failures=2,
    delay_step_seconds=1.0,
    max_delay_seconds=2.5,
    lock_after_failures=4,
    lock_seconds=60.0,
    forget_after_seconds=120.0,
)


class Harness:
    """An authenticator with a fake clock, a recording sleep and a counting password check."""

    def __init__(self, policy: LockoutPolicy = POLICY) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.checked: list[PasswordHash] = []
        book = parse_credentials(
            credentials_document(api_keys=[{"name": "vendor-app", "key_hash": hash_api_key("the-api-key")}])
        )
        self.book = book
        self.authenticator = Authenticator(
            StaticCredentials(book),
            policy=policy,
            clock=lambda: self.now,
            sleep=self._sleep,
            check_password=self._check,
        )

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def _check(self, stored: PasswordHash, password: str) -> bool:
        self.checked.append(stored)
        return verify_password(stored, password)

    async def login(self, username: str, password: str, peer: str = PEER) -> Principal:
        return await self.authenticator.authenticate(LegacyCredentials(username, password), peer)

    async def failure(self, username: str, password: str, peer: str = PEER) -> AuthenticationFailed:
        with pytest.raises(AuthenticationFailed) as caught:
            await self.login(username, password, peer)
        return caught.value


async def test_correct_credentials_give_the_configured_principal() -> None:
    harness = Harness()
    principal = await harness.authenticator.authenticate(
        LegacyCredentials("eus", "correct horse", CredentialSource.WSSE), PEER
    )
    assert principal.caller_id == "eus"
    assert principal.grant_for(ORG_A) is not None
    service_owner = await harness.login("so", "owner secret")
    assert service_owner.kind is CallerKind.SERVICE_OWNER


async def test_wrong_password_unknown_user_and_locked_user_are_indistinguishable() -> None:
    harness = Harness()
    wrong = await harness.failure("eus", "wrong password")
    unknown = await harness.failure("no-such-user", "wrong password")
    cert_only = await harness.failure("cert-only", "anything")
    for _ in range(POLICY.lock_after_failures):
        await harness.failure("so", "guess", peer="198.51.100.7")
    harness.checked.clear()
    locked = await harness.failure("so", "owner secret", peer="198.51.100.8")  # right password, locked user

    answers = {
        (error.message, error.error_id, error.http_status, error.extended)
        for error in (wrong, unknown, cert_only, locked)
    }
    assert answers == {(AUTHENTICATION_FAILED_MESSAGE, 989, 401, None)}
    # Same work for each: exactly one scrypt run with the same cost parameters.
    assert len(harness.checked) == 1
    eus_hash = harness.book.caller("eus").password_hash  # type: ignore[union-attr]
    assert eus_hash is not None
    assert (harness.book.decoy.n, harness.book.decoy.r, harness.book.decoy.p) == (
        eus_hash.n,
        eus_hash.r,
        eus_hash.p,
    )


async def test_every_attempt_costs_exactly_one_password_check() -> None:
    harness = Harness()
    await harness.failure("eus", "wrong")
    await harness.failure("unknown", "wrong")
    await harness.failure("", "")
    await harness.login("eus", "correct horse")
    assert len(harness.checked) == 4
    assert harness.checked[1] is harness.book.decoy


async def test_failures_are_slowed_then_locked_and_the_lock_expires() -> None:
    harness = Harness()
    for _ in range(4):
        await harness.failure("eus", "wrong")
    assert harness.sleeps == [1.0, 2.0], "the 3rd and 4th attempts waited"

    await harness.failure("eus", "correct horse")  # locked: even the right password is refused
    harness.now += 59.0
    await harness.failure("eus", "correct horse")
    harness.now += 2.0
    assert (await harness.login("eus", "correct horse")).caller_id == "eus"


async def test_lockout_is_counted_and_logged_without_the_secret() -> None:
    harness = Harness()
    before = REGISTRY.get_sample_value("altinn_proxy_identity_lockouts_total", {"scope": "user"}) or 0.0
    with capture_logs() as logs:
        for _ in range(5):
            await harness.failure("eus", "s3cret-guess")
    assert REGISTRY.get_sample_value("altinn_proxy_identity_lockouts_total", {"scope": "user"}) == before + 1
    assert [entry["outcome"] for entry in logs] == ["failure"] * 4 + ["locked"]
    assert all(entry["caller_id"] == "eus" and entry["peer"] == PEER for entry in logs)
    assert "s3cret-guess" not in repr(logs)


async def test_one_address_guessing_many_user_names_is_locked_out() -> None:
    harness = Harness()
    for index in range(4):
        await harness.failure(f"user-{index}", "guess", peer="203.0.113.5")
    await harness.failure("eus", "correct horse", peer="203.0.113.5")
    assert (await harness.login("eus", "correct horse", peer="203.0.113.6")).caller_id == "eus"


async def test_ipv6_addresses_are_counted_per_64_prefix() -> None:
    harness = Harness()
    for index in range(4):
        await harness.failure(f"user-{index}", "guess", peer=f"2001:db8:1:2::{index + 1}")
    await harness.failure("eus", "correct horse", peer="2001:db8:1:2::ffff")
    assert (await harness.login("eus", "correct horse", peer="2001:db8:1:3::1")).caller_id == "eus"


async def test_failures_are_forgotten_after_a_quiet_period() -> None:
    harness = Harness()
    for _ in range(3):
        await harness.failure("eus", "wrong")
    harness.now += 121.0
    harness.sleeps.clear()
    await harness.failure("eus", "wrong")
    assert harness.sleeps == []


async def test_success_clears_the_user_name_count() -> None:
    harness = Harness()
    for index in range(3):
        await harness.failure("eus", "wrong", peer=f"192.0.2.{index + 20}")
    await harness.login("eus", "correct horse", peer="192.0.2.99")
    harness.sleeps.clear()
    await harness.failure("eus", "wrong", peer="192.0.2.30")
    assert harness.sleeps == []


async def test_api_keys_are_checked_and_failures_throttle_the_address() -> None:
    harness = Harness()
    assert await harness.authenticator.check_api_key("the-api-key", PEER) == "vendor-app"
    for _ in range(4):
        with pytest.raises(AuthenticationFailed):
            await harness.authenticator.check_api_key("guessed-key", PEER)
    with pytest.raises(AuthenticationFailed):
        await harness.authenticator.check_api_key("the-api-key", PEER)
    assert await harness.authenticator.check_api_key("the-api-key", "192.0.2.77") == "vendor-app"


async def test_real_cost_scrypt_runs_off_the_event_loop() -> None:
    """Default-cost hashing inside the loop guard: it must run in a worker thread."""
    stored = await asyncio.to_thread(hash_password, "real cost")
    document = credentials_document()
    document["callers"]["eus"]["password_hash"] = stored.encode()  # type: ignore[index]
    authenticator = Authenticator(StaticCredentials(parse_credentials(document)))
    results = await asyncio.gather(
        *(authenticator.authenticate(LegacyCredentials("eus", "real cost"), PEER) for _ in range(4))
    )
    assert {principal.caller_id for principal in results} == {"eus"}
