"""The legacy REST front's identity, end to end: ApiKey, ForceEIAuthentication, enterprise certificates.

The proxy serves HTTPS (client certificates from the TLS connection) and plain HTTP (certificates from
the ingress header) on loopback. The trusted ingress is 127.0.0.2: a client bound to that address is
the ingress, one on 127.0.0.1 is a stranger whose header must be ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
import urllib.parse
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
import yaml
from aiohttp import web
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from proxy.app import create_app
from proxy.identity.passwords import hash_api_key
from proxy.sandbox.world import (
    Fakes,
    SandboxKeys,
    sandbox_settings_document,
    start_fakes,
    write_sandbox_files,
)
from proxy.settings import validate_settings
from proxy.web.rest import MISSING_API_KEY, NO_ORGANISATION_NUMBER
from proxy.web.server import tls_context
from tests.identity.conftest import ORG_A, ORG_B, ORG_C, EnterpriseCert, issue_enterprise_cert

API_KEY = "vendor-api-key-3f9d2c71"
INGRESS = "127.0.0.2"
CERT_HEADER = "X-Client-Cert"
TIMEOUT = aiohttp.ClientTimeout(total=15)
TODAY = datetime.datetime.now(datetime.UTC)
VALID = {"not_before": TODAY - datetime.timedelta(days=30), "not_after": TODAY + datetime.timedelta(days=365)}
EXPIRED = {
    "not_before": TODAY - datetime.timedelta(days=400),
    "not_after": TODAY - datetime.timedelta(days=1),
}
# A documented Altinn 2 route that this proxy does not translate (the identity checks come first).
UNTRANSLATED = f"/api/{ORG_A}/profile?ForceEIAuthentication"


@dataclass(frozen=True)
class RestWorld:
    """The fakes and the proxy, on HTTPS (``https_url``) and plain HTTP (``http_url``)."""

    fakes: Fakes
    https_url: str
    http_url: str
    workdir: Path


@pytest.fixture(scope="module")
def client_ca() -> trustme.CA:
    """The CA that issues the enterprise certificates the proxy accepts."""
    return trustme.CA()


@pytest.fixture(scope="module")
def other_ca() -> trustme.CA:
    """A CA the proxy does not trust."""
    return trustme.CA()


@pytest.fixture(scope="module")
def server_ca() -> trustme.CA:
    """The CA of the proxy's own server certificate."""
    return trustme.CA()


def _prepare(workdir: Path, client_ca: trustme.CA, server_ca: trustme.CA) -> None:
    credentials = workdir / "credentials.yaml"
    document = yaml.safe_load(credentials.read_text())
    document["api_keys"] = [{"name": "vendor-app", "key_hash": hash_api_key(API_KEY)}]
    document["certificates"] = [{"caller": "demo-eus", "org": ORG_A}, {"caller": "demo-so", "org": ORG_C}]
    credentials.write_text(yaml.safe_dump(document))
    client_ca.cert_pem.write_to_path(str(workdir / "client-ca.pem"))
    server = server_ca.issue_cert("127.0.0.1", "localhost")
    server.cert_chain_pems[0].write_to_path(str(workdir / "server.pem"))
    for blob in server.cert_chain_pems[1:]:
        blob.write_to_path(str(workdir / "server.pem"), append=True)
    server.private_key_pem.write_to_path(str(workdir / "server-key.pem"))


