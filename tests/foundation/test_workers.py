"""``altinn-proxy serve --workers N`` as real processes: one port, one metrics endpoint, restarts, stop."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxy.web.workers import merged_exposition
from tests.foundation.process import ProxyProcess, run_cli, start_proxy

TIMEOUT = aiohttp.ClientTimeout(total=30)
#: Separate connections: the kernel spreads them over the workers' sockets by address hash, so
#: with this many the chance that one worker got none is 2**-39.
CONNECTIONS = 40

#: A cheap request that is logged at info level (probes are logged at debug only), and its route label.
PATH = "/ServiceEngineExternal/CorrespondenceAgencyExternalBasic.svc"
ROUTE = "/{area}/{endpoint}"


async def served_by_worker(proxy: ProxyProcess) -> dict[str, float]:
    """Requests of :data:`PATH` each worker answered, from the pod's one metrics endpoint."""
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.get(f"http://127.0.0.1:{proxy.metrics_port}/metrics") as response,
    ):
        assert response.status == 200
        text = await response.text()
    served: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "altinn_proxy_http_requests_total" and sample.labels["route"] == ROUTE:
                served[sample.labels["worker"]] = served.get(sample.labels["worker"], 0) + sample.value
    return served


async def one_request_per_connection(proxy: ProxyProcess, count: int = CONNECTIONS) -> None:
    """``count`` requests of :data:`PATH`, each on a new connection."""
    for _ in range(count):
        connector = aiohttp.TCPConnector(force_close=True)
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT, connector=connector) as session,
            session.get(proxy.base_url + PATH) as response,
        ):
            assert response.status == 200


def worker_pids(proxy: ProxyProcess) -> list[int]:
    """The worker processes' ids the supervisor logged when it started listening."""
    listening = next(line for line in proxy.lines if line["event"] == "listening")
    return [int(pid) for pid in listening["pids"]]


async def test_two_workers_share_the_port_and_one_metrics_endpoint(settings_file: Path) -> None:
    proxy = await start_proxy("serve", "--config", str(settings_file), "--workers", "2")
    try:
        await one_request_per_connection(proxy)
        served = await served_by_worker(proxy)
    finally:
        code = await proxy.terminate(signal.SIGTERM)
    assert set(served) == {"0", "1"}, "both workers answer on the one port"
    assert sum(served.values()) == CONNECTIONS
    assert code == 0
    assert len(proxy.lines) == len(proxy.raw), "the workers' log lines never interleave"
    assert {line.get("worker") for line in proxy.lines if line["event"] == "request"} == {0, 1}
    assert proxy.lines[-1]["event"] == "stopped"
    assert sum(1 for line in proxy.lines if line["event"] == "stopped") == 3


async def test_a_worker_that_dies_is_restarted_on_the_same_port(settings_file: Path) -> None:
    proxy = await start_proxy("serve", "--config", str(settings_file), "--workers", "2")
    try:
        first, _ = worker_pids(proxy)
        os.kill(first, signal.SIGKILL)
        for _ in range(300):
            if any(line["event"] == "worker.restarted" for line in proxy.lines):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the killed worker was not restarted:\n" + "\n".join(proxy.raw[-20:]))
        await one_request_per_connection(proxy)
        served = await served_by_worker(proxy)
    finally:
        code = await proxy.terminate(signal.SIGTERM)
    exited = next(line for line in proxy.lines if line["event"] == "worker.exited")
    assert (exited["worker"], exited["exit_code"]) == (0, -signal.SIGKILL)
    assert set(served) == {"0", "1"}, "the restarted worker answers again"
    assert code == 0


async def test_kill_9_of_the_supervisor_takes_its_workers_with_it(settings_file: Path) -> None:
    proxy = await start_proxy("serve", "--config", str(settings_file), "--workers", "2")
    pids = worker_pids(proxy)
    assert await proxy.terminate(signal.SIGKILL) == -signal.SIGKILL
    for _ in range(300):
        if not any(Path(f"/proc/{pid}").exists() and _alive(pid) for pid in pids):
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"workers {pids} outlived their supervisor")


def _alive(pid: int) -> bool:
    """True unless ``pid`` is gone or a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


async def test_a_worker_that_cannot_start_fails_the_supervisor(settings_file: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the store's folder should be")
    code, _, err = await run_cli(
        "serve",
        "--config",
        str(settings_file),
        "--workers",
        "2",
        env={"ALTINN_PROXY_STORE__URL": f"sqlite:///{blocked}/state.db"},
    )
    assert code == 1
    assert "worker 0 did not start" in err or "worker 1 did not start" in err


@pytest.mark.parametrize("count", ["0", "65", "two"])
async def test_a_worker_count_out_of_range_is_refused(settings_file: Path, count: str) -> None:
    code, _, err = await run_cli("serve", "--config", str(settings_file), "--workers", count)
    assert code == 2
    assert "--workers: must be a whole number from 1 to 64" in err


def test_merged_metrics_label_every_sample_with_its_worker() -> None:
    zero = (
        '# HELP jobs_total Jobs\n# TYPE jobs_total counter\njobs_total{kind="a"} 3.0\n'
        "# HELP depth Depth\n# TYPE depth gauge\ndepth 1.0\n"
    )
    one = '# HELP jobs_total Jobs\n# TYPE jobs_total counter\njobs_total{kind="a"} 5.0\n'
    text = merged_exposition([("0", zero), ("1", one)]).decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples == {
        ("jobs_total", (("kind", "a"), ("worker", "0"))): 3.0,
        ("jobs_total", (("kind", "a"), ("worker", "1"))): 5.0,
        ("depth", (("worker", "0"),)): 1.0,
    }
    assert text.count("# TYPE jobs_total counter") == 1
