"""Issue 3: hostile input against the real ``altinn-proxy serve`` process, with memory that stays bounded.

The SOAP unit tests (``tests/soap/test_hostile.py``) prove each input gets a fault; this one proves
the *process* survives all of them with its peak resident set (``VmHWM`` in ``/proc/PID/status``)
barely moved: entity bombs are never expanded, deep nesting is refused while parsing, a 200 MB body
is cut off at the configured limit rather than buffered, and a 200 MB MTOM attachment sent to an
operation that takes no stream is never held in memory. The large bodies are generated chunk by
chunk on the client side, so the test itself stays small too.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from lxml import etree

from tests.foundation.process import ProxyProcess, start_proxy

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/status")

MiB = 1024 * 1024
#: Peak RSS may grow by less than this over the whole corpus. The body limit is set to 8 MiB below, so
#: even a body buffered whole (plus its copy for parsing) stays well inside it; 200 MB would not.
GROWTH_BOUND = 64 * MiB
BODY_LIMIT = 8 * MiB
HUGE = 200 * MiB
BLOCK = 64 * 1024

PATH = "/ServiceEngineExternal/CorrespondenceAgencyExternalBasic.svc"
SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
ENVELOPE = f'<s:Envelope xmlns:s="{SOAP11_NS}"><s:Body>{{}}</s:Body></s:Envelope>'
OPERATION_NS = "http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10"
TEST = '<Test xmlns="http://www.altinn.no/services/2009/10"/>'
SOAP11 = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
TIMEOUT = aiohttp.ClientTimeout(total=60)


def _billion_laughs() -> bytes:
    entities = '<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)
    )
    return (f"<!DOCTYPE s:Envelope [{entities}]>" + ENVELOPE.format("<Test>&j;</Test>")).encode()


def _quadratic_blowup() -> bytes:
    # One 100 kB entity referenced 50,000 times: 5 GB if expanded, with no nesting to detect.
    entity = "x" * 100_000
    return (
        f'<!DOCTYPE s:Envelope [<!ENTITY q "{entity}">]>'
        + ENVELOPE.format("<Test>" + "&q;" * 50_000 + "</Test>")
    ).encode()


SMALL_CORPUS: dict[str, tuple[dict[str, str], bytes]] = {
    "billion_laughs": (SOAP11, _billion_laughs()),
    "quadratic_blowup": (SOAP11, _quadratic_blowup()),
    "deep_nesting": (SOAP11, ENVELOPE.format("<a>" * 10_000 + "</a>" * 10_000).encode()),
    "truncated": (SOAP11, ENVELOPE.format(TEST).encode()[:-20]),
    "wrong_content_type": ({"Content-Type": "application/json"}, ENVELOPE.format(TEST).encode()),
    "empty": (SOAP11, b""),
    "non_utf8": (SOAP11, ENVELOPE.format("<Test>\udcff\udcfe</Test>").encode("utf-8", "surrogateescape")),
}


@dataclass(frozen=True)
class Answer:
    """An HTTP answer as received."""

    status: int
    content_type: str
    body: bytes


def _assert_fault_or_refusal(name: str, answer: Answer) -> None:
    """A well-formed SOAP fault, with 500 (AltinnFault) or 400/413/415 for transport-level refusals."""
    assert answer.status in (400, 413, 415, 500), (name, answer.status, answer.body[:300])
    root = etree.fromstring(answer.body)
    assert root.tag in (f"{{{SOAP11_NS}}}Envelope", f"{{{SOAP12_NS}}}Envelope"), name
    assert root.find(f".//{{{etree.QName(root).namespace}}}Fault") is not None, name
    assert b"Traceback" not in answer.body, name


def _peak_rss(pid: int) -> int:
    """The process's peak resident set size (``VmHWM``) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def _chunked(parts: Iterator[bytes]) -> Iterator[bytes]:
    for part in parts:
        yield b"%x\r\n%b\r\n" % (len(part), part)
    yield b"0\r\n\r\n"


