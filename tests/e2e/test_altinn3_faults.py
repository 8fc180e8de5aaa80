"""Altinn 3 misbehaving, through the real proxy process (``altinn-proxy serve`` on a real socket).

The fakes run in the test process behind a fault-injecting reverse proxy (``tests/e2e/chaos.py``);
legacy callers are zeep clients built from the original WSDLs. What must hold:

* 502/503 bursts: an idempotent call is tried ``upstream.attempts`` times and succeeds when the
  burst is shorter; a longer burst, or any failure of a non-idempotent call (not retried), is a
  Server fault; ``upstream.breaker_failures`` failures in a row open the circuit, which then fails
  calls without reaching Altinn 3, and closes by itself after ``breaker_reset_seconds``;
* an answer that never comes, or comes too slowly, is cut off at ``timeouts.total``;
* a connection cut in the middle of a broker upload is a fault (as in Altinn 3, that transfer is
  spent and a new one must be initiated), in the middle of a download the legacy client sees a
  broken answer, never a short file;
* afterwards no upstream request is still open; once the upstream closes its idle keep-alive
  connections the proxy holds no socket to it (counted in ``/proc``: none left half-closed); the
  proxy's temporary folder is empty and it holds no file open there, not even an unlinked one; it
  is healthy, and no log line or metric holds a secret.

Nothing here waits on a clock: the proxy's own deadlines end each fault, and the test only waits
for what the proxy does (a breaker closing is polled without a time limit of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from proxy.sandbox.broker_model import FileTransferStatus
from proxy.sandbox.world import (
    Fakes,
    SandboxKeys,
    sandbox_settings_document,
    start_fakes,
    write_sandbox_files,
)
from tests.e2e.chaos import Chaos, Fault, serve_chaos, until
from tests.e2e.conftest import fault_fields, legacy_client
from tests.e2e.leaks import known_secrets, leaks
from tests.e2e.proc_sockets import open_files_under, tcp_sockets_to
from tests.e2e.test_broker import BASIC, RECIPIENT, SENDER, STREAMED, _available, _initiate, _upload, _wsdls
from tests.foundation.process import ProxyProcess, start_proxy

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TRANSFERS = "/broker/api/v1/filetransfer"
ATTEMPTS = 3
BREAKER_FAILURES = 4
TIMEOUT = aiohttp.ClientTimeout(total=60)  # a safety net against a hung proxy, not a measurement


@dataclass
class Faulty:
    """The fakes, the chaos proxy in front of them and an ``altinn-proxy serve`` using it."""

    fakes: Fakes
    chaos: Chaos
    proxy: ProxyProcess
    workdir: Path
    tmpdir: Path
    basic: Any = None
    streamed: Any = None

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run a (blocking) zeep call in a thread; a zeep Fault is returned, not raised."""
        import zeep.exceptions

        def run() -> Any:
            try:
                return function(*args)
            except zeep.exceptions.Fault as fault:
                return fault

        return await asyncio.to_thread(run)

    async def settle(self) -> None:
        """Wait until the chaos proxy has no request open (the proxy closed every cut-off one)."""
        await self.chaos.idle.wait()


