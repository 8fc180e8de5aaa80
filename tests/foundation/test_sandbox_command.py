"""``altinn-proxy sandbox`` (what ``make run`` starts): no settings file, no network, ready quickly."""

from __future__ import annotations

import asyncio
import signal
import ssl
from pathlib import Path

import aiohttp

from tests.foundation.process import start_proxy

TIMEOUT = aiohttp.ClientTimeout(total=10)


async def test_sandbox_serves_health_and_wsdl_and_prints_where_to_point_clients(tmp_path: Path) -> None:
    data_dir = tmp_path / "sandbox-data"
    proxy = await start_proxy(
        "sandbox", "--port", "0", "--tls-port", "0", "--data-dir", str(data_dir), "--log-format", "json"
    )
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            async with session.get(f"{proxy.base_url}/healthz") as response:
                assert response.status == 200
            async with session.get(f"{proxy.base_url}/readyz") as response:
                assert response.status == 200
            wsdl_url = f"{proxy.base_url}/ServiceEngineExternal/CorrespondenceAgencyExternalBasic.svc?wsdl"
            async with session.get(wsdl_url) as response:
                assert response.status == 200
                assert f'location="{proxy.base_url}/' in await response.text()
        # The legacy REST API over HTTPS with the files the sandbox wrote, as the README's curl does.
        [tls_port] = next(line["extra_ports"] for line in proxy.lines if line.get("event") == "listening")
        tls = data_dir / "tls"
        context = ssl.create_default_context(cafile=str(tls / "ca.pem"))
        context.load_cert_chain(tls / "eus-310000019.pem", tls / "eus-310000019.key")
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as session,
            session.get(
                f"https://127.0.0.1:{tls_port}/api/reportees?ForceEIAuthentication",
                headers={"ApiKey": "demo-apikey"},
                ssl=context,
            ) as response,
        ):
            assert response.status == 200, await response.text()
            reportees = (await response.json())["_embedded"]["reportees"]
        assert [r["OrganizationNumber"] for r in reportees] == ["310000019"]
    finally:
        code = await proxy.terminate(signal.SIGINT)
    assert code == 0
    assert proxy.process.stdout is not None
    banner = (await asyncio.wait_for(proxy.process.stdout.read(), 10)).decode()
    for expected in (
        "demo-eus / demo-eus-password",
        "demo-so / demo-so-password",
        "ttd-broker-4712",
        f"--cacert {tls / 'ca.pem'}",
        "ApiKey: demo-apikey",
        f"https://127.0.0.1:{tls_port}/api/",
    ):
        assert expected in banner
    assert sorted(p.name for p in tls.iterdir()) == [
        "ca.pem",
        "eus-310000019.key",
        "eus-310000019.pem",
        "eus-310000027.key",
        "eus-310000027.pem",
        "server.key",
        "server.pem",
        "so-310000035.key",
        "so-310000035.pem",
    ]
    assert (tls / "eus-310000019.key").stat().st_mode & 0o077 == 0
