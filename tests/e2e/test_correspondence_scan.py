"""Issue 13 acceptance through ``altinn-proxy serve``: inline attachments against Altinn 3's malware scan.

The sandbox fakes run in this process with the scan taking 2 s, as the sandbox's does; the proxy
runs as a child process from a settings file and a credentials file. A correspondence with three
inline attachments and an e-mail + SMS notification succeeds on the first call (the proxy waits for
the scan, which Altinn 3 requires before it accepts the attachments), the notification texts reach
Altinn 3, a resend answers the same receipt, and a proxy killed between uploading the attachments
and creating the correspondence is resent by its client to a new process that reuses them. No
attachment is left without a correspondence (an orphan) at any point.
"""

from __future__ import annotations

import asyncio
import base64
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from proxy.sandbox.correspondence_model import Attachment
from proxy.sandbox.world import Fakes, SandboxKeys
from tests.e2e.test_durability import (
    AGENCY_NS,
    AGENCY_PATH,
    CORRESPONDENCE_NS,
    INSERT_ACTION,
    REPORTEE,
    REQUEST_TIMEOUT,
    SERVICE_OWNER,
    Deployment,
    deploy,
    expire_dead_claims,
    soap_call,
)

pytestmark = pytest.mark.slow

NOTIFICATION_NS = "http://schemas.altinn.no/services/ServiceEngine/Notification/2009/10"
FILES = {
    "vedtak.pdf": b"%PDF-1.7 vedtak " * 1000,
    "vilkar.txt": "vilkår for tilskudd\n".encode(),
    "vedlegg.bin": bytes(range(256)) * 64,
}
EMAIL_SUBJECT = "Nytt vedtak fra Testdirektoratet"
EMAIL_BODY = "Du har fått et vedtak. Logg inn i Altinn for å lese det."


def insert_with_attachments(reference: str) -> bytes:
    """``InsertCorrespondenceBasicV2`` with three inline attachments and an e-mail + SMS notification."""
    user, password = SERVICE_OWNER
    attachments = "".join(
        f"""<c:BinaryAttachmentV2>
              <c:FunctionType>Unspecified</c:FunctionType><c:FileName>{name}</c:FileName>
              <c:Name>{name.split(".")[0].title()}</c:Name><c:Encrypted>false</c:Encrypted>
              <c:Data>{base64.b64encode(data).decode()}</c:Data>
            </c:BinaryAttachmentV2>"""
        for name, data in FILES.items()
    )
    return f"""<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
      <InsertCorrespondenceBasicV2 xmlns="{AGENCY_NS}" xmlns:c="{CORRESPONDENCE_NS}" xmlns:n="{NOTIFICATION_NS}">
        <systemUserName>{user}</systemUserName><systemPassword>{password}</systemPassword>
        <SystemUserCode>TTD_DEMO</SystemUserCode>
        <ExternalShipmentReference>{reference}</ExternalShipmentReference>
        <Correspondence>
          <c:ServiceCode>4711</c:ServiceCode><c:ServiceEdition>1</c:ServiceEdition>
          <c:Reportee>{REPORTEE}</c:Reportee>
          <c:Content>
            <c:LanguageCode>1044</c:LanguageCode><c:MessageTitle>Vedtak {reference}</c:MessageTitle>
            <c:MessageSummary>Sammendrag</c:MessageSummary><c:MessageBody>Melding</c:MessageBody>
            <c:Attachments><c:BinaryAttachments>{attachments}</c:BinaryAttachments></c:Attachments>
          </c:Content>
          <c:VisibleDateTime>2026-01-01T00:00:00</c:VisibleDateTime>
          <c:Notifications>
            <n:Notification>
              <n:FromAddress>no-reply@testdirektoratet.no</n:FromAddress>
              <n:ShipmentDateTime>2026-01-01T00:00:00</n:ShipmentDateTime>
              <n:LanguageCode>1044</n:LanguageCode>
              <n:NotificationType>TokenTextOnly</n:NotificationType>
              <n:TextTokens>
                <n:TextToken><n:TokenNum>1</n:TokenNum><n:TokenValue>{EMAIL_BODY}</n:TokenValue></n:TextToken>
                <n:TextToken><n:TokenNum>0</n:TokenNum><n:TokenValue>{EMAIL_SUBJECT}</n:TokenValue></n:TextToken>
              </n:TextTokens>
              <n:ReceiverEndPoints>
                <n:ReceiverEndPoint><n:TransportType>Email</n:TransportType></n:ReceiverEndPoint>
                <n:ReceiverEndPoint><n:TransportType>SMS</n:TransportType></n:ReceiverEndPoint>
              </n:ReceiverEndPoints>
            </n:Notification>
          </c:Notifications>
        </Correspondence>
      </InsertCorrespondenceBasicV2></s:Body></s:Envelope>""".encode()


