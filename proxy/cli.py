"""The ``altinn-proxy`` command line.

Every failure the operator can fix is one line on stderr and exit code 1: no traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog

from proxy import SHIPPED_MAPPINGS_DIR, __version__
from proxy.errors import ConfigurationError, ProxyError
from proxy.identity.cli import add_cli_commands as add_credentials_commands
from proxy.observability.logging import configure_logging
from proxy.onboarding.cli import add_cli_commands as add_system_commands
from proxy.settings import MAX_WORKERS, Settings, environment_overrides, load_settings


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(Path(args.config))


def cmd_version(_: argparse.Namespace) -> int:
    """Print the version."""
    print(f"altinn-proxy {__version__}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the settings and everything they reference (keys, credentials, mappings).

    Runs the same validation ``serve`` runs at start-up (settings, then the wiring that reads keys and
    builds the token, store and routing configuration), so whatever ``serve`` refuses, ``check``
    refuses with the same message.
    """
    from proxy.app import check_wiring
    from proxy.pipeline.loading import check

    settings = _settings(args)
    check_wiring(settings)
    problems = check(settings.mappings_dir)
    for problem in problems:
        print(f"altinn-proxy: mapping error: {problem}", file=sys.stderr)
    if problems:
        return 1
    shipped = (
        " (the mappings shipped with the package)" if settings.mappings_dir == SHIPPED_MAPPINGS_DIR else ""
    )
    print(f"{args.config}: settings, key, credentials and mappings ok{shipped}")
    for override in environment_overrides(Path(args.config)):
        print(f"  {override}")
    if not args.online:
        return 0
    from proxy.app import online_check

    configure_logging(settings.logging.format, "error")  # the verdicts are the report
    verdicts = asyncio.run(online_check(settings))
    for found in verdicts:
        print(found.line())
    routes = asyncio.run(check_app_routes(settings))
    for route_problem in routes:
        print(f"altinn-proxy: routing error: {route_problem}", file=sys.stderr)
    return 0 if all(found.ok for found in verdicts) and not routes else 1


async def check_app_routes(settings: Settings) -> list[str]:
    """Every app route judged against its app's metadata, read from the app (``check --online``)."""
    import aiohttp

    from proxy.mapping.calls import BaseUrls
    from proxy.mapping.forms import route_problems
    from proxy.pipeline.operations import routing_table

    apps = settings.altinn.apps_url or BaseUrls.apps
    table = routing_table(settings)
    timeout = aiohttp.ClientTimeout(
        total=settings.timeouts.total, connect=settings.timeouts.connect, sock_read=settings.timeouts.read
    )
    problems: list[str] = []
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for route in settings.routing.apps:
            url = (
                f"{apps.format(org=route.org).rstrip('/')}/{route.org}/{route.app}/api/v1/applicationmetadata"
            )
            try:
                async with session.get(url, headers={"Accept": "application/json"}) as response:
                    if response.status != 200:
                        problems.append(
                            f"{route.org}/{route.app}: the app's metadata answered {response.status}"
                        )
                        continue
                    metadata = await response.json()
            except (aiohttp.ClientError, TimeoutError, ValueError) as error:
                problems.append(f"{route.org}/{route.app}: the app's metadata could not be read: {error}")
                continue
            problems.extend(route_problems(table.lookup(route.service_code, route.service_edition), metadata))
    return problems


def cmd_explain(args: argparse.Namespace) -> int:
    """Show the operation, identity, Altinn 3 calls and (given responses) the answer for a request."""
    from proxy.explain import explain_request

    settings = _settings(args)
    responses = Path(args.responses) if args.responses else None
    print(asyncio.run(explain_request(settings, Path(args.request), responses, args.endpoint)))
    return 0


