"""``altinn-proxy serve`` as a real process: health, JSON logs with request ids, graceful stop."""

from __future__ import annotations

import asyncio
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
            async with session.get(
                f"{proxy.base_url}/ServiceEngineExternal/CorrespondenceAgencyExternalBasic.svc?wsdl",
                headers={"X-Request-Id": "caller-43"},
            ) as response:
                assert response.status == 200
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
    # Probes are logged at debug level only (the kubelet sends one every few seconds).
    assert {line["request_id"] for line in access} == {"caller-43"}
    assert generated_id
    assert proxy.lines[-1]["event"] == "stopped"


TEST_ENVELOPE = (
    b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
    b'<Test xmlns="http://www.altinn.no/services/2009/10"/>'
    b"</s:Body></s:Envelope>"
)
TEST_PATH = "/ServiceEngineExternal/CorrespondenceAgencyExternalBasic.svc"


async def test_sigterm_drains_a_slow_in_flight_request(settings_file: Path) -> None:
    # The drain delay outlasts any busy machine; the second signal ends it, so nothing here races a clock.
    proxy = await start_proxy(
        "serve", "--config", str(settings_file), env={"ALTINN_PROXY_TIMEOUTS__DRAIN_DELAY": "600"}
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        head = (
            f"POST {TEST_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml; charset=utf-8\r\n"
            f'SOAPAction: "http://www.altinn.no/services/2009/10/IAltinnContractBase/Test"\r\n'
            f"Content-Length: {len(TEST_ENVELOPE)}\r\nConnection: close\r\n\r\n"
        ).encode()
        writer.write(head + TEST_ENVELOPE[:40])  # the request is now in flight, its body half sent
        await writer.drain()
        proxy.process.send_signal(signal.SIGTERM)
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            while True:
                async with session.get(f"{proxy.base_url}/readyz") as response:
                    if response.status == 503:
                        assert (await response.json())["draining"] is True
                        break
                await asyncio.sleep(0.02)
        writer.write(TEST_ENVELOPE[40:])
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b"TestResponse" in answer
    proxy.process.send_signal(signal.SIGTERM)  # the load balancer has long stopped sending
    code = await asyncio.wait_for(proxy.process.wait(), 60)
    if proxy._reader is not None:
        await proxy._reader
    assert code == 0
    events = [line["event"] for line in proxy.lines]
    assert events.index("draining") < events.index("stopped")


async def test_a_body_that_does_not_arrive_in_time_gets_a_client_fault(settings_file: Path) -> None:
    proxy = await start_proxy(
        "serve", "--config", str(settings_file), env={"ALTINN_PROXY_LIMITS__BODY_READ_TIMEOUT_SECONDS": "0.5"}
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        head = (
            f"POST {TEST_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml; charset=utf-8\r\n"
            f"Content-Length: {len(TEST_ENVELOPE)}\r\nConnection: close\r\n\r\n"
        ).encode()
        writer.write(head + TEST_ENVELOPE[:40])  # and then nothing more
        await writer.drain()
        # The fault comes at once; the connection itself lingers a while for the rest of the body.
        answer = await asyncio.wait_for(reader.readuntil(b"</s:Envelope>"), 30)
    finally:
        writer.close()
        await writer.wait_closed()  # the proxy stops waiting for the rest of the body
        await proxy.terminate()
    assert answer.startswith(b"HTTP/1.1 500"), answer[:100]
    assert b"<faultcode>s:Client</faultcode>" in answer
    assert b"did not arrive within 0.5 seconds" in answer
