"""Several worker processes on one port: ``altinn-proxy serve --workers N``.

One Python process serves one event loop on one core. To use the other cores of a pod, the
supervisor (the process the operator starts) binds ``N`` listening sockets on the one port itself
(``SO_REUSEPORT``, so port 0 works too) and starts ``N`` worker processes that each inherit one and
accept from it with their own loop, application, outbound session and store connection. The kernel
spreads new connections over the sockets. A worker being restarted loses nothing: its socket stays
open in the supervisor, and connections wait in its backlog until the new worker accepts them. The
workers share nothing but the socket and the store: ids,
idempotency and receipts stay exactly-once across them for the same reason they do across replicas
(every race is decided by the database, see :mod:`proxy.store.base`).

Invariants:

* A worker never outlives its supervisor: it asks the kernel for SIGKILL when the supervisor dies
  (``PR_SET_PDEATHSIG``), so ``kill -9`` of the supervisor is ``kill -9`` of the whole pod, as a
  container runtime would do it, and no orphan keeps serving a port nobody manages.
* SIGTERM (or SIGINT) to the supervisor is passed to every worker, which drains as a single process
  would (``/readyz`` 503 for ``drain_delay``, then in-flight requests finish); the supervisor exits
  once they all have, with 0 only when every worker exited with 0. A later signal is passed on too,
  so a second one ends the workers' drain delay as it would a single process's (a worker ignores
  signals once its drain has begun).
* A worker that exits while the supervisor is not stopping is started again on the same socket; one
  that fails before it ever listened (bad settings, unreachable store) stops the whole supervisor,
  so a broken configuration is an error, not a restart loop.
* One metrics endpoint for the pod: each worker serves its registry on a private Unix socket, and the
  supervisor's ``/metrics`` merges them, with a ``worker`` label (``"0"`` ... ``"N-1"``) on every sample
  so that counters stay monotonic per worker (a restarted worker is an ordinary counter reset) and
  ``sum()`` over them is the pod's figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from proxy.errors import ConfigurationError
from proxy.observability.metrics import hide_server_software

log = structlog.get_logger("proxy.workers")

#: How long a worker may take to start listening (imports, store migration, token prefetch).
STARTUP_SECONDS = 60.0
#: How long the supervisor waits for one worker's metrics before leaving it out of a scrape.
SCRAPE_SECONDS = 5.0
#: Extra time a draining worker gets beyond its own drain budget before it is killed.
STOP_GRACE_SECONDS = 10.0
#: What a worker writes on its stdout once it accepts connections.
READY_LINE = b"ready\n"
WORKER_LABEL = "worker"
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerSpec:
    """How the supervisor starts its workers."""

    #: ``altinn-proxy serve`` arguments every worker gets (the settings file), before the worker's own.
    serve_args: Sequence[str]
    count: int
    host: str
    port: int
    metrics_host: str
    metrics_port: int
    #: Time a worker is given to drain after SIGTERM (its ``drain_delay`` + ``drain``).
    drain_budget: float


def bind_listeners(host: str, port: int, count: int, backlog: int = 1024) -> list[socket.socket]:
    """``count`` listening TCP sockets on one ``host:port`` (``SO_REUSEPORT``), one per worker.

    With ``port`` 0 the first socket picks a free port and the others join it. The kernel spreads new
    connections over the sockets by their addresses' hash, so long-lived keep-alive connections are
    spread over the workers too (one shared socket would let the first worker to wake take them all).
    """
    listeners: list[socket.socket] = []
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        for _ in range(count):
            listener = socket.socket(family, kind, proto)
            listeners.append(listener)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            listener.bind(address)
            listener.listen(backlog)
            listener.set_inheritable(True)
            address = listener.getsockname()  # the port the first one got, for the others
    except OSError as error:
        for listener in listeners:
            listener.close()
        reason = error.strerror or str(error)
        raise ConfigurationError(f"cannot listen on {host}:{port} ({reason})", location="listen") from None
    return listeners


def die_with_supervisor(supervisor_pid: int) -> None:
    """In a worker: be killed when the supervisor dies; exit now if it already has (Linux only)."""
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = getattr(libc, "prctl", None)
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != supervisor_pid:
        os._exit(1)  # the supervisor died before the request took effect


def announce_ready() -> None:
    """In a worker: tell the supervisor that this worker accepts connections."""
    os.write(sys.stdout.fileno(), READY_LINE)


@dataclass
class _Worker:
    index: int
    listener: socket.socket
    metrics_socket: Path
    process: asyncio.subprocess.Process | None = None
    exits: int = 0


@dataclass
class Supervisor:
    """Starts, restarts and stops the workers, and serves the pod's merged metrics."""

    spec: WorkerSpec
    runtime_dir: Path
    workers: list[_Worker] = field(default_factory=list)
    stopping: bool = False

    def command(self, worker: _Worker) -> list[str]:
        """The command line of one worker process."""
        return [
            sys.executable,
            "-m",
            "proxy.cli",
            "serve",
            *self.spec.serve_args,
            "--worker-fd",
            str(worker.listener.fileno()),
            "--worker-index",
            str(worker.index),
            "--worker-metrics-socket",
            str(worker.metrics_socket),
            "--supervisor-pid",
            str(os.getpid()),
        ]

    async def start(self, worker: _Worker) -> None:
        """Start ``worker`` and wait until it listens; ConfigurationError if it exits first."""
        process = await asyncio.create_subprocess_exec(
            *self.command(worker),
            stdout=asyncio.subprocess.PIPE,
            pass_fds=(worker.listener.fileno(),),
            # Its own session: a terminal's Ctrl-C (or a signal to the whole group) reaches the
            # supervisor only, which passes each signal on once.
            start_new_session=True,
        )
        worker.process = process
        assert process.stdout is not None
        try:
            async with asyncio.timeout(STARTUP_SECONDS):
                line = await process.stdout.readline()
        except TimeoutError:
            line = b""
        if line != READY_LINE:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            code = await process.wait()
            raise ConfigurationError(
                f"worker {worker.index} did not start (exit code {code}); its log lines say why",
                location="serve --workers",
            )

    async def watch(self, worker: _Worker) -> None:
        """Restart ``worker`` whenever it exits while the supervisor is not stopping."""
        while True:
            assert worker.process is not None
            code = await worker.process.wait()
            if self.stopping:
                return
            worker.exits += 1
            log.warning("worker.exited", worker=worker.index, exit_code=code, restarts=worker.exits)
            await self.start(worker)
            log.info("worker.restarted", worker=worker.index, pid=worker.process.pid)

    def signal_workers(self, signum: int) -> list[asyncio.subprocess.Process]:
        """Send ``signum`` to every running worker; their processes."""
        running = [w.process for w in self.workers if w.process is not None and w.process.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signum)
        return running

    async def stop(self, signum: int) -> int:
        """Pass ``signum`` to every worker, wait for them to drain; 0 when every one exited with 0."""
        self.stopping = True
        for worker in self.workers:
            worker.listener.close()  # once the worker closes its copy too, new connections are refused
        running = self.signal_workers(signum)
        deadline = self.spec.drain_budget + STOP_GRACE_SECONDS
        try:
            async with asyncio.timeout(deadline):
                codes = await asyncio.gather(*(p.wait() for p in running))
        except TimeoutError:
            for process in running:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            await asyncio.gather(*(p.wait() for p in running))
            return 1
        return 0 if all(code == 0 for code in codes) else 1

    async def scrape(self) -> list[tuple[str, str]]:
        """Every running worker's exposition text, as ``(worker label, text)``."""
        timeout = aiohttp.ClientTimeout(total=SCRAPE_SECONDS)

        async def one(worker: _Worker) -> tuple[str, str] | None:
            connector = aiohttp.UnixConnector(path=str(worker.metrics_socket))
            try:
                async with (
                    aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
                    session.get("http://worker/metrics") as response,
                ):
                    return str(worker.index), await response.text()
            except (aiohttp.ClientError, TimeoutError) as error:
                log.warning("worker.scrape_failed", worker=worker.index, error=type(error).__name__)
                return None

        found = await asyncio.gather(*(one(worker) for worker in self.workers))
        return [item for item in found if item is not None]