@contextlib.asynccontextmanager
async def faulty_deployment(
    tmp_path: Path,
    keys: SandboxKeys,
    observer: Any,
    reference: os.PathLike[str],
    log_level: str = "info",
    limits: dict[str, float] | None = None,
    sections: dict[str, dict[str, Any]] | None = None,
    upstream_deadline: float = 30.0,
) -> AsyncIterator[Faulty]:
    """Fakes, chaos and one proxy process whose deadlines are short enough for a test.

    ``sections`` are merged into the settings document's sections of those names.
    ``upstream_deadline`` is every outbound timeout: short where a test injects hanging or slow
    answers, generous elsewhere, so that a starved shared machine does not look like a slow Altinn.

    On the way out: no upstream request open and, once the upstream has closed its side, no socket
    to it; no temporary file, open or not; ready; and no secret in any log line or metric (the scan
    of :mod:`tests.e2e.leaks`).
    """
    async with (
        start_fakes(tmp_path, observer=observer, keys=keys) as fakes,
        serve_chaos(fakes.platform_url) as (chaos, chaos_url),
    ):
        await asyncio.to_thread(write_sandbox_files, tmp_path, fakes.keys)
        document = sandbox_settings_document(fakes, tmp_path, port=0)
        document["altinn"].update(platform_url=chaos_url, apps_url=chaos_url + "/apps/{org}")
        deadline = upstream_deadline
        document["timeouts"].update(connect=deadline, total=deadline, read=deadline)
        document["logging"] = {"level": log_level}
        document["limits"] = limits or {}
        document["upstream"] = {
            "attempts": ATTEMPTS,
            "retry_base_delay": 0.05,
            "retry_max_delay": 0.1,
            "breaker_failures": BREAKER_FAILURES,
            "breaker_reset_seconds": 1.0,
        }
        for section, values in (sections or {}).items():
            document.setdefault(section, {}).update(values)
        config = tmp_path / "settings.yaml"
        await asyncio.to_thread(config.write_text, yaml.safe_dump(document, sort_keys=False))
        tmpdir = tmp_path / "proxy-tmp"
        tmpdir.mkdir()
        proxy = await start_proxy("serve", "--config", str(config), cwd=REPO, env={"TMPDIR": str(tmpdir)})
        faulty = Faulty(fakes, chaos, proxy, tmp_path, tmpdir)
        basic_wsdl, streamed_wsdl = _wsdls(reference)
        faulty.basic, faulty.streamed = await asyncio.gather(
            asyncio.to_thread(legacy_client, basic_wsdl, proxy.base_url + BASIC),
            asyncio.to_thread(legacy_client, streamed_wsdl, proxy.base_url + STREAMED),
        )
        try:
            yield faulty
            await faulty.settle()
            assert list(tmpdir.iterdir()) == [], "a temporary file was left behind"
            assert open_files_under(proxy.process.pid, tmpdir) == [], "a temporary file is still open"
            await _no_upstream_socket_left(faulty, chaos_url)
            await _assert_healthy_and_no_secret(faulty)
        finally:
            if proxy.process.returncode is None:
                assert await proxy.terminate() == 0


async def _no_upstream_socket_left(faulty: Faulty, chaos_url: str) -> None:
    """Close the upstream's side of every idle connection; wait until the proxy holds none either.

    A connection the proxy lost track of (a response never released) would stay half-closed
    (CLOSE_WAIT) in the proxy for good, and this would wait until the test's timeout.
    """
    pid, port = faulty.proxy.process.pid, int(chaos_url.rsplit(":", 1)[1])
    faulty.chaos.close_connections()
    await until(lambda: tcp_sockets_to(pid, port) == [])


async def _assert_healthy_and_no_secret(faulty: Faulty) -> None:
    proxy = faulty.proxy
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.get(proxy.base_url + "/readyz") as response:
            assert response.status == 200
        async with session.get(f"http://127.0.0.1:{proxy.metrics_port}/metrics") as response:
            metrics = await response.text()
    assert await proxy.terminate() == 0
    secrets = known_secrets(faulty.fakes, faulty.workdir)
    assert leaks([*proxy.raw, *metrics.splitlines()], secrets) == []


@pytest.fixture
async def faulty(
    tmp_path: Path, sandbox_keys: SandboxKeys, altinn3_contract: Any, reference: os.PathLike[str]
) -> AsyncIterator[Faulty]:
    async with faulty_deployment(
        tmp_path, sandbox_keys, altinn3_contract, reference, upstream_deadline=2.0
    ) as deployed:
        yield deployed


def _is_unavailable(answer: Any) -> bool:
    import zeep.exceptions

    return (
        isinstance(answer, zeep.exceptions.Fault)
        and "not available" in fault_fields(answer)["AltinnErrorMessage"]
    )


