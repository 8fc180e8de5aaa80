"""The JWT-bearer grant (RFC 7523) that Maskinporten exchanges for an access token.

Pure functions: claims in, signed assertion out. The claim set is exactly what ALTINN3-API.md
section 2.3 allows: ``aud``, ``iss``, ``scope``, ``iat``, ``exp``, ``jti`` and, for a system user,
``authorization_details``; Maskinporten refuses anything else.
"""

from __future__ import annotations

import uuid
from typing import Any

import jwt

from proxy.maskinporten.config import MAX_GRANT_LIFETIME, SigningMaterial
from proxy.maskinporten.request import TokenRequest

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SYSTEM_USER_TYPE = "urn:altinn:systemuser"
ORG_AUTHORITY = "iso6523-actorid-upis"


def system_user_details(org: str, external_ref: str | None) -> list[dict[str, Any]]:
    """The ``authorization_details`` asking for the system user of ``org`` (one party per grant)."""
    detail: dict[str, Any] = {
        "type": SYSTEM_USER_TYPE,
        "systemuser_org": {"authority": ORG_AUTHORITY, "ID": f"0192:{org}"},
    }
    if external_ref is not None:
        detail["externalRef"] = external_ref
    return [detail]


def grant_claims(
    request: TokenRequest,
    *,
    client_id: str,
    audience: str,
    now: float,
    lifetime: int = MAX_GRANT_LIFETIME,
    jti: str | None = None,
) -> dict[str, Any]:
    """The claims of a grant for ``request``, issued at ``now`` (epoch seconds)."""
    if not request.scopes:
        raise ValueError("a Maskinporten grant needs at least one scope")
    issued = int(now)
    claims: dict[str, Any] = {
        "aud": audience,
        "iss": client_id,
        "scope": " ".join(sorted(request.scopes)),
        "iat": issued,
        "exp": issued + min(lifetime, MAX_GRANT_LIFETIME),
        "jti": jti or str(uuid.uuid4()),
    }
    if request.system_user_org is not None:
        claims["authorization_details"] = system_user_details(request.system_user_org, request.external_ref)
    return claims


def sign_grant(claims: dict[str, Any], signing: SigningMaterial) -> str:
    """The compact RS256 JWS of ``claims`` with ``kid`` or ``x5c`` in the header."""
    return jwt.encode(claims, signing.private_key, algorithm="RS256", headers=signing.jwt_header())
