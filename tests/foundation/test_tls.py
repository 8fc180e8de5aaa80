"""TLS terminated by the proxy itself: ``listen.tls`` settings, the server context, and a real process."""

from __future__ import annotations

import datetime
import signal
import ssl
from pathlib import Path

import aiohttp
import pytest
import trustme
import yaml
from aiohttp import web

from proxy.errors import ConfigurationError
from proxy.identity.passwords import hash_api_key
from proxy.settings import load_settings
from proxy.web.server import tls_context
from tests.foundation.process import start_proxy
from tests.identity.conftest import ORG_A, EnterpriseCert, issue_enterprise_cert

API_KEY = "tls-test-api-key-81c0e2"
TIMEOUT = aiohttp.ClientTimeout(total=15)
TODAY = datetime.datetime.now(datetime.UTC)
TEST_PATH = "/ServiceEngineExternal/CorrespondenceAgencyExternalBasic.svc"
TEST_ENVELOPE = (
    b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
    b'<Test xmlns="http://www.altinn.no/services/2009/10"/>'
    b"</s:Body></s:Envelope>"
)
TEST_ACTION = '"http://www.altinn.no/services/2009/10/IAltinnContractBase/Test"'


@pytest.fixture(scope="module")
def server_ca() -> trustme.CA:
    """The CA of the proxy's server certificate."""
    return trustme.CA()


@pytest.fixture(scope="module")
def client_ca() -> trustme.CA:
    """The CA of accepted enterprise certificates."""
    return trustme.CA()


@pytest.fixture
def tls_files(tmp_path: Path, server_ca: trustme.CA, client_ca: trustme.CA) -> Path:
    """server.pem, server-key.pem and client-ca.pem in ``tmp_path``."""
    server = server_ca.issue_cert("127.0.0.1", "localhost")
    server.private_key_pem.write_to_path(str(tmp_path / "server-key.pem"))
    server.cert_chain_pems[0].write_to_path(str(tmp_path / "server.pem"))
    client_ca.cert_pem.write_to_path(str(tmp_path / "client-ca.pem"))
    return tmp_path


def with_tls(settings_file: Path, tls: dict[str, object], **identity: object) -> Path:
    """The settings file with ``listen.tls`` (and ``identity`` keys) added."""
    document = yaml.safe_load(settings_file.read_text())
    document["listen"]["tls"] = tls
    document["identity"].update(identity)
    settings_file.write_text(yaml.safe_dump(document))
    return settings_file


def client_context(
    server_ca: trustme.CA, tmp_path: Path, cert: EnterpriseCert | None = None
) -> ssl.SSLContext:
    """A client trusting the proxy's certificate, presenting ``cert`` when given."""
    context = ssl.create_default_context()
    server_ca.configure_trust(context)
    if cert is not None:
        path = tmp_path / "client.pem"
        path.write_bytes(cert.pem + cert.key_pem)
        context.load_cert_chain(path)
    return context


def test_tls_paths_are_resolved_and_the_client_ca_defaults_to_the_identity_one(
    settings_file: Path, tls_files: Path
) -> None:
    path = with_tls(
        settings_file,
        {"certificate_file": "server.pem", "key_file": "server-key.pem"},
        client_ca_file="client-ca.pem",
    )
    tls = load_settings(path, environ={}).listen.tls
    assert tls is not None
    assert tls.certificate_file == tls_files / "server.pem"
    assert tls.client_ca_file == tls_files / "client-ca.pem"
    assert tls.require_client_certificate is False


def test_a_missing_certificate_file_is_a_located_error(settings_file: Path, tls_files: Path) -> None:
    path = with_tls(settings_file, {"certificate_file": "absent.pem", "key_file": "server-key.pem"})
    with pytest.raises(ConfigurationError) as caught:
        load_settings(path, environ={})
    assert str(caught.value).startswith(f"{path}:")
    assert "listen.tls.certificate_file: file" in str(caught.value)
    assert "absent.pem" in str(caught.value)


def test_a_misspelt_tls_key_is_named_with_a_suggestion(settings_file: Path, tls_files: Path) -> None:
    tls = {"certificate_file": "server.pem", "key_file": "server-key.pem", "require_client_cert": True}
    path = with_tls(settings_file, tls)
    expected = (
        r"listen\.tls\.require_client_cert: unknown key \(did you mean 'require_client_certificate'\?\)"
    )
    with pytest.raises(ConfigurationError, match=expected):
        load_settings(path, environ={})