async def test_bursts_are_retried_as_configured_and_the_breaker_opens_and_closes(faulty: Faulty) -> None:
    chaos, basic = faulty.chaos, faulty.basic
    gets = chaos.count("GET", TRANSFERS)

    chaos.inject(Fault("status", TRANSFERS, "GET", times=ATTEMPTS - 1, status=503))
    assert await faulty.call(_available, basic, RECIPIENT) == []
    assert chaos.count("GET", TRANSFERS) - gets == ATTEMPTS, "two 503s, then the third attempt passed"

    chaos.inject(Fault("status", TRANSFERS, "GET", times=ATTEMPTS, status=502))
    assert _is_unavailable(await faulty.call(_available, basic, RECIPIENT))
    assert chaos.count("GET", TRANSFERS) - gets == 2 * ATTEMPTS

    # The upload initialises the Altinn 3 transfer: a creating call.
    file_reference = await faulty.call(_initiate, basic, SENDER, RECIPIENT[2], "burst")
    posts = chaos.count("POST", TRANSFERS)
    chaos.inject(Fault("status", TRANSFERS, "POST", times=1, status=503))
    payload = b"PK\x05\x06" + bytes(18)
    assert _is_unavailable(await faulty.call(_upload, faulty.streamed, SENDER, file_reference, payload))
    assert chaos.count("POST", TRANSFERS) - posts == 1, "a creating call is never retried"

    # Four failures in a row: the circuit is open and calls fail without reaching Altinn 3.
    seen = len(chaos.requests)
    answer = await faulty.call(_available, basic, RECIPIENT)
    assert _is_unavailable(answer)
    assert len(chaos.requests) == seen

    # It closes by itself: a trial call passes once the reset time is over.
    answers: list[Any] = []

    async def poll() -> None:
        await asyncio.sleep(0.1)
        answers.append(await faulty.call(_available, basic, RECIPIENT))

    while not answers or _is_unavailable(answers[-1]):
        await poll()
    assert answers[-1] == []
    receipt = await faulty.call(_upload, faulty.streamed, SENDER, file_reference, payload)
    assert getattr(receipt, "ReceiptStatusCode", receipt) == "OK"


async def test_answers_that_never_come_or_come_slowly_are_cut_off(faulty: Faulty) -> None:
    chaos, basic = faulty.chaos, faulty.basic
    # The upload initialises the Altinn 3 transfer (under the uploaded file name).
    file_reference = await faulty.call(_initiate, basic, SENDER, RECIPIENT[2], "hang")
    posts = chaos.count("POST", TRANSFERS)
    chaos.inject(Fault("hang", TRANSFERS, "POST"))
    answer = await faulty.call(_upload, faulty.streamed, SENDER, file_reference, b"PK\x05\x06" + bytes(18))
    assert _is_unavailable(answer)
    assert chaos.count("POST", TRANSFERS) - posts == 1
    await faulty.settle()  # the proxy closed the connection it gave up on

    gets = chaos.count("GET", TRANSFERS)
    chaos.inject(Fault("slow", TRANSFERS, "GET", drip=30.0))
    assert await faulty.call(_available, basic, RECIPIENT) == []  # the retry got a prompt answer
    assert chaos.count("GET", TRANSFERS) - gets == 2
    chaos.inject(Fault("slow", TRANSFERS, "GET", times=ATTEMPTS, drip=30.0))
    assert _is_unavailable(await faulty.call(_available, basic, RECIPIENT))


async def test_a_resent_upload_reuses_the_transfer_its_first_attempt_initialised(faulty: Faulty) -> None:
    broker = faulty.fakes.broker
    file_reference = await faulty.call(_initiate, faulty.basic, SENDER, RECIPIENT[2], "resent")
    # The transfer is initialised, then its upload is refused before Altinn 3 reads a byte.
    faulty.chaos.inject(Fault("status", f"{TRANSFERS}/", "POST", status=503))
    payload = b"PK\x05\x06" + bytes(18)
    assert _is_unavailable(await faulty.call(_upload, faulty.streamed, SENDER, file_reference, payload))

    receipt = await faulty.call(_upload, faulty.streamed, SENDER, file_reference, payload)

    assert getattr(receipt, "ReceiptStatusCode", receipt) == "OK"
    sent = [t for t in broker.transfers.values() if t.request.senders_reference == "resent"]
    assert len(sent) == 1  # the resend found the first attempt's transfer: nothing orphaned
    await broker.wait_until(lambda: sent[0].status is FileTransferStatus.PUBLISHED)
    assert sent[0].stored_size == len(payload)


