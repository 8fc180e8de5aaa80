"""The sandbox's fakes, started together on loopback, and the proxy settings that point at them.

:func:`start_fakes` runs a fake Maskinporten on one port and one "platform" application (the token
exchange, Correspondence, Dialogporten and Broker) on another, with keys generated for this run and
the demo world of :mod:`proxy.sandbox.fixtures`. :func:`sandbox_settings` writes the proxy's key and
hashed demo credentials into a work directory and returns validated settings for them. The sandbox
command, the end-to-end tests and the benchmark all use these two functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from proxy import SHIPPED_MAPPINGS_DIR
from proxy.identity.passwords import hash_api_key, hash_password
from proxy.sandbox import fixtures
from proxy.sandbox.apps import FakeApps, install_apps
from proxy.sandbox.apps_model import AppSpec, DataTypeSpec, FormRule
from proxy.sandbox.authorized_parties import FakeAuthorizedParties, install_authorized_parties
from proxy.sandbox.broker import BrokerResource, FakeBroker, install_broker
from proxy.sandbox.correspondence import FakeCorrespondence, install_correspondence
from proxy.sandbox.correspondence_model import CorrespondenceResource
from proxy.sandbox.dialogporten import FakeDialogporten, install_dialogporten
from proxy.sandbox.maskinporten import FakeMaskinporten, create_maskinporten_app, install_token_exchange
from proxy.sandbox.observe import RequestObserver, observing_middleware
from proxy.sandbox.systemregister import FakeSystemRegister, install_system_register, rights_middleware
from proxy.sandbox.tokens import Clock, SigningKey, TokenVerifier
from proxy.settings import Settings, validate_settings

LOOPBACK = "127.0.0.1"
#: How often the fake broker publishes uploaded files in the background.
BROKER_PROCESSING_INTERVAL = 0.05
#: How often the fake Correspondence API publishes correspondences that have become visible.
CORRESPONDENCE_PUBLISHING_INTERVAL = 0.2
#: How long the sandbox's malware scan keeps an uploaded correspondence attachment unpublished.
ATTACHMENT_SCAN_SECONDS = 2.0


@dataclass(frozen=True)
class SandboxKeys:
    """The run's throwaway keys: Maskinporten's, the Altinn exchange's, and the proxy's client key."""

    maskinporten: SigningKey
    altinn: SigningKey
    client: SigningKey

    @classmethod
    def generate(cls) -> SandboxKeys:
        """Three fresh RSA keys (slow: call it in a thread)."""
        return cls(
            SigningKey.generate("mp"), SigningKey.generate("altinn"), SigningKey.generate(fixtures.CLIENT_KID)
        )


@dataclass
class Fakes:
    """The running fakes and their state, for banners and test assertions."""

    maskinporten_url: str
    platform_url: str
    keys: SandboxKeys
    maskinporten: FakeMaskinporten
    correspondence: FakeCorrespondence
    dialogporten: FakeDialogporten
    broker: FakeBroker
    #: The system register, system-user requests and the customers' approvals.
    system_register: FakeSystemRegister
    apps: FakeApps
    authorized_parties: FakeAuthorizedParties | None = None


def sandbox_apps() -> dict[str, AppSpec]:
    """The demo world's Altinn 3 apps: ``ttd/legacy-form-4713``, the home of legacy form 4713/1."""
    org, name = fixtures.FORM_APP
    form = AppSpec(
        org=org,
        app=name,
        title="Sandbox form for legacy service 4713",
        data_types=(
            DataTypeSpec(
                fixtures.FORM_DATA_TYPE,
                allowed_content_types=("application/xml", "text/xml"),
                max_count=1,
                min_count=1,
                root_element=fixtures.FORM_ROOT_ELEMENT,
                rules=(FormRule("Beloep", "beloep.negativt", "Beløp kan ikke være negativt"),),
            ),
            DataTypeSpec(
                fixtures.ATTACHMENT_DATA_TYPE,
                allowed_content_types=(
                    "application/pdf",
                    "image/png",
                    "image/jpeg",
                    "text/plain",
                    "text/xml",
                    "application/xml",
                ),
                max_size_mb=fixtures.ATTACHMENT_MAX_MB,
                max_count=10,
            ),
        ),
    )
    return {form.app_id: form}


