"""Issue 7 acceptance through the real proxy process: kill -9 mid-burst, and two replicas on one database.

The sandbox fakes run in the test process; ``altinn-proxy serve`` runs as a child process on a real
socket, with its store on a SQLite file or on a fresh PostgreSQL database. Legacy submissions are raw
SOAP 1.1 ``InsertCorrespondenceBasicV2`` envelopes sent as ``demo-so``, each with its own
ExternalShipmentReference; an *acknowledged* submission is one whose ``ReceiptId`` the client read.

What must hold after ``kill -9``, on a fresh process over the same store:

* every acknowledged submission resends to the same ``ReceiptId`` and creates nothing at the fake,
  and ``GetReceiptBasicV2`` finds its receipt;
* a submission in flight at the kill is complete or absent, never duplicated: its resend (once the
  dead holder's idempotency lease has run out) answers, and its reference has one correspondence.

Every test runs with one worker process per proxy and with two (``serve --workers 2``, where
``kill -9`` of the proxy takes its workers with it, as a container runtime would).

Two proxy processes started at once on one fresh PostgreSQL database (so they also race to migrate
it) and sent every reference at the same moment give each reference one correspondence and one
``ReceiptId``, and no two references the same ``ReceiptId``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from lxml import etree

from proxy.errors import InProgress
from proxy.sandbox.world import (
    Fakes,
    SandboxKeys,
    sandbox_settings_document,
    start_fakes,
    write_sandbox_files,
)
from proxy.store import BeginState, IdempotencyKey, StoreOptions, open_store
from proxy.store.model import utc_now
from tests.foundation.process import ProxyProcess, start_proxy

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SERVICE_OWNER = ("demo-so", "demo-so-password")
REPORTEE = "310000019"

AGENCY_PATH = "/ServiceEngineExternal/CorrespondenceAgencyExternalBasic.svc"
AGENCY_NS = "http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10"
CORRESPONDENCE_NS = "http://schemas.altinn.no/services/ServiceEngine/Correspondence/2010/10"
INSERT_ACTION = f"{AGENCY_NS}/ICorrespondenceAgencyExternalBasic/InsertCorrespondenceBasicV2"
INSERT_OPERATION = "InsertCorrespondenceBasicV2"

RECEIPTS_PATH = "/IntermediaryExternal/ReceiptAgencyExternalBasic.svc"
RECEIPT_SERVICE_NS = "http://www.altinn.no/services/Intermediary/Receipt/2009/10"
RECEIPT_NS = "http://schemas.altinn.no/services/Intermediary/Receipt/2015/06"
RECEIPT_ACTION = f"{RECEIPT_SERVICE_NS}/IReceiptAgencyExternalBasic/GetReceiptBasicV2"

#: A safety net against a hung proxy, not a measurement.
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=60)
WAIT_SECONDS = 60.0

BURST_SIZE = 300
BURST_CONCURRENCY = 24
KILL_AFTER_ACKNOWLEDGED = 120


# -- legacy SOAP, written by hand ------------------------------------------------------------------


def insert_envelope(reference: str) -> bytes:
    """An ``InsertCorrespondenceBasicV2`` request as demo-so, for ServiceCode 4711 edition 1."""
    user, password = SERVICE_OWNER
    return f"""<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
      <InsertCorrespondenceBasicV2 xmlns="{AGENCY_NS}" xmlns:c="{CORRESPONDENCE_NS}">
        <systemUserName>{user}</systemUserName><systemPassword>{password}</systemPassword>
        <SystemUserCode>TTD_DEMO</SystemUserCode>
        <ExternalShipmentReference>{reference}</ExternalShipmentReference>
        <Correspondence>
          <c:ServiceCode>4711</c:ServiceCode><c:ServiceEdition>1</c:ServiceEdition>
          <c:Reportee>{REPORTEE}</c:Reportee>
          <c:Content>
            <c:LanguageCode>1044</c:LanguageCode><c:MessageTitle>Vedtak {reference}</c:MessageTitle>
            <c:MessageSummary>Sammendrag</c:MessageSummary><c:MessageBody>Melding</c:MessageBody>
          </c:Content>
          <c:VisibleDateTime>2026-01-01T00:00:00</c:VisibleDateTime>
        </Correspondence>
      </InsertCorrespondenceBasicV2></s:Body></s:Envelope>""".encode()


def receipt_envelope(receipt_id: int) -> bytes:
    """A ``GetReceiptBasicV2`` request as demo-so."""
    user, password = SERVICE_OWNER
    return f"""<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
      <GetReceiptBasicV2 xmlns="{RECEIPT_SERVICE_NS}" xmlns:r="{RECEIPT_NS}">
        <systemUserName>{user}</systemUserName><systemPassword>{password}</systemPassword>
        <receipt><r:ReceiptId>{receipt_id}</r:ReceiptId></receipt>
      </GetReceiptBasicV2></s:Body></s:Envelope>""".encode()


class SoapFault(Exception):
    """The proxy answered with a SOAP fault; ``error_id`` is Altinn's ErrorID."""

    def __init__(self, status: int, error_id: str | None, body: str) -> None:
        super().__init__(f"HTTP {status}, ErrorID {error_id}: {body[:500]}")
        self.status = status
        self.error_id = error_id


