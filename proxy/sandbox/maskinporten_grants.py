"""The checks the fake Maskinporten runs on a JWT-bearer grant, as the real one does.

Pure: :func:`verify_grant` takes the assertion, the registered clients and system users and the
current time, and returns a :class:`VerifiedGrant` or raises :class:`GrantRejected` with the error
code Maskinporten documents (ALTINN3-API.md 2.8). ``jti`` bookkeeping stays with the caller so that
only a grant that passed every other check burns its ``jti``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from proxy.sandbox.tokens import org_from_iso6523

MAX_LIFETIME = 120
CLOCK_SKEW = 10
ALGORITHMS = ("RS256", "RS384", "RS512")
SYSTEM_USER_TYPE = "urn:altinn:systemuser"
ALLOWED_CLAIMS = frozenset(
    {
        "aud",
        "iss",
        "iat",
        "exp",
        "jti",
        "scope",
        "resource",
        "pid",
        "consumer_org",
        "iss_onbehalfof",
        "authorization_details",
    }
)
ALLOWED_DETAIL_FIELDS = frozenset({"type", "systemuser_org", "externalRef"})
_ORGANIZATION_IDENTIFIER = x509.ObjectIdentifier("2.5.4.97")


class GrantRejected(Exception):
    """Maskinporten's refusal: HTTP ``status`` with ``{"error", "error_description"}``."""

    def __init__(self, error: str, code: str | None, description: str, *, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.code = code
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        """The JSON body Maskinporten answers."""
        text = f"{self.description} ({self.code})" if self.code else self.description
        return {"error": self.error, "error_description": text}


@dataclass
class RegisteredClient:
    """A Maskinporten client (integration) as registered in Samarbeidsportalen."""

    client_id: str
    owner_org: str
    scopes: frozenset[str]
    #: Public keys uploaded to the client, by ``kid``; a client with keys must sign with ``kid``.
    keys: Mapping[str, rsa.RSAPublicKey] = field(default_factory=dict)
    #: CA certificates trusted for business certificates sent in ``x5c``.
    trusted_cas: tuple[x509.Certificate, ...] = ()
    #: The system in Altinn's system register that lists this client id.
    system_id: str | None = None


@dataclass(frozen=True)
class FakeSystemUser:
    """A system user: the customer ``org`` gave ``system_id`` rights, known under ``external_ref``."""

    system_id: str
    org: str
    external_ref: str
    systemuser_id: str


@dataclass(frozen=True)
class VerifiedGrant:
    """A grant that passed every check."""

    client: RegisteredClient
    scope: str
    jti: str | None
    exp: int
    system_user: FakeSystemUser | None
    via_certificate: bool


def _invalid(code: str, description: str) -> GrantRejected:
    return GrantRejected("invalid_grant", code, description)


def verify_grant(
    assertion: str,
    *,
    issuer: str,
    now: float,
    clients: Mapping[str, RegisteredClient],
    find_system_user: Callable[[str, str, str], FakeSystemUser | None],
) -> VerifiedGrant:
    """Check ``assertion`` as Maskinporten does; ``find_system_user(system_id, org, external_ref)``."""
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise _invalid("MP-011", "Invalid assertion. The assertion is not a well-formed JWT") from None
    if header.get("alg") not in ALGORITHMS:
        raise _invalid("MP-011", "Invalid assertion. Unsupported signing algorithm")
    client = clients.get(str(unverified.get("iss")))
    if client is None:
        raise _invalid("MP-100", "Invalid assertion. Client authentication failed: unknown client (iss)")
    key, via_certificate = _signing_key(header, client, now)
    try:
        claims = jwt.decode(
            assertion,
            key,
            algorithms=list(ALGORITHMS),
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False},
        )
    except jwt.InvalidSignatureError:
        raise _invalid(
            "MP-124", "Invalid assertion. Client authentication failed: invalid signature"
        ) from None
    except jwt.PyJWTError:
        raise _invalid("MP-011", "Invalid assertion. The assertion could not be verified") from None
    unknown = sorted(set(claims) - ALLOWED_CLAIMS)
    if unknown:
        raise _invalid("MP-011", f"Invalid assertion. Unknown claim(s): {', '.join(unknown)}")
    if claims.get("aud") != issuer:
        raise _invalid("MP-110", "Invalid assertion. Invalid JWT claim aud")
    _check_times(claims, now)
    scope = claims.get("scope")
    if not isinstance(scope, str) or not scope.split():
        raise GrantRejected("invalid_scope", "MP-011", "Invalid assertion. Missing scope")
    missing = sorted(set(scope.split()) - client.scopes)
    if missing:
        raise GrantRejected(
            "invalid_scope", "MP-200", f"Scope(s) not registered on the client: {' '.join(missing)}"
        )
    system_user = _system_user(claims.get("authorization_details"), client, find_system_user)
    jti = claims.get("jti")
    return VerifiedGrant(
        client=client,
        scope=" ".join(scope.split()),
        jti=jti if isinstance(jti, str) else None,
        exp=int(claims["exp"]),
        system_user=system_user,
        via_certificate=via_certificate,
    )