async def _serve(app: web.Application, stack: contextlib.AsyncExitStack) -> str:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    await web.TCPSite(runner, LOOPBACK, 0).start()
    return f"http://{LOOPBACK}:{runner.addresses[0][1]}"


@contextlib.asynccontextmanager
async def start_fakes(
    workdir: Path,
    *,
    observer: RequestObserver | None = None,
    clock: Clock = time.time,
    keys: SandboxKeys | None = None,
    scan_seconds: float = ATTACHMENT_SCAN_SECONDS,
) -> AsyncIterator[Fakes]:
    """Start every fake on loopback; ``observer`` sees each request to the platform APIs.

    ``scan_seconds`` is how long the fake Correspondence API's malware scan keeps an uploaded
    attachment unpublished, as Altinn 3's asynchronous scan does.
    """
    if keys is None:
        keys = await asyncio.to_thread(SandboxKeys.generate)
    async with contextlib.AsyncExitStack() as stack:
        fake_mp = FakeMaskinporten(signing_key=keys.maskinporten, clock=clock)
        fake_mp.register_client(
            fixtures.CLIENT_ID,
            owner_org=fixtures.VENDOR_ORG,
            scopes=fixtures.CLIENT_SCOPES,
            keys={fixtures.CLIENT_KID: keys.client.private_key.public_key()},
            system_id=fixtures.SYSTEM_ID,
        )
        maskinporten_url = await _serve(create_maskinporten_app(fake_mp), stack)
        fake_mp.issuer = maskinporten_url + "/"

        registers: list[FakeSystemRegister] = []
        platform = web.Application(
            middlewares=[
                observing_middleware(observer),
                rights_middleware(lambda: registers[0] if registers else None, _API_RESOURCES),
            ],
            client_max_size=2 * 1024**3,
        )
        altinn_issuer = "http://altinn-sandbox.local/authentication/api/v1/openid/"
        verifier = TokenVerifier(fake_mp.issuer, keys.maskinporten, altinn_issuer, keys.altinn, clock=clock)
        install_token_exchange(
            platform,
            verifier=verifier,
            altinn_key=keys.altinn,
            altinn_issuer=altinn_issuer,
            service_owners={fixtures.SERVICE_OWNER_ORG: fixtures.SERVICE_OWNER_CODE},
            clock=clock,
        )
        dialogporten = install_dialogporten(platform, verifier=verifier, clock=clock)
        correspondence = install_correspondence(
            platform,
            verifier=verifier,
            resources={
                fixtures.CORRESPONDENCE_RESOURCE: CorrespondenceResource(
                    owner_org=fixtures.SERVICE_OWNER_ORG,
                    service_owner=fixtures.SERVICE_OWNER_CODE,
                    title="Sandbox correspondence service 4711",
                )
            },
            dialogs=dialogporten,
            clock=clock,
            scan_seconds=scan_seconds,
        )
        storage = workdir / "broker-files"
        storage.mkdir(parents=True, exist_ok=True)
        broker = install_broker(
            platform,
            verifier=verifier,
            resources={
                fixtures.BROKER_RESOURCE: BrokerResource(
                    resource_id=fixtures.BROKER_RESOURCE,
                    owner_org=fixtures.SERVICE_OWNER_ORG,
                    senders=frozenset(fixtures.CUSTOMER_ORGS),
                    recipients=frozenset(fixtures.CUSTOMER_ORGS),
                    external_service_code=fixtures.BROKER_SERVICE[0],
                    external_service_edition=int(fixtures.BROKER_SERVICE[1]),
                )
            },
            storage_dir=storage,
            clock=clock,
            background_interval=BROKER_PROCESSING_INTERVAL,
        )
        system_register = install_system_register(
            platform,
            verifier=verifier,
            maskinporten=fake_mp,
            known_resources=(
                fixtures.CORRESPONDENCE_RESOURCE,
                fixtures.BROKER_RESOURCE,
                fixtures.FORM_APP_RESOURCE,
            ),
            clock=clock,
        )
        _seed_onboarding(system_register)
        registers.append(system_register)
        authorized_parties = install_authorized_parties(
            platform,
            verifier=verifier,
            parties=fixtures.DEMO_PARTIES,
            person_orgs={fixtures.DEMO_PERSON: fixtures.DEMO_PERSON_ORGS},
            resources=(fixtures.CORRESPONDENCE_RESOURCE, fixtures.BROKER_RESOURCE),
        )
        apps = install_apps(
            platform,
            verifier=verifier,
            apps=sandbox_apps(),
            parties=fixtures.PARTY_IDS,
            storage_dir=workdir / "app-data",
            clock=clock,
        )
        publisher = asyncio.create_task(_publish_correspondence(correspondence), name="sandbox-publisher")
        stack.push_async_callback(_cancel, publisher)
        platform_url = await _serve(platform, stack)
        yield Fakes(
            maskinporten_url=maskinporten_url,
            platform_url=platform_url,
            keys=keys,
            maskinporten=fake_mp,
            correspondence=correspondence,
            dialogporten=dialogporten,
            broker=broker,
            system_register=system_register,
            authorized_parties=authorized_parties,
            apps=apps,
        )


