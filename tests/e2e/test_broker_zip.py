"""Broker ErrorID 40206 end to end: a routing entry with ``require_zip: true`` refuses a non-ZIP upload
at ``UploadFileStreamedBasic`` itself, as Altinn 2 did, and nothing of it reaches Altinn 3."""

from __future__ import annotations

import asyncio
import io
import os
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from proxy.sandbox.broker_model import FileTransferStatus
from proxy.sandbox.world import SandboxKeys
from tests.e2e.conftest import (
    RecordingObserver,
    World,
    broker_mappings,
    fault_fields,
    legacy_client,
    run_world,
    with_broker_routes,
)
from tests.e2e.test_broker import (
    BASIC,
    RECIPIENT,
    SENDER,
    STREAMED,
    _initiate,
    _upload,
    _wsdls,
)


@pytest.fixture
async def zip_world(
    tmp_path: Path, observer: RecordingObserver, sandbox_keys: SandboxKeys
) -> AsyncIterator[World]:
    """The sandbox world with the demo broker service (4712/1) requiring ZIP uploads."""
    async with run_world(
        tmp_path, observer, sandbox_keys, broker_mappings(tmp_path), with_broker_routes(require_zip=True)
    ) as running:
        yield running


async def test_a_non_zip_upload_is_refused_with_40206_and_nothing_is_uploaded(
    zip_world: World, observer: RecordingObserver, reference: os.PathLike[str]
) -> None:
    import zeep.exceptions

    basic_wsdl, streamed_wsdl = _wsdls(reference)
    payload = b"%PDF-1.7\n" + os.urandom(512 * 1024)

    def scenario() -> tuple[str, Any]:
        basic = legacy_client(basic_wsdl, zip_world.proxy_url + BASIC)
        streamed = legacy_client(streamed_wsdl, zip_world.proxy_url + STREAMED)
        file_reference = _initiate(basic, SENDER, RECIPIENT[2], "ref-not-zip")
        with pytest.raises(zeep.exceptions.Fault) as refused:
            _upload(streamed, SENDER, file_reference, payload)
        return file_reference, refused.value

    file_reference, fault = await asyncio.to_thread(scenario)

    fields = fault_fields(fault)
    assert fields["ErrorID"] == "40206"
    assert (
        "the file is not a ZIP archive, and broker service 4712/1 requires one"
        in fields["AltinnErrorMessage"]
    )
    assert observer.uploads() == []
    # The transfer is initialised when the file arrives: a refused file leaves nothing in Altinn 3.
    assert file_reference
    assert zip_world.fakes.broker.transfers == {}
    assert zip_world.fakes.broker.files.partial_files() == []


async def test_a_zip_upload_goes_through(
    zip_world: World, observer: RecordingObserver, reference: os.PathLike[str]
) -> None:
    basic_wsdl, streamed_wsdl = _wsdls(reference)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as writer:
        writer.writestr("data/report.xml", b"<report>" + os.urandom(100_000).hex().encode() + b"</report>")
    payload = archive.getvalue()

    def scenario() -> tuple[str, Any]:
        basic = legacy_client(basic_wsdl, zip_world.proxy_url + BASIC)
        streamed = legacy_client(streamed_wsdl, zip_world.proxy_url + STREAMED)
        file_reference = _initiate(basic, SENDER, RECIPIENT[2], "ref-zip")
        return file_reference, _upload(streamed, SENDER, file_reference, payload)

    _file_reference, receipt = await asyncio.to_thread(scenario)

    assert receipt.ReceiptStatusCode == "OK"
    assert len(observer.uploads()) == 1
    broker = zip_world.fakes.broker
    transfer = broker.sent_with("ref-zip")
    await broker.wait_until(lambda: transfer.status is FileTransferStatus.PUBLISHED)
    assert transfer.stored_size == len(payload)
