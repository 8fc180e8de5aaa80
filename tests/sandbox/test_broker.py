"""The fake Altinn 3 Broker, over real sockets, judged by Altinn's published Broker contract.

Every request goes through ``observing_middleware`` to the ``altinn3_contract`` observer, and every
JSON response is checked with ``Contract.check_response``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from proxy.sandbox.broker import BrokerResource, FakeBroker, install_broker
from proxy.sandbox.broker_model import FileTransferStatus, RecipientStatus
from proxy.sandbox.observe import RequestObserver, observing_middleware
from proxy.sandbox.tokens import SigningKey, TokenVerifier, mint_access_token

MASKINPORTEN = "https://test.maskinporten.no/"
ALTINN = "https://platform.tt02.altinn.no/authentication/api/v1/openid/"
VENDOR = "991825827"
SERVICE_OWNER = "310000035"
SENDER = "310000019"
RECIPIENT = "310000027"
OUTSIDER = "310000043"
RESOURCE = "ttd-broker-4712"
ZIP_RESOURCE = "ttd-broker-zip"
MAX_SIZE = 8 * 1024 * 1024
BASE = "/broker/api/v1/filetransfer"
WRITE = "altinn:broker.write"
READ = "altinn:broker.read"


@dataclass
class FakeClock:
    """A clock the test moves by hand."""

    now: float = 1_780_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="session")
def keys() -> tuple[SigningKey, SigningKey]:
    """Maskinporten's and Altinn's signing keys, made once (RSA generation is slow) outside any loop."""
    return SigningKey.generate("mp"), SigningKey.generate("altinn")


def _resources() -> dict[str, BrokerResource]:
    both = frozenset({SENDER, RECIPIENT})
    return {
        RESOURCE: BrokerResource(RESOURCE, SERVICE_OWNER, MAX_SIZE, senders=both, recipients=both),
        ZIP_RESOURCE: BrokerResource(
            ZIP_RESOURCE, SERVICE_OWNER, MAX_SIZE, require_zip=True, senders=both, recipients=both
        ),
    }


class JudgedObserver:
    """Hands every request to the ``altinn3_contract`` observer.

    Inside :meth:`refused_by_contract` a request is instead required to break the contract: that is
    how the fake's own refusals of invalid requests are tested without failing the suite's guard.
    """

    def __init__(self, observer: RequestObserver, contract: Any) -> None:
        self._observer = observer
        self._contract = contract
        self._expect_violation = False
        self.violations: list[str] = []

    def __call__(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> None:
        if not self._expect_violation:
            self._observer(method, url, headers, body)
            return
        problems = self._contract.check_request(method, url, headers=headers, body=body)
        assert problems, f"Altinn's contract accepts {method} {url}"
        self.violations.extend(problems)

    @contextlib.contextmanager
    def refused_by_contract(self) -> Iterator[None]:
        """Within this block every request must be one the published contract refuses."""
        self._expect_violation = True
        try:
            yield
        finally:
            self._expect_violation = False


@dataclass
class Platform:
    """The platform app with the fake Broker, a client on a real socket, and token minting."""

    client: TestClient[web.Request, web.Application]
    broker: FakeBroker
    clock: FakeClock
    keys: tuple[SigningKey, SigningKey]
    contract: Any
    storage: Path
    observer: JudgedObserver
    checked: list[str] = field(default_factory=list)

    def token(self, org: str, scopes: str, *, exchanged: bool = False, service_owner: bool = False) -> str:
        """A bearer header for a system user of ``org`` (or for the service owner itself)."""
        key, issuer = (self.keys[1], ALTINN) if exchanged else (self.keys[0], MASKINPORTEN)
        if service_owner:
            token = mint_access_token(key, issuer=issuer, consumer_org=org, scopes=scopes)
        else:
            token = mint_access_token(
                key, issuer=issuer, consumer_org=VENDOR, scopes=scopes, system_user_org=org
            )
        return f"Bearer {token}"

    async def call(
        self, method: str, path: str, token: str | None, *, check: bool = True, **kwargs: Any
    ) -> tuple[int, Any, Mapping[str, str]]:
        """Make one call; judge the response by the contract unless ``check`` is off."""
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = token
        async with self.client.request(method, path, headers=headers, **kwargs) as response:
            raw = await response.read()
            content_type = response.headers.get("Content-Type", "")
            if check:
                url = str(response.url)
                problems = self.contract.check_response(
                    method, url, response.status, raw, content_type.split(";")[0], dict(response.headers)
                )
                assert problems == [], f"{method} {path} -> {response.status}: {problems}"
                self.checked.append(f"{method} {path}")
            document = json.loads(raw) if raw and content_type.startswith("application/json") else raw
            return response.status, document, response.headers

    async def initialize(self, *, sender: str = SENDER, resource: str = RESOURCE, **fields: Any) -> str:
        """Initialize a file transfer as ``sender`` and return its id."""
        body = {
            "resourceId": resource,
            "fileName": "payload.zip",
            "sender": f"0192:{sender}",
            "recipients": [f"0192:{RECIPIENT}"],
            "sendersFileTransferReference": "ref-1",
            "propertyList": {"kind": "test"},
        } | fields
        status, document, _ = await self.call("POST", BASE, self.token(sender, WRITE), json=body)
        assert status == 200, document
        return str(document["fileTransferId"])

    async def upload(self, transfer_id: str, data: bytes, *, sender: str = SENDER) -> tuple[int, Any]:
        """Upload ``data`` in one octet-stream body."""
        status, document, _ = await self.call(
            "POST",
            f"{BASE}/{transfer_id}/upload",
            self.token(sender, WRITE),
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        return status, document

    async def overview(self, transfer_id: str, org: str = SENDER) -> dict[str, Any]:
        """``GET /filetransfer/{id}`` as ``org``."""
        status, document, _ = await self.call("GET", f"{BASE}/{transfer_id}", self.token(org, READ))
        assert status == 200, document
        return dict(document)

    async def available(self, org: str = RECIPIENT, **query: str) -> list[str]:
        """Ids listed for ``org`` as recipient."""
        params = {"resourceId": RESOURCE, "role": "Recipient"} | query
        status, document, _ = await self.call(
            "GET", BASE, self.token(org, READ, exchanged=True), params=params
        )
        assert status == 200, document
        return list(document)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def platform(
    aiohttp_client: Callable[..., Any],
    altinn3_contract: RequestObserver,
    _contract_module: Any,
    keys: tuple[SigningKey, SigningKey],
    clock: FakeClock,
    tmp_path: Path,
) -> Platform:
    verifier = TokenVerifier(MASKINPORTEN, keys[0], ALTINN, keys[1])
    observer = JudgedObserver(altinn3_contract, _contract_module)
    app = web.Application(middlewares=[observing_middleware(observer)])
    storage = tmp_path / "broker"
    broker = install_broker(
        app, verifier=verifier, resources=_resources(), storage_dir=storage, clock=clock, publish_delay=5.0
    )
    client = await aiohttp_client(app, timeout=aiohttp.ClientTimeout(total=30))
    return Platform(client, broker, clock, keys, _contract_module, storage, observer)


def _payload(size: int) -> bytes:
    return hashlib.shake_256(b"broker").digest(size)


async def _chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.xml", "<data/>")
    return buffer.getvalue()


async def test_full_flow_from_initialize_to_confirmed_download(platform: Platform) -> None:
    data = _payload(3 * 1024 * 1024 + 17)
    transfer_id = await platform.initialize(checksum=hashlib.md5(data, usedforsecurity=False).hexdigest())
    assert (await platform.overview(transfer_id))["fileTransferStatus"] == "Initialized"

    status, document, _ = await platform.call(
        "POST",
        f"{BASE}/{transfer_id}/upload",
        platform.token(SENDER, WRITE),
        data=_chunks(data),
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
    )
    assert (status, document) == (200, {"fileTransferId": transfer_id})
    assert platform.storage.joinpath(f"{transfer_id}.bin").stat().st_size == len(data)
    assert platform.broker.files.partial_files() == []

    assert (await platform.overview(transfer_id))["fileTransferStatus"] == "UploadProcessing"
    assert await platform.available() == [], "recipients only see published files"
    platform.clock.now += 5
    overview = await platform.overview(transfer_id, RECIPIENT)
    assert overview["fileTransferStatus"] == "Published"
    assert overview["fileTransferSize"] == len(data)
    assert overview["sender"] == f"0192:{SENDER}"
    assert overview["recipients"][0]["currentRecipientFileTransferStatusCode"] == "Initialized"
    assert await platform.available(recipientStatus="Initialized") == [transfer_id]

    token = platform.token(RECIPIENT, READ)
    # Binary 200/206 bodies are not judged: the contract tool cannot validate bytes as format binary.
    status, body, headers = await platform.call("GET", f"{BASE}/{transfer_id}/download", token, check=False)
    assert status == 200
    assert body == data
    assert headers["Content-Type"] == "application/octet-stream"
    assert "payload.zip" in headers["Content-Disposition"]
    status, body, headers = await platform.call(
        "GET", f"{BASE}/{transfer_id}/download", token, check=False, headers={"Range": "bytes=1000-1999"}
    )
    assert status == 206
    assert body == data[1000:2000]
    assert headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    assert platform.broker.transfers[uuid.UUID(transfer_id)].recipients[RECIPIENT].status is (
        RecipientStatus.DOWNLOAD_STARTED
    )

    status, _, _ = await platform.call("POST", f"{BASE}/{transfer_id}/confirmdownload", token)
    assert status == 200
    assert await platform.available(recipientStatus="Initialized") == []
    assert await platform.available(recipientStatus="DownloadConfirmed") == [transfer_id]
    overview = await platform.overview(transfer_id)
    assert overview["fileTransferStatus"] == "AllConfirmedDownloaded"

    status, details, _ = await platform.call(
        "GET", f"{BASE}/{transfer_id}/details", platform.token(SENDER, WRITE)
    )
    assert status == 200
    assert [e["fileTransferStatus"] for e in details["fileTransferStatusHistory"]] == [
        "Initialized",
        "UploadStarted",
        "UploadProcessing",
        "Published",
        "AllConfirmedDownloaded",
    ]
    assert [e["recipientFileTransferStatusCode"] for e in details["recipientFileTransferStatusHistory"]] == [
        "Initialized",
        "DownloadStarted",
        "DownloadConfirmed",
    ]

    # As in Altinn/altinn-broker: the file stays downloadable once everyone confirmed, but only a
    # Published transfer can be confirmed (DownloadFileHandler, ConfirmDownloadHandler).
    status, body, _ = await platform.call("GET", f"{BASE}/{transfer_id}/download", token, check=False)
    assert (status, body) == (200, data)
    status, problem, _ = await platform.call(
        "POST", f"{BASE}/{transfer_id}/confirmdownload", token, check=False
    )
    assert (status, problem["code"]) == (400, "BRO-00010")


async def test_a_transfer_is_purged_when_its_time_to_live_runs_out(platform: Platform) -> None:
    transfer_id = await platform.initialize()
    await platform.upload(transfer_id, b"body")
    platform.clock.now += 5
    assert (await platform.overview(transfer_id))["fileTransferStatus"] == "Published"

    platform.clock.now += platform.broker.time_to_live
    await platform.broker.process_pending()

    assert (await platform.overview(transfer_id))["fileTransferStatus"] == "Purged"
    assert not platform.storage.joinpath(f"{transfer_id}.bin").exists()
    assert await platform.available() == []
    status, problem, _ = await platform.call(
        "GET", f"{BASE}/{transfer_id}/download", platform.token(RECIPIENT, READ), check=False
    )
    assert (status, problem["code"]) == (403, "BRO-00007")


async def test_sender_and_service_owner_listings(platform: Platform) -> None:
    transfer_id = await platform.initialize()
    token = platform.token(SENDER, READ)
    status, ids, _ = await platform.call(
        "GET", BASE, token, params={"resourceId": RESOURCE, "role": "Sender"}
    )
    assert (status, ids) == (200, [transfer_id])
    status, ids, _ = await platform.call(
        "GET", BASE, token, params={"resourceId": RESOURCE, "status": "Published"}
    )
    assert (status, ids) == (200, [])
    owner = platform.token(SERVICE_OWNER, "altinn:serviceowner", service_owner=True)
    status, ids, _ = await platform.call("GET", BASE, owner, params={"resourceId": RESOURCE})
    assert (status, ids) == (200, [transfer_id])
    assert (await platform.call("GET", f"{BASE}/{transfer_id}", owner))[0] == 200
    outsider = platform.token(OUTSIDER, READ)
    status, ids, _ = await platform.call("GET", BASE, outsider, params={"resourceId": RESOURCE})
    assert (status, ids) == (200, [])
    assert (await platform.call("GET", f"{BASE}/{transfer_id}", outsider))[0] == 404


async def test_single_call_multipart_upload(platform: Platform) -> None:
    data = _payload(300_000)
    form = aiohttp.FormData()
    form.add_field("Metadata.FileName", "report.bin")
    form.add_field("Metadata.ResourceId", RESOURCE)
    form.add_field("Metadata.Sender", f"0192:{SENDER}")
    form.add_field("Metadata.Recipients", f"0192:{RECIPIENT}")
    form.add_field("Metadata.PropertyList[kind]", "multipart")
    form.add_field("Metadata.Checksum", hashlib.md5(data, usedforsecurity=False).hexdigest())
    form.add_field("FileTransfer", data, filename="report.bin", content_type="application/octet-stream")
    status, transfer_id, _ = await platform.call(
        "POST", f"{BASE}/upload", platform.token(SENDER, WRITE), data=form
    )
    assert status == 200
    platform.clock.now += 5
    overview = await platform.overview(transfer_id)
    assert overview["fileTransferStatus"] == "Published"
    assert overview["propertyList"] == {"kind": "multipart"}
    assert overview["fileTransferSize"] == len(data)


async def test_refusals_of_initialize(platform: Platform) -> None:
    body = {
        "resourceId": RESOURCE,
        "fileName": "a.zip",
        "sender": f"0192:{SENDER}",
        "recipients": [f"0192:{RECIPIENT}"],
    }
    status, problem, _ = await platform.call("POST", BASE, platform.token(SENDER, READ), json=body)
    assert status == 403, "initialize needs altinn:broker.write"
    assert problem["status"] == 403

    status, problem, headers = await platform.call("POST", BASE, None, json=body)
    assert status == 401
    assert headers["WWW-Authenticate"] == "Bearer"

    status, problem, _ = await platform.call("POST", BASE, platform.token(RECIPIENT, WRITE), json=body)
    assert (status, problem["code"]) == (401, "BRO-00006"), "the token's org must be the sender"

    outsider = body | {"sender": f"0192:{OUTSIDER}"}
    status, problem, _ = await platform.call("POST", BASE, platform.token(OUTSIDER, WRITE), json=outsider)
    assert (status, problem["code"]) == (401, "BRO-00006"), "the resource does not let this org send"

    status, problem, _ = await platform.call(
        "POST", BASE, platform.token(SENDER, WRITE), json=body | {"resourceId": "ttd-unknown"}
    )
    assert (status, problem["code"]) == (403, "BRO-00005")

    status, problem, _ = await platform.call(
        "POST", BASE, platform.token(SENDER, WRITE), json=body | {"disableVirusScan": True}
    )
    assert (status, problem["code"]) == (400, "BRO-00020")


async def test_invalid_initialize_bodies_are_refused_by_fake_and_contract(platform: Platform) -> None:
    cases: list[dict[str, Any]] = [
        {"resourceId": RESOURCE, "fileName": "a.zip", "sender": f"0192:{SENDER}", "recipients": []},
        {
            "resourceId": RESOURCE,
            "fileName": "",
            "sender": f"0192:{SENDER}",
            "recipients": ["0192:310000027"],
        },
        {"resourceId": RESOURCE, "fileName": "a", "sender": SENDER, "recipients": ["0192:310000027"]},
        {
            "resourceId": RESOURCE,
            "fileName": "a",
            "sender": f"0192:{SENDER}",
            "recipients": ["0192:310000027"],
            "propertyList": {f"k{i}": "v" for i in range(11)},
        },
    ]
    for body in cases:
        with platform.observer.refused_by_contract():
            status, problem, _ = await platform.call("POST", BASE, platform.token(SENDER, WRITE), json=body)
        assert status == 400, body
        assert problem["errors"], problem


async def test_refusals_of_upload(platform: Platform) -> None:
    transfer_id = await platform.initialize()
    status, problem, _ = await platform.call(
        "POST",
        f"{BASE}/{transfer_id}/upload",
        platform.token(SENDER, WRITE),
        data=_chunks(b"x" * (MAX_SIZE + 1)),
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(MAX_SIZE + 1)},
    )
    assert (status, problem["code"]) == (400, "BRO-00016"), "too large"
    assert (await platform.overview(transfer_id))["fileTransferStatus"] == "Initialized"

    assert (await platform.upload(transfer_id, b"ok", sender=RECIPIENT))[0] == 401, "only the sender uploads"
    assert (await platform.upload(transfer_id, b"first"))[0] == 200
    status, problem = await platform.upload(transfer_id, b"second")
    assert (status, problem["code"]) == (409, "BRO-00004")

    mismatching = await platform.initialize(checksum=hashlib.md5(b"other", usedforsecurity=False).hexdigest())
    status, problem = await platform.upload(mismatching, b"these bytes")
    assert (status, problem["code"]) == (400, "BRO-00009")
    assert (await platform.overview(mismatching))["fileTransferStatus"] == "Failed"
    assert not platform.storage.joinpath(f"{mismatching}.bin").exists()

    status, problem = await platform.upload("7f3c0a8e-7c43-4d5e-9a57-0a4f5a1e2b3c", b"x")
    assert (status, problem["code"]) == (404, "BRO-00001")
    assert platform.broker.files.partial_files() == []


async def test_refusals_of_download_and_confirm(platform: Platform) -> None:
    transfer_id = await platform.initialize()
    token = platform.token(RECIPIENT, READ)
    status, problem, _ = await platform.call("GET", f"{BASE}/{transfer_id}/download", token, check=False)
    assert (status, problem["code"]) == (403, "BRO-00007"), "nothing uploaded yet: not available"
    await platform.upload(transfer_id, b"body")
    status, problem, _ = await platform.call("GET", f"{BASE}/{transfer_id}/download", token, check=False)
    assert (status, problem["code"]) == (403, "BRO-00007"), "still processing"
    platform.clock.now += 5

    status, problem, _ = await platform.call("POST", f"{BASE}/{transfer_id}/confirmdownload", token)
    assert (status, problem["code"]) == (400, "BRO-00019"), "confirm before download"
    sender = platform.token(SENDER, READ)
    status, problem, _ = await platform.call("GET", f"{BASE}/{transfer_id}/download", sender, check=False)
    assert (status, problem["code"]) == (404, "BRO-00001"), "the sender is not a recipient"
    write_only = platform.token(RECIPIENT, WRITE)
    status, _, _ = await platform.call("GET", f"{BASE}/{transfer_id}/download", write_only, check=False)
    assert status == 403, "download needs altinn:broker.read"
    with platform.observer.refused_by_contract():
        status, _, _ = await platform.call("GET", f"{BASE}/not-a-guid/download", token, check=False)
    assert status == 400


async def test_a_file_that_is_not_a_zip_fails_where_the_resource_requires_one(platform: Platform) -> None:
    bad = await platform.initialize(resource=ZIP_RESOURCE)
    good = await platform.initialize(resource=ZIP_RESOURCE)
    await platform.upload(bad, b"plain text, no archive")
    await platform.upload(good, _zip_bytes())
    platform.clock.now += 5
    assert await platform.broker.process_pending() == 2
    failed = await platform.overview(bad)
    assert failed["fileTransferStatus"] == "Failed"
    assert "ZIP" in failed["fileTransferStatusText"]
    assert (await platform.overview(good))["fileTransferStatus"] == "Published"
    assert not platform.storage.joinpath(f"{bad}.bin").exists()
    token = platform.token(RECIPIENT, READ)
    status, problem, _ = await platform.call("GET", f"{BASE}/{bad}/download", token, check=False)
    assert (status, problem["code"]) == (403, "BRO-00007")


async def test_client_that_disconnects_mid_upload_leaves_nothing_behind(platform: Platform) -> None:
    transfer_id = await platform.initialize()
    server = platform.client.server
    _, writer = await asyncio.open_connection(server.host, server.port)
    head = (
        f"POST {BASE}/{transfer_id}/upload HTTP/1.1\r\n"
        f"Host: {server.host}:{server.port}\r\n"
        f"Authorization: {platform.token(SENDER, WRITE)}\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Length: {4 * 1024 * 1024}\r\n\r\n"
    )
    writer.write(head.encode() + _payload(1024 * 1024 + 5))
    await writer.drain()
    transfer = platform.broker.transfers[uuid.UUID(transfer_id)]
    async with asyncio.timeout(10):
        await platform.broker.wait_until(lambda: transfer.status is not FileTransferStatus.INITIALIZED)
    writer.close()
    await writer.wait_closed()
    async with asyncio.timeout(10):
        await platform.broker.wait_until(lambda: transfer.status is not FileTransferStatus.UPLOAD_STARTED)
    assert list(platform.storage.iterdir()) == []
    overview = await platform.overview(transfer_id)
    assert overview["fileTransferStatus"] == "Failed"
    status, problem = await platform.upload(transfer_id, b"retry")
    assert (status, problem["code"]) == (409, "BRO-00004"), "one upload attempt per file transfer"


async def test_background_mode_publishes_without_reads(
    aiohttp_client: Callable[..., Any], keys: tuple[SigningKey, SigningKey], tmp_path: Path
) -> None:
    verifier = TokenVerifier(MASKINPORTEN, keys[0], ALTINN, keys[1])
    app = web.Application(middlewares=[observing_middleware(None)])
    broker = install_broker(
        app, verifier=verifier, resources=_resources(), storage_dir=tmp_path, background_interval=0.01
    )
    client = await aiohttp_client(app, timeout=aiohttp.ClientTimeout(total=30))
    token = mint_access_token(
        keys[0], issuer=MASKINPORTEN, consumer_org=VENDOR, scopes=WRITE, system_user_org=SENDER
    )
    body = {
        "resourceId": RESOURCE,
        "fileName": "a",
        "sender": f"0192:{SENDER}",
        "recipients": [f"0192:{RECIPIENT}"],
    }
    headers = {"Authorization": f"Bearer {token}"}
    async with client.post(BASE, json=body, headers=headers) as response:
        transfer_id = (await response.json())["fileTransferId"]
    headers["Content-Type"] = "application/octet-stream"
    async with client.post(f"{BASE}/{transfer_id}/upload", data=b"abc", headers=headers) as response:
        assert response.status == 200
    transfer = broker.transfers[uuid.UUID(transfer_id)]
    async with asyncio.timeout(10):
        await broker.wait_until(lambda: transfer.status is FileTransferStatus.PUBLISHED)
    assert transfer.published is not None


@pytest.fixture(autouse=True)
def _no_partial_files_left(tmp_path: Path) -> Iterator[None]:
    yield
    assert list(tmp_path.rglob(".partial-*")) == []
