"""Token issuing and verification shared by the sandbox fakes.

The fake Maskinporten signs access tokens with its :class:`SigningKey`; the fake token exchange
signs Altinn tokens with its own. Every fake Altinn 3 API verifies the bearer token it receives with
one :class:`TokenVerifier` that knows both public keys, and then works with the resulting
:class:`Caller`: which scopes, which vendor/service owner (``consumer``), and which organisation the
call acts for (the system user's customer org, else the consumer itself).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

Clock = Callable[[], float]
LEEWAY_SECONDS = 10


def org_from_iso6523(value: Mapping[str, Any] | None) -> str | None:
    """``{"authority": "iso6523-actorid-upis", "ID": "0192:310000019"}`` -> ``"310000019"``.

    Altinn's documentation writes the key as ``ID`` in grants and ``id`` in tokens; both are accepted.
    """
    if not isinstance(value, Mapping):
        return None
    raw = value.get("ID", value.get("id"))
    if not isinstance(raw, str) or not raw.startswith("0192:"):
        return None
    return raw.removeprefix("0192:")


@dataclass(frozen=True)
class SigningKey:
    """An RSA key pair with a key id, generated fresh for each sandbox or test run."""

    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls, kid: str | None = None, bits: int = 2048) -> SigningKey:
        """A new key pair (takes tens of milliseconds: call it off the event loop in async code)."""
        return cls(kid or uuid.uuid4().hex, rsa.generate_private_key(public_exponent=65537, key_size=bits))

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK (for a JWKS endpoint)."""
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return jwk

    def sign(self, claims: Mapping[str, Any]) -> str:
        """An RS256 JWT over ``claims`` with this key's ``kid`` in the header."""
        return jwt.encode(dict(claims), self.private_key, algorithm="RS256", headers={"kid": self.kid})


@dataclass(frozen=True)
class Caller:
    """Who called a fake Altinn 3 API, derived from a verified bearer token."""

    scopes: frozenset[str]
    #: Organisation number of the Maskinporten client's owner (vendor or service owner).
    consumer_org: str
    #: Organisation the call acts for: the system user's customer org, else the consumer.
    party_org: str
    #: System user id when the token was issued for a system user.
    system_user_id: str | None = None
    system_id: str | None = None
    #: Service-owner code (``urn:altinn:org``) when the token carries one.
    service_owner: str | None = None
    #: True for an Altinn token from the exchange, False for a raw Maskinporten token.
    exchanged: bool = False
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def has_scope(self, *required: str) -> bool:
        """True when every scope in ``required`` was granted."""
        return all(scope in self.scopes for scope in required)


class FakeAuthError(Exception):
    """The fake refuses the token: ``status`` is 401 (not authenticated) or 403 (not allowed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class TokenVerifier:
    """Verifies Maskinporten and exchanged Altinn tokens as the Altinn 3 APIs do.

    ``issuers`` maps each trusted issuer to its signing key; tokens from the Altinn issuer count as
    exchanged.
    """

    maskinporten_issuer: str
    maskinporten_key: SigningKey
    altinn_issuer: str
    altinn_key: SigningKey
    clock: Clock = time.time

    def verify(self, authorization: str | None, *, require_exchanged: bool = False) -> Caller:
        """The :class:`Caller` behind an ``Authorization: Bearer ...`` header, or FakeAuthError(401)."""
        if not authorization or not authorization.startswith("Bearer "):
            raise FakeAuthError(401, "missing bearer token")
        token = authorization.removeprefix("Bearer ").strip()
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError as error:
            raise FakeAuthError(401, f"unreadable token: {error}") from None
        if issuer == self.maskinporten_issuer:
            key, exchanged = self.maskinporten_key, False
        elif issuer == self.altinn_issuer:
            key, exchanged = self.altinn_key, True
        else:
            raise FakeAuthError(401, "token from an untrusted issuer")
        if require_exchanged and not exchanged:
            raise FakeAuthError(401, "this endpoint needs an exchanged Altinn token, not Maskinporten's")
        try:
            claims = jwt.decode(
                token,
                key.private_key.public_key(),
                algorithms=["RS256"],
                issuer=issuer,
                leeway=LEEWAY_SECONDS,
                # Times are judged below by the injected clock, not by PyJWT's wall clock.
                options={
                    "verify_aud": False,
                    "require": ["exp", "iat", "iss"],
                    "verify_iat": False,
                    "verify_exp": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as error:
            raise FakeAuthError(401, f"invalid token: {error}") from None
        now = self.clock()
        if claims["exp"] + LEEWAY_SECONDS < now:
            raise FakeAuthError(401, "token expired")
        if "nbf" in claims and claims["nbf"] - LEEWAY_SECONDS > now:
            raise FakeAuthError(401, "token not yet valid")
        return caller_from_claims(claims, exchanged=exchanged)


def caller_from_claims(claims: Mapping[str, Any], *, exchanged: bool) -> Caller:
    """Read scopes, consumer and system user from verified claims (see ALTINN3-API.md 2.6)."""
    consumer_org = org_from_iso6523(claims.get("consumer"))
    if consumer_org is None:
        raise FakeAuthError(401, "token has no consumer organisation")
    details = claims.get("authorization_details")
    if isinstance(details, list):
        details = details[0] if len(details) == 1 else None
    system_user_id = system_id = None
    party_org = consumer_org
    if isinstance(details, Mapping) and details.get("type") == "urn:altinn:systemuser":
        party_org = org_from_iso6523(details.get("systemuser_org")) or consumer_org
        ids = details.get("systemuser_id") or []
        system_user_id = ids[0] if ids else None
        system_id = details.get("system_id")
    scopes = frozenset(str(claims.get("scope", "")).split())
    return Caller(
        scopes=scopes,
        consumer_org=consumer_org,
        party_org=party_org,
        system_user_id=system_user_id,
        system_id=system_id,
        service_owner=claims.get("urn:altinn:org"),
        exchanged=exchanged,
        claims=dict(claims),
    )


def mint_access_token(
    key: SigningKey,
    *,
    issuer: str,
    consumer_org: str,
    scopes: str,
    client_id: str = "test-client",
    system_user_org: str | None = None,
    system_user_id: str | None = None,
    system_id: str | None = None,
    lifetime: int = 120,
    now: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A Maskinporten-shaped access token (for the fake Maskinporten and for tests of other fakes)."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "client_amr": "private_key_jwt",
        "token_type": "Bearer",
        "client_id": client_id,
        "consumer": {"authority": "iso6523-actorid-upis", "ID": f"0192:{consumer_org}"},
        "scope": scopes,
        "iat": issued,
        "exp": issued + lifetime,
        "jti": uuid.uuid4().hex,
    }
    if system_user_org is not None:
        claims["authorization_details"] = [
            {
                "type": "urn:altinn:systemuser",
                "systemuser_org": {"authority": "iso6523-actorid-upis", "ID": f"0192:{system_user_org}"},
                "systemuser_id": [system_user_id or str(uuid.uuid4())],
                "system_id": system_id or f"{consumer_org}_demo",
            }
        ]
    claims.update(extra or {})
    return key.sign(claims)