async def test_a_resend_after_the_initialisation_answer_was_lost_claims_that_transfer(faulty: Faulty) -> None:
    broker = faulty.fakes.broker
    file_reference = await faulty.call(_initiate, faulty.basic, SENDER, RECIPIENT[2], "lost-answer")
    # Altinn 3 initialises the transfer, but the proxy never learns its id (as if it died then).
    faulty.chaos.inject(Fault("drop", TRANSFERS, "POST"))
    payload = b"PK\x05\x06" + bytes(18)
    assert _is_unavailable(await faulty.call(_upload, faulty.streamed, SENDER, file_reference, payload))
    [first] = [t for t in broker.transfers.values() if t.request.senders_reference == "lost-answer"]
    assert first.status is FileTransferStatus.INITIALIZED
    await faulty.settle()

    receipt = await faulty.call(_upload, faulty.streamed, SENDER, file_reference, payload)

    assert getattr(receipt, "ReceiptStatusCode", receipt) == "OK"
    sent = [t for t in broker.transfers.values() if t.request.senders_reference == "lost-answer"]
    assert sent == [first]  # found and claimed: no second transfer, no orphan
    await broker.wait_until(lambda: first.status is FileTransferStatus.PUBLISHED)
    assert first.stored_size == len(payload)


async def test_connections_cut_mid_upload_and_mid_download(faulty: Faulty) -> None:
    import zeep.exceptions

    chaos, basic, streamed = faulty.chaos, faulty.basic, faulty.streamed
    broker = faulty.fakes.broker
    payload = os.urandom(3 * 1024 * 1024 + 5)
    file_reference = await faulty.call(_initiate, basic, SENDER, RECIPIENT[2], "cut")
    assert isinstance(file_reference, str)

    # Every upload (a POST below the transfers), not the initialisation before it.
    chaos.inject(Fault("reset", f"{TRANSFERS}/", "POST", after_bytes=256 * 1024))
    answer = await faulty.call(_upload, streamed, SENDER, file_reference, payload)
    assert _is_unavailable(answer), answer
    await faulty.settle()

    # As in Altinn 3, a transfer whose upload broke off cannot be uploaded again: a new one can.
    again = await faulty.call(_upload, streamed, SENDER, file_reference, payload)
    assert fault_fields(again)["ErrorID"] == "40208"
    assert "initiate a new file transfer" in fault_fields(again)["AltinnErrorMessage"]
    file_reference = await faulty.call(_initiate, basic, SENDER, RECIPIENT[2], "cut-again")
    receipt = await faulty.call(_upload, streamed, SENDER, file_reference, payload)
    assert getattr(receipt, "ReceiptStatusCode", receipt) == "OK"
    transfer = broker.sent_with("cut-again")
    await broker.wait_until(lambda: transfer.status is FileTransferStatus.PUBLISHED)

    user, password, org = RECIPIENT
    chaos.inject(Fault("reset", f"{TRANSFERS}/{transfer.id}/download", "GET", after_bytes=512 * 1024))

    def download() -> bytes | Exception:
        try:
            data: bytes = streamed.DownloadFileStreamedBasic(user, password, file_reference, org)
        except (zeep.exceptions.Error, OSError, ValueError) as broken:
            return broken
        except Exception as broken:  # requests' and urllib3's own errors for a cut answer
            return broken
        return data

    cut = await asyncio.to_thread(download)
    assert not isinstance(cut, bytes) or cut != payload, "a cut download must not look complete"
    assert isinstance(cut, Exception), f"a cut download gave {len(cut)} bytes instead of an error"
    await faulty.settle()
    assert await asyncio.to_thread(download) == payload
