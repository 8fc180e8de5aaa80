"""Running the proxy: listening sockets, the metrics port, signals and a graceful drain.

On SIGTERM the process first reports not-ready (``/readyz`` 503) while still accepting requests for
``drain_delay`` seconds, so the load balancer stops sending; then it stops listening and lets
in-flight requests finish for up to ``drain`` seconds; then it releases its resources and returns.
SIGINT (Ctrl-C) skips the delay.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from aiohttp import web

from proxy.observability.metrics import create_metrics_app
from proxy.web.health import Readiness

log = structlog.get_logger("proxy.server")


@dataclass(frozen=True)
class ListenConfig:
    """Addresses and drain times for :func:`serve`."""

    host: str
    port: int
    metrics_host: str
    metrics_port: int
    drain: float
    drain_delay: float


def bound_port(runner: web.AppRunner) -> int:
    """The TCP port the runner's first site listens on (useful after binding port 0)."""
    server = runner.addresses[0]
    return int(server[1])


async def serve(
    app: web.Application,
    readiness: Readiness,
    config: ListenConfig,
    *,
    on_listening: Callable[[int, int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve ``app`` and the metrics endpoint until SIGTERM/SIGINT (or ``stop``), then drain."""
    stop = stop or asyncio.Event()
    interrupted = False

    def on_signal(signum: int) -> None:
        nonlocal interrupted
        interrupted = signum == signal.SIGINT
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)

    runner = web.AppRunner(app, access_log=None, shutdown_timeout=config.drain, handle_signals=False)
    metrics_runner = web.AppRunner(create_metrics_app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await metrics_runner.setup()
    try:
        await web.TCPSite(runner, config.host, config.port).start()
        await web.TCPSite(metrics_runner, config.metrics_host, config.metrics_port).start()
        port, metrics_port = bound_port(runner), bound_port(metrics_runner)
        log.info("listening", host=config.host, port=port, metrics_port=metrics_port)
        if on_listening is not None:
            on_listening(port, metrics_port)
        await stop.wait()
        readiness.draining = True
        log.info("draining", drain_delay=0 if interrupted else config.drain_delay, drain=config.drain)
        if config.drain_delay and not interrupted:
            await asyncio.sleep(config.drain_delay)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await runner.cleanup()
        await metrics_runner.cleanup()
        log.info("stopped")
