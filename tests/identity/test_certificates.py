"""Enterprise client certificates: from the TLS connection or a trusted ingress header, never a spoofed one."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import ssl
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
import trustme
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from proxy.errors import AuthenticationFailed, ConfigurationError
from proxy.identity import certificates as certs
from proxy.identity.certificates import ClientCertificateAuthenticator, load_ca_bundle, parse_networks
from proxy.identity.credentials import StaticCredentials, parse_credentials
from proxy.identity.principal import Principal
from tests.identity.conftest import (
    NOW,
    ORG_A,
    ORG_B,
    ORG_C,
    EnterpriseCert,
    credentials_document,
    issue_enterprise_cert,
)

HEADER = "X-Client-Cert"
INGRESS = "10.1.2.3"
STRANGER = "192.0.2.66"
TIMEOUT = aiohttp.ClientTimeout(total=10)


def _authenticator(
    ca_cert: x509.Certificate, *, document: dict[str, object] | None = None, at: datetime.datetime = NOW
) -> ClientCertificateAuthenticator:
    return ClientCertificateAuthenticator(
        ca_bundle=[ca_cert],
        credentials=StaticCredentials(parse_credentials(document or credentials_document())),
        trusted_proxies=parse_networks(["10.0.0.0/8", "fd00::/8"]),
        header_name=HEADER,
        clock=at.timestamp,
    )


def _escaped_pem(cert: EnterpriseCert) -> str:
    """As nginx's ``$ssl_client_escaped_cert``."""
    return urllib.parse.quote(cert.pem.decode("ascii"), safe="")


async def _refusal(authenticator: ClientCertificateAuthenticator, **kwargs: object) -> AuthenticationFailed:
    with pytest.raises(AuthenticationFailed) as caught:
        await authenticator.authenticate(**kwargs)  # type: ignore[arg-type]
    assert caught.value.error_id == 5
    return caught.value


@pytest.mark.parametrize("attribute", ["serialNumber", "organizationIdentifier"])
async def test_a_valid_enterprise_certificate_maps_to_its_org(
    client_ca: trustme.CA, client_ca_cert: x509.Certificate, attribute: str
) -> None:
    cert = issue_enterprise_cert(client_ca, org=ORG_A, attribute=attribute)
    assert certs.organisation_number(cert.certificate) == ORG_A
    principal = await _authenticator(client_ca_cert).authenticate(peer=STRANGER, tls_der=cert.der)
    assert principal.caller_id == "eus"
    assert principal.grant_for(ORG_A) is not None


async def test_a_fingerprint_binding_selects_its_caller(
    client_ca: trustme.CA, client_ca_cert: x509.Certificate
) -> None:
    cert = issue_enterprise_cert(client_ca, org=ORG_C)
    fingerprint = cert.certificate.fingerprint(hashes.SHA256()).hex(":").upper()
    document = credentials_document(certificates=[{"caller": "cert-only", "fingerprint": fingerprint}])
    authenticator = _authenticator(client_ca_cert, document=document)
    assert (await authenticator.authenticate(peer=STRANGER, tls_der=cert.der)).caller_id == "cert-only"
    sibling = issue_enterprise_cert(client_ca, org=ORG_C)
    refused = await _refusal(authenticator, peer=STRANGER, tls_der=sibling.der)
    assert refused.message == certs.NOT_REGISTERED


async def test_an_unregistered_org_is_refused(
    client_ca: trustme.CA, client_ca_cert: x509.Certificate
) -> None:
    cert = issue_enterprise_cert(client_ca, org=ORG_B)
    refused = await _refusal(_authenticator(client_ca_cert), peer=STRANGER, tls_der=cert.der)
    assert refused.message == certs.NOT_REGISTERED


async def test_an_expired_certificate_is_refused(
    client_ca: trustme.CA, client_ca_cert: x509.Certificate
) -> None:
    expired = issue_enterprise_cert(
        client_ca, not_before=NOW - datetime.timedelta(days=400), not_after=NOW - datetime.timedelta(days=1)
    )
    refused = await _refusal(_authenticator(client_ca_cert), peer=STRANGER, tls_der=expired.der)
    assert refused.message == certs.EXPIRED
    # The same certificate is fine while valid: only the injected clock decides.
    earlier = _authenticator(client_ca_cert, at=NOW - datetime.timedelta(days=10))
    assert (await earlier.authenticate(peer=STRANGER, tls_der=expired.der)).caller_id == "eus"


