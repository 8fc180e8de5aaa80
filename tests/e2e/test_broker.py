"""Broker (formidling) end to end: original Altinn 2 WSDLs → proxy → strict Altinn 3 Broker fake."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from proxy.sandbox.broker_model import FileTransferStatus
from tests.e2e.conftest import World, broker_mappings, legacy_client

SENDER = ("demo-eus", "demo-eus-password", "310000019")
RECIPIENT = ("demo-eus2", "demo-eus2-password", "310000027")
# proxy/web/middleware.py stores the request id under a str key (aiohttp >= 3.12 warns about it).

BASIC = "/ServiceEngineExternal/BrokerServiceExternalBasic.svc"
STREAMED = "/ServiceEngineExternal/BrokerServiceExternalBasicStreamed.svc"


@pytest.fixture
def mappings_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Only the broker family: these tests do not depend on other families' mapping files."""
    return broker_mappings(tmp_path_factory.mktemp("broker"))


def _wsdls(reference: os.PathLike[str]) -> tuple[Path, Path]:
    root = Path(reference) / "altinn2"
    return (
        root / "BrokerServiceExternal/Basic/BrokerServiceExternalBasic.wsdl",
        root / "BrokerServiceExternalStreamed/Basic/BrokerServiceExternalBasicStreamed.wsdl",
    )


def _initiate(basic: Any, sender: tuple[str, str, str], recipient: str, reference: str) -> str:
    user, password, org = sender
    initiation = {
        "Manifest": {
            "ExternalServiceCode": "4712",
            "ExternalServiceEditionCode": 1,
            "FileList": {"File": [{"FileName": "payload.zip"}]},
            "PropertyList": {"Property": [{"PropertyKey": "kind", "PropertyValue": "test"}]},
            "Reportee": org,
            "SendersReference": reference,
        },
        "RecipientList": {"Recipient": [{"PartyNumber": recipient}]},
    }
    result: str = basic.InitiateBrokerServiceBasic(user, password, initiation)
    return result


def _available(basic: Any, who: tuple[str, str, str], status: str = "Uploaded") -> list[Any]:
    user, password, org = who
    search = {
        "ExternalServiceCode": "4712",
        "ExternalServiceEditionCode": 1,
        "FileStatus": status,
        "Reportee": org,
    }
    found = basic.GetAvailableFilesBasic(user, password, search)
    # zeep flattens the one-member array type into a plain list.
    return list(found or [])


def _upload(
    streamed: Any,
    sender: tuple[str, str, str],
    file_reference: str,
    data: bytes,
    file_name: str = "payload.zip",
) -> Any:
    user, password, org = sender
    headers = {
        "FileName": file_name,
        "Reference": file_reference,
        "Reportee": org,
        "SystemPassword": password,
        "SystemUserName": user,
    }
    return streamed.UploadFileStreamedBasic(DataStream=data, _soapheaders=headers)


async def test_round_trip_with_original_wsdls(world: World, reference: os.PathLike[str]) -> None:
    basic_wsdl, streamed_wsdl = _wsdls(reference)
    payload = os.urandom(3 * 1024 * 1024 + 17)

    def send() -> tuple[str, Any]:
        basic = legacy_client(basic_wsdl, world.proxy_url + BASIC)
        streamed = legacy_client(streamed_wsdl, world.proxy_url + STREAMED)
        file_reference = _initiate(basic, SENDER, RECIPIENT[2], "ref-42")
        return file_reference, _upload(streamed, SENDER, file_reference, payload)

    file_reference, receipt = await asyncio.to_thread(send)
    assert receipt.ReceiptId == 0
    assert receipt.ReceiptStatusCode == "OK"
    assert receipt.ReceiptTypeName == "BrokerService"
    assert receipt.ReceiptText == (
        f"Upload of file {file_reference} was successful. Recipients can now download the file."
    )
    broker = world.fakes.broker
    await broker.wait_until(
        lambda: all(t.status is FileTransferStatus.PUBLISHED for t in broker.transfers.values())
    )

    def receive() -> tuple[list[Any], bool, bytes, list[Any], list[Any], bool]:
        basic = legacy_client(basic_wsdl, world.proxy_url + BASIC)
        streamed = legacy_client(streamed_wsdl, world.proxy_url + STREAMED)
        user, password, org = RECIPIENT
        listed = _available(basic, RECIPIENT)
        poll = {
            "ExternalServiceCode": "4712",
            "ExternalServiceEditionCode": 1,
            "Recipients": {"string": [org]},
        }
        available = basic.CheckIfAvailableFilesBasic(user, password, poll)
        data = streamed.DownloadFileStreamedBasic(user, password, file_reference, org)
        basic.ConfirmDownloadedBasic(user, password, file_reference, org)
        # A resend (Altinn 3 refuses a second confirmation of an AllConfirmedDownloaded transfer).
        basic.ConfirmDownloadedBasic(user, password, file_reference, org)
        after = _available(basic, RECIPIENT)
        downloaded = _available(basic, RECIPIENT, "Downloaded")
        still = basic.CheckIfAvailableFilesBasic(user, password, poll)
        return listed, available, data, after, downloaded, still

    listed, available, data, after, downloaded, still = await asyncio.to_thread(receive)
    assert [f.FileReference for f in listed] == [file_reference]
    entry = listed[0]
    assert entry.FileName == "payload.zip"
    assert entry.FileSize == len(payload)
    assert entry.FileStatus == "Uploaded"
    assert entry.Reportee == SENDER[2]
    assert entry.SendersReference == "ref-42"
    assert entry.SentDate is not None
    assert available is True
    assert data == payload
    assert after == []
    assert [f.FileStatus for f in downloaded] == ["Downloaded"]
    assert still is False


