"""Liveness and readiness.

``/healthz`` answers 200 while the process serves at all. ``/readyz`` answers 200 only when every
registered check passes and the process is not draining; it turns 503 the moment SIGTERM arrives,
while in-flight requests still complete.

``altinn_proxy_ready`` follows the real state, not the last probe: it is 0 until the services have
started and passed their checks, drops to 0 the moment draining starts, and :meth:`Readiness.watch`
re-runs the checks in the background so that a store outage shows even when nobody probes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from proxy.observability.metrics import READY

ReadinessCheck = Callable[[], Awaitable[dict[str, Any]]]
"""Returns details for ``/readyz``; raises (any exception) when not ready."""

CHECK_TIMEOUT_SECONDS = 2.0
#: How often :meth:`Readiness.watch` re-runs the checks (the chart's readiness probe period).
WATCH_INTERVAL_SECONDS = 5.0


@dataclass
class Readiness:
    """The process's readiness: draining flag plus named checks, mirrored in ``altinn_proxy_ready``."""

    checks: dict[str, ReadinessCheck] = field(default_factory=dict)
    _draining: bool = False

    def __post_init__(self) -> None:
        READY.set(0)

    @property
    def draining(self) -> bool:
        """True from the moment the process started to drain (it stays so)."""
        return self._draining

    @draining.setter
    def draining(self, value: bool) -> None:
        self._draining = value
        if value:
            READY.set(0)

    async def report(self) -> tuple[bool, dict[str, Any]]:
        """Run every check (bounded in time); ``(ready, details)``."""
        details: dict[str, Any] = {"draining": self.draining}
        ready = not self.draining
        for name, check in self.checks.items():
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for loses a cancellation that
                # arrives as the check finishes, and the watcher (cancelled at shutdown) runs on.
                async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                    details[name] = await check()
            except Exception as error:  # a failing check means "not ready", whatever it raised
                ready = False
                details[name] = {"ok": False, "error": type(error).__name__}
        ready = ready and not self.draining  # draining may have started while the checks ran
        READY.set(1 if ready else 0)
        details["ready"] = ready
        return ready, details

    async def watch(
        self,
        interval: float = WATCH_INTERVAL_SECONDS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Re-run the checks every ``interval`` seconds until cancelled, so the gauge stays true."""
        while True:
            await self.report()
            await sleep(interval)

    def stopped(self) -> None:
        """The services are gone: not ready any more."""
        READY.set(0)


READINESS = web.AppKey("readiness", Readiness)


async def healthz(_: web.Request) -> web.Response:
    """The process is alive."""
    return web.json_response({"alive": True})


async def readyz(request: web.Request) -> web.Response:
    """200 when ready to take traffic, 503 while draining or when a check fails."""
    ready, details = await request.app[READINESS].report()
    return web.json_response(details, status=200 if ready else 503)


#: Paths of the kubelet's probes: answered like any request, but logged at debug level only.
PROBE_PATHS = frozenset({"/healthz", "/readyz"})


def add_health_routes(app: web.Application, readiness: Readiness) -> None:
    """Register ``/healthz`` and ``/readyz`` on ``app``."""
    app[READINESS] = readiness
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