async def send(session: aiohttp.ClientSession, proxy_url: str, reference: str) -> int:
    """Submit ``reference`` once; the ``ReceiptId`` it was acknowledged with."""
    answer = await soap_call(
        session, proxy_url + AGENCY_PATH, INSERT_ACTION, insert_with_attachments(reference)
    )
    assert answer.findtext(".//{*}ReceiptStatusCode") == "OK"
    return int(answer.findtext(".//{*}ReceiptId"))


def attachments_of(fakes: Fakes, reference: str) -> list[Attachment]:
    """The fake Altinn 3's attachments created for one ExternalShipmentReference."""
    return [a for a in fakes.correspondence.attachments.values() if a.senders_reference == reference]


def orphans(fakes: Fakes) -> list[Attachment]:
    """Attachments no correspondence uses."""
    return [a for a in fakes.correspondence.attachments.values() if not a.correspondence_ids]


@pytest.fixture
async def deployment(
    tmp_path: Path, sandbox_keys: SandboxKeys, altinn3_contract: Any
) -> AsyncIterator[Deployment]:
    """The fakes (scan 2 s), judged by Altinn's contract, and proxies on a SQLite store."""
    store = f"sqlite://{tmp_path / 'state.db'}"
    async with deploy(tmp_path, sandbox_keys, altinn3_contract, store, workers=1) as deployed:
        assert deployed.fakes.correspondence.scan_seconds == 2.0
        yield deployed


async def test_inline_attachments_and_notifications_survive_the_scan_resends_and_a_crash(
    deployment: Deployment,
) -> None:
    fakes = deployment.fakes
    proxy = await deployment.start_proxy()
    async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as session:
        receipt = await send(session, proxy.base_url, "scan-1")

        [correspondence] = [
            c
            for c in fakes.correspondence.correspondences.values()
            if c.request["sendersReference"] == "scan-1"
        ]
        assert {a.file_name: a.data for a in correspondence.attachments} == FILES
        assert {a.status for a in correspondence.attachments} == {"Published"}
        assert correspondence.request["notification"] == {
            "notificationTemplate": "CustomMessage",
            "notificationChannel": "EmailAndSms",
            "emailSubject": EMAIL_SUBJECT,
            "emailBody": EMAIL_BODY,
            "smsBody": f"{EMAIL_SUBJECT} {EMAIL_BODY}",
        }
        assert correspondence.notification_order_id is not None

        assert await send(session, proxy.base_url, "scan-1") == receipt
        assert len(attachments_of(fakes, "scan-1")) == 3
        assert orphans(fakes) == []

        # Killed after uploading the attachments, while waiting for their scan.
        crashing = asyncio.create_task(send(session, proxy.base_url, "crash-1"))
        while len([a for a in attachments_of(fakes, "crash-1") if a.data is not None]) < 3:
            assert not crashing.done(), crashing
            await asyncio.sleep(0.02)
        await proxy.terminate(signal.SIGKILL)
        with pytest.raises(aiohttp.ClientError):
            await crashing
        uploaded = {a.id for a in attachments_of(fakes, "crash-1")}
        assert not any(
            c.request["sendersReference"] == "crash-1" for c in fakes.correspondence.correspondences.values()
        )

        await expire_dead_claims(deployment.store_url, ["crash-1"])
        second = await deployment.start_proxy()
        await send(session, second.base_url, "crash-1")
        [resent] = [
            c
            for c in fakes.correspondence.correspondences.values()
            if c.request["sendersReference"] == "crash-1"
        ]
        assert {a.id for a in resent.attachments} == uploaded
        assert {a.id for a in attachments_of(fakes, "crash-1")} == uploaded
        assert orphans(fakes) == []
