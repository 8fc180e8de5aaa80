"""What operators see of a running proxy: metrics that exist before their first event, a readiness
gauge that follows the real state, and access lines that are useful and quiet."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from proxy.observability.labels import Known, declared, precreate
from proxy.observability.metrics import READY, STREAMED_REQUEST_SECONDS
from proxy.web.health import Readiness
from proxy.web.middleware import mark_streamed, request_context
from tests.foundation.process import start_proxy

TIMEOUT = aiohttp.ClientTimeout(total=10)
TEST_ENVELOPE = (
    b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
    b'<Test xmlns="http://www.altinn.no/services/2009/10"/>'
    b"</s:Body></s:Envelope>"
)
TEST_PATH = "/ServiceEngineExternal/CorrespondenceAgencyExternalBasic.svc"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``(name, labels) -> value`` for every sample of a scrape."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    scrape: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    return scrape.get((name, frozenset(labels.items())))


async def test_a_served_proxy_exposes_first_events_and_its_real_readiness(settings_file: Path) -> None:
    proxy = await start_proxy("serve", "--config", str(settings_file))
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            metrics_url = f"http://127.0.0.1:{proxy.metrics_port}/metrics"
            async with session.get(metrics_url) as response:
                assert response.headers["Server"] == "altinn-proxy"
                before = samples(await response.text())
            async with session.get(f"{proxy.base_url}/healthz") as response:
                assert response.status == 200
                assert response.headers["Server"] == "altinn-proxy", "no Python or aiohttp version"
            async with session.get(f"{proxy.base_url}/ServiceEngineExternal/NoSuchThing.svc") as response:
                assert response.status == 404
                assert response.headers["Content-Type"].startswith("text/plain")
            async with session.post(
                f"{proxy.base_url}{TEST_PATH}",
                data=TEST_ENVELOPE,
                headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"x"'},
            ) as response:
                await response.read()
            async with session.get(metrics_url) as response:
                after = samples(await response.text())
    finally:
        assert await proxy.terminate(signal.SIGTERM) == 0

    # Readiness without anybody asking /readyz.
    assert value(before, "altinn_proxy_ready") == 1
    # Closed label sets exist at zero before their first event.
    for name, labels in [
        ("altinn_proxy_token_fetches_total", {"kind": "system_user", "outcome": "refused"}),
        ("altinn_proxy_identity_lockouts_total", {"scope": "user"}),
        ("altinn_proxy_identity_credential_reloads_total", {"outcome": "refused"}),
        ("altinn_proxy_altinn3_circuit_rejections_total", {"api": "correspondence"}),
        ("altinn_proxy_soap_faults_total", {"kind": "operation_not_translated"}),
        (
            "altinn_proxy_soap_untranslated_total",
            {
                "service": "CorrespondenceAgencyExternalBasic",
                "operation": "GetCorrespondenceStatusDetailsBasicV3",
            },
        ),
    ]:
        assert value(before, name, **labels) == 0, (name, labels)
    # A scanner's GET of an unknown .svc is no SOAP fault.
    faults = [k for k in after if k[0] == "altinn_proxy_soap_faults_total"]
    assert sum(after[k] for k in faults) == sum(before.get(k, 0) for k in faults)
    # Probes are not logged at info; the SOAP access line names the legacy operation.
    access = [line for line in proxy.lines if line["event"] == "request"]
    assert not [line for line in access if line["path"] == "/healthz"]
    soap = [line for line in access if line["path"] == TEST_PATH]
    assert soap[0]["operation"] == "CorrespondenceAgencyExternalBasic/Test"


def test_precreate_creates_every_declared_label_set_at_zero() -> None:
    import proxy.app  # noqa: F401  (imports every package's metrics, so all declarations are made)

    precreate(Known(apis=frozenset({"example_api"})))
    assert (
        REGISTRY.get_sample_value("altinn_proxy_altinn3_circuit_rejections_total", {"api": "example_api"})
        == 0
    )
    assert len(declared()) >= 10
    for metric, label_sets in declared():
        for labels in label_sets(Known()) if callable(label_sets) else label_sets:
            assert tuple(labels) in metric._metrics, (metric._name, labels)


async def test_ready_follows_the_checks_and_draining_without_probes() -> None:
    healthy = True

    async def store() -> dict[str, bool]:
        if not healthy:
            raise ConnectionError("store down")
        return {"ok": True}

    readiness = Readiness(checks={"store": store})
    assert READY._value.get() == 0, "not ready before the services have started"
    checked: asyncio.Queue[None] = asyncio.Queue()
    proceed: asyncio.Queue[None] = asyncio.Queue()

    async def between_rounds(_: float) -> None:
        checked.put_nowait(None)
        await proceed.get()

    async def next_round() -> None:
        proceed.put_nowait(None)
        await checked.get()

    watcher = asyncio.create_task(readiness.watch(interval=5, sleep=between_rounds))
    try:
        await checked.get()
        assert READY._value.get() == 1
        healthy = False
        await next_round()
        assert READY._value.get() == 0, "a failing store shows without anybody calling /readyz"
        healthy = True
        await next_round()
        assert READY._value.get() == 1
        readiness.draining = True
        assert READY._value.get() == 0, "draining shows at once"
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    readiness.stopped()
    assert READY._value.get() == 0


async def test_streamed_requests_have_their_own_latency_view() -> None:
    async def streamed(request: web.Request) -> web.Response:
        mark_streamed(request)
        return web.Response(text="a long transfer")

    async def plain(_: web.Request) -> web.Response:
        return web.Response(text="ordinary")

    app = web.Application(middlewares=[request_context])
    app.router.add_get("/streamed-for-test", streamed)
    app.router.add_get("/plain-for-test", plain)
    async with TestClient(TestServer(app)) as client:
        for path in ("/streamed-for-test", "/plain-for-test"):
            async with client.get(path) as response:
                assert response.status == 200
    streamed_count = REGISTRY.get_sample_value(
        "altinn_proxy_http_streamed_request_seconds_count", {"route": "/streamed-for-test"}
    )
    assert streamed_count == 1
    assert (
        REGISTRY.get_sample_value("altinn_proxy_http_request_seconds_count", {"route": "/streamed-for-test"})
        is None
    )
    assert (
        REGISTRY.get_sample_value("altinn_proxy_http_request_seconds_count", {"route": "/plain-for-test"})
        == 1
    )
    assert STREAMED_REQUEST_SECONDS._labelnames == ("route",)


async def test_the_readiness_watcher_stops_when_cancelled_as_a_check_finishes() -> None:
    """Python 3.11's ``asyncio.wait_for`` lost a cancellation that arrived as its awaitable finished:
    the watcher then ran on, and the app's cleanup (which cancels and awaits it) hung for ever."""
    watcher: asyncio.Task[None] | None = None
    naps: list[float] = []

    async def check() -> dict[str, bool]:
        assert watcher is not None
        watcher.cancel()  # the cancellation arrives in the very step the check finishes
        return {"ok": True}

    async def sleep(interval: float) -> None:
        naps.append(interval)
        if len(naps) > 3:
            raise RuntimeError("the watcher ran on after it was cancelled")
        await asyncio.sleep(0)

    watcher = asyncio.create_task(Readiness(checks={"store": check}).watch(interval=5, sleep=sleep))
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    assert watcher.cancelled()
    assert len(naps) <= 1
