"""A legacy client that goes away halfway through an upload or a download leaves nothing behind.

Nothing behind means: no temporary file (the proxy spools nothing; the fake's partial file is
removed), no upstream connection still held by the proxy, and a legacy status that stays consistent
(a broken upload is Failed in Altinn 3 = never listed; a broken download leaves the file available).
"""

from __future__ import annotations

import asyncio
import io
import os
import uuid
from pathlib import Path

import aiohttp
import pytest

from proxy.app import SERVICES
from proxy.sandbox import fixtures
from proxy.sandbox.broker import FakeBroker
from proxy.sandbox.broker_model import FileTransferStatus, InitializeRequest, RecipientStatus
from tests.e2e.conftest import World, broker_mappings

NS = "http://www.altinn.no/services/ServiceEngine/Broker/2015/06"
STREAMED = "/ServiceEngineExternal/BrokerServiceExternalBasicStreamed.svc"
SENDER, RECIPIENT = fixtures.SYSTEM_USER_ORGS
BOUNDARY = "uuid:7d0c7a8e-broker-test"
SIZE = 4 * 1024 * 1024


@pytest.fixture
def mappings_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Only the broker family."""
    return broker_mappings(tmp_path_factory.mktemp("broker"))


def _initialize(broker: FakeBroker) -> uuid.UUID:
    resource = broker.resources[fixtures.BROKER_RESOURCE]
    request = InitializeRequest(fixtures.BROKER_RESOURCE, "big.bin", SENDER, (RECIPIENT,))
    transfer = broker._initialize(_FakeCaller(SENDER), request)
    assert transfer.resource is resource
    return transfer.id


class _FakeCaller:
    def __init__(self, org: str) -> None:
        self.party_org = org


def _mtom_head(reference: uuid.UUID) -> bytes:
    envelope = (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header>'
        f'<FileName xmlns="{NS}">big.bin</FileName><Reference xmlns="{NS}">{reference}</Reference>'
        f'<Reportee xmlns="{NS}">{SENDER}</Reportee>'
        f'<SystemPassword xmlns="{NS}">demo-eus-password</SystemPassword>'
        f'<SystemUserName xmlns="{NS}">demo-eus</SystemUserName></s:Header><s:Body>'
        f'<StreamedPayloadBasicBE xmlns="{NS}"><DataStream>'
        '<xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:payload"/>'
        "</DataStream></StreamedPayloadBasicBE></s:Body></s:Envelope>"
    )
    return (
        f"--{BOUNDARY}\r\nContent-ID: <root>\r\n"
        'Content-Type: application/xop+xml; charset=utf-8; type="text/xml"\r\n\r\n'
        f"{envelope}\r\n--{BOUNDARY}\r\nContent-ID: <payload>\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


def _content_type() -> str:
    return (
        f'multipart/related; type="application/xop+xml"; boundary="{BOUNDARY}"; '
        'start="<root>"; start-info="text/xml"'
    )


async def _no_upstream_connection_held(world: World) -> None:
    connector = world.app[SERVICES].altinn3._session.connector
    assert connector is not None
    # aiohttp has no public count of held connections, nor an event for their release.
    while connector._acquired:  # noqa: ASYNC110
        await asyncio.sleep(0.01)


async def test_upload_cut_halfway(world: World) -> None:
    broker = world.fakes.broker
    reference = _initialize(broker)
    head = _mtom_head(reference)
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    host, port = world.proxy_url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        (
            f"POST {STREAMED} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {_content_type()}\r\n"
            f'SOAPAction: "{NS}/IBrokerServiceExternalBasicStreamed/UploadFileStreamedBasic"\r\n'
            f"Content-Length: {len(head) + SIZE + len(tail)}\r\n\r\n"
        ).encode()
        + head
        + os.urandom(SIZE // 2)
    )
    await writer.drain()
    transfer = broker.transfers[reference]
    await broker.wait_until(lambda: transfer.status is FileTransferStatus.UPLOAD_STARTED)
    writer.close()
    await writer.wait_closed()

    await broker.wait_until(lambda: transfer.status is FileTransferStatus.FAILED)
    await _no_upstream_connection_held(world)
    assert broker.files.partial_files() == []
    assert not broker.files.path_for(reference).exists()
    # Failed is the legacy "Initialized": the recipient never sees the file.
    assert transfer.recipients[RECIPIENT].status is RecipientStatus.INITIALIZED


async def test_download_cut_halfway(world: World) -> None:
    broker = world.fakes.broker
    reference = _initialize(broker)
    payload = os.urandom(SIZE)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        body = _mtom_head(reference) + payload + f"\r\n--{BOUNDARY}--\r\n".encode()
        async with session.post(
            world.proxy_url + STREAMED, data=io.BytesIO(body), headers={"Content-Type": _content_type()}
        ) as response:
            assert response.status == 200, await response.text()
    transfer = broker.transfers[reference]
    await broker.wait_until(lambda: transfer.status is FileTransferStatus.PUBLISHED)

    request = (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        f'<DownloadFileStreamedBasic xmlns="{NS}"><systemUserName>demo-eus2</systemUserName>'
        "<systemPassword>demo-eus2-password</systemPassword>"
        f"<fileReference>{reference}</fileReference><reportee>{RECIPIENT}</reportee>"
        "</DownloadFileStreamedBasic></s:Body></s:Envelope>"
    ).encode()
    host, port = world.proxy_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        (
            f"POST {STREAMED} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/xml; charset=utf-8\r\n"
            f'SOAPAction: "{NS}/IBrokerServiceExternalBasicStreamed/DownloadFileStreamedBasic"\r\n'
            f"Content-Length: {len(request)}\r\n\r\n"
        ).encode()
        + request
    )
    await writer.drain()
    received = 0
    while received < 256 * 1024:
        chunk = await reader.read(64 * 1024)
        assert chunk, "the proxy ended the download early"
        received += len(chunk)
    writer.transport.abort()

    await _no_upstream_connection_held(world)
    # The recipient started but never confirmed: the file is still available to it (legacy Uploaded).
    assert transfer.recipients[RECIPIENT].status is RecipientStatus.DOWNLOAD_STARTED
    assert transfer.status is FileTransferStatus.PUBLISHED
    assert broker.files.path_for(reference).exists()
