"""``altinn-proxy sandbox``: the proxy plus every fake, one process, no settings file, no network."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from proxy.app import create_app
from proxy.sandbox import fixtures
from proxy.sandbox.world import (
    Fakes,
    sandbox_settings,
    sandbox_settings_document,
    start_fakes,
    write_sandbox_files,
    write_settings_file,
)
from proxy.web.health import Readiness
from proxy.web.server import ListenConfig, serve

#: Where the sandbox writes the settings of its world, for ``--config`` (relative to the working folder).
SETTINGS_FILE = Path(".sandbox") / "settings.yaml"


def banner(fakes: Fakes, host: str, port: int, metrics_port: int) -> str:
    """What to point a legacy client at, and the demo credentials."""
    base = f"http://{host}:{port}"
    lines = [
        "altinn-proxy sandbox is running (Ctrl-C stops it)",
        f"  proxy:            {base}",
        f"  example endpoint: {base}/ServiceEngineExternal/CorrespondenceAgencyExternalBasic.svc?wsdl",
        f"  metrics:          http://127.0.0.1:{metrics_port}/metrics",
        f"  fake Maskinporten: {fakes.maskinporten_url}",
        f"  fake Altinn 3:    {fakes.platform_url}  (token exchange, Correspondence, Dialogporten, Broker)",
        "  legacy credentials:",
    ]
    for caller in fixtures.DEMO_CALLERS:
        acts_for = (
            f"service owner {caller.service_owner} ({caller.org})"
            if caller.service_owner
            else ("organisation " + ", ".join(caller.orgs))
        )
        lines.append(f"    {caller.username} / {caller.password}  acts for {acts_for}")
    lines.append(
        f"  routing: correspondence {'/'.join(fixtures.CORRESPONDENCE_SERVICE)} -> "
        f"{fixtures.CORRESPONDENCE_RESOURCE}; broker {'/'.join(fixtures.BROKER_SERVICE)} -> {fixtures.BROKER_RESOURCE}"
    )
    return "\n".join(lines)


def onboarding_banner(fakes: Fakes, settings_file: Path, metrics_port: int) -> str:
    """The settings file every command takes, and the onboarding walk-through for 310000043."""
    config = f"--config {settings_file}"
    return "\n".join(
        [
            f"  settings of this world: {settings_file}",
            f"    (every command runs against the sandbox with {config})",
            f"  migration board:  http://127.0.0.1:{metrics_port}/board",
            f"  onboarding: {fixtures.ONBOARDING_ORG} (demo-eus3) has no system user yet; its calls fail (MP-303):",
            f"    altinn-proxy system register {config} --apply",
            f"    altinn-proxy system request {config} --org {fixtures.ONBOARDING_ORG}",
            f"    curl -X POST {fakes.platform_url}/sandbox/customer/requests/REQUEST_ID/approve   (the customer)",
            f"    altinn-proxy system status {config}",
        ]
    )


async def run_sandbox(host: str = "127.0.0.1", port: int = 8080, scan_seconds: float = 2.0) -> None:
    """Start the fakes and the proxy, print where they listen, serve until SIGTERM/SIGINT."""
    with tempfile.TemporaryDirectory(prefix="altinn-proxy-sandbox-") as folder:
        workdir = Path(folder)
        async with start_fakes(workdir, scan_seconds=scan_seconds) as fakes:
            await asyncio.to_thread(write_sandbox_files, workdir, fakes.keys)
            settings = sandbox_settings(fakes, workdir, host=host, port=port)
            settings_file = await asyncio.to_thread(
                write_settings_file,
                SETTINGS_FILE,
                sandbox_settings_document(fakes, workdir, host=host, port=port),
            )
            readiness = Readiness()
            listen = ListenConfig(host, port, "127.0.0.1", 0, drain=settings.timeouts.drain, drain_delay=0.0)

            def announce(bound_port: int, metrics_port: int) -> None:
                print(banner(fakes, host, bound_port, metrics_port), flush=True)
                print(onboarding_banner(fakes, settings_file.resolve(), metrics_port), flush=True)

            await serve(create_app(settings, readiness), readiness, listen, on_listening=announce)
