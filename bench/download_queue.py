"""Download queue benchmark: 1,200 waiting submissions paged 500 at a time through the proxy.

Two child processes, so the memory figures are the proxy's alone: the sandbox fakes with ``--count``
completed instances of ``ttd/legacy-form-4713`` waiting in Storage, and ``altinn-proxy serve``. The
parent, as ``demo-so``, lists the queue (the oldest 500), purges every listed item with ``PurgeItem``
(Storage's confirm-download), and lists again until the queue is empty; it reports the items per
listing, the time of each step and the proxy's RSS (VmRSS, and the peak VmHWM) after each listing.

    python -m bench.download_queue --count 1200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import yaml

from bench.streaming import _free_port, _memory, _wait_http

NS = "http://www.altinn.no/services/Archive/DownloadQueue/2012/08"
QUEUE = "/ArchiveExternal/DownloadQueueExternalBasic.svc"
CREDENTIALS = "<systemUserName>demo-so</systemUserName><systemPassword>demo-so-password</systemPassword>"
TIMEOUT = aiohttp.ClientTimeout(total=600, sock_connect=10, sock_read=300)


async def _run_fakes(workdir: Path, count: int) -> None:
    from proxy.sandbox.apps_model import Instance
    from proxy.sandbox.world import sandbox_settings_document, start_fakes, write_sandbox_files

    async with start_fakes(workdir) as fakes:
        app = fakes.apps.apps["ttd/legacy-form-4713"]
        for number in range(count):
            moment = 1_700_000_000.0 + number
            instance = Instance(
                guid=uuid.uuid4(),
                app=app,
                party_id=50001901,
                org_number="310000019",
                created=moment,
                created_by="bench",
                data_values={"source": "bench"},
                last_changed=moment,
                task_index=None,
                process_started=moment,
                task_started=moment,
                process_ended=moment,
                order=number,
            )
            fakes.apps.instances[instance.guid] = instance
        await asyncio.to_thread(write_sandbox_files, workdir, fakes.keys)
        document = sandbox_settings_document(fakes, workdir, port=int(os.environ["BENCH_PROXY_PORT"]))
        (workdir / "settings.yaml").write_text(yaml.safe_dump(document))
        print(json.dumps({"ready": True}), flush=True)
        await asyncio.Event().wait()


async def _call(session: aiohttp.ClientSession, url: str, operation: str, body: str) -> str:
    envelope = (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        f'<{operation} xmlns="{NS}">{CREDENTIALS}{body}</{operation}></s:Body></s:Envelope>'
    )
    headers = {
        "Content-Type": "text/xml; charset=utf-8",
        "SOAPAction": f'"{NS}/IDownloadQueueExternalBasic/{operation}"',
    }
    async with session.post(url, data=envelope.encode(), headers=headers) as response:
        text = await response.text()
        if response.status != 200:
            raise RuntimeError(text[:500])
        return text


async def _bench(count: int) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    port = _free_port()
    env = {**os.environ, "BENCH_PROXY_PORT": str(port)}
    fakes = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.download_queue", "fakes", str(workdir), str(count),
        stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    procs = [fakes]
    try:
        assert fakes.stdout is not None
        await fakes.stdout.readline()
        proxy = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "proxy.cli", "serve", "--config", str(workdir / "settings.yaml"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(proxy)
        base = f"http://127.0.0.1:{port}"
        await _wait_http(base + "/healthz")
        url = base + QUEUE
        results: dict[str, object] = {"waiting": count, "proxy_idle_rss": _memory(proxy.pid)["VmRSS"]}
        rounds = []
        seen: set[str] = set()
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            while True:
                started = time.perf_counter()
                answer = await _call(session, url, "GetDownloadQueueItems", "<serviceCode>4713</serviceCode>")
                listed = time.perf_counter() - started
                references = re.findall(r"<a:ArchiveReference>(AR\d+)</a:ArchiveReference>", answer)
                memory = _memory(proxy.pid)
                if not references:
                    break
                assert not seen & set(references), "an item was listed again after it was purged"
                seen |= set(references)
                started = time.perf_counter()
                for reference in references:
                    await _call(
                        session, url, "PurgeItem", f"<archiveReference>{reference}</archiveReference>"
                    )
                purged = time.perf_counter() - started
                rounds.append(
                    {
                        "listed": len(references),
                        "list_seconds": round(listed, 3),
                        "purge_seconds": round(purged, 3),
                        "proxy_rss_after_list": memory["VmRSS"],
                        "proxy_peak_rss": memory["VmHWM"],
                    }
                )
        results["rounds"] = rounds
        results["all_listed_once"] = len(seen) == count
        return results
    finally:
        for proc in procs:
            proc.terminate()
            await proc.wait()


def main() -> None:
    """Command line: ``fakes WORKDIR COUNT`` (child) or ``--count N`` (the benchmark)."""
    if len(sys.argv) > 1 and sys.argv[1] == "fakes":
        asyncio.run(_run_fakes(Path(sys.argv[2]), int(sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1200)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_bench(args.count)), indent=2))


if __name__ == "__main__":
    main()