def test_requiring_client_certificates_needs_a_client_ca(settings_file: Path, tls_files: Path) -> None:
    path = with_tls(
        settings_file,
        {"certificate_file": "server.pem", "key_file": "server-key.pem", "require_client_certificate": True},
    )
    with pytest.raises(ConfigurationError, match="require_client_certificate needs"):
        load_settings(path, environ={})


def test_the_server_context_speaks_tls_1_2_or_later_and_asks_for_client_certificates(tls_files: Path) -> None:
    optional = tls_context(
        tls_files / "server.pem", tls_files / "server-key.pem", client_ca_file=tls_files / "client-ca.pem"
    )
    assert optional.minimum_version is ssl.TLSVersion.TLSv1_2
    assert optional.verify_mode is ssl.CERT_OPTIONAL
    plain = tls_context(tls_files / "server.pem", tls_files / "server-key.pem")
    assert plain.verify_mode is ssl.CERT_NONE


def test_an_unusable_key_file_is_a_configuration_error(tls_files: Path) -> None:
    (tls_files / "broken-key.pem").write_text("not a key")
    with pytest.raises(ConfigurationError, match="cannot load the TLS certificate and key"):
        tls_context(tls_files / "server.pem", tls_files / "broken-key.pem")


async def test_a_required_client_certificate_is_enforced_in_the_handshake(
    tls_files: Path, server_ca: trustme.CA, client_ca: trustme.CA
) -> None:
    context = tls_context(
        tls_files / "server.pem",
        tls_files / "server-key.pem",
        client_ca_file=tls_files / "client-ca.pem",
        require_client_certificate=True,
    )

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
        url = f"https://127.0.0.1:{runner.addresses[0][1]}/"
        cert = issue_enterprise_cert(
            client_ca,
            org=ORG_A,
            not_before=TODAY - datetime.timedelta(days=1),
            not_after=TODAY + datetime.timedelta(days=30),
        )
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            with pytest.raises(aiohttp.ClientError):
                async with session.get(url, ssl=client_context(server_ca, tls_files)) as response:
                    await response.read()
            async with session.get(url, ssl=client_context(server_ca, tls_files, cert)) as response:
                assert (response.status, await response.text()) == (200, "hello")
    finally:
        await runner.cleanup()


async def test_serve_over_tls_answers_soap_and_authenticates_rest_by_certificate(
    settings_file: Path, tls_files: Path, server_ca: trustme.CA, client_ca: trustme.CA
) -> None:
    credentials = {
        "version": 1,
        "callers": {"vendor-system": {"kind": "end_user_system", "orgs": [{"org": ORG_A}]}},
        "api_keys": [{"name": "vendor-app", "key_hash": hash_api_key(API_KEY)}],
        "certificates": [{"caller": "vendor-system", "org": ORG_A}],
    }
    (tls_files / "credentials.yaml").write_text(yaml.safe_dump(credentials))
    path = with_tls(
        settings_file,
        {"certificate_file": "server.pem", "key_file": "server-key.pem"},
        client_ca_file="client-ca.pem",
    )
    cert = issue_enterprise_cert(
        client_ca,
        org=ORG_A,
        not_before=TODAY - datetime.timedelta(days=1),
        not_after=TODAY + datetime.timedelta(days=30),
    )
    proxy = await start_proxy("serve", "--config", str(path))
    https = f"https://127.0.0.1:{proxy.port}"
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            async with session.post(
                https + TEST_PATH,
                data=TEST_ENVELOPE,
                headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": TEST_ACTION},
                ssl=client_context(server_ca, tls_files),
            ) as response:
                assert response.status == 200
                assert b"TestResponse" in await response.read()
            async with session.get(
                https + f"/api/{ORG_A}/profile?ForceEIAuthentication",
                headers={"ApiKey": API_KEY},
                ssl=client_context(server_ca, tls_files, cert),
            ) as response:
                assert response.status == 501
                assert response.reason == "GET /api/{who}/profile has no Altinn 3 equivalent in this proxy"
            with pytest.raises(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{proxy.port}/healthz") as response:
                    await response.read()
    finally:
        code = await proxy.terminate(signal.SIGTERM)
    assert code == 0
    listening = next(line for line in proxy.lines if line["event"] == "listening")
    assert listening["scheme"] == "https"
    decision = next(line for line in proxy.lines if line["event"] == "rest.decision")
    assert (decision["caller_id"], decision["org"], decision["outcome"]) == (
        "vendor-system",
        ORG_A,
        "not_translated",
    )
    assert not any(API_KEY in line for line in proxy.raw), "the ApiKey reached a log line"
