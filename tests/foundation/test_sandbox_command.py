"""``altinn-proxy sandbox`` (what ``make run`` starts): no settings file, no network, ready quickly."""

from __future__ import annotations

import asyncio
import signal

import aiohttp

from tests.foundation.process import start_proxy

TIMEOUT = aiohttp.ClientTimeout(total=10)


async def test_sandbox_serves_health_and_wsdl_and_prints_where_to_point_clients() -> None:
    proxy = await start_proxy("sandbox", "--port", "0", "--log-format", "json")
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
    finally:
        code = await proxy.terminate(signal.SIGINT)
    assert code == 0
    assert proxy.process.stdout is not None
    banner = (await asyncio.wait_for(proxy.process.stdout.read(), 10)).decode()
    for expected in ("demo-eus / demo-eus-password", "demo-so / demo-so-password", "ttd-broker-4712"):
        assert expected in banner