@contextlib.asynccontextmanager
async def rest_world(
    workdir: Path, contract: Any, keys: SandboxKeys, client_ca: trustme.CA, server_ca: trustme.CA
) -> AsyncIterator[RestWorld]:
    """Start the fakes and the proxy with a client CA, the trusted ingress and TLS."""
    async with start_fakes(workdir, observer=contract, keys=keys) as fakes:
        await asyncio.to_thread(write_sandbox_files, workdir, fakes.keys)
        await asyncio.to_thread(_prepare, workdir, client_ca, server_ca)
        document = sandbox_settings_document(fakes, workdir, port=0)
        document["identity"].update(
            client_ca_file=str(workdir / "client-ca.pem"),
            trusted_proxies=[f"{INGRESS}/32"],
            client_certificate_header=CERT_HEADER,
        )
        document["listen"]["tls"] = {
            "certificate_file": str(workdir / "server.pem"),
            "key_file": str(workdir / "server-key.pem"),
        }
        settings = validate_settings(document)
        tls = settings.listen.tls
        assert tls is not None
        assert tls.client_ca_file == workdir / "client-ca.pem"
        context = await asyncio.to_thread(
            tls_context, tls.certificate_file, tls.key_file, client_ca_file=tls.client_ca_file
        )
        runner = web.AppRunner(create_app(settings), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            (_, https_port), (_, http_port) = runner.addresses[0][:2], runner.addresses[1][:2]
            yield RestWorld(
                fakes, f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}", workdir
            )
        finally:
            await runner.cleanup()


@pytest.fixture
async def world(
    tmp_path: Path,
    altinn3_contract: Any,
    sandbox_keys: SandboxKeys,
    client_ca: trustme.CA,
    server_ca: trustme.CA,
) -> AsyncIterator[RestWorld]:
    """The running proxy in front of the fakes (judged by Altinn's published contract)."""
    async with rest_world(tmp_path, altinn3_contract, sandbox_keys, client_ca, server_ca) as running:
        yield running


def client_context(server_ca: trustme.CA, workdir: Path, cert: EnterpriseCert | None) -> ssl.SSLContext:
    """A client context trusting the proxy's server certificate, presenting ``cert`` when given."""
    context = ssl.create_default_context()
    server_ca.configure_trust(context)
    if cert is not None:
        path = workdir / f"client-{cert.certificate.serial_number}.pem"
        path.write_bytes(cert.pem + cert.key_pem)
        context.load_cert_chain(path)
    return context


@dataclass(frozen=True)
class Answer:
    """A legacy REST answer."""

    status: int
    reason: str
    body: dict[str, Any]


async def call(
    url: str,
    *,
    context: ssl.SSLContext | bool = False,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    local_address: str | None = None,
) -> Answer:
    """One request; the JSON error body (empty for none)."""
    connector = aiohttp.TCPConnector(local_addr=(local_address, 0) if local_address else None)
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT, connector=connector) as session,
        session.request(method, url, headers=headers, ssl=context) as response,
    ):
        body = await response.json() if response.content_type == "application/json" else {}
        return Answer(response.status, response.reason or "", body)


def outbound(world: RestWorld, contract: Any) -> tuple[int, Counter[tuple[str, str | None]]]:
    """Requests the Altinn 3 fakes received so far, and grants Maskinporten issued."""
    return contract.checked + contract.unchecked, Counter(world.fakes.maskinporten.grants)


def escaped(cert: EnterpriseCert) -> str:
    """As nginx's ``$ssl_client_escaped_cert``."""
    return urllib.parse.quote(cert.pem.decode("ascii"), safe="")


