"""The manifest shim end to end: a routing entry with ``manifest_shim: true`` puts manifest.xml in the ZIP."""

from __future__ import annotations

import asyncio
import io
import os
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from proxy.broker.manifest import MANIFEST_NAMESPACE
from proxy.sandbox.broker_model import FileTransferStatus
from proxy.sandbox.world import (
    SandboxKeys,
)
from tests.e2e.conftest import World, broker_mappings, legacy_client, run_world, with_broker_routes
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
async def shim_world(
    tmp_path: Path, altinn3_contract: Any, sandbox_keys: SandboxKeys
) -> AsyncIterator[World]:
    """The sandbox world with the demo broker service's routing entry switched to the manifest shim."""
    async with run_world(
        tmp_path,
        altinn3_contract,
        sandbox_keys,
        broker_mappings(tmp_path),
        with_broker_routes(manifest_shim=True),
    ) as running:
        yield running


async def test_download_carries_a_fresh_manifest(shim_world: World, reference: os.PathLike[str]) -> None:
    basic_wsdl, streamed_wsdl = _wsdls(reference)
    original = io.BytesIO()
    with zipfile.ZipFile(original, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data/report.xml", b"<report>" + os.urandom(200_000).hex().encode() + b"</report>")
        archive.writestr("manifest.xml", b"<stale/>")

    def send() -> str:
        basic = legacy_client(basic_wsdl, shim_world.proxy_url + BASIC)
        streamed = legacy_client(streamed_wsdl, shim_world.proxy_url + STREAMED)
        file_reference = _initiate(basic, SENDER, RECIPIENT[2], "ref-manifest")
        _upload(streamed, SENDER, file_reference, original.getvalue())
        return file_reference

    file_reference = await asyncio.to_thread(send)
    broker = shim_world.fakes.broker
    await broker.wait_until(
        lambda: all(t.status is FileTransferStatus.PUBLISHED for t in broker.transfers.values())
    )

    def receive() -> bytes:
        streamed = legacy_client(streamed_wsdl, shim_world.proxy_url + STREAMED)
        user, password, org = RECIPIENT
        data: bytes = streamed.DownloadFileStreamedBasic(user, password, file_reference, org)
        return data

    data = await asyncio.to_thread(receive)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["data/report.xml", "manifest.xml"]
        with zipfile.ZipFile(original) as sent:
            assert archive.read("data/report.xml") == sent.read("data/report.xml")
        manifest = etree.fromstring(archive.read("manifest.xml"))
    ns = {"m": MANIFEST_NAMESPACE}
    assert manifest.findtext("m:ExternalServiceCode", namespaces=ns) == "4712"
    assert manifest.findtext("m:ExternalServiceEditionCode", namespaces=ns) == "1"
    assert manifest.findtext("m:Reportee", namespaces=ns) == SENDER[2]
    assert manifest.findtext("m:SendersReference", namespaces=ns) == "ref-manifest"
    assert manifest.findtext("m:FileList/m:File/m:FileName", namespaces=ns) == "payload.zip"
    assert manifest.findtext("m:PropertyList/m:Property/m:PropertyKey", namespaces=ns) == "kind"