def _huge_xml() -> Iterator[bytes]:
    """A 200 MB SOAP body, generated a block at a time."""
    yield ENVELOPE.split("{}")[0].encode() + b"<Test>"
    block = b"a" * BLOCK
    for _ in range(HUGE // BLOCK):
        yield block


MTOM_BOUNDARY = "uuid:hostile-boundary"
MTOM_ROOT = (
    f"--{MTOM_BOUNDARY}\r\n"
    'Content-Type: application/xop+xml; charset=UTF-8; type="text/xml"\r\n'
    "Content-ID: <root>\r\n\r\n"
    + ENVELOPE.format(
        f'<InsertCorrespondenceBasicV2 xmlns="{OPERATION_NS}">'
        "<systemUserName>x</systemUserName><systemPassword>x</systemPassword>"
        '<Data><xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:blob"/></Data>'
        "</InsertCorrespondenceBasicV2>"
    )
    + f"\r\n--{MTOM_BOUNDARY}\r\nContent-Type: application/octet-stream\r\nContent-ID: <blob>\r\n\r\n"
).encode()
MTOM_END = f"\r\n--{MTOM_BOUNDARY}--\r\n".encode()


def _huge_mtom() -> Iterator[bytes]:
    """A multipart/related message whose attachment is 200 MB, generated a block at a time."""
    yield MTOM_ROOT
    block = bytes(range(256)) * (BLOCK // 256)
    for _ in range(HUGE // BLOCK):
        yield block
    yield MTOM_END


async def _read_answer(reader: asyncio.StreamReader) -> Answer:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        key.strip().lower(): value.strip() for key, _, value in (line.partition(":") for line in lines[1:])
    }
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        body = await reader.read()
    return Answer(status, headers.get("content-type", ""), body)


async def _stream(port: int, head: str, body: Iterator[bytes]) -> Answer:
    """Send ``head`` and then ``body`` a part at a time; stop sending as soon as the proxy answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def send() -> None:
        writer.write(head.encode())
        for part in body:
            writer.write(part)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        # A safety net against a hung proxy, not a timing assertion.
        return await asyncio.wait_for(_read_answer(reader), 120)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sender
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _post(session: aiohttp.ClientSession, url: str, headers: dict[str, str], body: bytes) -> Answer:
    async with session.post(url, data=body, headers=headers) as response:
        return Answer(response.status, response.headers.get("Content-Type", ""), await response.read())


async def _warm_up(session: aiohttp.ClientSession, proxy: ProxyProcess) -> None:
    """Exercise the ordinary paths once, so lazy imports and caches are not counted as growth."""
    url = proxy.base_url + PATH
    answer = await _post(session, url, SOAP11, ENVELOPE.format(TEST).encode())
    assert answer.status == 200
    async with session.get(url + "?wsdl") as response:
        assert response.status == 200
        await response.read()
    _assert_fault_or_refusal("warm-up", await _post(session, url, SOAP11, b"<s:Envelope"))


async def test_the_real_process_answers_the_hostile_corpus_with_bounded_memory(settings_file: Path) -> None:
    proxy = await start_proxy(
        "serve", "--config", str(settings_file), env={"ALTINN_PROXY_LIMITS__MAX_BODY_BYTES": str(BODY_LIMIT)}
    )
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            await _warm_up(session, proxy)
            baseline = await asyncio.to_thread(_peak_rss, proxy.process.pid)

            answers = {
                name: await _post(session, proxy.base_url + PATH, headers, body)
                for name, (headers, body) in SMALL_CORPUS.items()
            }
        request_head = f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        answers["200_mb_chunked_body"] = await _stream(
            proxy.port,
            request_head + "Content-Type: text/xml; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n",
            _chunked(_huge_xml()),
        )
        mtom_length = len(MTOM_ROOT) + HUGE + len(MTOM_END)
        answers["200_mb_mtom_to_a_non_streamed_operation"] = await _stream(
            proxy.port,
            request_head + f'Content-Type: multipart/related; type="application/xop+xml"; start="<root>"; '
            f'start-info="text/xml"; boundary="{MTOM_BOUNDARY}"\r\n'
            + f"Content-Length: {mtom_length}\r\n\r\n",
            _huge_mtom(),
        )
        peak = await asyncio.to_thread(_peak_rss, proxy.process.pid)

        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            after = await _post(session, proxy.base_url + PATH, SOAP11, ENVELOPE.format(TEST).encode())
    finally:
        code = await proxy.terminate()

    for name, answer in answers.items():
        _assert_fault_or_refusal(name, answer)
    assert answers["wrong_content_type"].status == 415
    assert answers["200_mb_chunked_body"].status == 413
    assert peak - baseline < GROWTH_BOUND, f"peak RSS grew by {(peak - baseline) / MiB:.1f} MiB"
    assert after.status == 200, "the proxy still answers after the corpus"
    assert code == 0
