"""Slow and hostile legacy clients through the real process: deadlines hold, others are unaffected.

* Connections that never complete a request (a thousand idle keep-alives, headers trickled in
  slowloris-style) are closed after ``limits.idle_connection_seconds``, and a legacy call made
  meanwhile is answered; the proxy's file descriptors come back down.
* A client that stops reading a broker download is cut off after ``limits.send_idle_timeout_seconds``
  and the upstream download it held is released.

The test only waits for what the proxy does; the deadlines are short so that it waits little.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from proxy.sandbox.broker_model import FileTransferStatus
from proxy.sandbox.world import SandboxKeys
from tests.e2e.chaos import until
from tests.e2e.test_altinn3_faults import Faulty, faulty_deployment
from tests.e2e.test_broker import RECIPIENT, SENDER, STREAMED, _available, _initiate, _upload

pytestmark = pytest.mark.slow

IDLE_CONNECTIONS = 1000
SLOWLORIS_CONNECTIONS = 50
BROKER_NS = "http://www.altinn.no/services/ServiceEngine/Broker/2015/06"


@pytest.fixture
async def strict(
    tmp_path: Path, sandbox_keys: SandboxKeys, altinn3_contract: Any, reference: os.PathLike[str]
) -> AsyncIterator[Faulty]:
    limits = {"idle_connection_seconds": 1.0, "send_idle_timeout_seconds": 1.0}
    async with faulty_deployment(
        tmp_path, sandbox_keys, altinn3_contract, reference, limits=limits
    ) as deployed:
        yield deployed


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def _closed_by_the_proxy(reader: asyncio.StreamReader) -> bool:
    """True once the proxy closed the connection (EOF or reset), reading whatever it sent first."""
    with contextlib.suppress(ConnectionError):
        while await reader.read(65536):
            pass
    return True


async def _slowloris(port: int) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    closing = asyncio.ensure_future(_closed_by_the_proxy(reader))
    try:
        head = f"POST {STREAMED} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".encode()
        for byte in head + b"a" * 100_000:
            if closing.done():
                break
            writer.write(bytes([byte]))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            await asyncio.sleep(0.05)
        return await closing
    finally:
        writer.close()


async def test_idle_and_slowloris_connections_are_closed_and_others_are_served(strict: Faulty) -> None:
    proxy = strict.proxy
    before = _open_fds(proxy.process.pid)
    idle = [await asyncio.open_connection("127.0.0.1", proxy.port) for _ in range(IDLE_CONNECTIONS)]
    slow = [asyncio.ensure_future(_slowloris(proxy.port)) for _ in range(SLOWLORIS_CONNECTIONS)]
    try:
        assert await strict.call(_available, strict.basic, RECIPIENT) == []  # served meanwhile
        assert all(await asyncio.gather(*(_closed_by_the_proxy(reader) for reader, _ in idle)))
        assert all(await asyncio.gather(*slow))
    finally:
        for _, writer in idle:
            writer.close()
    await until(lambda: _open_fds(proxy.process.pid) <= before + 10)
    assert await strict.call(_available, strict.basic, RECIPIENT) == []


def _download_envelope(file_reference: str) -> bytes:
    user, password, org = RECIPIENT
    return (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        f'<DownloadFileStreamedBasic xmlns="{BROKER_NS}"><systemUserName>{user}</systemUserName>'
        f"<systemPassword>{password}</systemPassword><fileReference>{file_reference}</fileReference>"
        f"<reportee>{org}</reportee></DownloadFileStreamedBasic></s:Body></s:Envelope>"
    ).encode()


async def test_a_client_that_stops_reading_a_download_is_cut_off(strict: Faulty) -> None:
    payload = os.urandom(16 * 1024 * 1024)
    file_reference = await strict.call(_initiate, strict.basic, SENDER, RECIPIENT[2], "stalled")
    await strict.call(_upload, strict.streamed, SENDER, file_reference, payload)
    broker = strict.fakes.broker
    transfer = broker.sent_with("stalled")
    await broker.wait_until(lambda: transfer.status is FileTransferStatus.PUBLISHED)

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", strict.proxy.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    envelope = _download_envelope(file_reference)
    writer.write(
        f"POST {STREAMED} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml; charset=utf-8\r\n"
        f'SOAPAction: "{BROKER_NS}/IBrokerServiceExternalBasicStreamed/DownloadFileStreamedBasic"\r\n'
        f"Content-Length: {len(envelope)}\r\n\r\n".encode()
        + envelope
    )
    await writer.drain()
    try:
        # Nothing is read: the proxy must give up on this client and release the upstream download.
        await until(
            lambda: any(line["event"] == "soap.client_stopped_reading" for line in strict.proxy.lines)
        )
        await strict.settle()
        received = 0
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                received += len(chunk)
        assert received < len(payload), "the stalled client got everything after all"
    finally:
        writer.close()
    assert await strict.call(_available, strict.basic, RECIPIENT) != []  # others are still served
