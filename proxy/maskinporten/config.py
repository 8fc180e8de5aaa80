"""Settings of the Maskinporten client, as frozen values, and loaders for its signing material.

The integrator maps the YAML settings onto these dataclasses. Loaders read key files once at start-up
and raise :class:`proxy.errors.ConfigurationError` naming the file and what is wrong; they never put
key material or passwords into a message or a repr.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from jwt.algorithms import RSAAlgorithm

from proxy.errors import ConfigurationError

#: Maskinporten refuses grants that live longer than this (``exp - iat``).
MAX_GRANT_LIFETIME = 120
#: What the Altinn token exchange issues (``JwtValidityMinutes`` = 30).
ALTINN_TOKEN_LIFETIME = 30 * 60


@dataclass(frozen=True)
class SigningMaterial:
    """The RSA key that signs grants, with exactly one of ``kid`` or an ``x5c`` chain for the header."""

    private_key: rsa.RSAPrivateKey = field(repr=False)
    kid: str | None = None
    #: Base64 (standard, not URL-safe) DER certificates, leaf first, full chain.
    x5c: tuple[str, ...] = ()
    #: Where the material came from, for messages (never the material itself).
    source: str = ""

    def __post_init__(self) -> None:
        if (self.kid is None) == (not self.x5c):
            raise ConfigurationError(
                "signing material needs exactly one of a key id (kid) or a certificate chain (x5c)",
                location=self.source or None,
            )

    def jwt_header(self) -> dict[str, Any]:
        """The grant's JOSE header fields besides ``alg``: ``kid``, or ``x5c`` as a JSON array."""
        if self.kid is not None:
            return {"kid": self.kid}
        return {"x5c": list(self.x5c)}


@dataclass(frozen=True)
class Timeouts:
    """Deadlines for calls to Maskinporten and the token exchange, in seconds."""

    connect: float = 5.0
    total: float = 15.0


@dataclass(frozen=True)
class RefreshPolicy:
    """When cached tokens are renewed.

    A token is refreshed in the background once ``refresh_ratio`` of its lifetime has passed, and at
    the latest ``safety_margin`` seconds before it expires (capped at a quarter of the lifetime for
    very short-lived tokens). A token is never handed out inside that margin: the caller then waits
    for a fresh one. ``retry_delay`` spaces background retries after a failed refresh.

    A refusal (``TokenRefused``, e.g. MP-303) is remembered for ``refusal_cache_seconds``: within that
    period callers for the same key get the same refusal without a new grant. ``0`` turns this off.
    """

    refresh_ratio: float = 0.5
    safety_margin: float = 30.0
    retry_delay: float = 5.0
    #: Upper bound on cached keys (and, separately, on remembered refusals); oldest dropped beyond it.
    max_entries: int = 10_000
    refusal_cache_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not 0.0 < self.refresh_ratio < 1.0:
            raise ConfigurationError("refresh_ratio must be between 0 and 1 (exclusive)")
        if self.safety_margin < 0 or self.retry_delay <= 0 or self.max_entries < 1:
            raise ConfigurationError("safety_margin, retry_delay and max_entries must be positive")
        if self.refusal_cache_seconds < 0:
            raise ConfigurationError("refusal_cache_seconds must not be negative")


