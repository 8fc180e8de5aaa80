"""Fixtures for identity tests: cheap password hashes, credential books, enterprise certificates."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from proxy.identity.passwords import hash_password

ORG_A = "310000019"
ORG_B = "310000027"
ORG_C = "310000035"
SERVICE_OWNER_ORG = "991825827"
NOW = datetime.datetime(2026, 9, 1, 12, 0, tzinfo=datetime.UTC)


def cheap_hash(password: str) -> str:
    """A scrypt hash with tiny cost parameters, so tests stay fast (production uses the defaults)."""
    return hash_password(password, n=16, r=1, p=1).encode()


def credentials_document(**extra: object) -> dict[str, object]:
    """A credentials file: end-user system ``eus`` for org A, service owner ``so``, a cert-only caller."""
    document: dict[str, object] = {
        "version": 1,
        "callers": {
            "eus": {
                "password_hash": cheap_hash("correct horse"),
                "kind": "end_user_system",
                "orgs": [{"org": ORG_A, "externalRef": "customer-a"}],
            },
            "so": {
                "password_hash": cheap_hash("owner secret"),
                "kind": "service_owner",
                "service_owner": "ttd",
                "org": SERVICE_OWNER_ORG,
                "scopes": ["altinn:serviceowner"],
            },
            "cert-only": {"kind": "end_user_system", "orgs": [{"org": ORG_C}]},
        },
        "certificates": [{"caller": "eus", "org": ORG_A}],
    }
    document.update(extra)
    return document


@dataclass(frozen=True)
class EnterpriseCert:
    """A client certificate with its key, in the forms the tests need."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


IssueCert = Callable[..., EnterpriseCert]


def issue_enterprise_cert(
    ca: trustme.CA,
    *,
    org: str = ORG_A,
    attribute: str = "serialNumber",
    not_before: datetime.datetime = NOW - datetime.timedelta(days=30),
    not_after: datetime.datetime = NOW + datetime.timedelta(days=365),
) -> EnterpriseCert:
    """A Norwegian-style enterprise certificate for ``org``, signed by ``ca`` (no subjectAltName)."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    org_attribute = (
        x509.NameAttribute(NameOID.SERIAL_NUMBER, org)
        if attribute == "serialNumber"
        else x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, f"NTRNO-{org}")
    )
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NO"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TEST ENTERPRISE AS"),
            x509.NameAttribute(NameOID.COMMON_NAME, "TEST ENTERPRISE AS"),
            org_attribute,
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return EnterpriseCert(certificate, key)


@pytest.fixture(scope="session")
def client_ca() -> trustme.CA:
    """The CA the proxy trusts for enterprise certificates."""
    return trustme.CA()


@pytest.fixture(scope="session")
def other_ca() -> trustme.CA:
    """A CA the proxy does not trust."""
    return trustme.CA()


@pytest.fixture(scope="session")
def client_ca_cert(client_ca: trustme.CA) -> x509.Certificate:
    """The trusted CA's certificate, as the CA bundle holds it."""
    return x509.load_pem_x509_certificate(client_ca.cert_pem.bytes())