#: Which resources each API family of the platform serves (for the fake's rights check).
_API_RESOURCES = {
    "/broker/": frozenset({fixtures.BROKER_RESOURCE}),
    "/correspondence/": frozenset({fixtures.CORRESPONDENCE_RESOURCE}),
    "/dialogporten/": frozenset({fixtures.CORRESPONDENCE_RESOURCE}),
}


def _seed_onboarding(register: FakeSystemRegister) -> None:
    """The system as registered before the broker service was routed, and the two ready customers.

    ``system register`` therefore shows the broker right as a difference; ``310000043`` has no system
    user until a request is approved.
    """
    register.seed_system(
        {
            "id": fixtures.SYSTEM_ID,
            "vendor": {"ID": f"0192:{fixtures.VENDOR_ORG}"},
            "name": {"nb": "Altinn 2-proxy", "en": "Altinn 2 proxy"},
            "description": {
                "nb": "Lar eldre Altinn 2-integrasjoner bruke Altinn 3",
                "en": "Lets legacy Altinn 2 integrations use Altinn 3",
            },
            "rights": [
                {"resource": [{"id": "urn:altinn:resource", "value": fixtures.CORRESPONDENCE_RESOURCE}]}
            ],
            "clientId": [fixtures.CLIENT_ID],
            "isVisible": True,
            "allowedRedirectUrls": [],
        }
    )
    for org in fixtures.SYSTEM_USER_ORGS:
        register.seed_system_user(
            fixtures.SYSTEM_ID, org, (fixtures.CORRESPONDENCE_RESOURCE, fixtures.BROKER_RESOURCE)
        )


async def _publish_correspondence(correspondence: FakeCorrespondence) -> None:
    """Publish correspondences whose publish time has come, as the real service does on its own."""
    while True:
        correspondence.publish_due()
        await asyncio.sleep(CORRESPONDENCE_PUBLISHING_INTERVAL)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _credentials_document() -> dict[str, Any]:
    callers: dict[str, Any] = {}
    for caller in fixtures.DEMO_CALLERS:
        entry: dict[str, Any] = {"password_hash": hash_password(caller.password).encode()}
        if caller.service_owner:
            entry.update(
                kind="service_owner",
                service_owner=caller.service_owner,
                org=caller.org,
                scopes=list(fixtures.SERVICE_OWNER_SCOPES),
            )
        else:
            entry.update(kind="end_user_system", orgs=[{"org": org} for org in caller.orgs])
        callers[caller.username] = entry
    return {
        "version": 1,
        "callers": callers,
        "api_keys": [{"name": "sandbox-rest", "key_hash": hash_api_key(fixtures.REST_API_KEY)}],
        "certificates": [{"caller": caller, "org": org} for caller, org in fixtures.REST_CERTIFICATES],
    }


