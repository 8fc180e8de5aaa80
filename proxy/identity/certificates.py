"""Client certificates: Norwegian enterprise certificates (virksomhetssertifikat) -> Principal.

A certificate reaches the proxy in one of two ways:

* from the TLS connection, when the proxy itself terminates mutual TLS (the adapter passes the DER
  bytes of ``ssl_object.getpeercert(binary_form=True)``);
* from a header set by the ingress that terminated mutual TLS (URL-encoded PEM as nginx's
  ``$ssl_client_escaped_cert``, or base64 DER).

Invariant: the header is believed **only** when the TCP peer is inside a configured trusted-proxy
network. From any other peer it is ignored, logged as a spoofing attempt (peer address only, never the
certificate) and counted; anyone can write a header.

Every certificate, whatever its source, is checked again here: validity dates against the injected
clock, and a chain to the configured CA bundle (``cryptography.x509.verification``, client policy,
subjectAltName optional because enterprise certificates often carry none). The organisation number is
read from ``serialNumber`` or ``organizationIdentifier`` (``NTRNO-<orgno>``) and the caller is found
in the credential book by organisation number and/or SHA-256 fingerprint.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import ipaddress
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from proxy.errors import AuthenticationFailed, ConfigurationError
from proxy.identity import metrics
from proxy.identity.credentials import CredentialProvider
from proxy.identity.lockout import peer_address
from proxy.identity.principal import Principal
from proxy.identity.reportee import is_valid_org_number

Clock = Callable[[], float]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Altinn 2 answered certificate authentication failures with ErrorID 5.
CERTIFICATE_ERROR_ID = 5
MAX_HEADER_BYTES = 16 * 1024

NO_CERTIFICATE = "No client certificate was presented"
UNREADABLE_CERTIFICATE = "The client certificate could not be read"
NOT_YET_VALID = "The client certificate is not yet valid"
EXPIRED = "The client certificate has expired"
UNTRUSTED_ISSUER = "The client certificate is not issued by a trusted certificate authority"
NO_ORGANISATION = "The client certificate carries no valid organisation number"
NOT_REGISTERED = "The client certificate is not registered for any system in this proxy"

_log = structlog.get_logger("proxy.identity")


class CertificateOrigin(StrEnum):
    """Where a client certificate came from."""

    TLS = "tls"
    HEADER = "header"


def organisation_number(certificate: x509.Certificate) -> str | None:
    """The organisation number in an enterprise certificate's subject, if it carries a valid one.

    Buypass and Commfides put it in ``serialNumber``; SEID 2 certificates in ``organizationIdentifier``
    as ``NTRNO-<orgno>``.
    """
    subject = certificate.subject
    candidates = [
        str(attribute.value).removeprefix("NTRNO-")
        for attribute in subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)
        if str(attribute.value).startswith("NTRNO-")
    ]
    candidates += [
        str(attribute.value) for attribute in subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    ]
    return next((value for value in candidates if is_valid_org_number(value)), None)


def parse_header_certificate(value: str) -> x509.Certificate:
    """A certificate from a forwarded header: URL-encoded PEM, plain PEM, or base64 DER.

    Raises ValueError when the value is none of these.
    """
    if len(value) > MAX_HEADER_BYTES:
        raise ValueError("header too large")
    text = urllib.parse.unquote(value).strip()
    if text.startswith("-----BEGIN CERTIFICATE-----"):
        return x509.load_pem_x509_certificate(text.encode("ascii"))
    try:
        der = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError("neither PEM nor base64 DER") from None
    return x509.load_der_x509_certificate(der)


def load_ca_bundle(path: Path) -> list[x509.Certificate]:
    """The certificates of a PEM CA bundle; an empty or unreadable bundle is a ConfigurationError."""
    try:
        certificates = x509.load_pem_x509_certificates(path.read_bytes())
    except OSError as error:
        raise ConfigurationError(
            f"cannot read the CA bundle ({error.strerror})", location=str(path)
        ) from None
    except ValueError:
        raise ConfigurationError("not a PEM bundle of certificates", location=str(path)) from None
    return certificates


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Trusted-proxy networks from settings strings (``10.0.0.0/8``, ``::1``); bad ones are ConfigurationError."""
    networks: list[Network] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ConfigurationError(f"not an IP network: {value!r}", location="trusted_proxies") from None
    return tuple(networks)


@dataclass(frozen=True)
class _Refusal:
    message: str
    reason: str


