"""``altinn-proxy serve`` as a real process: health, JSON logs with request ids, graceful stop."""

from __future__ import annotations

import signal
from pathlib import Path

import aiohttp

from tests.foundation.process import start_proxy

TIMEOUT = aiohttp.ClientTimeout(total=10)


async def test_health_logs_and_sigterm(settings_file: Path) -> None:
    proxy = await start_proxy("serve", "--config", str(settings_file))
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            async with session.get(f"{proxy.base_url}/healthz") as response:
                assert response.status == 200
                generated_id = response.headers["X-Request-Id"]
            async with session.get(
                f"{proxy.base_url}/readyz", headers={"X-Request-Id": "caller-42"}
            ) as response:
                assert response.status == 200
                assert response.headers["X-Request-Id"] == "caller-42"
                assert (await response.json())["ready"] is True
            async with session.get(f"http://127.0.0.1:{proxy.metrics_port}/metrics") as response:
                assert response.status == 200
                assert "altinn_proxy_http_requests_total" in await response.text()
    finally:
        code = await proxy.terminate(signal.SIGTERM)
    assert code == 0
    assert proxy.raw, "the proxy wrote no log lines"
    assert len(proxy.lines) == len(proxy.raw), "every log line is one JSON object"
    for line in proxy.lines:
        assert {"request_id", "event", "level", "timestamp"} <= line.keys(), line
    access = [line for line in proxy.lines if line["event"] == "request"]
    assert {line["request_id"] for line in access} >= {generated_id, "caller-42"}
    assert proxy.lines[-1]["event"] == "stopped"
