"""Soak: ``altinn-proxy serve`` at half its measured capacity for minutes, with mixed operations.

The sandbox fakes run in this process, the proxy in its own (PostgreSQL store: a fresh database on
the server at ``--admin-dsn``, dropped afterwards; or ``--store sqlite``). First a closed-loop
probe measures capacity (``InsertCorrespondenceBasicV2`` with ``--probe-concurrency`` callers);
then calls are started at half that rate for ``--minutes``: mostly correspondence sends, plus
receipt reads and, every few seconds, a streamed broker round trip (initiate, MTOM upload,
download, confirm) through zeep clients built from the proxy's own WSDLs. Every ``--every``
seconds it prints the proxy's RSS, open file descriptors and database connections, and at the end
one JSON summary (first, last and highest of each; calls, failures, p50/p99).

    python -m bench.soak [--minutes 10] [--store postgres|sqlite] [--every 10]
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


def _broker_round_trip(base: str, payload: bytes) -> None:
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
                "SendersReference": f"soak-{uuid.uuid4()}",
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
async def _proxy(config: Path) -> AsyncIterator[Proxy]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy.cli", "serve", "--config", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    port = 0
    while not port:
        line = await asyncio.wait_for(process.stderr.readline(), 60)
        if not line:
            raise RuntimeError("the proxy exited before listening")
        with contextlib.suppress(ValueError):
            port = int(json.loads(line).get("port") or 0)
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
        config = await _settings(fakes, workdir, url)
        async with _proxy(config) as proxy, aiohttp.ClientSession(timeout=TIMEOUT) as session:
            capacity = await _probe(session, proxy.base, args.probe_seconds, args.probe_concurrency)
            rate = args.rate or capacity / 2
            print(json.dumps({"capacity_per_s": round(capacity, 1), "soak_rate_per_s": round(rate, 1)}))
            return await _run(args, fakes, proxy, session, rate, db) | {"capacity_per_s": round(capacity, 1)}


async def _settings(fakes: Fakes, workdir: Path, url: str) -> Path:
    await asyncio.to_thread(write_sandbox_files, workdir, fakes.keys)
    document = sandbox_settings_document(fakes, workdir, port=0)
    document["store"] = {"url": url}
    document["logging"] = {"format": "json", "level": "info"}  # "listening" is an info line
    config = workdir / "settings.yaml"
    config.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return config


async def _run(
    args: argparse.Namespace, fakes: Fakes, proxy: Proxy, session: aiohttp.ClientSession, rate: float, db: Any
) -> dict[str, Any]:
    latencies: list[float] = []
    failures: list[str] = []
    receipts: list[str] = []
    samples: list[dict[str, int]] = []
    tasks: set[asyncio.Task[None]] = set()
    payload = os.urandom(args.file_kib * 1024)
    broker_due = 0.0

    async def timed(kind: str, call: Any) -> None:
        started = time.monotonic()
        try:
            await call
            latencies.append(time.monotonic() - started)
        except Exception as error:  # counted, and the soak goes on
            failures.append(f"{kind}: {error!s:.200}")

    async def send() -> None:
        text = await _post(session, proxy.base + AGENCY, _insert(f"soak-{uuid.uuid4()}"))
        found = _RECEIPT_ID.search(text)
        if found is None:
            raise RuntimeError(f"no ReceiptId in {text[:200]}")
        receipts.append(found.group(1))

    async def broker() -> None:
        reference = await asyncio.to_thread(_broker_round_trip, proxy.base, payload)
        transfers = fakes.broker.transfers
        await fakes.broker.wait_until(lambda: transfers[uuid.UUID(reference)].status.name == "PUBLISHED")
        if await asyncio.to_thread(_download, proxy.base, reference) != payload:
            raise RuntimeError("downloaded file differs")

    async def sampler() -> None:
        while True:
            rss, fds = proxy.sample()
            sample = {"t": round(time.monotonic() - begin), "rss_kib": rss, "fds": fds}
            if db is not None:
                sample["db_connections"] = await db()
            sample["open_calls"] = len(tasks)
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

    def spread(key: str) -> dict[str, int]:
        values = [s[key] for s in samples if key in s]
        return {"first": values[0], "last": values[-1], "max": max(values)} if values else {}

    return {
        "minutes": args.minutes,
        "rate_per_s": round(rate, 1),
        "calls": count,
        "failures": len(failures),
        "first_failures": failures[:5],
        "p50_ms": round(statistics.median(ordered) * 1000, 1) if ordered else None,
        "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 1) if ordered else None,
        "rss_kib": spread("rss_kib"),
        "fds": spread("fds"),
        "db_connections": spread("db_connections"),
    }


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
    summary = asyncio.run(soak(parser.parse_args()))
    print(json.dumps({"summary": summary}, indent=2))


if __name__ == "__main__":
    main()
