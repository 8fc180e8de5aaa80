"""The ``altinn-proxy`` command line.

Every failure the operator can fix is one line on stderr and exit code 1: no traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from proxy import __version__
from proxy.errors import ConfigurationError, ProxyError
from proxy.observability.logging import configure_logging
from proxy.settings import Settings, load_settings


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(Path(args.config))


def cmd_version(_: argparse.Namespace) -> int:
    """Print the version."""
    print(f"altinn-proxy {__version__}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the settings (and everything they reference) without serving."""
    settings = _settings(args)
    print(f"{args.config}: settings ok")
    del settings
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the proxy with the given settings until SIGTERM/SIGINT."""
    from proxy.app import create_app
    from proxy.web.health import Readiness
    from proxy.web.server import ListenConfig, serve

    settings = _settings(args)
    configure_logging(settings.logging.format, settings.logging.level)
    readiness = Readiness()
    app = create_app(settings, readiness)
    listen = ListenConfig(
        host=settings.listen.host,
        port=settings.listen.port,
        metrics_host=settings.listen.metrics_host,
        metrics_port=settings.listen.metrics_port,
        drain=settings.timeouts.drain,
        drain_delay=settings.timeouts.drain_delay,
    )
    asyncio.run(serve(app, readiness, listen))
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    """Run the proxy with in-process fakes of Maskinporten and the Altinn 3 APIs."""
    from proxy.sandbox.runner import run_sandbox

    configure_logging(args.log_format, "info")
    asyncio.run(run_sandbox(host=args.host, port=args.port))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="altinn-proxy", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the proxy")
    serve.add_argument("--config", required=True, help="settings YAML file")
    serve.set_defaults(func=cmd_serve)

    check = commands.add_parser("check", help="validate settings and mappings, exit 0 or 1")
    check.add_argument("--config", required=True, help="settings YAML file")
    check.set_defaults(func=cmd_check)

    sandbox = commands.add_parser("sandbox", help="run with in-process fakes of Maskinporten and Altinn 3")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8080)
    sandbox.add_argument("--log-format", choices=["auto", "json", "console"], default="auto")
    sandbox.set_defaults(func=cmd_sandbox)

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
