"""Running the proxy: listening sockets, the metrics port, signals and a graceful drain.

On SIGTERM the process first reports not-ready (``/readyz`` 503) while still accepting requests for
``drain_delay`` seconds, so the load balancer stops sending; then it stops listening and lets
in-flight requests finish for up to ``drain`` seconds; then it releases its resources and returns.
SIGINT (Ctrl-C) skips the delay, and a second signal during the delay ends it; signals during the
drain itself are ignored.

With ``listen.tls`` the proxy terminates TLS itself (:func:`tls_context`). Client certificates are
requested, and their chain is checked against the client CA during the handshake; their *dates* are
not, on purpose: the legacy REST front checks them against its injected clock and answers an expired
certificate with a legacy 401 that says so, instead of a bare TLS alert nobody can read.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
from aiohttp import web

from proxy.errors import ConfigurationError
from proxy.observability.metrics import create_metrics_app
from proxy.web.health import Readiness
from proxy.web.workers import announce_ready

log = structlog.get_logger("proxy.server")


@dataclass(frozen=True)
class ExtraSite:
    """One more address the proxy's application is served on (e.g. the sandbox's HTTPS port)."""

    host: str
    port: int
    ssl_context: ssl.SSLContext | None = None


@dataclass(frozen=True)
class ListenConfig:
    """Addresses and drain times for :func:`serve`."""

    host: str
    port: int
    metrics_host: str
    metrics_port: int
    drain: float
    drain_delay: float
    #: HTTPS instead of HTTP for the proxy's own port (the metrics port stays plain HTTP).
    ssl_context: ssl.SSLContext | None = None
    #: As one of ``serve --workers N``'s workers: the supervisor's listening socket (host and port
    #: are then ignored) and the Unix socket the supervisor scrapes this worker's metrics from.
    worker: WorkerListen | None = None
    #: Further addresses serving the same application (bound ports are logged as ``extra_ports``;
    #: not with ``worker``).
    extra_sites: tuple[ExtraSite, ...] = ()


@dataclass(frozen=True)
class WorkerListen:
    """A worker's sockets (see :mod:`proxy.web.workers`)."""

    index: int
    listener: socket.socket
    metrics_socket: Path


#: OpenSSL's X509_V_FLAG_NO_CHECK_TIME (not exported by the ssl module): see the module docstring.
_NO_CHECK_TIME = 0x200000


def tls_context(
    certificate_file: Path,
    key_file: Path,
    *,
    client_ca_file: Path | None = None,
    require_client_certificate: bool = False,
) -> ssl.SSLContext:
    """A server context: TLS 1.2 or later, client certificates from ``client_ca_file`` requested or required.

    Without a client CA no client certificate is asked for. Reads files: call it before the loop
    runs or in a thread. Raises :class:`~proxy.errors.ConfigurationError` for unusable files.
    """
    # Not create_default_context: that would also trust the system's CAs for client certificates.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certificate_file, key_file)
    except (OSError, ssl.SSLError) as error:
        raise ConfigurationError(
            f"cannot load the TLS certificate and key ({_reason(error)})", location="listen.tls"
        ) from None
    if client_ca_file is None:
        if require_client_certificate:
            raise ConfigurationError("require_client_certificate needs a client CA", location="listen.tls")
        return context
    try:
        context.load_verify_locations(cafile=client_ca_file)
    except (OSError, ssl.SSLError) as error:
        raise ConfigurationError(
            f"cannot load the client CA bundle ({_reason(error)})", location="listen.tls.client_ca_file"
        ) from None
    context.verify_mode = ssl.CERT_REQUIRED if require_client_certificate else ssl.CERT_OPTIONAL
    context.verify_flags |= _NO_CHECK_TIME
    return context


def _reason(error: OSError | ssl.SSLError) -> str:
    if isinstance(error, ssl.SSLError):
        return error.reason or "not a usable PEM file"
    return error.strerror or type(error).__name__


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
    on_extra_sites: Callable[[tuple[int, ...]], None] | None = None,
) -> None:
    """Serve ``app`` and the metrics endpoint until SIGTERM/SIGINT (or ``stop``), then drain.

    ``on_extra_sites`` receives the bound ports of ``config.extra_sites``, before ``on_listening``.
    """
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
    metrics_runner = web.AppRunner(create_metrics_app(app), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await metrics_runner.setup()
    try:
        scheme = "https" if config.ssl_context is not None else "http"
        if config.worker is not None:
            worker = config.worker
            await web.SockSite(runner, worker.listener, ssl_context=config.ssl_context).start()
            await web.UnixSite(metrics_runner, str(worker.metrics_socket)).start()
            log.info("worker.listening", worker=worker.index, scheme=scheme)
            announce_ready()
        else:
            await web.TCPSite(runner, config.host, config.port, ssl_context=config.ssl_context).start()
            for extra in config.extra_sites:
                await web.TCPSite(runner, extra.host, extra.port, ssl_context=extra.ssl_context).start()
            await web.TCPSite(metrics_runner, config.metrics_host, config.metrics_port).start()
            port, metrics_port = bound_port(runner), bound_port(metrics_runner)
            extra_ports = tuple(int(address[1]) for address in runner.addresses[1:])
            log.info(
                "listening",
                host=config.host,
                port=port,
                metrics_port=metrics_port,
                scheme=scheme,
                extra_ports=list(extra_ports),
            )
            if on_extra_sites is not None:
                on_extra_sites(extra_ports)
            if on_listening is not None:
                on_listening(port, metrics_port)
        await stop.wait()
        stop.clear()
        readiness.draining = True
        log.info("draining", drain_delay=0 if interrupted else config.drain_delay, drain=config.drain)
        if config.drain_delay and not interrupted:
            with contextlib.suppress(TimeoutError):  # a second signal ends the delay early
                async with asyncio.timeout(config.drain_delay):
                    await stop.wait()
    finally:
        # Signals during the drain change nothing (it is bounded by ``drain``): one that killed the
        # process would cut off the requests it is finishing.
        await runner.cleanup()
        await metrics_runner.cleanup()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        log.info("stopped")