async def soap_call(session: aiohttp.ClientSession, url: str, action: str, envelope: bytes) -> Any:
    """POST one SOAP 1.1 envelope; the parsed answer, or ``SoapFault``."""
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{action}"'}
    async with session.post(url, data=envelope, headers=headers) as response:
        body = await response.read()
    document = etree.fromstring(body)
    if response.status != 200:
        raise SoapFault(response.status, document.findtext(".//{*}ErrorID"), body.decode("utf-8", "replace"))
    return document


async def insert(session: aiohttp.ClientSession, proxy_url: str, reference: str) -> int:
    """Submit ``reference``; the ``ReceiptId`` the proxy acknowledged it with."""
    answer = await soap_call(session, proxy_url + AGENCY_PATH, INSERT_ACTION, insert_envelope(reference))
    assert answer.findtext(".//{*}ReceiptStatusCode") == "OK"
    assert answer.findtext(".//{*}ReferenceValue") == reference
    return int(answer.findtext(".//{*}ReceiptId"))


async def read_receipt(session: aiohttp.ClientSession, proxy_url: str, receipt_id: int) -> tuple[int, str]:
    """``(ReceiptId, ExternalShipmentReference)`` of the receipt ``GetReceiptBasicV2`` finds."""
    answer = await soap_call(session, proxy_url + RECEIPTS_PATH, RECEIPT_ACTION, receipt_envelope(receipt_id))
    assert answer.findtext(".//{*}ReceiptStatus") == "OK"
    assert answer.findtext(".//{*}ReferenceType") == "ExternalShipmentReference"
    return int(answer.findtext(".//{*}ReceiptId")), str(answer.findtext(".//{*}ReferenceValue"))


async def gather_bounded(concurrency: int, calls: Iterable[Any]) -> list[Any]:
    """Await the coroutines ``calls``, at most ``concurrency`` at a time, in order."""
    gate = asyncio.Semaphore(concurrency)

    async def bounded(call: Any) -> Any:
        async with gate:
            return await call

    return await asyncio.wait_for(asyncio.gather(*(bounded(call) for call in calls)), WAIT_SECONDS)


def correspondences_by_reference(fakes: Fakes) -> collections.Counter[str]:
    """How many correspondences the fake Altinn 3 holds for each senders reference."""
    return collections.Counter(
        item.request["sendersReference"] for item in fakes.correspondence.correspondences.values()
    )


# -- the world: fakes here, the proxy in child processes ------------------------------------------


@dataclass
class Deployment:
    """The fakes in this process, and how to start proxy processes against them on one store."""

    fakes: Fakes
    config: Path
    store_url: str
    #: Worker processes per proxy (``serve --workers``): kill -9 of the proxy kills them all.
    workers: int = 1
    processes: list[ProxyProcess] = field(default_factory=list)

    async def start_proxy(self) -> ProxyProcess:
        """A fresh ``altinn-proxy serve`` on the shared settings (and so the shared store)."""
        proxy = await start_proxy(
            "serve", "--config", str(self.config), "--workers", str(self.workers), cwd=REPO
        )
        self.processes.append(proxy)
        return proxy

    async def stop_all(self) -> None:
        """Kill whatever is still running (a test's own stops came first)."""
        for proxy in self.processes:
            if proxy.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    await proxy.terminate(signal.SIGKILL)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store for the proxies: a SQLite file in ``tmp_path``, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'store' / 'state.db'}"
    dsn: str = request.getfixturevalue("postgres_dsn")
    return dsn


@pytest.fixture(params=[1, 2], ids=["1-worker", "2-workers"])
def workers(request: pytest.FixtureRequest) -> int:
    """Worker processes per proxy: every durability guarantee holds across workers too."""
    count: int = request.param
    return count


