"""Soak: ``altinn-proxy serve`` at half its measured capacity for minutes, with mixed operations.

The sandbox fakes run in this process, the proxy in its own (PostgreSQL store: a fresh database on
the server at ``--admin-dsn``, dropped afterwards; or ``--store sqlite``). First a closed-loop
probe measures capacity (``InsertCorrespondenceBasicV2`` with ``--probe-concurrency`` callers);
then calls are started at half that rate for ``--minutes``: mostly correspondence sends, plus
receipt reads and, every few seconds, a streamed broker round trip (initiate, MTOM upload,
download, confirm) through zeep clients built from the proxy's own WSDLs. Every ``--every``
seconds it prints the proxy's RSS, open file descriptors and database connections, and at the end
one JSON summary: calls, failures, p50/p99, a table per minute (RSS, fds, database connections,
calls waiting, load average) and a verdict on flatness: after ``--warmup-minutes`` the RSS may grow
by at most ``--flat-mib`` (the least-squares slope over the rest of the run, times its length), the
median of the open fds not beyond their warm-up high plus a small slack (each call waiting holds a
connection), and the database connections not beyond their warm-up high.

    python -m bench.soak [--minutes 10] [--store postgres|sqlite] [--every 10] [--trace-memory FILE]

``--trace-memory FILE`` runs the proxy under :mod:`bench.memtrace`, which writes malloc and gc
figures and the object types that grew to FILE each minute, to tell a leak from warm-up (for
allocation sites, run ``bench.memtrace`` with frames > 0 by hand: it slows the proxy down).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from proxy.sandbox.world import Fakes, sandbox_settings_document, start_fakes, write_sandbox_files

AGENCY = "/ServiceEngineExternal/CorrespondenceAgencyExternalBasic.svc"
AGENCY_NS = "http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10"
CONTENT_NS = "http://schemas.altinn.no/services/ServiceEngine/Correspondence/2010/10"
RECEIPTS = "/IntermediaryExternal/ReceiptAgencyExternalBasic.svc"
RECEIPT_NS = "http://www.altinn.no/services/Intermediary/Receipt/2009/10"
RECEIPT_TYPES = "http://schemas.altinn.no/services/Intermediary/Receipt/2015/06"
BROKER = "/ServiceEngineExternal/BrokerServiceExternalBasic.svc"
STREAMED = "/ServiceEngineExternal/BrokerServiceExternalBasicStreamed.svc"
SENDER = ("demo-eus", "demo-eus-password", "310000019")
RECIPIENT = ("demo-eus2", "demo-eus2-password", "310000027")
TIMEOUT = aiohttp.ClientTimeout(total=60)
#: How long the proxy may take to listen (slow under --trace-memory on a busy machine).
STARTUP_SECONDS = 300
#: Open file descriptors beyond the warm-up's highest that still count as flat (callers come and go).
FD_SLACK = 16
_RECEIPT_ID = re.compile(r"<(?:\w+:)?ReceiptId>(\d+)<")


def _insert(reference: str) -> tuple[str, bytes]:
    body = f"""<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
      <InsertCorrespondenceBasicV2 xmlns="{AGENCY_NS}" xmlns:c="{CONTENT_NS}">
        <systemUserName>demo-so</systemUserName><systemPassword>demo-so-password</systemPassword>
        <SystemUserCode>SOAK</SystemUserCode><ExternalShipmentReference>{reference}</ExternalShipmentReference>
        <Correspondence><c:ServiceCode>4711</c:ServiceCode><c:ServiceEdition>1</c:ServiceEdition>
          <c:Reportee>310000019</c:Reportee><c:Content><c:LanguageCode>1044</c:LanguageCode>
          <c:MessageTitle>Soak {reference}</c:MessageTitle><c:MessageSummary>S</c:MessageSummary>
          <c:MessageBody>B</c:MessageBody></c:Content>
          <c:VisibleDateTime>2026-01-01T00:00:00</c:VisibleDateTime></Correspondence>
      </InsertCorrespondenceBasicV2></s:Body></s:Envelope>"""
    return f"{AGENCY_NS}/ICorrespondenceAgencyExternalBasic/InsertCorrespondenceBasicV2", body.encode()


def _receipt(receipt_id: str) -> tuple[str, bytes]:
    body = f"""<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
      <GetReceiptBasicV2 xmlns="{RECEIPT_NS}" xmlns:r="{RECEIPT_TYPES}">
        <systemUserName>demo-so</systemUserName><systemPassword>demo-so-password</systemPassword>
        <receipt><r:ReceiptId>{receipt_id}</r:ReceiptId></receipt>
      </GetReceiptBasicV2></s:Body></s:Envelope>"""
    return f"{RECEIPT_NS}/IReceiptAgencyExternalBasic/GetReceiptBasicV2", body.encode()


async def _post(session: aiohttp.ClientSession, url: str, call: tuple[str, bytes]) -> str:
    action, body = call
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{action}"'}
    async with session.post(url, data=body, headers=headers) as response:
        text = await response.text()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {text[:200]}")
    return text


def _broker_round_trip(base: str, payload: bytes, senders_reference: str) -> str:
    """Initiate, upload (MTOM), download and confirm one file through the proxy's own WSDLs."""
    import zeep
    from zeep.transports import Transport

    def client(path: str) -> Any:
        return zeep.Client(
            base + path + "?wsdl", transport=Transport(timeout=60, operation_timeout=60)
        ).service

    basic, streamed = client(BROKER), client(STREAMED)
    user, password, org = SENDER
    reference = basic.InitiateBrokerServiceBasic(
        user,
        password,
        {
            "Manifest": {
                "ExternalServiceCode": "4712",
                "ExternalServiceEditionCode": 1,
                "FileList": {"File": [{"FileName": "soak.zip"}]},
                "Reportee": org,
                "SendersReference": senders_reference,
            },
            "RecipientList": {"Recipient": [{"PartyNumber": RECIPIENT[2]}]},
        },
    )
    headers = {"FileName": "soak.zip", "Reference": reference, "Reportee": org}
    headers |= {"SystemPassword": password, "SystemUserName": user}
    streamed.UploadFileStreamedBasic(DataStream=payload, _soapheaders=headers)
    return reference


