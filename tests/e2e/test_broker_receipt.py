"""Broker receipts end to end: ReceiptExternalBasic GetReceiptBasicV2 synthesised from the file transfer."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from proxy.sandbox.broker_model import FileTransferStatus
from proxy.sandbox.world import default_mappings_dir
from tests.e2e.conftest import World, legacy_client
from tests.e2e.test_broker import BASIC, RECIPIENT, SENDER, STREAMED, _initiate, _upload, _wsdls

RECEIPTS = "/IntermediaryExternal/ReceiptExternalBasic.svc"


@pytest.fixture
def mappings_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The broker and receipt families only."""
    directory = tmp_path_factory.mktemp("mappings")
    for name in ("broker.yaml", "receipts.yaml"):
        shutil.copy(default_mappings_dir() / name, directory / name)
    return directory


def _search(value: str) -> dict[str, Any]:
    return {"References": {"Reference": [{"ReferenceType": "SendersReference", "ReferenceValue": value}]}}


async def test_receipt_of_an_uploaded_file(world: World, reference: os.PathLike[str]) -> None:
    import zeep.exceptions

    basic_wsdl, streamed_wsdl = _wsdls(reference)
    receipt_wsdl = Path(reference) / "altinn2/ReceiptExternal/Basic/ReceiptExternalBasic.wsdl"
    user, password, _ = SENDER

    def send() -> tuple[str, Any]:
        basic = legacy_client(basic_wsdl, world.proxy_url + BASIC)
        streamed = legacy_client(streamed_wsdl, world.proxy_url + STREAMED)
        file_reference = _initiate(basic, SENDER, RECIPIENT[2], "ref-receipt")
        receipts = legacy_client(receipt_wsdl, world.proxy_url + RECEIPTS)
        before = receipts.GetReceiptBasicV2(user, password, _search(file_reference))
        _upload(streamed, SENDER, file_reference, b"PK\x05\x06" + bytes(18))
        return file_reference, before

    file_reference, before = await asyncio.to_thread(send)
    assert before.ReceiptStatus == "NotSet"
    broker = world.fakes.broker
    await broker.wait_until(
        lambda: all(t.status is FileTransferStatus.PUBLISHED for t in broker.transfers.values())
    )

    def ask() -> tuple[Any, Any]:
        receipts = legacy_client(receipt_wsdl, world.proxy_url + RECEIPTS)
        found = receipts.GetReceiptBasicV2(user, password, _search(file_reference))
        with pytest.raises(zeep.exceptions.Fault) as missing:
            receipts.GetReceiptBasicV2(user, password, _search("no-such-reference"))
        return found, missing.value

    receipt, missing = await asyncio.to_thread(ask)
    assert receipt.ReceiptId == 0
    assert receipt.ReceiptStatus == "OK"
    assert receipt.ReceiptType == "BrokerService"
    assert receipt.ReceiptText == (
        f"Upload of file {file_reference} was successful. Recipients can now download the file."
    )
    values = {(r.ReferenceType, r.ReferenceValue) for r in receipt.References.Reference}
    assert values == {("SendersReference", file_reference), ("SendersReference", "ref-receipt")}
    subs = receipt.SubReceipts.Receipt
    assert [s.ReceiptText for s in subs] == ["A file has been made available for download."]
    assert subs[0].References.Reference[0].ReferenceValue == RECIPIENT[2]
    assert "Published" in receipt.ReceiptHistory
    assert b"30008" in _detail(missing)


def _detail(fault: Any) -> bytes:
    from lxml import etree

    return etree.tostring(fault.detail) if fault.detail is not None else b""
