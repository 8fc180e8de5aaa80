"""A strict fake of Altinn's token exchange: ``GET /authentication/api/v1/exchange/{tokenProvider}``.

As Altinn/altinn-authentication does (ALTINN3-API.md section 3): the Maskinporten token comes in the
``Authorization`` header and must verify (signature, issuer, lifetime with 10 s skew, a ``consumer``);
every original claim is copied except ``aud``, ``iss``, ``client_amr`` and ``sid``; Altinn's claims
are added (``urn:altinn:org`` only with scope ``altinn:serviceowner`` for a registered service owner);
the answer is the bare JWT as text/plain, valid 30 minutes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from proxy.sandbox.tokens import Clock, FakeAuthError, SigningKey, TokenVerifier

ALTINN_TOKEN_LIFETIME = 30 * 60
EXCHANGE_PATH = "/authentication/api/v1/exchange/{tokenProvider}"
_DROPPED_CLAIMS = ("aud", "iss", "client_amr", "sid")
_ENTERPRISE_USER_HEADER = "X-Altinn-EnterpriseUser-Authentication"


def exchanged_claims(
    original: Mapping[str, Any],
    *,
    consumer_org: str,
    altinn_issuer: str,
    service_owners: Mapping[str, str],
    now: float,
    test: bool = False,
) -> dict[str, Any]:
    """The claims of the Altinn token that replaces the verified Maskinporten token ``original``."""
    claims = {name: value for name, value in original.items() if name not in _DROPPED_CLAIMS}
    issued = int(now)
    claims.update(
        {
            "urn:altinn:orgNumber": consumer_org,
            "urn:altinn:authenticatemethod": "maskinporten",
            "urn:altinn:authlevel": 3,
            "iss": altinn_issuer,
            "sid": str(uuid.uuid4()),
            "iat": issued,
            "nbf": issued,
            "exp": issued + ALTINN_TOKEN_LIFETIME,
        }
    )
    service_owner = service_owners.get(consumer_org)
    if service_owner and "altinn:serviceowner" in str(original.get("scope", "")).split():
        claims["urn:altinn:org"] = "ttd" if test and service_owner == "digdir" else service_owner
    return claims


def install_token_exchange(
    app: web.Application,
    *,
    verifier: TokenVerifier,
    altinn_key: SigningKey,
    altinn_issuer: str,
    service_owners: Mapping[str, str],
    clock: Clock = time.time,
) -> None:
    """Add the exchange route to the platform ``app`` (which serves the other fakes too).

    ``service_owners`` maps organisation numbers to service-owner codes (e.g. ``"991825827": "digdir"``).
    """

    async def exchange(request: web.Request) -> web.Response:
        provider = request.match_info["tokenProvider"]
        if _ENTERPRISE_USER_HEADER in request.headers:
            return web.json_response(
                {"title": "Virksomhetsbruker is no longer available", "status": 410},
                status=410,
                content_type="application/problem+json",
            )
        if provider.lower() != "maskinporten":
            return web.Response(status=400, text=f"Invalid token provider: {provider}")
        try:
            caller = verifier.verify(request.headers.get("Authorization"))
        except FakeAuthError:
            return web.Response(status=401, text="Unauthorized")
        if caller.exchanged:
            return web.Response(status=401, text="Unauthorized")
        test = request.query.get("test", "").lower() == "true"
        claims = exchanged_claims(
            caller.claims,
            consumer_org=caller.consumer_org,
            altinn_issuer=altinn_issuer,
            service_owners=service_owners,
            now=clock(),
            test=test,
        )
        return web.Response(text=altinn_key.sign(claims), content_type="text/plain")

    app.router.add_get(EXCHANGE_PATH, exchange)
