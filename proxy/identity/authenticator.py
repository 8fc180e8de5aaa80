"""Legacy password and ApiKey authentication: ``LegacyCredentials`` -> ``Principal``.

Invariants:
* Every password attempt costs exactly one scrypt run, whether the user name is unknown (a decoy hash
  is checked), the password wrong, or the user locked out, and all three fail with the same
  :class:`~proxy.errors.AuthenticationFailed` text. Neither the answer nor its timing tells which.
  The one exception is a repeat of a recent *success* by a caller that is not locked out: it is
  recognised by :class:`~proxy.identity.verified.VerifiedPasswords` (an HMAC, no scrypt), because
  legacy clients send their password with every call. A fast answer therefore only ever means
  "accepted", which the answer says anyway.
* scrypt runs in a worker thread (bounded by a semaphore: each run holds ~16 MiB), never on the loop.
* Secrets are never logged: log lines carry the caller id, the peer and the outcome.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog

from proxy.errors import AuthenticationFailed
from proxy.identity import metrics
from proxy.identity.credentials import CredentialProvider
from proxy.identity.lockout import FailureTracker, LockoutPolicy
from proxy.identity.passwords import PasswordHash, verify_password
from proxy.identity.principal import LegacyCredentials, Principal
from proxy.identity.verified import VerifiedPasswords

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
PasswordCheck = Callable[[PasswordHash, str], bool]

#: Altinn 2's text for wrong system credentials (ErrorID 989), used for every password failure.
AUTHENTICATION_FAILED_MESSAGE = "Incorrect username/password/pin given for user"
API_KEY_FAILED_MESSAGE = "The ApiKey is not valid for this API"
MAX_SECRET_LENGTH = 1024
MAX_LOGGED_USERNAME = 128

_log = structlog.get_logger("proxy.identity")


class Authenticator:
    """Checks legacy system credentials and REST ApiKeys against the credential store."""

    def __init__(
        self,
        credentials: CredentialProvider,
        *,
        policy: LockoutPolicy | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        check_password: PasswordCheck = verify_password,
        max_concurrent_checks: int = 4,
        verified: VerifiedPasswords | None = None,
    ) -> None:
        """``verified`` remembers recent successes (default: 5 minutes); pass ``ttl=0`` to turn it off."""
        self._credentials = credentials
        self._tracker = FailureTracker(policy or LockoutPolicy(), clock)
        self._verified = verified if verified is not None else VerifiedPasswords(clock=clock)
        self._sleep = sleep
        self._check_password = check_password
        self._hashing = asyncio.Semaphore(max_concurrent_checks)

    async def authenticate(self, credentials: LegacyCredentials, peer: str) -> Principal:
        """The caller ``credentials`` belong to, or :class:`~proxy.errors.AuthenticationFailed`.

        ``peer`` is the client's address as the front determined it (for throttling and logs).
        """
        username = credentials.username.strip()
        book = await self._credentials.current()
        assessment = self._tracker.assess(username, peer)
        if assessment.delay:
            await self._sleep(assessment.delay)
        entry = book.caller(username)
        stored = entry.password_hash if entry is not None and entry.password_hash is not None else book.decoy
        password = credentials.password[:MAX_SECRET_LENGTH]  # over-long input must not buy extra work
        remembered = (
            entry is not None
            and not assessment.locked
            and stored is entry.password_hash
            and self._verified.matches(username, password, stored)
        )
        if remembered:
            matched = True
        else:
            async with self._hashing:
                matched = await asyncio.to_thread(self._check_password, stored, password)
        source = str(credentials.source)
        logged_name = username[:MAX_LOGGED_USERNAME]  # attacker-chosen: bound what reaches the logs
        if assessment.locked:
            metrics.AUTHENTICATIONS.labels(method="password", outcome="locked").inc()
            _log.warning(
                "authentication_refused", caller_id=logged_name, peer=peer, source=source, outcome="locked"
            )
            raise AuthenticationFailed(AUTHENTICATION_FAILED_MESSAGE)
        if not matched or entry is None or entry.password_hash is None or not username:
            self._verified.forget(username)
            self._tracker.record_failure(username, peer)
            metrics.AUTHENTICATIONS.labels(method="password", outcome="failure").inc()
            _log.warning(
                "authentication_refused",
                caller_id=logged_name,
                known=entry is not None,
                peer=peer,
                source=source,
                outcome="failure",
            )
            raise AuthenticationFailed(AUTHENTICATION_FAILED_MESSAGE)
        if not remembered:
            self._verified.remember(username, password, entry.password_hash)
        self._tracker.record_success(username)
        metrics.AUTHENTICATIONS.labels(method="password", outcome="success").inc()
        principal = entry.principal
        # A remembered success is routine (one per legacy call): the access line covers it.
        (_log.debug if remembered else _log.info)(
            "authenticated",
            caller_id=principal.caller_id,
            kind=str(principal.kind),
            org=principal.org,
            orgs=len(principal.orgs),
            peer=peer,
            source=source,
            outcome="success",
        )
        return principal

    async def check_api_key(self, api_key: str, peer: str) -> str:
        """The configured name of a legacy REST ``ApiKey``, or :class:`~proxy.errors.AuthenticationFailed`.

        Failures count against ``peer`` (an ApiKey has no user name). A missing header is the front's to
        answer (Altinn 2 said 400 "Required header 'ApiKey' is missing."); an empty one fails here.
        """
        assessment = self._tracker.assess(None, peer)
        if assessment.delay:
            await self._sleep(assessment.delay)
        name = (await self._credentials.current()).api_key_name(api_key.strip()[:MAX_SECRET_LENGTH])
        if assessment.locked or name is None:
            outcome = "locked" if assessment.locked else "failure"
            if not assessment.locked:
                self._tracker.record_failure(None, peer)
            metrics.AUTHENTICATIONS.labels(method="api_key", outcome=outcome).inc()
            _log.warning("api_key_refused", peer=peer, outcome=outcome)
            raise AuthenticationFailed(API_KEY_FAILED_MESSAGE)
        metrics.AUTHENTICATIONS.labels(method="api_key", outcome="success").inc()
        _log.info("api_key_accepted", api_key_name=name, peer=peer, outcome="success")
        return name
