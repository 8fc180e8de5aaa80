"""A platform app with the fake Correspondence API and Dialogporten, and helpers to call it.

No tests live here; the fixtures are imported by ``test_correspondence*.py`` and
``test_dialogporten*.py``. Every request the fakes receive is judged by Altinn's published contract
(``altinn3_contract``), and :meth:`Platform.call` judges every response too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient

from proxy.sandbox.correspondence import FakeCorrespondence, install_correspondence
from proxy.sandbox.correspondence_model import CorrespondenceResource
from proxy.sandbox.dialogporten import FakeDialogporten, install_dialogporten
from proxy.sandbox.observe import observing_middleware
from proxy.sandbox.tokens import SigningKey, TokenVerifier, mint_access_token

MP_ISSUER = "https://test.maskinporten.no/"
ALTINN_ISSUER = "http://127.0.0.1/authentication/api/v1/openid/"
RESOURCE = "ttd-migratedcorrespondence-4711-1"
OTHER_RESOURCE = "skd-some-correspondence-1"
SERVICE_OWNER_ORG = "310000035"
OTHER_OWNER_ORG = "974761076"
RECIPIENT_ORG = "310000019"
RECIPIENT_URN = f"urn:altinn:organization:identifier-no:{RECIPIENT_ORG}"
OTHER_ORG = "310000027"
VENDOR_ORG = "314000000"
SENDER_SCOPES = "altinn:serviceowner altinn:correspondence.write"
RECIPIENT_SCOPES = "altinn:correspondence.read digdir:dialogporten"


@dataclass
class ManualClock:
    """A clock the test moves by hand."""

    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now


@dataclass
class Platform:
    """The running fakes, a client on a real socket, and token minting."""

    client: TestClient[web.Request, web.Application]
    correspondence: FakeCorrespondence
    dialogporten: FakeDialogporten
    mp_key: SigningKey
    altinn_key: SigningKey
    clock: ManualClock
    contract: Any
    observer: Any
    judged: int = 0

    def finish_scans(self) -> None:
        """Let the malware scans of every uploaded attachment report, and publish what is due."""
        self.clock.now += self.correspondence.scan_seconds
        self.correspondence.publish_due()

    def contract_also_refused(self) -> bool:
        """True when Altinn's published contract refused the requests sent so far; forgets them."""
        refused = bool(self.observer.problems)
        self.observer.problems.clear()
        return refused

    def service_owner_token(self, scopes: str = SENDER_SCOPES, org: str = SERVICE_OWNER_ORG) -> str:
        """A raw Maskinporten token of the service owner itself."""
        return mint_access_token(
            self.mp_key, issuer=MP_ISSUER, consumer_org=org, scopes=scopes, now=self.clock()
        )

    def system_user_token(
        self, org: str = RECIPIENT_ORG, *, exchanged: bool = True, scopes: str = RECIPIENT_SCOPES
    ) -> str:
        """A vendor's token for a system user of ``org``: exchanged (Altinn-signed) or raw Maskinporten."""
        key, issuer = (self.altinn_key, ALTINN_ISSUER) if exchanged else (self.mp_key, MP_ISSUER)
        extra = {"urn:altinn:orgNumber": VENDOR_ORG} if exchanged else None
        return mint_access_token(
            key,
            issuer=issuer,
            consumer_org=VENDOR_ORG,
            scopes=scopes,
            system_user_org=org,
            system_id=f"{VENDOR_ORG}_erp",
            now=self.clock(),
            extra=extra,
        )

    async def call(
        self,
        method: str,
        path: str,
        token: str | None,
        *,
        json: object = None,
        data: bytes | FormData | None = None,
        params: Mapping[str, str] | list[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        judge: bool = True,
    ) -> tuple[int, Any, bytes]:
        """Call the platform; the response is judged by the published contract unless ``judge`` is False."""
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if isinstance(data, bytes):
            sent.setdefault("Content-Type", "application/octet-stream")
        async with self.client.request(
            method, path, json=json, data=data, params=params, headers=sent
        ) as response:
            raw = await response.read()
            content_type = response.headers.get("Content-Type", "").split(";")[0]
            if judge:
                problems = self.contract.check_response(
                    method,
                    str(response.url),
                    response.status,
                    raw,
                    content_type,
                    headers=dict(response.headers),
                )
                assert problems == [], f"{method} {path} answered outside the contract: {problems}"
                self.judged += 1
            parsed = _parse(raw, content_type)
            return response.status, parsed, raw


def _parse(raw: bytes, content_type: str) -> Any:
    import json as json_module

    if raw and content_type in {"application/json", "application/problem+json"}:
        return json_module.loads(raw)
    return None


@pytest.fixture(scope="session")
def signing_keys() -> tuple[SigningKey, SigningKey]:
    """Maskinporten's and Altinn's signing keys (generated once, off the event loop)."""
    return SigningKey.generate("mp"), SigningKey.generate("altinn")


@pytest.fixture
async def platform(
    aiohttp_client: Any,
    altinn3_contract: Any,
    _contract_module: Any,
    signing_keys: tuple[SigningKey, SigningKey],
) -> Platform:
    """The fakes on one platform app, behind the contract-judging middleware."""
    mp_key, altinn_key = signing_keys
    clock = ManualClock()
    verifier = TokenVerifier(MP_ISSUER, mp_key, ALTINN_ISSUER, altinn_key, clock=clock)
    app = web.Application(middlewares=[observing_middleware(altinn3_contract)])
    dialogs = install_dialogporten(app, verifier=verifier, clock=clock)
    resources = {
        RESOURCE: CorrespondenceResource(owner_org=SERVICE_OWNER_ORG, service_owner="ttd"),
        OTHER_RESOURCE: CorrespondenceResource(owner_org=OTHER_OWNER_ORG, service_owner="skd"),
    }
    fake = install_correspondence(app, verifier=verifier, resources=resources, dialogs=dialogs, clock=clock)
    client = await aiohttp_client(app)
    return Platform(client, fake, dialogs, mp_key, altinn_key, clock, _contract_module, altinn3_contract)


def correspondence_request(
    *,
    senders_reference: str = "ref-1",
    recipients: tuple[str, ...] = (f"urn:altinn:organization:identifier-no:{RECIPIENT_ORG}",),
    **overrides: Any,
) -> dict[str, Any]:
    """A valid ``InitializeCorrespondencesExt`` body."""
    correspondence: dict[str, Any] = {
        "resourceId": RESOURCE,
        "sendersReference": senders_reference,
        "messageSender": "Testdepartementet",
        "content": {
            "language": "nb",
            "messageTitle": "Vedtak om tilskudd",
            "messageSummary": "Kort oppsummering",
            "messageBody": "# Vedtak\n\nDere har fått tilskudd.",
        },
        "isConfirmationNeeded": False,
    }
    correspondence.update(overrides)
    return {"correspondence": correspondence, "recipients": list(recipients)}


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def upload_form(platform: Platform, files: dict[str, bytes], **fields: str) -> FormData:
    """A ``/correspondence/upload`` form that needs confirmation and carries ``files``; ``fields`` override."""
    due = datetime.fromtimestamp(platform.clock(), UTC) + timedelta(days=14)
    form = FormData()
    values = {
        "Correspondence.ResourceId": RESOURCE,
        "Correspondence.SendersReference": "shipment-42",
        "Correspondence.MessageSender": "Testdepartementet",
        "Correspondence.Content.Language": "nb",
        "Correspondence.Content.MessageTitle": "Vedtak",
        "Correspondence.Content.MessageSummary": "Oppsummering",
        "Correspondence.Content.MessageBody": "Se vedlegg.",
        "Correspondence.DueDateTime": iso(due),
        "Correspondence.IsConfirmationNeeded": "true",
        "Correspondence.Notification.NotificationTemplate": "GenericAltinnMessage",
        "Correspondence.Notification.NotificationChannel": "Email",
        "Correspondence.ReplyOptions[0].LinkURL": "https://example.no/svar",
        "Correspondence.ReplyOptions[0].LinkText": "Svar",
        "Recipients": RECIPIENT_URN,
        **fields,
    }
    for name, value in values.items():
        form.add_field(name, value)
    for index, name in enumerate(files):
        form.add_field(f"Correspondence.Content.Attachments[{index}].FileName", name)
        form.add_field(f"Correspondence.Content.Attachments[{index}].SendersReference", f"att-{index}")
        form.add_field(
            f"Correspondence.Content.Attachments[{index}].DataLocationType", "NewCorrespondenceAttachment"
        )
    for name, data in files.items():
        form.add_field("attachments", data, filename=name, content_type="application/octet-stream")
    return form