def sample(name: str, **labels: str) -> float:
    """A metric's current value (0 when not yet exported)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_valid_enterprise_certificate_over_tls_reaches_the_untranslated_answer(
    world: RestWorld, client_ca: trustme.CA, server_ca: trustme.CA, altinn3_contract: Any
) -> None:
    cert = issue_enterprise_cert(client_ca, org=ORG_A, attribute="organizationIdentifier", **VALID)
    context = client_context(server_ca, world.workdir, cert)
    route = "/api/{who}/profile"
    before = sample("altinn_proxy_rest_untranslated_total", method="GET", route=route)
    calls_before = outbound(world, altinn3_contract)
    with capture_logs() as logs:
        answer = await call(world.https_url + UNTRANSLATED, context=context, headers={"apikey": API_KEY})
        # The path's case does not matter, as on IIS.
        upper = await call(
            world.https_url + UNTRANSLATED.replace("/api/", "/API/"),
            context=context,
            headers={"APIKEY": API_KEY},
        )
    assert (answer.status, answer.reason) == (501, f"GET {route} has no Altinn 3 equivalent in this proxy")
    assert answer.body == {"ErrorCode": 30001, "ErrorMessage": answer.reason}
    assert upper.status == 501
    assert sample("altinn_proxy_rest_untranslated_total", method="GET", route=route) == before + 2
    assert outbound(world, altinn3_contract) == calls_before, "nothing is sent to Altinn 3"
    decisions = [entry for entry in logs if entry["event"] == "rest.decision"]
    assert decisions
    assert decisions[0]["caller_id"] == "demo-eus"
    assert decisions[0]["outcome"] == "not_translated"
    assert all(API_KEY not in repr(entry) for entry in logs), "the ApiKey reached a log line"
    assert all(cert.pem.decode()[30:90] not in repr(entry) for entry in logs), "the certificate was logged"


async def test_a_service_owner_certificate_may_use_the_service_owner_routes_only(
    world: RestWorld, client_ca: trustme.CA, server_ca: trustme.CA
) -> None:
    owner = client_context(server_ca, world.workdir, issue_enterprise_cert(client_ca, org=ORG_C, **VALID))
    headers = {"ApiKey": API_KEY}
    answer = await call(
        world.https_url + "/api/serviceowner/organizations?email=x&ForceEIAuthentication",
        context=owner,
        headers=headers,
    )
    assert answer.status == 501
    assert "/api/serviceowner/organizations" in answer.reason
    end_user = client_context(server_ca, world.workdir, issue_enterprise_cert(client_ca, org=ORG_A, **VALID))
    refused = await call(
        world.https_url + "/api/serviceowner/reportees?ForceEIAuthentication",
        context=end_user,
        headers=headers,
    )
    assert refused.status == 403


@pytest.mark.parametrize(
    ("path", "status", "error_code"),
    [
        (f"/api/{ORG_B}/messages?ForceEIAuthentication", 403, 5),  # another organisation
        ("/api/310000018/messages?ForceEIAuthentication", 400, 30001),  # wrong check digit
    ],
)
async def test_a_reportee_the_caller_may_not_act_for_is_refused_before_any_outbound_call(
    world: RestWorld,
    client_ca: trustme.CA,
    server_ca: trustme.CA,
    altinn3_contract: Any,
    path: str,
    status: int,
    error_code: int,
) -> None:
    context = client_context(server_ca, world.workdir, issue_enterprise_cert(client_ca, org=ORG_A, **VALID))
    before = outbound(world, altinn3_contract)
    answer = await call(world.https_url + path, context=context, headers={"ApiKey": API_KEY})
    assert answer.status == status
    assert answer.body["ErrorCode"] == error_code
    assert outbound(world, altinn3_contract) == before


async def test_an_expired_certificate_gets_a_legacy_401(
    world: RestWorld, client_ca: trustme.CA, server_ca: trustme.CA
) -> None:
    context = client_context(server_ca, world.workdir, issue_enterprise_cert(client_ca, org=ORG_A, **EXPIRED))
    answer = await call(world.https_url + UNTRANSLATED, context=context, headers={"ApiKey": API_KEY})
    assert (answer.status, answer.reason) == (401, "The client certificate has expired")
    assert answer.body == {"ErrorCode": 5, "ErrorMessage": "The client certificate has expired"}


async def test_a_certificate_from_another_ca_is_refused_in_the_handshake(
    world: RestWorld, other_ca: trustme.CA, server_ca: trustme.CA
) -> None:
    context = client_context(server_ca, world.workdir, issue_enterprise_cert(other_ca, org=ORG_A, **VALID))
    with pytest.raises(aiohttp.ClientError):
        await call(world.https_url + UNTRANSLATED, context=context, headers={"ApiKey": API_KEY})


async def test_no_certificate_over_tls_gets_a_legacy_401(world: RestWorld, server_ca: trustme.CA) -> None:
    context = client_context(server_ca, world.workdir, None)
    answer = await call(world.https_url + UNTRANSLATED, context=context, headers={"ApiKey": API_KEY})
    assert (answer.status, answer.reason) == (401, "No client certificate was presented")


async def test_the_apikey_is_required_and_checked_first(
    world: RestWorld, client_ca: trustme.CA, server_ca: trustme.CA
) -> None:
    context = client_context(server_ca, world.workdir, issue_enterprise_cert(client_ca, org=ORG_A, **VALID))
    missing = await call(world.https_url + UNTRANSLATED, context=context)
    assert (missing.status, missing.reason) == (400, MISSING_API_KEY)
    assert missing.body["ErrorMessage"] == MISSING_API_KEY
    with capture_logs() as logs:
        wrong = await call(
            world.https_url + UNTRANSLATED, context=context, headers={"ApiKey": "not-" + API_KEY}
        )
    assert wrong.status == 403
    assert all("not-" + API_KEY not in repr(entry) for entry in logs)
    assert any(entry["event"] == "rest.refused" and entry["status"] == 403 for entry in logs)


async def test_without_force_ei_authentication_no_organisation_is_authenticated(
    world: RestWorld, client_ca: trustme.CA, server_ca: trustme.CA
) -> None:
    context = client_context(server_ca, world.workdir, issue_enterprise_cert(client_ca, org=ORG_A, **VALID))
    answer = await call(
        world.https_url + f"/api/{ORG_A}/profile", context=context, headers={"ApiKey": API_KEY}
    )
    assert (answer.status, answer.reason) == (401, NO_ORGANISATION_NUMBER)


async def test_a_certificate_forwarded_by_the_trusted_ingress_is_accepted(
    world: RestWorld, client_ca: trustme.CA
) -> None:
    cert = issue_enterprise_cert(client_ca, org=ORG_A, **VALID)
    headers = {"ApiKey": API_KEY, CERT_HEADER: escaped(cert)}
    answer = await call(world.http_url + UNTRANSLATED, headers=headers, local_address=INGRESS)
    assert answer.status == 501


@pytest.mark.parametrize("ca", ["other", "expired"])
async def test_the_trusted_ingress_cannot_forward_a_bad_certificate(
    world: RestWorld, client_ca: trustme.CA, other_ca: trustme.CA, ca: str
) -> None:
    cert = (
        issue_enterprise_cert(other_ca, org=ORG_A, **VALID)
        if ca == "other"
        else issue_enterprise_cert(client_ca, org=ORG_A, **EXPIRED)
    )
    headers = {"ApiKey": API_KEY, CERT_HEADER: escaped(cert)}
    answer = await call(world.http_url + UNTRANSLATED, headers=headers, local_address=INGRESS)
    assert answer.status == 401
    assert answer.body["ErrorCode"] == 5


async def test_the_same_header_from_an_untrusted_peer_is_ignored_and_counted(
    world: RestWorld, client_ca: trustme.CA
) -> None:
    cert = issue_enterprise_cert(client_ca, org=ORG_A, **VALID)
    headers = {"ApiKey": API_KEY, CERT_HEADER: escaped(cert)}
    spoofed = "altinn_proxy_identity_spoofed_certificate_headers_total"
    before = sample(spoofed)
    with capture_logs() as logs:
        answer = await call(world.http_url + UNTRANSLATED, headers=headers, local_address="127.0.0.1")
    assert (answer.status, answer.reason) == (401, "No client certificate was presented")
    assert sample(spoofed) == before + 1
    assert any(entry["event"] == "client_certificate_header_spoofed" for entry in logs)
