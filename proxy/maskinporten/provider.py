"""The token provider: one cached token per key, refreshed ahead of expiry, fetched once per key.

Invariants:
* A key is everything that makes two tokens differ: client, environment and the whole
  :class:`TokenRequest` (scopes, system-user org, externalRef, exchanged or not).
* At most one fetch per key is in flight (an ``asyncio.Task`` in ``_inflight``); every caller that
  needs that key awaits it through ``asyncio.shield`` so one caller's cancellation never cancels the
  fetch for the others. There is no lock across keys: a slow key never delays another.
* A cached token is handed out only until ``usable_until`` (its expiry minus the safety margin).
  From ``refresh_at`` (about half its lifetime) a background fetch replaces it while it keeps being
  handed out, so in steady state no caller waits for Maskinporten.
* The background loop refreshes only keys used since their last fetch; idle keys expire and are
  dropped instead of being renewed forever.
* A refusal (``TokenRefused``: Maskinporten or the exchange said no, e.g. MP-303) is remembered
  per key for ``refusal_cache_seconds`` on the injected clock; until then a caller without a usable
  token gets a copy of it and no grant is sent, because a legacy client retrying a misconfigured
  customer would otherwise flood Maskinporten with grants it refuses (and it rate-limits clients).
  Background refreshes of a refused key wait for the refusal to lapse too. ``TokenUnavailable`` is
  never remembered: the next caller tries again. A successful fetch or ``invalidate`` forgets it.
* A token that can no longer be handed out is dropped when its refresh fails, so a failing
  Maskinporten is never retried in a loop for a token nobody may use.
* Tokens live in memory only and are never logged, formatted into errors or used as labels.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp
import structlog

from proxy.errors import TokenError, TokenRefused
from proxy.maskinporten import metrics
from proxy.maskinporten.client import IssuedToken, MaskinportenClient
from proxy.maskinporten.clock import Clock, SystemClock
from proxy.maskinporten.config import MaskinportenConfig, RefreshPolicy
from proxy.maskinporten.request import TokenRequest

log = structlog.get_logger(__name__)

#: A very short-lived token keeps at most this share of its lifetime as safety margin.
_MAX_MARGIN_SHARE = 0.25


@dataclass(frozen=True)
class CacheKey:
    """Everything that makes two tokens differ."""

    client_id: str
    environment: str
    request: TokenRequest


class _Entry:
    """A cached token and its deadlines on the monotonic clock."""

    __slots__ = ("expires_at", "kind", "refresh_at", "token", "usable_until", "used")

    def __init__(
        self, token: str, kind: str, *, obtained: float, lifetime: float, policy: RefreshPolicy
    ) -> None:
        margin = min(policy.safety_margin, lifetime * _MAX_MARGIN_SHARE)
        self.token = token
        self.kind = kind
        self.expires_at = obtained + lifetime
        self.usable_until = self.expires_at - margin
        self.refresh_at = min(obtained + lifetime * policy.refresh_ratio, self.usable_until)
        self.used = False

    def __repr__(self) -> str:
        return f"<token entry {self.kind} expires_at={self.expires_at:.1f}>"


@dataclass(frozen=True)
class _Refusal:
    """A refusal for one key and until when (monotonic) it is replayed instead of sending a grant."""

    error: TokenRefused
    until: float


@dataclass
class ProviderStats:
    """Counters of one provider, for tests and diagnostics (the metrics aggregate all providers)."""

    hits: int = 0
    waits: int = 0
    fetches: int = 0
    failures: int = 0
    background_refreshes: int = 0
    refusals_replayed: int = 0


class TokenProvider:
    """Implements :class:`proxy.maskinporten.request.TokenSource` for one Maskinporten client.

    ``session`` and ``clock`` are injected; the provider never closes the session. Call
    :meth:`start` to run the background refresher and :meth:`close` to stop it. Without ``start``
    tokens are still refreshed ahead of expiry, but only when a caller asks for them.
    """

    def __init__(
        self,
        config: MaskinportenConfig,
        session: aiohttp.ClientSession,
        clock: Clock | None = None,
        *,
        client: MaskinportenClient | None = None,
    ) -> None:
        self._config = config
        self._clock: Clock = clock or SystemClock()
        self._client = client or MaskinportenClient(config, session, self._clock)
        self._policy = config.refresh
        self._entries: dict[CacheKey, _Entry] = {}
        self._inflight: dict[CacheKey, asyncio.Task[_Entry]] = {}
        self._refusals: dict[CacheKey, _Refusal] = {}
        self._wake = asyncio.Event()
        self._refresher: asyncio.Task[None] | None = None
        self.stats = ProviderStats()
        metrics.EXPIRY.add(self)

    def _key(self, request: TokenRequest) -> CacheKey:
        return CacheKey(self._config.client_id, self._config.environment, request)

    async def token(self, request: TokenRequest) -> str:
        """A valid bearer token for ``request``: cached, refreshed ahead of expiry, fetched once per key."""
        key = self._key(request)
        entry = self._entries.get(key)
        now = self._clock.monotonic()
        if entry is not None and now < entry.usable_until:
            entry.used = True
            self.stats.hits += 1
            metrics.TOKEN_CACHE_HITS.labels(request.kind).inc()
            if now >= entry.refresh_at and self._refusal(key, now) is None:
                self._ensure_fetch(key, background=True)
            return entry.token
        refusal = self._refusal(key, now)
        if refusal is not None:
            self.stats.refusals_replayed += 1
            metrics.TOKEN_REFUSALS_REPLAYED.labels(request.kind).inc()
            # A copy: re-raising one instance would chain every caller's traceback onto it.
            raise copy.copy(refusal.error)
        self.stats.waits += 1
        metrics.TOKEN_CACHE_WAITS.labels(request.kind).inc()
        entry = await asyncio.shield(self._ensure_fetch(key, background=False))
        entry.used = True
        return entry.token

    def invalidate(self, request: TokenRequest, token: str) -> None:
        """Forget ``token`` for ``request`` after Altinn 3 refused it; the next ``token()`` fetches anew.

        A newer token already cached for the key is kept: only the refused one is dropped. A remembered
        Maskinporten refusal for the key is forgotten too.
        """
        key = self._key(request)
        self._refusals.pop(key, None)
        entry = self._entries.get(key)
        if entry is not None and entry.token == token:
            del self._entries[key]
            log.info("token_invalidated", kind=request.kind, org=request.system_user_org)

    async def start(self) -> None:
        """Run the background refresher (idempotent)."""
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.create_task(self._refresh_loop(), name="token-refresher")

    async def close(self) -> None:
        """Stop the background refresher and abandon fetches in flight."""
        tasks = [t for t in (self._refresher, *self._inflight.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._refresher = None
        metrics.EXPIRY.discard(self)

    async def drain(self) -> None:
        """Wait until no fetch is in flight (refreshes included); their errors are not raised here."""
        while self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)

    def seconds_until_expiry(self) -> Iterator[tuple[str, float]]:
        """``(kind, seconds)`` for every cached token (feeds the expiry gauge)."""
        now = self._clock.monotonic()
        for entry in list(self._entries.values()):
            yield entry.kind, entry.expires_at - now

    def _ensure_fetch(self, key: CacheKey, *, background: bool) -> asyncio.Task[_Entry]:
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(
                self._fetch(key, background=background), name=f"token-fetch-{key.request.kind}"
            )
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._fetch_done(key, done))
        return task

    async def _fetch(self, key: CacheKey, *, background: bool) -> _Entry:
        request = key.request
        obtained = self._clock.monotonic()
        started = time.perf_counter()
        self.stats.fetches += 1
        if background:
            self.stats.background_refreshes += 1
        try:
            issued: IssuedToken = await self._client.fetch(request)
            if request.exchange:
                issued = await self._client.exchange(issued.value)
        except TokenError as error:
            self.stats.failures += 1
            outcome = "refused" if isinstance(error, TokenRefused) else "unavailable"
            metrics.TOKEN_FETCHES.labels(request.kind, outcome).inc()
            if isinstance(error, TokenRefused):
                self._remember_refusal(key, error)
            log.warning(
                "token_fetch_failed",
                kind=request.kind,
                org=request.system_user_org,
                background=background,
                error=error.kind,
                code=getattr(error, "code", None),
                reason=error.message,
            )
            raise
        finally:
            metrics.TOKEN_FETCH_SECONDS.labels(request.kind).observe(time.perf_counter() - started)
        metrics.TOKEN_FETCHES.labels(request.kind, "ok").inc()
        entry = _Entry(
            issued.value, request.kind, obtained=obtained, lifetime=issued.expires_in, policy=self._policy
        )
        self._store(key, entry)
        log.info(
            "token_fetched",
            kind=request.kind,
            org=request.system_user_org,
            expires_in=issued.expires_in,
            background=background,
        )
        return entry

    def _refusal(self, key: CacheKey, now: float) -> _Refusal | None:
        """The remembered refusal for ``key`` if it still applies (a lapsed one is dropped)."""
        refusal = self._refusals.get(key)
        if refusal is not None and now >= refusal.until:
            del self._refusals[key]
            return None
        return refusal

    def _remember_refusal(self, key: CacheKey, error: TokenRefused) -> None:
        period = self._policy.refusal_cache_seconds
        if period <= 0:
            return
        self._refusals.pop(key, None)
        # A copy without the traceback, so the failed fetch's frames are not kept alive with it.
        # Re-inserted last: dict order is refusal order, oldest first.
        self._refusals[key] = _Refusal(copy.copy(error), self._clock.monotonic() + period)
        while len(self._refusals) > self._policy.max_entries:
            del self._refusals[next(iter(self._refusals))]

    def _store(self, key: CacheKey, entry: _Entry) -> None:
        self._refusals.pop(key, None)
        self._entries.pop(key, None)
        self._entries[key] = entry  # re-inserted last: dict order is fetch order, oldest first
        while len(self._entries) > self._policy.max_entries:
            del self._entries[next(iter(self._entries))]
        self._wake.set()

    def _fetch_done(self, key: CacheKey, task: asyncio.Task[_Entry]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if task.cancelled() or task.exception() is None:  # exception() also marks it retrieved
            return
        entry = self._entries.get(key)
        if entry is None:
            return
        now = self._clock.monotonic()
        if now >= entry.usable_until:
            # Nobody may be handed this token any more; retrying for it would only loop on the failure.
            del self._entries[key]
            return
        # Keep handing out the still-valid token, and retry the refresh a little later (for a
        # refusal, not before it lapses).
        retry_at = now + self._policy.retry_delay
        refusal = self._refusal(key, now)
        if refusal is not None:
            retry_at = max(retry_at, refusal.until)
        entry.refresh_at = min(retry_at, entry.usable_until)
        self._wake.set()

    async def _refresh_loop(self) -> None:
        while True:
            self._wake.clear()
            now = self._clock.monotonic()
            next_due: float | None = None
            for key, entry in list(self._entries.items()):
                if now >= entry.expires_at:
                    del self._entries[key]
                    continue
                due = entry.refresh_at
                refusal = self._refusal(key, now)
                if due <= now and refusal is not None:
                    due = min(refusal.until, entry.expires_at)
                elif due <= now:
                    if entry.used and key not in self._inflight:
                        self._ensure_fetch(key, background=True)
                    due = entry.expires_at  # idle or refreshing: wake again only to drop it
                if next_due is None or due < next_due:
                    next_due = due
            await self._sleep_until(next_due, now)

    async def _sleep_until(self, due: float | None, now: float) -> None:
        waiters: set[asyncio.Future[object]] = {asyncio.ensure_future(self._wake.wait())}
        if due is not None:
            waiters.add(asyncio.ensure_future(self._clock.sleep(due - now)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*waiters, return_exceptions=True)
