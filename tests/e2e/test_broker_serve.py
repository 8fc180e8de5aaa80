"""Issue 13 acceptance through ``altinn-proxy serve``: the recipient lists the file under the name the
sender uploaded, and under the reference the sender was given.

The sandbox fakes run in this process; the proxy runs as a child process from a settings file. The
sender initiates with a manifest naming another file, uploads (MTOM) with a ``FileName`` header; the
recipient's ``GetAvailableFilesBasic`` shows the uploaded name and the sender's reference, and the
download and confirmation by that reference reach the one Altinn 3 transfer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
import pytest

from proxy.sandbox.broker_model import FileTransferStatus, RecipientStatus
from proxy.sandbox.world import SandboxKeys
from tests.e2e.test_durability import REQUEST_TIMEOUT, Deployment, deploy, soap_call

pytestmark = pytest.mark.slow

NS = "http://www.altinn.no/services/ServiceEngine/Broker/2015/06"
BE = "http://schemas.altinn.no/services/ServiceEngine/Broker/2015/06"
BASIC = "/ServiceEngineExternal/BrokerServiceExternalBasic.svc"
STREAMED = "/ServiceEngineExternal/BrokerServiceExternalBasicStreamed.svc"
SENDER = ("demo-eus", "demo-eus-password", "310000019")
RECIPIENT = ("demo-eus2", "demo-eus2-password", "310000027")
BOUNDARY = "uuid:upload-boundary"
UPLOADED_NAME = "Årsoppgjør 2026 & vedlegg.zip"
PAYLOAD = b"PK\x05\x06" + bytes(18)


def _envelope(body: str) -> bytes:
    return (
        f'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>{body}</s:Body></s:Envelope>'
    ).encode()


async def _basic(session: aiohttp.ClientSession, url: str, operation: str, body: str) -> Any:
    return await soap_call(
        session, url + BASIC, f"{NS}/IBrokerServiceExternalBasic/{operation}", _envelope(body)
    )


async def _initiate(session: aiohttp.ClientSession, url: str) -> str:
    user, password, org = SENDER
    answer = await _basic(
        session,
        url,
        "InitiateBrokerServiceBasic",
        f'<InitiateBrokerServiceBasic xmlns="{NS}" xmlns:b="{BE}"><systemUserName>{user}</systemUserName>'
        f"<systemPassword>{password}</systemPassword><brokerServiceInitiation><b:Manifest>"
        "<b:ExternalServiceCode>4712</b:ExternalServiceCode><b:ExternalServiceEditionCode>1"
        "</b:ExternalServiceEditionCode><b:FileList><b:File><b:FileName>manifest-name.zip</b:FileName>"
        f"</b:File></b:FileList><b:Reportee>{org}</b:Reportee><b:SendersReference>serve-named"
        "</b:SendersReference></b:Manifest><b:RecipientList><b:Recipient>"
        f"<b:PartyNumber>{RECIPIENT[2]}</b:PartyNumber></b:Recipient></b:RecipientList>"
        "</brokerServiceInitiation></InitiateBrokerServiceBasic>",
    )
    return str(answer.findtext(".//{*}InitiateBrokerServiceBasicResult"))


async def _upload(session: aiohttp.ClientSession, url: str, reference: str) -> str:
    user, password, org = SENDER
    envelope = (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header>'
        f'<FileName xmlns="{NS}">{escape(UPLOADED_NAME)}</FileName><Reference xmlns="{NS}">{reference}</Reference>'
        f'<Reportee xmlns="{NS}">{org}</Reportee><SystemPassword xmlns="{NS}">{password}</SystemPassword>'
        f'<SystemUserName xmlns="{NS}">{user}</SystemUserName></s:Header><s:Body>'
        f'<StreamedPayloadBasicBE xmlns="{NS}"><DataStream><xop:Include '
        'xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:p"/></DataStream>'
        "</StreamedPayloadBasicBE></s:Body></s:Envelope>"
    )
    body = (
        (
            f"--{BOUNDARY}\r\nContent-ID: <root>\r\nContent-Type: application/xop+xml; charset=utf-8; "
            f'type="text/xml"\r\n\r\n{envelope}\r\n--{BOUNDARY}\r\nContent-ID: <p>\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + PAYLOAD
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    headers = {
        "Content-Type": f'multipart/related; type="application/xop+xml"; boundary="{BOUNDARY}"; '
        'start="<root>"; start-info="text/xml"',
        "SOAPAction": f'"{NS}/IBrokerServiceExternalBasicStreamed/UploadFileStreamedBasic"',
    }
    async with session.post(url + STREAMED, data=body, headers=headers) as response:
        text = await response.text()
    assert response.status == 200, text
    return text


@pytest.fixture
async def deployment(
    tmp_path: Path, sandbox_keys: SandboxKeys, altinn3_contract: Any
) -> AsyncIterator[Deployment]:
    async with deploy(
        tmp_path, sandbox_keys, altinn3_contract, f"sqlite://{tmp_path / 'state.db'}", 1
    ) as deployed:
        yield deployed


async def test_the_recipient_lists_the_file_under_the_name_the_sender_uploaded(
    deployment: Deployment,
) -> None:
    broker = deployment.fakes.broker
    proxy = await deployment.start_proxy()
    url = proxy.base_url
    async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as session:
        reference = await _initiate(session, url)
        assert broker.transfers == {}  # Altinn 3 learns of the file when it arrives, with its name
        receipt = await _upload(session, url, reference)
        assert f"Upload of file {reference} was successful" in receipt

        transfer = broker.sent_with("serve-named")
        await broker.wait_until(lambda: transfer.status is FileTransferStatus.PUBLISHED)
        assert transfer.request.file_name == UPLOADED_NAME

        user, password, org = RECIPIENT
        listed = await _basic(
            session,
            url,
            "GetAvailableFilesBasic",
            f'<GetAvailableFilesBasic xmlns="{NS}" xmlns:b="{BE}"><systemUserName>{user}</systemUserName>'
            f"<systemPassword>{password}</systemPassword><searchParameters>"
            "<b:ExternalServiceCode>4712</b:ExternalServiceCode><b:ExternalServiceEditionCode>1"
            "</b:ExternalServiceEditionCode><b:FileStatus>Uploaded</b:FileStatus>"
            f"<b:Reportee>{org}</b:Reportee></searchParameters></GetAvailableFilesBasic>",
        )
        files = listed.findall(".//{*}BrokerServiceAvailableFile")
        assert [(f.findtext("{*}FileReference"), f.findtext("{*}FileName")) for f in files] == [
            (reference, UPLOADED_NAME)
        ]

        download = _envelope(
            f'<DownloadFileStreamedBasic xmlns="{NS}"><systemUserName>{user}</systemUserName>'
            f"<systemPassword>{password}</systemPassword><fileReference>{reference}</fileReference>"
            f"<reportee>{org}</reportee></DownloadFileStreamedBasic>"
        )
        headers = {
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": f'"{NS}/IBrokerServiceExternalBasicStreamed/DownloadFileStreamedBasic"',
        }
        async with session.post(url + STREAMED, data=download, headers=headers) as response:
            answer = await response.read()
        assert response.status == 200
        assert PAYLOAD in answer  # the MTOM part carries the file as it was sent

        await _basic(
            session,
            url,
            "ConfirmDownloadedBasic",
            f'<ConfirmDownloadedBasic xmlns="{NS}"><systemUserName>{user}</systemUserName>'
            f"<systemPassword>{password}</systemPassword><fileReference>{reference}</fileReference>"
            f"<reportee>{org}</reportee></ConfirmDownloadedBasic>",
        )
    assert transfer.recipients[org].status is RecipientStatus.DOWNLOAD_CONFIRMED
    assert len(broker.transfers) == 1