class ClientCertificateAuthenticator:
    """Authenticates a legacy REST caller by its enterprise certificate."""

    def __init__(
        self,
        *,
        ca_bundle: Sequence[x509.Certificate],
        credentials: CredentialProvider,
        trusted_proxies: Sequence[Network] = (),
        header_name: str | None = None,
        clock: Clock = time.time,
    ) -> None:
        if not ca_bundle:
            raise ConfigurationError(
                "the client CA bundle is empty", location="client_certificates.ca_bundle"
            )
        self._store = Store(list(ca_bundle))
        self._credentials = credentials
        self._trusted_proxies = tuple(trusted_proxies)
        self._header_name = header_name
        self._clock = clock
        self._ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
            x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
        )

    @property
    def header_name(self) -> str | None:
        """The header the ingress forwards the certificate in (None: headers are never read)."""
        return self._header_name

    def is_trusted_proxy(self, peer: str) -> bool:
        """True when ``peer`` (the TCP peer address) lies in a trusted-proxy network."""
        address = peer_address(peer)
        return address is not None and any(address in network for network in self._trusted_proxies)

    async def authenticate(
        self, *, peer: str, tls_der: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> Principal:
        """The caller a request's client certificate authenticates as.

        ``peer`` is the TCP peer address, ``tls_der`` the certificate of the TLS connection (if the
        proxy terminates mutual TLS), ``headers`` the request headers. Raises
        :class:`~proxy.errors.AuthenticationFailed` (ErrorID 5) saying what is wrong with the certificate.
        """
        header_value = headers.get(self._header_name) if headers is not None and self._header_name else None
        if header_value is not None and not self.is_trusted_proxy(peer):
            metrics.SPOOFED_CERTIFICATE_HEADERS.inc()
            _log.warning("client_certificate_header_spoofed", peer=peer, header=self._header_name)
            header_value = None
        certificate, origin = self._select(tls_der, header_value, peer)
        fingerprint = certificate.fingerprint(hashes.SHA256())
        org = organisation_number(certificate)
        refusal = self._check(certificate)
        if refusal is None and org is None:
            refusal = _Refusal(NO_ORGANISATION, "no_organisation")
        if refusal is None:
            principal = (await self._credentials.current()).principal_for_certificate(org, fingerprint)
            if principal is not None:
                metrics.AUTHENTICATIONS.labels(method="certificate", outcome="success").inc()
                _log.info(
                    "client_certificate_accepted",
                    caller_id=principal.caller_id,
                    org=org,
                    origin=str(origin),
                    fingerprint=fingerprint.hex(),
                    peer=peer,
                    outcome="success",
                )
                return principal
            refusal = _Refusal(NOT_REGISTERED, "not_registered")
        self._refuse_log(peer, origin, org, fingerprint, refusal.reason)
        raise AuthenticationFailed(refusal.message, error_id=CERTIFICATE_ERROR_ID)

    def _select(
        self, tls_der: bytes | None, header_value: str | None, peer: str
    ) -> tuple[x509.Certificate, CertificateOrigin]:
        try:
            if tls_der:
                return x509.load_der_x509_certificate(tls_der), CertificateOrigin.TLS
            if header_value:
                return parse_header_certificate(header_value), CertificateOrigin.HEADER
        except ValueError:
            self._refuse_log(peer, None, None, None, "unreadable")
            raise AuthenticationFailed(UNREADABLE_CERTIFICATE, error_id=CERTIFICATE_ERROR_ID) from None
        self._refuse_log(peer, None, None, None, "absent")
        raise AuthenticationFailed(NO_CERTIFICATE, error_id=CERTIFICATE_ERROR_ID)

    def _check(self, certificate: x509.Certificate) -> _Refusal | None:
        now = datetime.datetime.fromtimestamp(self._clock(), tz=datetime.UTC)
        # Dates first, so an operator reads "expired" rather than a generic chain failure.
        if now < certificate.not_valid_before_utc:
            return _Refusal(NOT_YET_VALID, "not_yet_valid")
        if now > certificate.not_valid_after_utc:
            return _Refusal(EXPIRED, "expired")
        verifier = (
            PolicyBuilder()
            .store(self._store)
            .time(now)
            .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=self._ee_policy)
            .build_client_verifier()
        )
        try:
            verifier.verify(certificate, [])
        except VerificationError:
            return _Refusal(UNTRUSTED_ISSUER, "untrusted_issuer")
        return None

    def _refuse_log(
        self,
        peer: str,
        origin: CertificateOrigin | None,
        org: str | None,
        fingerprint: bytes | None,
        reason: str,
    ) -> None:
        metrics.AUTHENTICATIONS.labels(method="certificate", outcome="failure").inc()
        _log.warning(
            "client_certificate_refused",
            peer=peer,
            origin=str(origin) if origin else None,
            org=org,
            fingerprint=fingerprint.hex() if fingerprint else None,
            reason=reason,
            outcome="failure",
        )