class _Scraped(Collector):
    """The families of several workers' exposition texts, merged, each sample labelled by worker."""

    def __init__(self, texts: Iterable[tuple[str, str]]) -> None:
        self._texts = list(texts)

    def collect(self) -> Iterable[Metric]:
        merged: dict[str, Metric] = {}
        for worker, text in self._texts:
            for family in text_string_to_metric_families(text):
                target = merged.get(family.name)
                if target is None:
                    target = merged[family.name] = Metric(family.name, family.documentation, family.type)
                target.samples.extend(
                    sample._replace(labels={**sample.labels, WORKER_LABEL: worker})
                    for sample in family.samples
                )
        return merged.values()


def merged_exposition(texts: Iterable[tuple[str, str]]) -> bytes:
    """One Prometheus text exposition of several workers' texts (see the module docstring)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Scraped(texts))
    return generate_latest(registry)


def _metrics_app(supervisor: Supervisor) -> web.Application:
    async def metrics(_: web.Request) -> web.Response:
        response = web.Response(body=merged_exposition(await supervisor.scrape()))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        response.charset = "utf-8"
        return response

    app = web.Application()
    app.on_response_prepare.append(hide_server_software)
    app.router.add_get("/metrics", metrics)
    return app


async def supervise(spec: WorkerSpec, *, on_listening: Callable[[int, int], None] | None = None) -> int:
    """Run ``spec.count`` workers on one port until SIGTERM/SIGINT; the exit code (see module doc)."""
    listeners = bind_listeners(spec.host, spec.port, spec.count)
    port = int(listeners[0].getsockname()[1])
    with contextlib.ExitStack() as stack:
        for listener in listeners:
            stack.enter_context(listener)
        # mkdtemp: mode 0700, only this user reaches the workers' metrics sockets.
        runtime_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="altinn-proxy-workers-")))
        supervisor = Supervisor(spec, runtime_dir)
        supervisor.workers = [
            _Worker(i, listener, runtime_dir / f"metrics-{i}.sock") for i, listener in enumerate(listeners)
        ]
        loop = asyncio.get_running_loop()
        received: asyncio.Future[int] = loop.create_future()

        def on_signal(signum: int) -> None:
            if not received.done():
                received.set_result(signum)
            elif supervisor.stopping:
                supervisor.signal_workers(signum)

        for handled in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(handled, on_signal, handled)
        metrics_runner = web.AppRunner(_metrics_app(supervisor), access_log=None, shutdown_timeout=1.0)
        await metrics_runner.setup()
        watchers: list[asyncio.Task[None]] = []
        try:
            try:
                await asyncio.gather(*(supervisor.start(worker) for worker in supervisor.workers))
            except ConfigurationError:
                await supervisor.stop(signal.SIGKILL)
                raise
            await web.TCPSite(metrics_runner, spec.metrics_host, spec.metrics_port).start()
            metrics_port = int(metrics_runner.addresses[0][1])
            log.info(
                "listening",
                host=spec.host,
                port=port,
                metrics_port=metrics_port,
                workers=spec.count,
                pids=[w.process.pid for w in supervisor.workers if w.process is not None],
            )
            if on_listening is not None:
                on_listening(port, metrics_port)
            watchers = [asyncio.create_task(supervisor.watch(w)) for w in supervisor.workers]
            # A watcher only ends by raising: a worker that exited and could not be started again.
            waiting: list[asyncio.Future[Any]] = [received, *watchers]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for watcher in watchers:
                if watcher.done():
                    await supervisor.stop(signal.SIGTERM)
                    watcher.result()
            signum = received.result()
            log.info("draining", workers=spec.count)
            code = await supervisor.stop(signum)
        finally:
            for handled in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(handled)
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            await metrics_runner.cleanup()
        log.info("stopped", exit_code=code)
        return code