def write_sandbox_files(workdir: Path, keys: SandboxKeys) -> None:
    """The proxy's Maskinporten key and the hashed demo credentials (slow: call it in a thread)."""
    key_pem = keys.client.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_file = workdir / "maskinporten-client.pem"
    key_file.write_bytes(key_pem)
    key_file.chmod(0o600)
    credentials = workdir / "credentials.yaml"
    credentials.write_text(yaml.safe_dump(_credentials_document(), sort_keys=False))
    credentials.chmod(0o600)


def sandbox_settings_document(
    fakes: Fakes,
    workdir: Path,
    *,
    host: str = LOOPBACK,
    port: int = 8080,
    mappings_dir: Path | None = None,
    client_ca_file: Path | None = None,
) -> dict[str, Any]:
    """The settings (as a mapping) for a proxy that talks to ``fakes``.

    ``client_ca_file``: the CA whose enterprise certificates the legacy REST front accepts.
    """
    identity: dict[str, Any] = {"credentials_file": str(workdir / "credentials.yaml")}
    if client_ca_file is not None:
        identity["client_ca_file"] = str(client_ca_file)
    return {
        "listen": {"host": host, "port": port, "metrics_host": LOOPBACK, "metrics_port": 0},
        "altinn": {
            "environment": "custom",
            "platform_url": fakes.platform_url,
            "apps_url": fakes.platform_url + "/apps/{org}",
            "maskinporten_well_known": fakes.maskinporten_url + "/.well-known/oauth-authorization-server",
        },
        "maskinporten": {
            "client_id": fixtures.CLIENT_ID,
            "key_file": str(workdir / "maskinporten-client.pem"),
            "kid": fixtures.CLIENT_KID,
        },
        "identity": identity,
        "data_dir": str(workdir / "data"),
        "mappings_dir": str(mappings_dir or default_mappings_dir()),
        "routing": {
            "correspondence": [
                {
                    "service_code": fixtures.CORRESPONDENCE_SERVICE[0],
                    "service_edition": fixtures.CORRESPONDENCE_SERVICE[1],
                    "resource_id": fixtures.CORRESPONDENCE_RESOURCE,
                }
            ],
            "broker": [
                {
                    "service_code": fixtures.BROKER_SERVICE[0],
                    "service_edition": fixtures.BROKER_SERVICE[1],
                    "resource_id": fixtures.BROKER_RESOURCE,
                }
            ],
            "apps": [
                {
                    "service_code": fixtures.FORM_SERVICE[0],
                    "service_edition": fixtures.FORM_SERVICE[1],
                    "org": fixtures.FORM_APP[0],
                    "app": fixtures.FORM_APP[1],
                    "data_type": fixtures.FORM_DATA_TYPE,
                    "data_format_id": fixtures.FORM_DATA_FORMAT[0],
                    "data_format_version": fixtures.FORM_DATA_FORMAT[1],
                    "attachment_types": {fixtures.ATTACHMENT_DATA_TYPE: fixtures.ATTACHMENT_DATA_TYPE},
                    "default_attachment_type": fixtures.ATTACHMENT_DATA_TYPE,
                }
            ],
        },
        "timeouts": {"drain": 5.0, "drain_delay": 0.0},
        "system": {"vendor_org": fixtures.VENDOR_ORG, "name": fixtures.SYSTEM_NAME},
    }


def sandbox_settings(fakes: Fakes, workdir: Path, **options: Any) -> Settings:
    """Validated settings for a proxy that talks to ``fakes`` (the files must have been written)."""
    document: Mapping[str, Any] = sandbox_settings_document(fakes, workdir, **options)
    return validate_settings(document, source="<sandbox>")


def write_settings_file(path: Path, document: Mapping[str, Any]) -> Path:
    """Write the sandbox's settings as YAML (mode 0600) so every command can use them with ``--config``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Written by `altinn-proxy sandbox` for its running world; valid while it runs.\n"
        + yaml.safe_dump(dict(document), sort_keys=False)
    )
    path.chmod(0o600)
    return path


def default_mappings_dir() -> Path:
    """The mapping files shipped with the package (the repository's ``mappings/``)."""
    return SHIPPED_MAPPINGS_DIR