async def test_the_recipient_sees_the_name_the_sender_uploaded(
    world: World, reference: os.PathLike[str]
) -> None:
    basic_wsdl, streamed_wsdl = _wsdls(reference)
    uploaded_name = "Årsoppgjør 2026 (endelig).zip"

    def send() -> str:
        basic = legacy_client(basic_wsdl, world.proxy_url + BASIC)
        streamed = legacy_client(streamed_wsdl, world.proxy_url + STREAMED)
        file_reference = _initiate(basic, SENDER, RECIPIENT[2], "ref-named")  # its FileList says payload.zip
        _upload(streamed, SENDER, file_reference, b"PK\x05\x06" + bytes(18), file_name=uploaded_name)
        return file_reference

    file_reference = await asyncio.to_thread(send)
    broker = world.fakes.broker
    transfer = broker.sent_with("ref-named")
    await broker.wait_until(lambda: transfer.status is FileTransferStatus.PUBLISHED)

    def receive() -> tuple[list[Any], bytes]:
        basic = legacy_client(basic_wsdl, world.proxy_url + BASIC)
        streamed = legacy_client(streamed_wsdl, world.proxy_url + STREAMED)
        user, password, org = RECIPIENT
        return _available(basic, RECIPIENT), streamed.DownloadFileStreamedBasic(
            user, password, file_reference, org
        )

    listed, data = await asyncio.to_thread(receive)
    assert [(f.FileReference, f.FileName) for f in listed] == [(file_reference, uploaded_name)]
    assert data == b"PK\x05\x06" + bytes(18)
    assert transfer.request.file_name == uploaded_name  # fixed when Altinn 3 initialised the transfer
    assert str(transfer.id) != file_reference  # the sender's reference is the proxy's, stable from initiation
    assert len(broker.transfers) == 1


async def test_sender_does_not_see_the_file_and_a_stranger_cannot_upload(
    world: World, reference: os.PathLike[str]
) -> None:
    import zeep.exceptions

    basic_wsdl, streamed_wsdl = _wsdls(reference)

    def scenario() -> tuple[list[Any], str]:
        basic = legacy_client(basic_wsdl, world.proxy_url + BASIC)
        streamed = legacy_client(streamed_wsdl, world.proxy_url + STREAMED)
        file_reference = _initiate(basic, SENDER, RECIPIENT[2], "ref-1")
        with pytest.raises(zeep.exceptions.Fault) as refused:
            _upload(streamed, RECIPIENT, file_reference, b"not yours")
        return _available(basic, SENDER), str(refused.value.message)

    listed, message = await asyncio.to_thread(scenario)
    assert listed == []
    assert "not the sender" in message


async def test_download_before_upload_is_the_no_file_ready_fault(
    world: World, reference: os.PathLike[str]
) -> None:
    import zeep.exceptions

    basic_wsdl, streamed_wsdl = _wsdls(reference)

    def scenario() -> Any:
        basic = legacy_client(basic_wsdl, world.proxy_url + BASIC)
        streamed = legacy_client(streamed_wsdl, world.proxy_url + STREAMED)
        file_reference = _initiate(basic, SENDER, RECIPIENT[2], "ref-2")
        user, password, org = RECIPIENT
        with pytest.raises(zeep.exceptions.Fault) as refused:
            streamed.DownloadFileStreamedBasic(user, password, file_reference, org)
        return refused.value

    fault = await asyncio.to_thread(scenario)
    assert b"40207" in _detail(fault) or b"40212" in _detail(fault)


def _detail(fault: Any) -> bytes:
    from lxml import etree

    return etree.tostring(fault.detail) if fault.detail is not None else b""