async def test_a_certificate_not_yet_valid_is_refused(
    client_ca: trustme.CA, client_ca_cert: x509.Certificate
) -> None:
    future = issue_enterprise_cert(client_ca, not_before=NOW + datetime.timedelta(days=1))
    refused = await _refusal(_authenticator(client_ca_cert), peer=STRANGER, tls_der=future.der)
    assert refused.message == certs.NOT_YET_VALID


async def test_a_certificate_from_another_ca_is_refused(
    other_ca: trustme.CA, client_ca_cert: x509.Certificate
) -> None:
    foreign = issue_enterprise_cert(other_ca, org=ORG_A)
    refused = await _refusal(_authenticator(client_ca_cert), peer=STRANGER, tls_der=foreign.der)
    assert refused.message == certs.UNTRUSTED_ISSUER


async def test_a_certificate_without_an_org_number_is_refused(
    client_ca: trustme.CA, client_ca_cert: x509.Certificate
) -> None:
    no_org = issue_enterprise_cert(client_ca, org="123456789")  # fails the check digit
    refused = await _refusal(_authenticator(client_ca_cert), peer=STRANGER, tls_der=no_org.der)
    assert refused.message == certs.NO_ORGANISATION


@pytest.mark.parametrize("encode", [_escaped_pem, lambda cert: base64.b64encode(cert.der).decode()])
@pytest.mark.parametrize("peer", [INGRESS, "fd00::5", "::ffff:10.9.9.9"])
async def test_a_header_from_a_trusted_proxy_is_accepted(
    client_ca: trustme.CA,
    client_ca_cert: x509.Certificate,
    encode: Callable[[EnterpriseCert], str],
    peer: str,
) -> None:
    cert = issue_enterprise_cert(client_ca)
    principal = await _authenticator(client_ca_cert).authenticate(peer=peer, headers={HEADER: encode(cert)})
    assert principal.caller_id == "eus"


async def test_a_header_from_an_untrusted_peer_is_ignored_and_logged_as_spoofing(
    client_ca: trustme.CA, client_ca_cert: x509.Certificate
) -> None:
    cert = issue_enterprise_cert(client_ca)
    before = REGISTRY.get_sample_value("altinn_proxy_identity_spoofed_certificate_headers_total") or 0.0
    with capture_logs() as logs:
        refused = await _refusal(
            _authenticator(client_ca_cert), peer=STRANGER, headers={HEADER: _escaped_pem(cert)}
        )
    assert refused.message == certs.NO_CERTIFICATE
    assert REGISTRY.get_sample_value("altinn_proxy_identity_spoofed_certificate_headers_total") == before + 1
    spoofing = [entry for entry in logs if entry["event"] == "client_certificate_header_spoofed"]
    assert spoofing == [
        {
            "event": "client_certificate_header_spoofed",
            "peer": STRANGER,
            "header": HEADER,
            "log_level": "warning",
        }
    ]
    assert "BEGIN" not in repr(logs)


async def test_a_spoofed_header_never_overrides_the_tls_certificate(
    client_ca: trustme.CA, client_ca_cert: x509.Certificate
) -> None:
    own = issue_enterprise_cert(client_ca, org=ORG_C)
    claimed = issue_enterprise_cert(client_ca, org=ORG_A)
    refused = await _refusal(
        _authenticator(client_ca_cert),
        peer=STRANGER,
        tls_der=own.der,
        headers={HEADER: _escaped_pem(claimed)},
    )
    assert refused.message == certs.NOT_REGISTERED  # judged by its own (unregistered) certificate


def _self_signed_claiming(org: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.SERIAL_NUMBER, org)])
    forged = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return forged.public_bytes(serialization.Encoding.DER)


async def test_a_forged_header_is_refused_even_from_a_trusted_proxy(client_ca_cert: x509.Certificate) -> None:
    authenticator = _authenticator(client_ca_cert)
    forged = base64.b64encode(_self_signed_claiming(ORG_A)).decode()
    refused = await _refusal(authenticator, peer=INGRESS, headers={HEADER: forged})
    assert refused.message == certs.UNTRUSTED_ISSUER
    garbage = await _refusal(authenticator, peer=INGRESS, headers={HEADER: "not%20a%20certificate"})
    assert garbage.message == certs.UNREADABLE_CERTIFICATE