@contextlib.asynccontextmanager
async def deploy(
    tmp_path: Path, keys: SandboxKeys, observer: Any, url: str, workers: int
) -> AsyncIterator[Deployment]:
    """Start the fakes and write a settings file whose store is ``url``; kill every proxy after."""
    async with start_fakes(tmp_path, observer=observer, keys=keys) as fakes:
        await asyncio.to_thread(write_sandbox_files, tmp_path, fakes.keys)
        document = sandbox_settings_document(fakes, tmp_path, port=0)
        document["store"] = {"url": url}
        config = tmp_path / "settings.yaml"
        await asyncio.to_thread(config.write_text, yaml.safe_dump(document, sort_keys=False))
        deployment = Deployment(fakes, config, url, workers)
        try:
            yield deployment
        finally:
            await deployment.stop_all()


@pytest.fixture
async def deployment(
    tmp_path: Path, sandbox_keys: SandboxKeys, altinn3_contract: Any, store_url: str, workers: int
) -> AsyncIterator[Deployment]:
    """The fakes, judged by Altinn's contract, and proxies on the parametrized store."""
    async with deploy(tmp_path, sandbox_keys, altinn3_contract, store_url, workers) as deployed:
        yield deployed


@pytest.fixture
async def postgres_deployment(
    tmp_path: Path, sandbox_keys: SandboxKeys, altinn3_contract: Any, postgres_dsn: str, workers: int
) -> AsyncIterator[Deployment]:
    """The fakes, judged by Altinn's contract, and proxies on one fresh PostgreSQL database."""
    async with deploy(tmp_path, sandbox_keys, altinn3_contract, postgres_dsn, workers) as deployed:
        yield deployed


# -- kill -9 during a burst ------------------------------------------------------------------------


@dataclass
class Burst:
    """What the client saw of a burst cut short by ``kill -9``."""

    acknowledged: dict[str, int] = field(default_factory=dict)
    #: Sent (or being sent) when the proxy was killed, and never acknowledged.
    in_flight: set[str] = field(default_factory=set)
    #: Never sent: the proxy was already dead.
    unsent: set[str] = field(default_factory=set)


async def burst_until_killed(proxy: ProxyProcess, references: list[str]) -> Burst:
    """Submit ``references`` concurrently; SIGKILL the proxy once enough are acknowledged."""
    burst = Burst()
    enough = asyncio.Event()
    failures: list[Exception] = []
    killed = False
    gate = asyncio.Semaphore(BURST_CONCURRENCY)

    async def submit(session: aiohttp.ClientSession, reference: str) -> None:
        async with gate:
            if killed:
                burst.unsent.add(reference)
                return
            burst.in_flight.add(reference)
            try:
                receipt_id = await insert(session, proxy.base_url, reference)
            except (aiohttp.ClientError, TimeoutError):
                return  # cut off by the kill: not acknowledged
            except Exception as error:  # a wrong answer: stop the burst and report it
                failures.append(error)
                enough.set()
                return
            burst.in_flight.discard(reference)
            burst.acknowledged[reference] = receipt_id
            if len(burst.acknowledged) >= KILL_AFTER_ACKNOWLEDGED:
                enough.set()

    connector = aiohttp.TCPConnector(limit=BURST_CONCURRENCY)
    async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT, connector=connector) as session:
        tasks = [asyncio.create_task(submit(session, reference)) for reference in references]
        try:
            try:
                await asyncio.wait_for(enough.wait(), WAIT_SECONDS)
            except TimeoutError:
                pytest.fail("too few acknowledgements; the proxy logged:\n" + "\n".join(proxy.raw[-20:]))
            killed = True
            code = await proxy.terminate(signal.SIGKILL)
            await asyncio.wait_for(asyncio.gather(*tasks), WAIT_SECONDS)
        finally:
            for task in tasks:
                task.cancel()
    if failures:
        raise failures[0]
    assert code == -signal.SIGKILL
    return burst


async def expire_dead_claims(store_url: str, references: Iterable[str]) -> None:
    """Let the killed process's idempotency leases run out, as time would.

    The dead holder's claims block resends for the whole lease (minutes). A store whose clock stands
    past that lease takes each stale claim over, exactly as a resend arriving then would, and
    releases it; a claim the dead process had completed is left as it is.
    """
    lease = StoreOptions().idempotency_lease

    def later() -> datetime:
        return utc_now() + lease + timedelta(minutes=1)

    store = await open_store(store_url, StoreOptions(clock=later, in_flight_wait=timedelta(0)))
    try:
        for reference in references:
            key = IdempotencyKey(SERVICE_OWNER[0], INSERT_OPERATION, reference)
            begun = await store.begin(key)
            if begun.state is BeginState.NEW:
                await store.fail(begun)
    finally:
        await store.close()


