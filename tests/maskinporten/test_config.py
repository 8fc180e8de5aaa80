"""Loading signing material: PEM, JWK and PKCS#12 files, and what a bad file says."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from jwt.algorithms import RSAAlgorithm

from proxy.app import maskinporten_config
from proxy.errors import ConfigurationError
from proxy.maskinporten.config import (
    MaskinportenConfig,
    RefreshPolicy,
    SigningMaterial,
    load_pkcs12,
    load_private_key,
)
from proxy.maskinporten.grant import grant_claims, sign_grant
from proxy.maskinporten.provider import TokenProvider
from proxy.maskinporten.request import TokenRequest
from proxy.settings import Settings, validate_settings
from tests.maskinporten.conftest import Keys
from tests.maskinporten.helpers import SYSTEM_ID, VENDOR_ORG, World, system_user_request

PASSWORD = b"correct horse battery staple"


def write_pem(path: Path, keys: Keys) -> bytes:
    pem = keys.client.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    return pem


def write_p12(directory: Path, keys: Keys) -> tuple[Path, Path]:
    bundle = pkcs12.serialize_key_and_certificates(
        b"vendor",
        keys.client.private_key,
        keys.leaf_certificate,
        [keys.ca_certificate],
        serialization.BestAvailableEncryption(PASSWORD),
    )
    (directory / "vendor.p12").write_bytes(bundle)
    (directory / "password").write_bytes(PASSWORD + b"\n")
    return directory / "vendor.p12", directory / "password"


def test_pem_key_with_kid(tmp_path: Path, keys: Keys) -> None:
    write_pem(tmp_path / "key.pem", keys)
    material = load_private_key(tmp_path / "key.pem", kid="registered-kid")
    assert material.jwt_header() == {"kid": "registered-kid"}
    assert material.private_key.private_numbers() == keys.client.private_key.private_numbers()


def test_jwk_key_takes_its_kid_from_the_file(tmp_path: Path, keys: Keys) -> None:
    jwk = json.loads(serialization_to_jwk(keys))
    jwk["kid"] = "from-file"
    (tmp_path / "key.jwk").write_text(json.dumps(jwk))
    assert load_private_key(tmp_path / "key.jwk").kid == "from-file"


def serialization_to_jwk(keys: Keys) -> str:
    return RSAAlgorithm.to_jwk(keys.client.private_key)


def test_pkcs12_gives_the_full_chain_as_x5c(tmp_path: Path, keys: Keys) -> None:
    p12, password = write_p12(tmp_path, keys)
    material = load_pkcs12(p12, password_file=password)
    header = material.jwt_header()
    assert isinstance(header["x5c"], list)
    assert [base64.b64decode(c) for c in header["x5c"]] == [
        keys.leaf_certificate.public_bytes(serialization.Encoding.DER),
        keys.ca_certificate.public_bytes(serialization.Encoding.DER),
    ]
    assert "kid" not in header


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"not a key", "not a PEM private key"),
        (b'{"kty": "RSA", "n": "AQAB", "e": "AQAB"}', "not an RSA private JWK"),
        (b"{nope", "not valid JSON"),
    ],
)
def test_bad_key_files_name_the_file_and_the_problem(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "key"
    path.write_bytes(content)
    with pytest.raises(ConfigurationError) as caught:
        load_private_key(path, kid="k")
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_missing_kid_and_missing_file_are_reported(tmp_path: Path, keys: Keys) -> None:
    write_pem(tmp_path / "key.pem", keys)
    with pytest.raises(ConfigurationError, match="no key id"):
        load_private_key(tmp_path / "key.pem")
    with pytest.raises(ConfigurationError, match="cannot read the private key file"):
        load_private_key(tmp_path / "absent.pem", kid="k")


def test_wrong_pkcs12_password_is_reported_without_the_password(tmp_path: Path, keys: Keys) -> None:
    p12, password = write_p12(tmp_path, keys)
    password.write_bytes(b"wrong-password-value")
    with pytest.raises(ConfigurationError) as caught:
        load_pkcs12(p12, password_file=password)
    assert "wrong password" in str(caught.value)
    assert "wrong-password-value" not in str(caught.value)
    assert str(p12) in str(caught.value)


def test_config_refuses_incomplete_settings(keys: Keys) -> None:
    signing = SigningMaterial(private_key=keys.client.private_key, kid="k")
    with pytest.raises(ConfigurationError, match="well_known_url"):
        MaskinportenConfig(client_id="c", signing=signing, platform_url="https://platform.tt02.altinn.no")
    with pytest.raises(ConfigurationError, match="grant_lifetime"):
        MaskinportenConfig(
            client_id="c",
            signing=signing,
            platform_url="https://p",
            well_known_url="https://m/",
            grant_lifetime=121,
        )
    with pytest.raises(ConfigurationError, match="exactly one"):
        SigningMaterial(private_key=keys.client.private_key)
    with pytest.raises(ConfigurationError, match="refresh_ratio"):
        RefreshPolicy(refresh_ratio=1.5)
    assert "PRIVATE" not in repr(signing)
    assert "private_key" not in repr(signing)


def test_grant_has_exactly_the_documented_claims(keys: Keys) -> None:
    request = TokenRequest(scopes=frozenset({"b", "a"}), system_user_org="310000019", external_ref="ref-1")
    claims = grant_claims(
        request, client_id="client", audience="https://test.maskinporten.no/", now=1000.7, jti="j"
    )
    assert claims == {
        "aud": "https://test.maskinporten.no/",
        "iss": "client",
        "scope": "a b",
        "iat": 1000,
        "exp": 1120,
        "jti": "j",
        "authorization_details": [
            {
                "type": "urn:altinn:systemuser",
                "systemuser_org": {"authority": "iso6523-actorid-upis", "ID": "0192:310000019"},
                "externalRef": "ref-1",
            }
        ],
    }
    owner = grant_claims(TokenRequest(scopes=frozenset({"a"})), client_id="c", audience="x", now=0)
    assert "authorization_details" not in owner
    signing = SigningMaterial(private_key=keys.client.private_key, kid="k")
    token = sign_grant(claims, signing)
    assert jwt.get_unverified_header(token)["kid"] == "k"
    assert (
        jwt.decode(
            token,
            keys.client.private_key.public_key(),
            algorithms=["RS256"],
            audience="https://test.maskinporten.no/",
            options={"verify_exp": False},
        )["jti"]
        == "j"
    )


async def test_a_pkcs12_business_certificate_works_end_to_end(
    tmp_path: Path, keys: Keys, world: World
) -> None:
    world.fake.register_client(
        "cert-client",
        owner_org=VENDOR_ORG,
        scopes={"altinn:broker.read", "altinn:broker.write"},
        trusted_cas=[keys.ca_certificate],
        system_id=SYSTEM_ID,
    )
    p12, password = write_p12(tmp_path, keys)
    signing = load_pkcs12(p12, password_file=password)
    provider = TokenProvider(
        world.config(signing=signing, client_id="cert-client"), world.session, world.clock
    )
    assert await provider.token(system_user_request(exchange=True))
    assert world.fake.grant_count("cert-client", "310000019") == 1
    await provider.close()


def proxy_settings(tmp_path: Path, **maskinporten: object) -> Settings:
    """Minimal valid proxy settings with ``maskinporten`` keys added."""
    for name in ("key.pem", "credentials.yaml"):
        (tmp_path / name).write_text("placeholder", encoding="utf-8")
    required = {"client_id": "client", "kid": "kid", "key_file": str(tmp_path / "key.pem")}
    return validate_settings(
        {
            "maskinporten": {**required, **maskinporten},
            "identity": {"credentials_file": str(tmp_path / "credentials.yaml")},
        }
    )


@pytest.mark.parametrize(("configured", "expected"), [({}, 30.0), ({"refusal_cache_seconds": 5}, 5.0)])
def test_refusal_cache_setting_reaches_the_refresh_policy(
    tmp_path: Path, keys: Keys, configured: dict[str, float], expected: float
) -> None:
    signing = SigningMaterial(private_key=keys.client.private_key, kid="kid")
    config = maskinporten_config(proxy_settings(tmp_path, **configured), signing)
    assert config.refresh.refusal_cache_seconds == expected


def test_a_negative_refusal_cache_setting_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="refusal_cache_seconds"):
        proxy_settings(tmp_path, refusal_cache_seconds=-1)
