"""A 200 MiB broker download to a plain-XML zeep client, built from the original streamed WSDL.

``BrokerServiceExternalBasicStreamed`` declares WCF's MTOM policy, and WCF answered such an endpoint
with MTOM whatever the request's encoding. zeep sends plain ``text/xml``; the proxy answers
``multipart/related`` with the file as a binary XOP part, which zeep resolves, so the client gets the
bytes without a 270 MB base64 text node (which lxml refuses above 10 MB by default). The upload goes
through the proxy as MTOM, streamed from a generator; both sides are compared by SHA-256.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from proxy.sandbox.broker_model import FileTransferStatus
from tests.e2e.conftest import World, broker_mappings
from tests.e2e.test_broker_disconnect import (
    BOUNDARY,
    NS,
    RECIPIENT,
    STREAMED,
    _content_type,
    _initialize,
    _mtom_head,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
SIZE = 200 * 1024 * 1024
CHUNK = 1024 * 1024


@pytest.fixture
def mappings_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Only the broker family."""
    return broker_mappings(tmp_path_factory.mktemp("broker"))


async def _payload(digest: hashlib._Hash) -> AsyncIterator[bytes]:
    block = os.urandom(CHUNK)
    for index in range(SIZE // CHUNK):
        chunk = index.to_bytes(8, "big") + block[8:]  # no two chunks alike
        digest.update(chunk)
        yield chunk


async def test_a_200_mib_file_reaches_a_plain_xml_zeep_client_byte_identical(
    world: World, reference: os.PathLike[str]
) -> None:
    broker = world.fakes.broker
    file_reference = _initialize(broker)
    sent = hashlib.sha256()
    head, tail = _mtom_head(file_reference), f"\r\n--{BOUNDARY}--\r\n".encode()

    async def body() -> AsyncIterator[bytes]:
        yield head
        async for chunk in _payload(sent):
            yield chunk
        yield tail

    headers = {
        "Content-Type": _content_type(),
        "Content-Length": str(len(head) + SIZE + len(tail)),
        "SOAPAction": f'"{NS}/IBrokerServiceExternalBasicStreamed/UploadFileStreamedBasic"',
    }
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(world.proxy_url + STREAMED, data=body(), headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
    transfer = broker.transfers[file_reference]
    await broker.wait_until(lambda: transfer.status is FileTransferStatus.PUBLISHED)

    wsdl = (
        Path(reference)
        / "altinn2/BrokerServiceExternalStreamed/Basic/BrokerServiceExternalBasicStreamed.wsdl"
    )

    # zeep runs in its own process: parsing a 200 MiB multipart answer holds the GIL for long
    # stretches, which would stall this test's event loop (the proxy and the fakes run on it).
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        DOWNLOAD_SCRIPT,
        str(wsdl),
        world.proxy_url + STREAMED,
        str(file_reference),
        RECIPIENT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    size, digest = out.decode().split()
    assert (int(size), digest) == (SIZE, sent.hexdigest())


DOWNLOAD_SCRIPT = """
import hashlib, sys
from pathlib import Path
from tests.e2e.conftest import legacy_client

wsdl, address, file_reference, reportee = sys.argv[1:]
client = legacy_client(Path(wsdl), address)
data = client.DownloadFileStreamedBasic("demo-eus2", "demo-eus2-password", file_reference, reportee)
print(len(data), hashlib.sha256(data).hexdigest())
"""