async def test_kill_9_during_a_burst_loses_no_acknowledged_submission(
    deployment: Deployment,
) -> None:
    references = [f"durable-{number:04d}" for number in range(BURST_SIZE)]
    first = await deployment.start_proxy()
    burst = await burst_until_killed(first, references)

    assert len(burst.acknowledged) >= KILL_AFTER_ACKNOWLEDGED
    assert burst.in_flight, "the kill should have cut some submissions off mid-flight"
    created = correspondences_by_reference(deployment.fakes)
    assert max(created.values()) == 1, "a submission created two correspondences"
    assert all(created[reference] == 1 for reference in burst.acknowledged)
    assert set(created) <= set(burst.acknowledged) | burst.in_flight, "an unsent reference was created"

    await expire_dead_claims(deployment.store_url, burst.in_flight)
    second = await deployment.start_proxy()
    async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as session:
        before = len(deployment.fakes.correspondence.correspondences)
        acknowledged = sorted(burst.acknowledged)
        resent = await gather_bounded(8, (insert(session, second.base_url, ref) for ref in acknowledged))
        assert dict(zip(acknowledged, resent, strict=True)) == burst.acknowledged
        assert len(deployment.fakes.correspondence.correspondences) == before, "a resend created anew"

        receipts = await gather_bounded(
            8, (read_receipt(session, second.base_url, burst.acknowledged[ref]) for ref in acknowledged)
        )
        assert receipts == [(burst.acknowledged[ref], ref) for ref in acknowledged]

        cut_off = sorted(burst.in_flight)
        recovered = await gather_bounded(8, (insert(session, second.base_url, ref) for ref in cut_off))
        again = await gather_bounded(8, (insert(session, second.base_url, ref) for ref in cut_off))
        assert again == recovered
        found = await gather_bounded(8, (read_receipt(session, second.base_url, rid) for rid in recovered))
        assert found == list(zip(recovered, cut_off, strict=True))

    created = correspondences_by_reference(deployment.fakes)
    assert {ref: created[ref] for ref in cut_off} == dict.fromkeys(cut_off, 1)
    assert max(created.values()) == 1
    receipt_ids = [*burst.acknowledged.values(), *recovered]
    assert len(set(receipt_ids)) == len(receipt_ids), "two submissions share a ReceiptId"
    assert await second.terminate(signal.SIGTERM) == 0


# -- two replicas on one PostgreSQL ----------------------------------------------------------------

OVERLAPPING_REFERENCES = 100
#: Altinn's answer to a resend while the first identical submission is still being processed.
IN_PROGRESS_ERROR_ID = str(InProgress.error_id)


async def insert_until_answered(session: aiohttp.ClientSession, proxy_url: str, reference: str) -> int:
    """Submit as a legacy client does: resend while the proxy says the twin is still in progress."""
    for _ in range(3):
        try:
            return await insert(session, proxy_url, reference)
        except SoapFault as fault:
            if fault.error_id != IN_PROGRESS_ERROR_ID:
                raise
    return await insert(session, proxy_url, reference)


@pytest.mark.postgres
async def test_two_proxy_processes_on_one_postgresql_create_each_reference_once(
    postgres_deployment: Deployment,
) -> None:
    replicas = await asyncio.gather(postgres_deployment.start_proxy(), postgres_deployment.start_proxy())
    references = [f"shared-{number:03d}" for number in range(OVERLAPPING_REFERENCES)]

    async def to_both(session: aiohttp.ClientSession, reference: str) -> tuple[int, int]:
        first, second = await asyncio.gather(
            *(insert_until_answered(session, replica.base_url, reference) for replica in replicas)
        )
        return first, second

    async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as session:
        answers = await gather_bounded(12, (to_both(session, reference) for reference in references))

    assert all(first == second for first, second in answers), "one reference got two ReceiptIds"
    receipt_ids = [first for first, _ in answers]
    assert len(set(receipt_ids)) == len(references), "two references share a ReceiptId"
    assert correspondences_by_reference(postgres_deployment.fakes) == dict.fromkeys(references, 1)
    codes = await asyncio.gather(*(replica.terminate(signal.SIGTERM) for replica in replicas))
    assert codes == [0, 0]