def _download(base: str, reference: str) -> bytes:
    import zeep
    from zeep.transports import Transport

    transport = Transport(timeout=60, operation_timeout=60)
    user, password, org = RECIPIENT
    streamed = zeep.Client(base + STREAMED + "?wsdl", transport=transport).service
    data: bytes = streamed.DownloadFileStreamedBasic(user, password, reference, org)
    zeep.Client(base + BROKER + "?wsdl", transport=transport).service.ConfirmDownloadedBasic(
        user, password, reference, org
    )
    return data


class Proxy:
    """``altinn-proxy serve`` as a child process; its port from the ``listening`` log line."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.base = f"http://127.0.0.1:{port}"

    def sample(self) -> tuple[int, int]:
        """(RSS in KiB, open file descriptors)."""
        pid = self.process.pid
        status = Path(f"/proc/{pid}/status").read_text()
        rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        return rss, len(os.listdir(f"/proc/{pid}/fd"))


@contextlib.asynccontextmanager
async def serve_proxy(config: Path, trace_memory: str | None = None) -> AsyncIterator[Proxy]:
    """``altinn-proxy serve --config CONFIG`` (under :mod:`bench.memtrace` given a file); stopped after."""
    launcher = ["proxy.cli"] if trace_memory is None else ["bench.memtrace", trace_memory, "60", "0", "--"]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", *launcher, "serve", "--config", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    port = 0
    try:
        while not port:
            line = await asyncio.wait_for(process.stderr.readline(), STARTUP_SECONDS)
            if not line:
                raise RuntimeError("the proxy exited before listening")
            with contextlib.suppress(ValueError):
                port = int(json.loads(line).get("port") or 0)
    except BaseException:
        if process.returncode is None:
            process.kill()
        await process.wait()
        raise
    drain = asyncio.create_task(_discard(process.stderr))
    try:
        yield Proxy(process, port)
    finally:
        process.terminate()
        await process.wait()
        await drain


async def _discard(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


@contextlib.asynccontextmanager
async def _database(store: str, admin_dsn: str, workdir: Path) -> AsyncIterator[tuple[str, Any]]:
    """The store URL, and a coroutine function counting its database connections (or None)."""
    if store == "sqlite":
        yield f"sqlite://{workdir / 'state.db'}", None
        return
    import asyncpg

    name = f"soak_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_dsn, timeout=10)
    await admin.execute(f'CREATE DATABASE "{name}"')

    async def connections() -> int:
        count: int = await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name)
        return count

    try:
        yield admin_dsn.rsplit("/", 1)[0] + "/" + name, connections
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _probe(session: aiohttp.ClientSession, base: str, seconds: float, concurrency: int) -> float:
    done = 0
    deadline = time.monotonic() + seconds

    async def caller() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            await _post(session, base + AGENCY, _insert(f"probe-{uuid.uuid4()}"))
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return done / (time.monotonic() - started)


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    """Run the probe and the soak; the summary."""
    workdir = Path(tempfile.mkdtemp(prefix="altinn-proxy-soak-"))
    async with start_fakes(workdir) as fakes, _database(args.store, args.admin_dsn, workdir) as (url, db):
        config = await write_settings(fakes, workdir, url)
        async with (
            serve_proxy(config, args.trace_memory) as proxy,
            aiohttp.ClientSession(timeout=TIMEOUT) as session,
        ):
            capacity = await _probe(session, proxy.base, args.probe_seconds, args.probe_concurrency)
            rate = args.rate or capacity / 2
            print(json.dumps({"capacity_per_s": round(capacity, 1), "soak_rate_per_s": round(rate, 1)}))
            return await _run(args, fakes, proxy, session, rate, db) | {"capacity_per_s": round(capacity, 1)}


async def write_settings(
    fakes: Fakes, workdir: Path, url: str, sections: dict[str, dict[str, Any]] | None = None
) -> Path:
    """The sandbox settings for the fakes, with the store at ``url``, JSON logs and ``sections``
    merged in; their path."""
    await asyncio.to_thread(write_sandbox_files, workdir, fakes.keys)
    document = sandbox_settings_document(fakes, workdir, port=0)
    document["store"] = {"url": url}
    document["logging"] = {"format": "json", "level": "info"}  # "listening" is an info line
    for section, values in (sections or {}).items():
        document.setdefault(section, {}).update(values)
    config = workdir / "settings.yaml"
    config.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return config


async def _run(
    args: argparse.Namespace, fakes: Fakes, proxy: Proxy, session: aiohttp.ClientSession, rate: float, db: Any
) -> dict[str, Any]:
    latencies: list[float] = []
    failures: list[str] = []
    receipts: list[str] = []
    samples: list[dict[str, Any]] = []
    tasks: set[asyncio.Task[None]] = set()
    payload = os.urandom(args.file_kib * 1024)
    broker_due = 0.0

    async def timed(kind: str, call: Any) -> None:
        started = time.monotonic()
        try:
            await call
            latencies.append(time.monotonic() - started)
        except Exception as error:  # counted, and the soak goes on
            failures.append(f"{kind}: {error!s:.600}")

    async def send() -> None:
        text = await _post(session, proxy.base + AGENCY, _insert(f"soak-{uuid.uuid4()}"))
        found = _RECEIPT_ID.search(text)
        if found is None:
            raise RuntimeError(f"no ReceiptId in {text[:200]}")
        receipts.append(found.group(1))

    async def broker() -> None:
        senders_reference = f"soak-{uuid.uuid4()}"
        reference = await asyncio.to_thread(_broker_round_trip, proxy.base, payload, senders_reference)
        transfer = fakes.broker.sent_with(senders_reference)
        await fakes.broker.wait_until(lambda: transfer.status.name == "PUBLISHED")
        if await asyncio.to_thread(_download, proxy.base, reference) != payload:
            raise RuntimeError("downloaded file differs")

    async def sampler() -> None:
        while True:
            rss, fds = proxy.sample()
            sample: dict[str, Any] = {"t": round(time.monotonic() - begin), "rss_kib": rss, "fds": fds}
            if db is not None:
                sample["db_connections"] = await db()
            sample["open_calls"] = len(tasks)
            sample["done_calls"] = len(latencies) + len(failures)
            sample["load_1m"] = os.getloadavg()[0]
            samples.append(sample)
            print(json.dumps(sample), flush=True)
            await asyncio.sleep(args.every)

    begin = time.monotonic()
    watcher = asyncio.create_task(sampler())
    count = 0
    while (now := time.monotonic()) - begin < args.minutes * 60:
        count += 1
        if now >= broker_due:
            call, kind, broker_due = broker(), "broker", now + args.broker_every
        elif count % 10 == 0 and receipts:
            call, kind = _post(session, proxy.base + RECEIPTS, _receipt(receipts[-1])), "receipt"
        else:
            call, kind = send(), "send"
        task = asyncio.create_task(timed(kind, call))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        await asyncio.sleep(max(0.0, begin + count / rate - time.monotonic()))
    await asyncio.gather(*tasks)
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    ordered = sorted(latencies)
    return {
        "minutes": args.minutes,
        "rate_per_s": round(rate, 1),
        "calls": count,
        "failures": len(failures),
        "first_failures": failures[:5],
        "p50_ms": round(statistics.median(ordered) * 1000, 1) if ordered else None,
        "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 1) if ordered else None,
        "per_minute": per_minute(samples),
        "flat": flatness(samples, args.warmup_minutes * 60, args.flat_mib),
    }


def per_minute(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last sample of each minute: RSS in MiB, fds, DB connections, calls waiting, load average."""
    last: dict[int, dict[str, Any]] = {}
    for sample in samples:
        last[int(sample["t"] // 60)] = sample
    return [
        {
            "minute": minute,
            "rss_mib": round(sample["rss_kib"] / 1024, 1),
            "fds": sample["fds"],
            "db_connections": sample.get("db_connections"),
            "calls_done": sample["done_calls"],
            "calls_waiting": sample["open_calls"],
            "load_1m": round(sample["load_1m"], 1),
        }
        for minute, sample in sorted(last.items())
    ]


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(x, y)`` points (0 for fewer than two)."""
    if len(points) < 2:
        return 0.0
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else 0.0


def flatness(samples: list[dict[str, Any]], warmup_seconds: float, flat_mib: float) -> dict[str, Any]:
    """Whether RSS, fds and DB connections stayed flat after the warm-up (see the module doc)."""
    warm = [s for s in samples if s["t"] <= warmup_seconds]
    after = [s for s in samples if s["t"] > warmup_seconds]
    if not warm or len(after) < 2:
        return {"judged": False, "why": "too few samples after the warm-up"}
    rss = [(s["t"] / 60, s["rss_kib"] / 1024) for s in after]
    slope = _slope(rss)
    growth = slope * (rss[-1][0] - rss[0][0])
    fds_high = max(s["fds"] for s in warm)
    fds = [s["fds"] for s in after]  # each waiting call holds a connection: judged by the median
    verdict: dict[str, Any] = {
        "judged": True,
        "warmup_minutes": round(warmup_seconds / 60, 1),
        "rss_mib_at_warmup_end": round(warm[-1]["rss_kib"] / 1024, 1),
        "rss_mib_last": round(after[-1]["rss_kib"] / 1024, 1),
        "rss_mib_max_after_warmup": round(max(y for _, y in rss), 1),
        "rss_mib_per_minute_after_warmup": round(slope, 2),
        "rss_flat": growth <= flat_mib,
        "fds_warmup_max": fds_high,
        "fds_median_after_warmup": statistics.median(fds),
        "fds_max_after_warmup": max(fds),
        "fds_flat": statistics.median(fds) <= fds_high + FD_SLACK,
    }
    if "db_connections" in samples[0]:
        db_high = max(s["db_connections"] for s in warm)
        verdict["db_connections_max_after_warmup"] = max(s["db_connections"] for s in after)
        verdict["db_flat"] = verdict["db_connections_max_after_warmup"] <= db_high
    return verdict


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--rate", type=float, help="calls per second (default: half the probed capacity)")
    parser.add_argument("--store", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--probe-seconds", type=float, default=20.0)
    parser.add_argument("--probe-concurrency", type=int, default=16)
    parser.add_argument("--broker-every", type=float, default=5.0, help="seconds between broker round trips")
    parser.add_argument("--file-kib", type=int, default=512)
    parser.add_argument("--warmup-minutes", type=float, default=3.0, help="not judged for flatness")
    parser.add_argument(
        "--flat-mib", type=float, default=16.0, help="RSS growth after the warm-up still called flat"
    )
    parser.add_argument("--trace-memory", metavar="FILE", help="trace the proxy's memory (bench.memtrace)")
    summary = asyncio.run(soak(parser.parse_args()))
    print(json.dumps({"summary": summary}, indent=2))


if __name__ == "__main__":
    main()