async def test_no_certificate_at_all_is_refused(client_ca_cert: x509.Certificate) -> None:
    refused = await _refusal(_authenticator(client_ca_cert), peer=INGRESS, headers={})
    assert refused.message == certs.NO_CERTIFICATE


def test_configuration_errors(tmp_path: Path, client_ca: trustme.CA) -> None:
    with pytest.raises(ConfigurationError, match="not an IP network"):
        parse_networks(["10.0.0.300/8"])
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(b"nonsense")
    with pytest.raises(ConfigurationError, match=r"ca\.pem"):
        load_ca_bundle(bundle)
    bundle.write_bytes(client_ca.cert_pem.bytes())
    assert len(load_ca_bundle(bundle)) == 1
    assert parse_networks(["10.0.0.1/8"]) == (ipaddress.ip_network("10.0.0.0/8"),)


# --- through real sockets: the proxy terminating mutual TLS itself, or behind an ingress ---------------


def _app(authenticator: ClientCertificateAuthenticator) -> web.Application:
    """A minimal front: what the REST adapter does with the connection and the headers."""

    async def whoami(request: web.Request) -> web.Response:
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        try:
            principal: Principal = await authenticator.authenticate(
                peer=request.remote or "", tls_der=der, headers=request.headers
            )
        except AuthenticationFailed as error:
            return web.json_response(
                {"error": error.message, "error_id": error.error_id}, status=error.http_status
            )
        return web.json_response({"caller": principal.caller_id})

    app = web.Application()
    app.router.add_get("/whoami", whoami)
    return app


ServerFactory = Callable[..., Awaitable[TestServer]]


async def test_certificate_from_a_real_mutual_tls_connection(
    aiohttp_server: ServerFactory, client_ca: trustme.CA, client_ca_cert: x509.Certificate, tmp_path: Path
) -> None:
    now = datetime.datetime.now(datetime.UTC)
    cert = issue_enterprise_cert(client_ca, not_before=now - datetime.timedelta(days=1))
    (tmp_path / "client.pem").write_bytes(cert.pem)
    (tmp_path / "client.key").write_bytes(cert.key_pem)

    server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    client_ca.issue_cert("127.0.0.1").configure_cert(server_ssl)
    server_ssl.verify_mode = ssl.CERT_OPTIONAL
    server_ssl.load_verify_locations(cadata=client_ca.cert_pem.bytes().decode("ascii"))
    authenticator = _authenticator(client_ca_cert, at=now)
    server = await aiohttp_server(_app(authenticator), ssl=server_ssl)

    client_ssl = ssl.create_default_context()
    client_ca.configure_trust(client_ssl)
    anonymous_ssl = ssl.create_default_context()
    client_ca.configure_trust(anonymous_ssl)
    client_ssl.load_cert_chain(tmp_path / "client.pem", tmp_path / "client.key")
    url = f"https://127.0.0.1:{server.port}/whoami"
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.get(url, ssl=client_ssl) as response:
            assert (response.status, await response.json()) == (200, {"caller": "eus"})
        # A header on a direct connection from an untrusted peer (127.0.0.1 is not 10/8) is ignored.
        async with session.get(url, ssl=anonymous_ssl, headers={HEADER: _escaped_pem(cert)}) as response:
            assert response.status == 401
            assert await response.json() == {"error": certs.NO_CERTIFICATE, "error_id": 5}


async def test_header_from_a_real_trusted_ingress_connection(
    aiohttp_server: ServerFactory, client_ca: trustme.CA, client_ca_cert: x509.Certificate
) -> None:
    cert = issue_enterprise_cert(client_ca)
    authenticator = ClientCertificateAuthenticator(
        ca_bundle=[client_ca_cert],
        credentials=StaticCredentials(parse_credentials(credentials_document())),
        trusted_proxies=parse_networks(["127.0.0.0/8"]),
        header_name=HEADER,
        clock=NOW.timestamp,
    )
    server = await aiohttp_server(_app(authenticator))
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.get(server.make_url("/whoami"), headers={HEADER: _escaped_pem(cert)}) as response,
    ):
        assert (response.status, await response.json()) == (200, {"caller": "eus"})
