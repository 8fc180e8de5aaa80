"""The sandbox's throwaway TLS material: a CA, the proxy's server certificate, demo enterprise certificates.

Written on every start into one folder (``.sandbox/tls/`` by default) so that README examples can be
copy-pasted: ``ca.pem`` (trust it with ``--cacert``; it is also the client CA the proxy accepts
enterprise certificates from), ``server.pem``/``server.key`` (for ``127.0.0.1`` and ``localhost``), and
one enterprise certificate and key per demo organisation, ``eus-<org>.pem``/``.key`` for end-user
systems and ``so-<org>.pem``/``.key`` for the service owner, carrying the organisation number in
``serialNumber`` as Norwegian enterprise certificates do. Private keys are written ``0600``. Nothing
here is secret beyond the sandbox: the CA key is never written, so no other certificate can be issued
for it after the run.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALID_DAYS = 365


@dataclass(frozen=True)
class SandboxTls:
    """Where the sandbox's TLS files are."""

    folder: Path

    @property
    def ca(self) -> Path:
        """The CA certificate (server trust and client CA)."""
        return self.folder / "ca.pem"

    @property
    def server_certificate(self) -> Path:
        """The proxy's HTTPS certificate."""
        return self.folder / "server.pem"

    @property
    def server_key(self) -> Path:
        """The proxy's HTTPS key."""
        return self.folder / "server.key"

    def client_certificate(self, prefix: str, org: str) -> tuple[Path, Path]:
        """The enterprise certificate and key of ``org`` (``prefix``: ``eus`` or ``so``)."""
        return self.folder / f"{prefix}-{org}.pem", self.folder / f"{prefix}-{org}.key"


def write_sandbox_tls(folder: Path, clients: tuple[tuple[str, str], ...]) -> SandboxTls:
    """Issue a fresh CA, server certificate and one enterprise certificate per ``(prefix, org)``.

    Slow (key generation) and file I/O: call it in a thread. The paths it gives are absolute.
    """
    folder = folder.absolute()
    folder.mkdir(parents=True, exist_ok=True)
    tls = SandboxTls(folder)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NO"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "altinn-proxy sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, "altinn-proxy sandbox CA (throwaway)"),
        ]
    )
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    tls.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        _leaf(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]), ca, ca_key, server_key, now)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_pair(tls.server_certificate, tls.server_key, server, server_key)

    for prefix, org in clients:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "NO"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"SANDBOX {org}"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"SANDBOX {org}"),
                x509.NameAttribute(NameOID.SERIAL_NUMBER, org),
            ]
        )
        certificate = (
            _leaf(subject, ca, ca_key, key, now)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write_pair(*tls.client_certificate(prefix, org), certificate, key)
    return tls


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, now: datetime.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_VALID_DAYS))
    )


def _leaf(
    subject: x509.Name,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    now: datetime.datetime,
) -> x509.CertificateBuilder:
    return (
        _builder(subject, ca.subject, key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _write_pair(
    certificate_path: Path, key_path: Path, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> None:
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600, exist_ok=True)
    key_path.chmod(0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
