"""``altinn-proxy sandbox``: the proxy plus every fake, one process, no settings file, no network."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from proxy.app import create_app
from proxy.sandbox import fixtures
from proxy.sandbox.tls import SandboxTls, write_sandbox_tls
from proxy.sandbox.world import (
    Fakes,
    sandbox_settings,
    sandbox_settings_document,
    start_fakes,
    write_sandbox_files,
    write_settings_file,
)
from proxy.web.health import Readiness
from proxy.web.server import ExtraSite, ListenConfig, serve, tls_context

#: The sandbox's enterprise certificates: (file prefix, organisation) for each REST demo caller.
TLS_CLIENTS = tuple(
    ("so" if org == fixtures.SERVICE_OWNER_ORG else "eus", org) for _, org in fixtures.REST_CERTIFICATES
)

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
        f"{fixtures.CORRESPONDENCE_RESOURCE}; broker {'/'.join(fixtures.BROKER_SERVICE)} -> {fixtures.BROKER_RESOURCE}; "
        f"form {'/'.join(fixtures.FORM_SERVICE)} -> app {'/'.join(fixtures.FORM_APP)}"
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


def rest_banner(tls: SandboxTls, host: str, tls_port: int) -> str:
    """The legacy REST API over HTTPS: the files to use and a request to copy."""
    certificate, key = tls.client_certificate("eus", "310000019")
    lines = [
        f"  legacy REST (HTTPS, enterprise certificates): https://{host}:{tls_port}/api/",
        f"    CA:          {tls.ca}",
        f"    certificate: {certificate}  (organisation 310000019, acts as demo-eus)",
        f"    key:         {key}",
        f"    other certificates: {', '.join(sorted(p.name for p in tls.folder.glob('*-*.pem')))}",
        f"    ApiKey:      {fixtures.REST_API_KEY}",
        f"    try: curl --cacert {tls.ca} --cert {certificate} --key {key} \\",
        f"           -H 'ApiKey: {fixtures.REST_API_KEY}' 'https://{host}:{tls_port}/api/reportees?ForceEIAuthentication'",
    ]
    return "\n".join(lines)


async def run_sandbox(
    host: str = "127.0.0.1",
    port: int = 8080,
    scan_seconds: float = 2.0,
    tls_port: int = 8443,
    data_dir: Path = Path(".sandbox"),
) -> None:
    """Start the fakes and the proxy, print where they listen, serve until SIGTERM/SIGINT.

    The proxy serves plain HTTP on ``port`` and HTTPS with client certificates on ``tls_port``; the
    TLS files are written to ``data_dir/tls`` (see :mod:`proxy.sandbox.tls`).
    """
    tls = await asyncio.to_thread(write_sandbox_tls, data_dir / "tls", TLS_CLIENTS)
    with tempfile.TemporaryDirectory(prefix="altinn-proxy-sandbox-") as folder:
        workdir = Path(folder)
        async with start_fakes(workdir, scan_seconds=scan_seconds) as fakes:
            await asyncio.to_thread(write_sandbox_files, workdir, fakes.keys)
            settings = sandbox_settings(fakes, workdir, host=host, port=port, client_ca_file=tls.ca)
            settings_file = await asyncio.to_thread(
                write_settings_file,
                data_dir / SETTINGS_FILE.name,
                sandbox_settings_document(fakes, workdir, host=host, port=port, client_ca_file=tls.ca),
            )
            context = await asyncio.to_thread(
                tls_context, tls.server_certificate, tls.server_key, client_ca_file=tls.ca
            )
            readiness = Readiness()
            listen = ListenConfig(
                host,
                port,
                "127.0.0.1",
                0,
                drain=settings.timeouts.drain,
                drain_delay=0.0,
                extra_sites=(ExtraSite(host, tls_port, context),),
            )
            bound_tls_port = tls_port

            def remember(extra_ports: tuple[int, ...]) -> None:
                nonlocal bound_tls_port
                bound_tls_port = extra_ports[0] if extra_ports else tls_port

            def announce(bound_port: int, metrics_port: int) -> None:
                print(banner(fakes, host, bound_port, metrics_port), flush=True)
                print(onboarding_banner(fakes, settings_file.resolve(), metrics_port), flush=True)
                print(rest_banner(tls, host, bound_tls_port), flush=True)

            await serve(
                create_app(settings, readiness),
                readiness,
                listen,
                on_listening=announce,
                on_extra_sites=remember,
            )
