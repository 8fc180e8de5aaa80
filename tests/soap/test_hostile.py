"""Hostile and malformed input: each answer is a well-formed fault (or 413/415), fast, with no I/O."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from proxy.errors import ProxyError
from proxy.soap.catalogue import default_catalogue
from proxy.soap.names import FAULT_NS
from proxy.soap.request import parse_request

PATH = "/ServiceEngineExternal/CorrespondenceAgencyExternalBasic.svc"
ENV = '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>{}</s:Body></s:Envelope>'
TEST = '<Test xmlns="http://www.altinn.no/services/2009/10"/>'
SOAP11 = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}


def _corpus(secret_file: Path, trap_port: int) -> dict[str, bytes]:
    laughs = '<!DOCTYPE s:Envelope [<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8)
    )
    return {
        "billion_laughs": (laughs + "]>" + ENV.format("<Test>&i;</Test>")).encode(),
        "external_entity": (
            f'<!DOCTYPE s:Envelope [<!ENTITY x SYSTEM "file://{secret_file}">]>'
            + ENV.format("<Test>&x;</Test>")
        ).encode(),
        "external_dtd": (
            f'<!DOCTYPE s:Envelope SYSTEM "http://127.0.0.1:{trap_port}/evil.dtd">' + ENV.format(TEST)
        ).encode(),
        "parameter_entity": (
            f'<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:{trap_port}/p">%p;]>' + ENV.format(TEST)
        ).encode(),
        "deep_nesting": ENV.format("<a>" * 10_000 + "</a>" * 10_000).encode(),
        "truncated": ENV.format(TEST).encode()[:-20],
        "empty": b"",
        "latin1": (
            '<?xml version="1.0" encoding="ISO-8859-1"?>' + ENV.format("<Test>\xe6\xf8\xe5</Test>")
        ).encode("latin-1"),
        "utf16": ENV.format(TEST).encode("utf-16"),
        "invalid_utf8": ENV.format("<Test>\udcff</Test>").encode("utf-8", "surrogateescape"),
        "processing_instruction": ENV.format("<?evil x?>" + TEST).encode(),
        "undefined_entity": ENV.format("<Test>&nope;</Test>").encode(),
        "not_an_envelope": b"<hello/>",
        "two_body_children": ENV.format(TEST + TEST).encode(),
        "soap12_envelope_as_11": ENV.format(TEST)
        .replace("http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope")
        .encode(),
        "many_elements": ENV.format("<Test>" + "<x/>" * 150_000 + "</Test>").encode(),
    }


def _assert_fault(status: int, body: bytes) -> etree._Element:
    assert status == 500, body[:300]
    root = etree.fromstring(body)
    fault = root.find(f".//{{{FAULT_NS}}}AltinnFault")
    assert fault is not None
    assert fault.findtext(f"{{{FAULT_NS}}}ErrorGuid")
    assert b"Traceback" not in body
    return fault


@pytest.fixture
async def trap() -> tuple[list[bytes], int]:
    """A listener that records any connection the parser might make."""
    seen: list[bytes] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.read(100))
        writer.close()

    listener = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    yield seen, port
    listener.close()
    await listener.wait_closed()


async def test_hostile_corpus_gets_faults_without_file_or_network_access(
    server: TestServer, tmp_path: Path, trap: tuple[list[bytes], int]
) -> None:
    seen, port = trap
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    async with TestClient(server) as client:
        for name, body in _corpus(secret, port).items():
            response = await client.post(PATH, data=body, headers=SOAP11)
            payload = await response.read()
            fault = _assert_fault(response.status, payload)
            assert b"TOP-SECRET-CONTENT" not in payload, name
            assert fault.findtext(f"{{{FAULT_NS}}}ErrorID") == "30001", name
    assert seen == []


async def test_wrong_content_type_is_415_with_fault(server: TestServer) -> None:
    async with TestClient(server) as client:
        response = await client.post(
            PATH, data=ENV.format(TEST), headers={"Content-Type": "application/json"}
        )
        assert response.status == 415
        assert etree.fromstring(await response.read()).find(f".//{{{FAULT_NS}}}AltinnFault") is not None


async def test_soap12_on_basic_endpoint_gets_a_soap12_version_fault(server: TestServer) -> None:
    body = ENV.format(TEST).replace(
        "http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope"
    )
    async with TestClient(server) as client:
        response = await client.post(
            PATH, data=body, headers={"Content-Type": "application/soap+xml; charset=utf-8"}
        )
        payload = await response.read()
    assert response.status == 500
    root = etree.fromstring(payload)
    assert root.tag == "{http://www.w3.org/2003/05/soap-envelope}Envelope"
    assert root.findtext(".//{http://www.w3.org/2003/05/soap-envelope}Value") == "s:VersionMismatch"


async def _raw_request(port: int, head: bytes, chunks: int, chunk: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        for _ in range(chunks):
            if reader.at_eof() or len(reader._buffer) > 0:  # type: ignore[attr-defined]  # answered already
                break
            writer.write(chunk)
            try:
                await writer.drain()
            except ConnectionError:
                break
        return await asyncio.wait_for(reader.read(4096), timeout=10)
    finally:
        writer.close()


async def test_200_mb_content_length_is_refused_before_reading(server: TestServer) -> None:
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: {200 * 1024 * 1024}\r\n\r\n"
    ).encode()
    answer = await _raw_request(server.port, head, 1, b"<")
    assert answer.startswith(b"HTTP/1.1 413")


async def test_200_mb_chunked_body_is_cut_off_at_the_limit(server: TestServer) -> None:
    head = f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    block = b"a" * 65536
    chunk = b"10000\r\n" + block + b"\r\n"
    answer = await _raw_request(server.port, head, 200 * 16, chunk)
    assert answer.startswith(b"HTTP/1.1 413")


_SERVICE = default_catalogue().by_name("CorrespondenceAgencyExternalBasic")
_xml_fragments = st.sampled_from(
    [
        "<",
        ">",
        "&",
        "&amp;",
        "<!DOCTYPE",
        "<!ENTITY",
        "<?",
        "?>",
        "]]>",
        "<![CDATA[",
        TEST,
        "</s:Body>",
        "\x00",
        "é",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.lists(_xml_fragments | st.text(max_size=20), max_size=8),
    raw=st.binary(max_size=200),
    content_type=st.sampled_from(
        ["text/xml", "application/soap+xml", "multipart/related", "text/plain", "", 'text/xml; charset="x"']
    ),
    action=st.text(max_size=50),
)
def test_no_input_escapes_the_error_tree(
    prefix: list[str], raw: bytes, content_type: str, action: str
) -> None:
    assert _SERVICE is not None
    body = ENV.format("".join(prefix)).encode("utf-8", "surrogatepass") + raw
    for candidate in (body, raw, "".join(prefix).encode("utf-8", "surrogatepass")):
        with contextlib.suppress(ProxyError):
            parse_request(_SERVICE, content_type=content_type, soap_action=action, body=candidate)


async def test_unexpected_handler_error_is_a_generic_server_fault(server: TestServer) -> None:
    body = ENV.format(
        '<CreateSimpleCorrespondenceServiceBasic xmlns="http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10"><systemUserName>a</systemUserName><systemPassword>s3cret</systemPassword></CreateSimpleCorrespondenceServiceBasic>'
    )
    async with TestClient(server) as client:
        response = await client.post(PATH, data=body, headers={**SOAP11, "X-Request-Id": "r1"})
        payload = await response.read()
    fault = _assert_fault(response.status, payload)
    assert b"secret internal detail" not in payload
    assert etree.fromstring(payload).findtext(".//faultcode") == "s:Server"
    guid = fault.findtext(f"{{{FAULT_NS}}}ErrorGuid")
    assert guid
    assert guid in (fault.findtext(f"{{{FAULT_NS}}}AltinnErrorMessage") or "")
