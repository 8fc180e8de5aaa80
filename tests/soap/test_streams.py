"""MTOM/XOP upload and download, inline base64, and WS-Security UsernameToken."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator

from aiohttp.test_utils import TestClient, TestServer
from lxml import etree
from requests_toolbelt.multipart.decoder import MultipartDecoder
from zeep.wsdl.attachments import Attachment

from proxy.identity.principal import CredentialSource
from proxy.soap.catalogue import default_catalogue
from proxy.soap.names import WSSE_NS
from proxy.soap.request import parse_request
from tests.soap.conftest import BROKER_NS, DOWNLOAD_BLOCKS, Recorder

STREAMED = "/ServiceEngineExternal/BrokerServiceExternalBasicStreamed.svc"
UPLOAD_ACTION = f"{BROKER_NS}/IBrokerServiceExternalBasicStreamed/UploadFileStreamedBasic"
HEADERS = (
    f'<s:Header><FileName xmlns="{BROKER_NS}">f.zip</FileName><Reference xmlns="{BROKER_NS}">r</Reference>'
    f'<Reportee xmlns="{BROKER_NS}">910000000</Reportee><SystemPassword xmlns="{BROKER_NS}">s3cret</SystemPassword>'
    f'<SystemUserName xmlns="{BROKER_NS}">sys</SystemUserName></s:Header>'
)


def _envelope(data: str) -> bytes:
    return (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
        + HEADERS
        + f'<s:Body><StreamedPayloadBasicBE xmlns="{BROKER_NS}"><DataStream>{data}</DataStream>'
        "</StreamedPayloadBasicBE></s:Body></s:Envelope>"
    ).encode()


async def test_mtom_upload_is_streamed_to_the_handler(server: TestServer, recorder: Recorder) -> None:
    payload = os.urandom(300_000)
    root = _envelope('<xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:bin%40x"/>')

    async def body() -> AsyncIterator[bytes]:
        yield b'--BOUND\r\nContent-ID: <root>\r\nContent-Type: application/xop+xml;type="text/xml"\r\n\r\n'
        yield root
        yield b"\r\n--BOUND\r\nContent-ID: <bin@x>\r\nContent-Type: application/octet-stream\r\n\r\n"
        for offset in range(0, len(payload), 10_000):
            yield payload[offset : offset + 10_000]
        yield b"\r\n--BOUND--\r\n"

    content_type = 'multipart/related; type="application/xop+xml"; boundary="BOUND"; start="<root>"; start-info="text/xml"'
    async with TestClient(server) as client:
        response = await client.post(
            STREAMED, data=body(), headers={"Content-Type": content_type, "SOAPAction": f'"{UPLOAD_ACTION}"'}
        )
        text = await response.text()
    assert response.status == 200, text
    assert recorder.uploads == [payload]
    call = recorder.calls[-1]
    assert call.credentials is not None
    assert call.credentials.source is CredentialSource.HEADER
    assert call.credentials.username == "sys"
    assert "300000 bytes" in text


async def test_inline_base64_upload_also_works(server: TestServer, recorder: Recorder) -> None:
    payload = os.urandom(1000)
    async with TestClient(server) as client:
        response = await client.post(
            STREAMED,
            data=_envelope(base64.b64encode(payload).decode()),
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": UPLOAD_ACTION},
        )
        assert response.status == 200, await response.text()
    assert recorder.uploads == [payload]


def _download_request() -> bytes:
    return (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        f'<DownloadFileStreamedBasic xmlns="{BROKER_NS}"><systemUserName>sys</systemUserName>'
        "<systemPassword>s3cret</systemPassword><fileReference>f</fileReference><reportee>1</reportee>"
        "</DownloadFileStreamedBasic></s:Body></s:Envelope>"
    ).encode()


async def test_download_answers_mtom_to_plain_clients_too(server: TestServer) -> None:
    # The endpoint has WCF's MTOM policy: WCF answered MTOM whatever the request's encoding.
    async with TestClient(server) as client:
        response = await client.post(STREAMED, data=_download_request(), headers={"Content-Type": "text/xml"})
        raw = await response.read()
    assert response.status == 200
    content_type = response.headers["Content-Type"]
    assert content_type.startswith('multipart/related; type="application/xop+xml"')
    boundary = content_type.split('boundary="', 1)[1].split('"', 1)[0].encode()
    parts = raw.split(b"--" + boundary)
    root, binary = parts[1], parts[2]
    envelope = etree.fromstring(root.split(b"\r\n\r\n", 1)[1])
    result = envelope.find(f".//{{{BROKER_NS}}}DownloadFileStreamedBasicResult")
    assert result is not None
    include = result.find("{http://www.w3.org/2004/08/xop/include}Include")
    assert include is not None
    assert include.get("href", "").startswith("cid:")
    assert binary.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n") == b"".join(DOWNLOAD_BLOCKS)
    # zeep's own MTOM reader gets every byte, the trailing newline too.
    decoded = MultipartDecoder(raw, content_type)
    attachment = Attachment(decoded.parts[1])
    assert attachment.content == b"".join(DOWNLOAD_BLOCKS)


async def test_download_answers_mtom_to_mtom_clients(server: TestServer) -> None:
    root = _download_request()
    body = (
        b'--B\r\nContent-ID: <root>\r\nContent-Type: application/xop+xml;type="text/xml"\r\n\r\n'
        + root
        + b"\r\n--B--\r\n"
    )
    content_type = (
        'multipart/related; type="application/xop+xml"; boundary="B"; start="<root>"; start-info="text/xml"'
    )
    async with TestClient(server) as client:
        response = await client.post(STREAMED, data=body, headers={"Content-Type": content_type})
        raw = await response.read()
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("multipart/related")
    assert b"xop:Include" in raw
    assert bytes([3]) * 70_001 in raw


def test_ws_security_username_token_is_extracted() -> None:
    service = default_catalogue().by_name("CorrespondenceAgencyExternal")
    assert service is not None
    body = (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header>'
        f'<o:Security xmlns:o="{WSSE_NS}"><o:UsernameToken><o:Username>sys</o:Username>'
        "<o:Password>pw</o:Password></o:UsernameToken></o:Security></s:Header><s:Body>"
        '<InsertCorrespondenceV2 xmlns="http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10"/>'
        "</s:Body></s:Envelope>"
    ).encode()
    call = parse_request(
        service, content_type="application/soap+xml; charset=utf-8", soap_action=None, body=body
    )
    assert call.operation.name == "InsertCorrespondenceV2"
    assert call.credentials is not None
    assert call.credentials.source is CredentialSource.WSSE
    assert (call.credentials.username, call.credentials.password) == ("sys", "pw")
    assert "pw" not in repr(call.credentials)