def _signing_key(
    header: Mapping[str, Any], client: RegisteredClient, now: float
) -> tuple[rsa.RSAPublicKey, bool]:
    has_kid, has_x5c = "kid" in header, "x5c" in header
    if has_kid == has_x5c:
        raise _invalid("MP-011", "Invalid assertion. The header needs exactly one of kid and x5c")
    if has_kid:
        key = client.keys.get(str(header["kid"]))
        if key is None:
            raise _invalid("MP-124", "Invalid assertion. Client authentication failed: unknown kid")
        return key, False
    if client.keys:
        raise _invalid("MP-124", "Invalid assertion. The client has registered keys: sign with kid")
    chain = header["x5c"]
    if not isinstance(chain, list) or not chain or not all(isinstance(c, str) for c in chain):
        raise _invalid("MP-123", "Invalid assertion. x5c must be a JSON array of certificates")
    try:
        certificates = [x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in chain]
    except (ValueError, binascii.Error):
        raise _invalid("MP-123", "Invalid assertion. x5c holds a malformed certificate") from None
    leaf = certificates[0]
    if not _chains_to(certificates, client.trusted_cas):
        raise _invalid("MP-120", "Invalid assertion. The certificate is not issued by a trusted CA")
    moment = datetime.fromtimestamp(now, UTC)
    if not leaf.not_valid_before_utc <= moment <= leaf.not_valid_after_utc:
        raise _invalid("MP-121", "Invalid assertion. The certificate is expired or not yet valid")
    if _certificate_org(leaf) != client.owner_org:
        raise _invalid("MP-122", "Invalid assertion. The certificate's organisation does not own the client")
    public_key = leaf.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise _invalid("MP-120", "Invalid assertion. The certificate key is not RSA")
    return public_key, True


def _chains_to(chain: list[x509.Certificate], trusted: tuple[x509.Certificate, ...]) -> bool:
    for index, certificate in enumerate(chain):
        if certificate in trusted:
            return True
        for ca in trusted:
            try:
                certificate.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return True
        if index + 1 < len(chain):
            try:
                certificate.verify_directly_issued_by(chain[index + 1])
            except (ValueError, TypeError, InvalidSignature):
                return False
    return False


def _certificate_org(certificate: x509.Certificate) -> str | None:
    """Norwegian business certificates name the org in serialNumber or organizationIdentifier."""
    for oid in (NameOID.SERIAL_NUMBER, _ORGANIZATION_IDENTIFIER):
        for attribute in certificate.subject.get_attributes_for_oid(oid):
            value = attribute.value if isinstance(attribute.value, str) else attribute.value.decode()
            return value.removeprefix("NTRNO-")
    return None


def _check_times(claims: Mapping[str, Any], now: float) -> None:
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int) or isinstance(iat, bool) or isinstance(exp, bool):
        raise _invalid("MP-011", "Invalid assertion. iat and exp must be integer epoch seconds")
    if exp - iat > MAX_LIFETIME:
        raise _invalid("MP-130", f"Invalid assertion. exp - iat exceeds {MAX_LIFETIME} seconds")
    if iat > now + CLOCK_SKEW:
        raise _invalid("MP-130", "Invalid assertion. Issue time is after now")
    if iat < now - CLOCK_SKEW:
        raise _invalid("MP-130", "Invalid assertion. Issue time is too far in the past")
    if exp < now:
        raise _invalid("MP-130", "Invalid assertion. The JWT has expired")


def _system_user(
    details: Any, client: RegisteredClient, find: Callable[[str, str, str], FakeSystemUser | None]
) -> FakeSystemUser | None:
    if details is None:
        return None
    if not isinstance(details, list) or len(details) != 1 or not isinstance(details[0], Mapping):
        raise _invalid("MP-011", "authorization_details must be an array with exactly one party")
    detail = details[0]
    if detail.get("type") != SYSTEM_USER_TYPE:
        raise _invalid("MP-301", "Unknown authorization_details type")
    unknown = sorted(set(detail) - ALLOWED_DETAIL_FIELDS)
    if unknown:
        raise _invalid("MP-302", f"Unknown field(s) in authorization_details: {', '.join(unknown)}")
    owner = detail.get("systemuser_org")
    org = org_from_iso6523(owner)
    if org is None or not isinstance(owner, Mapping) or owner.get("authority") != "iso6523-actorid-upis":
        raise _invalid("MP-011", "systemuser_org must be {authority: iso6523-actorid-upis, ID: 0192:<orgno>}")
    external_ref = detail.get("externalRef", org)
    if not isinstance(external_ref, str):
        raise _invalid("MP-011", "externalRef must be a string")
    system_user = find(client.system_id, org, external_ref) if client.system_id else None
    if system_user is None:
        raise GrantRejected(
            "invalid_altinn_customer_configuration",
            "MP-303",
            f"No system user found for organisation {org}, the client's system and externalRef {external_ref}",
        )
    return system_user
