"""Legacy REST broker end to end: one org sends through its outbox, another lists, downloads, confirms.

Also the refusals a sender can meet before anything reaches Altinn 3: a body over the limit, a body
that stalls, a ZIP-only service given something else.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import ssl
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from proxy.sandbox.broker_model import FileTransferStatus
from proxy.sandbox.world import SandboxKeys
from proxy.settings import Settings
from tests.e2e.conftest import with_broker_routes
from tests.e2e.rest_world import EUS, EUS2, RestWorld, rest_world

SENDER, RECIPIENT = EUS[1], EUS2[1]
DESCRIPTION = {
    "ServiceCode": "4712",
    "ServiceEditionCode": 1,
    "SendersReference": "rest-broker-1",
    "Recipients": [RECIPIENT],
    "Properties": {"kind": "test"},
}


def _zip(size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("data.bin", os.urandom(size))
    return buffer.getvalue()


def _outbox(description: dict[str, Any] = DESCRIPTION, file_name: str = "data.zip") -> str:
    query = json.dumps(description).replace(" ", "")
    return f"/api/{SENDER}/brokerservice/outbox?fileName={file_name}&brokerServiceDescription={query}"


@pytest.fixture
def adjust() -> Callable[[Settings], Settings]:
    """Settings changes of a test (none by default)."""
    return lambda settings: settings


@pytest.fixture
async def world(
    tmp_path: Path, altinn3_contract: Any, sandbox_keys: SandboxKeys, adjust: Callable[[Settings], Settings]
) -> AsyncIterator[RestWorld]:
    """The proxy on HTTPS in front of the fakes."""
    async with rest_world(tmp_path, altinn3_contract, sandbox_keys, adjust=adjust) as running:
        yield running


async def _published(world: RestWorld, reference: str) -> None:
    transfers = world.fakes.broker.transfers
    await world.fakes.broker.wait_until(
        lambda: transfers[uuid.UUID(reference)].status is FileTransferStatus.PUBLISHED
    )


async def test_outbox_to_inbox_download_byte_identical_and_confirm(world: RestWorld) -> None:
    payload = _zip(3 * 1024 * 1024 + 17)
    async with world.client(EUS) as sender:
        async with sender.request("POST", _outbox(), data=io.BytesIO(payload)) as response:
            assert response.status == 201, await response.text()
            created = await response.json()
            location = response.headers["Location"]
        reference = created["FileReference"]
        assert location == f"{world.url}/api/{SENDER}/brokerservice/outbox/{reference}"
        await _published(world, reference)
        sent = await sender.json("GET", location)
        assert (sent["FileName"], sent["FileStatus"], sent["FileSize"]) == (
            "data.zip",
            "Uploaded",
            len(payload),
        )
        assert sent["Recipients"] == [RECIPIENT]
        receipt = await sender.json("GET", f"{location}/receipt")
        assert (receipt["ReceiptId"], receipt["ReceiptStatus"], receipt["ReceiptType"]) == (
            0,
            "OK",
            "BrokerService",
        )
        assert {"ReferenceType": "SendersReference", "ReferenceValue": "rest-broker-1"} in receipt[
            "References"
        ]
        [sub] = receipt["SubReceipts"]
        assert sub["References"] == [{"ReferenceType": "PartyReference", "ReferenceValue": RECIPIENT}]

    async with world.client(EUS2) as recipient:
        inbox = await recipient.json(
            "GET", "/api/my/brokerservice/inbox?serviceCode=4712&serviceEditionCode=1"
        )
        [listed] = inbox["_embedded"]["files"]
        assert (listed["FileReference"], listed["FileStatus"], listed["Sender"]) == (
            reference,
            "Uploaded",
            SENDER,
        )
        assert listed["SendersReference"] == "rest-broker-1"
        unfiltered = await recipient.json("GET", "/api/my/brokerservice/inbox")
        assert [f["FileReference"] for f in unfiltered["_embedded"]["files"]] == [reference]
        one = await recipient.json("GET", f"/api/{RECIPIENT}/brokerservice/inbox/{reference}")
        assert one["FileReference"] == reference

        async with recipient.request("GET", listed["_links"]["download"]["href"]) as response:
            assert response.status == 200
            assert 'filename="data.zip"' in response.headers["Content-Disposition"]
            downloaded = bytearray()
            async for chunk in response.content.iter_chunked(65536):
                downloaded += chunk
        assert bytes(downloaded) == payload

        confirmed = await recipient.json("POST", f"/api/my/brokerservice/inbox/{reference}/confirmdownloaded")
        assert confirmed["FileStatus"] == "Downloaded"
        done = await recipient.json(
            "GET", "/api/my/brokerservice/inbox?serviceCode=4712&fileStatus=Downloaded"
        )
        assert [f["FileStatus"] for f in done["_embedded"]["files"]] == ["Downloaded"]
        assert (await recipient.json("GET", "/api/my/brokerservice/inbox?serviceCode=4712"))["_embedded"][
            "files"
        ] == []

    async with (
        world.client(EUS) as outsider_view,
        outsider_view.request("GET", f"/api/{SENDER}/brokerservice/inbox/{reference}/download") as response,
    ):
        assert response.status in (403, 404)


async def test_bad_description_and_unknown_service_are_refused_before_altinn_3(
    world: RestWorld, altinn3_contract: Any
) -> None:
    calls = altinn3_contract.checked
    async with world.client(EUS) as sender:
        for path, status in (
            (f"/api/{SENDER}/brokerservice/outbox?fileName=x.zip&brokerServiceDescription={{not json", 400),
            (f"/api/{SENDER}/brokerservice/outbox?fileName=x.zip", 400),
            (_outbox({**DESCRIPTION, "ServiceCode": "9999"}), 404),
        ):
            async with sender.request("POST", path, data=b"PK\x05\x06" + bytes(18)) as response:
                assert response.status == status, (path, await response.text())
                assert set(await response.json()) == {"ErrorCode", "ErrorMessage"}
    assert altinn3_contract.checked == calls


@pytest.mark.parametrize("adjust", [with_broker_routes(require_zip=True)])
async def test_a_zip_only_service_refuses_other_files_before_anything_is_created(
    world: RestWorld, altinn3_contract: Any
) -> None:
    calls = altinn3_contract.checked
    async with (
        world.client(EUS) as sender,
        sender.request("POST", _outbox(), data=b"plain text, not a zip" * 100) as response,
    ):
        assert response.status == 400
        assert (await response.json())["ErrorCode"] == 40206
    assert altinn3_contract.checked == calls
    assert world.fakes.broker.transfers == {}


def _small_limits(settings: Settings) -> Settings:
    limits = settings.limits.model_copy(
        update={"max_streamed_bytes": 64 * 1024, "body_read_timeout_seconds": 0.5}
    )
    return settings.model_copy(update={"limits": limits})


@pytest.mark.parametrize("adjust", [_small_limits])
async def test_a_body_over_the_limit_and_a_stalled_body_get_the_legacy_error_shape(
    world: RestWorld, altinn3_contract: Any
) -> None:
    calls = altinn3_contract.checked
    async with (
        world.client(EUS) as sender,
        sender.request("POST", _outbox(), data=_zip(128 * 1024)) as response,
    ):
        assert response.status == 413
        assert set(await response.json()) == {"ErrorCode", "ErrorMessage"}
    assert altinn3_contract.checked == calls

    # A client that announces a body and then sends nothing: 408 before anything reaches Altinn 3.
    status, rest = await _stalled_upload(world, b"")
    assert status == b"408", status
    assert b'"ErrorCode"' in rest
    assert altinn3_contract.checked == calls
    assert world.fakes.broker.transfers == {}
    # One that stops in the middle: 408 too; Altinn 3 saw the upload start and break off, nothing published.
    status, rest = await _stalled_upload(world, b"PK\x03\x04" + bytes(100))
    assert status == b"408", status
    [transfer] = world.fakes.broker.transfers.values()
    assert transfer.status in (FileTransferStatus.INITIALIZED, FileTransferStatus.UPLOAD_STARTED)
    assert transfer.stored_size is None


async def _stalled_upload(world: RestWorld, sent: bytes) -> tuple[bytes, bytes]:
    """POST an outbox upload announcing 1000 bytes, send ``sent`` and stall: the status and the body."""
    context = ssl.create_default_context(cafile=str(world.tls.ca))
    context.load_cert_chain(*world.tls.client_certificate(*EUS))
    host, port = world.url.removeprefix("https://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), ssl=context)
    try:
        head = (
            f"POST {_outbox()}&ForceEIAuthentication HTTP/1.1\r\nHost: {host}\r\nApiKey: demo-apikey\r\n"
            "Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n"
        )
        writer.write(head.encode() + sent)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 30)
        rest = await asyncio.wait_for(reader.read(65536), 30)
    finally:
        writer.close()
    return status_line.split()[1], rest