def cmd_store(args: argparse.Namespace) -> int:
    """``store migrate`` / ``store check`` against the configured store."""
    from proxy.app import store_url
    from proxy.store import cli as store_cli

    settings = _settings(args)
    command = store_cli.migrate if args.store_command == "migrate" else store_cli.check
    print(asyncio.run(command(store_url(settings))))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the proxy with the given settings until SIGTERM/SIGINT (``--workers N``: N processes)."""
    from proxy.app import check_wiring

    settings = _settings(args)
    check_wiring(settings)  # refuse what `check` refuses, with the same message, before listening
    configure_logging(settings.logging.format, settings.logging.level)
    workers = args.workers if args.workers is not None else settings.listen.workers
    if args.worker_fd is None and workers > 1:
        return _supervise(args, settings, workers)
    _serve_one(args, settings)
    return 0


def _serve_one(args: argparse.Namespace, settings: Settings) -> None:
    """One serving process: the whole proxy, or one worker of ``serve --workers N``."""
    import socket

    from proxy.app import create_app
    from proxy.web.health import Readiness
    from proxy.web.loop import run as run_loop
    from proxy.web.server import ListenConfig, WorkerListen, serve, tls_context
    from proxy.web.workers import die_with_supervisor

    worker = None
    if args.worker_fd is not None:
        die_with_supervisor(args.supervisor_pid)
        worker = WorkerListen(
            index=args.worker_index,
            listener=socket.socket(fileno=args.worker_fd),
            metrics_socket=Path(args.worker_metrics_socket),
        )
        structlog.contextvars.bind_contextvars(worker=args.worker_index)
    tls = settings.listen.tls
    ssl_context = (
        tls_context(
            tls.certificate_file,
            tls.key_file,
            client_ca_file=tls.client_ca_file,
            require_client_certificate=tls.require_client_certificate,
        )
        if tls is not None
        else None
    )
    readiness = Readiness()
    app = create_app(settings, readiness)
    listen = ListenConfig(
        host=settings.listen.host,
        port=settings.listen.port,
        metrics_host=settings.listen.metrics_host,
        metrics_port=settings.listen.metrics_port,
        drain=settings.timeouts.drain,
        drain_delay=settings.timeouts.drain_delay,
        ssl_context=ssl_context,
        worker=worker,
    )
    run_loop(serve(app, readiness, listen), settings.listen.event_loop)


def _supervise(args: argparse.Namespace, settings: Settings, workers: int) -> int:
    from proxy.web.workers import WorkerSpec, supervise

    if settings.listen.tls is not None:
        from proxy.web.server import tls_context

        tls = settings.listen.tls  # checked here once, so a bad key is one error, not one per worker
        tls_context(tls.certificate_file, tls.key_file, client_ca_file=tls.client_ca_file)
    spec = WorkerSpec(
        serve_args=["--config", args.config],
        count=workers,
        host=settings.listen.host,
        port=settings.listen.port,
        metrics_host=settings.listen.metrics_host,
        metrics_port=settings.listen.metrics_port,
        drain_budget=settings.timeouts.drain_delay + settings.timeouts.drain,
    )
    return asyncio.run(supervise(spec))


def cmd_sandbox(args: argparse.Namespace) -> int:
    """Run the proxy with in-process fakes of Maskinporten and the Altinn 3 APIs."""
    from proxy.sandbox.runner import run_sandbox

    configure_logging(args.log_format, "info")
    asyncio.run(
        run_sandbox(
            host=args.host,
            port=args.port,
            scan_seconds=args.scan_seconds,
            tls_port=args.tls_port,
            data_dir=Path(args.data_dir),
        )
    )
    return 0


def _worker_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_WORKERS}, not {text!r}")
    return count


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="altinn-proxy", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the proxy")
    serve.add_argument("--config", required=True, help="settings YAML file")
    serve.add_argument(
        "--workers",
        type=_worker_count,
        help="worker processes on the one port (default: listen.workers, 1); about one per core",
    )
    # Set by the supervisor of ``--workers N`` for each worker it starts; not for operators.
    for internal in ("--worker-fd", "--worker-index", "--supervisor-pid"):
        serve.add_argument(internal, type=int, help=argparse.SUPPRESS)
    serve.add_argument("--worker-metrics-socket", help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)

    check = commands.add_parser("check", help="validate settings and mappings, exit 0 or 1")
    check.add_argument("--config", required=True, help="settings YAML file")
    check.add_argument(
        "--online",
        action="store_true",
        help="also ask Maskinporten for the service owner's and each organisation's token, and check "
        "the app routing against each routed app's metadata",
    )
    check.set_defaults(func=cmd_check)

    sandbox = commands.add_parser("sandbox", help="run with in-process fakes of Maskinporten and Altinn 3")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8080)
    sandbox.add_argument("--tls-port", type=int, default=8443, help="HTTPS with client certificates (REST)")
    sandbox.add_argument(
        "--data-dir", default=".sandbox", help="where the sandbox writes its files (tls/); default .sandbox"
    )
    sandbox.add_argument("--log-format", choices=["auto", "json", "console"], default="auto")
    sandbox.add_argument(
        "--scan-seconds",
        type=float,
        default=2.0,
        help="how long the fake Altinn 3 malware scan keeps an uploaded attachment unpublished (default 2)",
    )
    sandbox.set_defaults(func=cmd_sandbox)

    explain = commands.add_parser("explain", help="show what the proxy would do with a SOAP request file")
    explain.add_argument("--config", required=True, help="settings YAML file")
    explain.add_argument("request", help="a SOAP request (envelope) saved to a file")
    explain.add_argument("--responses", help="folder of canned Altinn 3 responses (<step>.json|.bin|.status)")
    explain.add_argument("--endpoint", help="legacy endpoint path, when the body element is ambiguous")
    explain.set_defaults(func=cmd_explain)

    store = commands.add_parser("store", help="the state store: migrate the schema, or check it")
    store.add_argument("store_command", choices=["migrate", "check"])
    store.add_argument("--config", required=True, help="settings YAML file")
    store.set_defaults(func=cmd_store)

    add_credentials_commands(commands)
    add_system_commands(commands)

    version = commands.add_parser("version", help="print the version")
    version.set_defaults(func=cmd_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``altinn-proxy`` console script."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigurationError as error:
        print(f"altinn-proxy: configuration error: {error}", file=sys.stderr)
        return 1
    except ProxyError as error:
        print(f"altinn-proxy: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