@dataclass(frozen=True)
class MaskinportenConfig:
    """Everything the token provider needs to know about one Maskinporten client.

    Either ``well_known_url`` (issuer and token endpoint are read from it once) or both ``issuer`` and
    ``token_endpoint`` must be given. ``platform_url`` is the Altinn platform base URL
    (e.g. ``https://platform.tt02.altinn.no``) for the token exchange.
    """

    client_id: str
    signing: SigningMaterial
    platform_url: str
    well_known_url: str | None = None
    issuer: str | None = None
    token_endpoint: str | None = None
    #: A short name of the environment (``tt02``, ``prod``, ``sandbox``): part of every cache key.
    environment: str = "tt02"
    #: The vendor's system in Altinn's system register; only used to make MP-303 messages precise.
    system_id: str | None = None
    grant_lifetime: int = MAX_GRANT_LIFETIME
    #: Lifetime assumed for an exchanged Altinn token whose own ``exp``/``iat`` cannot be read.
    exchanged_lifetime: int = ALTINN_TOKEN_LIFETIME
    timeouts: Timeouts = Timeouts()
    refresh: RefreshPolicy = RefreshPolicy()

    def __post_init__(self) -> None:
        if not self.client_id:
            raise ConfigurationError("maskinporten.client_id is empty")
        if self.well_known_url is None and (self.issuer is None or self.token_endpoint is None):
            raise ConfigurationError(
                "maskinporten needs well_known_url, or both issuer and token_endpoint",
            )
        if not 1 <= self.grant_lifetime <= MAX_GRANT_LIFETIME:
            raise ConfigurationError(f"maskinporten.grant_lifetime must be 1..{MAX_GRANT_LIFETIME} seconds")
        if not self.platform_url.startswith(("https://", "http://")):
            raise ConfigurationError("maskinporten.platform_url must be an http(s) URL")

    @property
    def exchange_url(self) -> str:
        """The Altinn token exchange endpoint for Maskinporten tokens."""
        return self.platform_url.rstrip("/") + "/authentication/api/v1/exchange/maskinporten"


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigurationError(
            f"cannot read the {what}: {error.strerror or type(error).__name__}", location=str(path)
        ) from None


def load_private_key(path: str | Path, *, kid: str | None = None) -> SigningMaterial:
    """Read an RSA private key from a PEM (PKCS#1/PKCS#8, unencrypted) or JWK file.

    ``kid`` is the key id registered on the Maskinporten client; for a JWK file it defaults to the
    file's own ``kid``.
    """
    path = Path(path)
    data = _read_bytes(path, "private key file")
    if data.lstrip().startswith(b"{"):
        key, file_kid = _parse_jwk(data, path)
        kid = kid or file_kid
    else:
        key = _parse_pem_key(data, path)
    if not kid:
        raise ConfigurationError(
            "no key id: set the kid registered on the Maskinporten client", location=str(path)
        )
    return SigningMaterial(private_key=key, kid=kid, source=str(path))


def _parse_jwk(data: bytes, path: Path) -> tuple[rsa.RSAPrivateKey, str | None]:
    try:
        jwk = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ConfigurationError("not valid JSON (expected a JWK)", location=str(path)) from None
    if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or "d" not in jwk:
        raise ConfigurationError("not an RSA private JWK (kty RSA with the private part)", location=str(path))
    try:
        key = RSAAlgorithm.from_jwk(jwk)
    except Exception:  # PyJWT raises assorted types for malformed members; none may echo the key
        raise ConfigurationError("the JWK's RSA members are malformed", location=str(path)) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError("the JWK holds a public key only", location=str(path))
    kid = jwk.get("kid")
    return key, kid if isinstance(kid, str) else None


def _parse_pem_key(data: bytes, path: Path) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ConfigurationError(
            "the PEM key is encrypted; provide it unencrypted", location=str(path)
        ) from None
    except ValueError:
        raise ConfigurationError("not a PEM private key", location=str(path)) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError("not an RSA key (Maskinporten grants are RS256)", location=str(path))
    return key


def load_pkcs12(path: str | Path, *, password_file: str | Path) -> SigningMaterial:
    """Read a business certificate (virksomhetssertifikat) and its key from a PKCS#12 file.

    The password is read from ``password_file`` (trailing newline stripped). The grant header then
    carries ``x5c``: the leaf certificate followed by the rest of the chain in the file.
    """
    path, password_path = Path(path), Path(password_file)
    password = _read_bytes(password_path, "PKCS#12 password file").rstrip(b"\r\n")
    data = _read_bytes(path, "PKCS#12 file")
    try:
        key, certificate, chain = pkcs12.load_key_and_certificates(data, password or None)
    except ValueError:
        raise ConfigurationError(
            "cannot open the PKCS#12 file: wrong password or not a PKCS#12 file", location=str(path)
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError("the PKCS#12 file holds no RSA private key", location=str(path))
    if certificate is None:
        raise ConfigurationError("the PKCS#12 file holds no certificate", location=str(path))
    return SigningMaterial(
        private_key=key, x5c=tuple(_b64_der(c) for c in (certificate, *chain)), source=str(path)
    )


def _b64_der(certificate: x509.Certificate) -> str:
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode("ascii")
