"""Maskinporten's and the token exchange's refusals as typed errors with operator-readable messages.

Maskinporten answers ``{"error": ..., "error_description": "... MP-nnn ..."}``. The message says what
the operator has to change; Maskinporten's own description goes to ``extended``. Neither ever holds
the assertion or a token: only the request's org, externalRef, scopes and the client id are named.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from proxy.errors import TokenRefused
from proxy.maskinporten.request import TokenRequest

_MP_CODE = re.compile(r"\bMP-\d{3}\b")
#: Anything shaped like a compact JWS; an upstream description must never carry one into a log.
_JWT_LIKE = re.compile(r"ey[\w-]+\.[\w-]+\.[\w-]*")
_MAX_DESCRIPTION = 300

#: What to do about each MP code; ``{client}`` is the client id, ``{scopes}`` the requested scopes.
_ADVICE: Mapping[str, str] = {
    "MP-100": "Maskinporten does not know client {client} in this environment: check client_id and the "
    "well-known URL (test vs production)",
    "MP-110": "Maskinporten refused the grant's audience: use the issuer from its well-known metadata",
    "MP-120": "Maskinporten refused the signing certificate of client {client} (e.g. a production "
    "certificate in test)",
    "MP-121": "the key registered on client {client} has expired: upload a new key and set its kid",
    "MP-122": "the business certificate does not belong to the organisation that owns client {client}",
    "MP-123": "the grant's x5c header is malformed (it must be a JSON array of the certificate chain)",
    "MP-124": "Maskinporten could not verify the grant's signature: the key or kid configured for client "
    "{client} does not match what is registered",
    "MP-130": "Maskinporten refused the grant's time claims: check that this host's clock is correct",
    "MP-011": "Maskinporten refused a parameter of the grant",
    "MP-012": "Maskinporten saw this grant before (jti reused)",
    "MP-200": "client {client} is not registered with the scope(s) {scopes}: add them to the client",
    "MP-201": "scope(s) {scopes} are not allowed for the integration type of client {client}",
    "MP-250": "the organisation owning client {client} has not been granted scope(s) {scopes}",
    "MP-251": "the delegation (consumer_org) for client {client} is missing",
    "MP-301": "Maskinporten does not know the authorization_details type of the grant",
    "MP-302": "the grant's authorization_details has fields Maskinporten does not accept",
}


def mp_code(description: str) -> str | None:
    """The ``MP-nnn`` code in Maskinporten's ``error_description``, if any."""
    match = _MP_CODE.search(description)
    return match.group(0) if match else None


def _short(text: str) -> str:
    text = _JWT_LIKE.sub("[redacted]", " ".join(text.split()))
    return text if len(text) <= _MAX_DESCRIPTION else text[: _MAX_DESCRIPTION - 1] + "…"


def maskinporten_refusal(
    body: Mapping[str, Any] | None,
    *,
    status: int,
    request: TokenRequest,
    client_id: str,
    system_id: str | None,
) -> TokenRefused:
    """The :class:`TokenRefused` for Maskinporten's error answer ``body`` (HTTP ``status``)."""
    body = body or {}
    error = _short(str(body.get("error") or f"HTTP {status}"))
    description = _short(str(body.get("error_description") or ""))
    code = mp_code(description)
    scopes = " ".join(sorted(request.scopes))
    if code == "MP-303" or error == "invalid_altinn_customer_configuration":
        ref = request.external_ref or f"{request.system_user_org} (the default)"
        message = (
            f"no system user for organisation {request.system_user_org} and system "
            f"{system_id or f'of client {client_id}'} (externalRef {ref}): ask the customer to approve a "
            "system user request"
        )
        return TokenRefused(message, code=code or "MP-303", extended=description or None)
    advice = _ADVICE.get(code or "")
    if advice is None:
        advice = f"Maskinporten refused the token request of client {client_id} ({error})"
    message = advice.format(client=client_id, scopes=scopes)
    if code:
        message = f"{message} [{code}]"
    return TokenRefused(message, code=code or error, extended=description or None)


def exchange_refusal(status: int, body_text: str) -> TokenRefused:
    """The :class:`TokenRefused` for a 4xx answer of the Altinn token exchange."""
    detail = _short(body_text)
    if status == 401:
        message = "the Altinn token exchange did not accept the Maskinporten token (HTTP 401)"
    elif status == 410:
        message = (
            "the Altinn token exchange refused an enterprise-user login, which Altinn 3 no longer offers"
        )
    else:
        message = f"the Altinn token exchange refused the request (HTTP {status})"
    return TokenRefused(message, code=f"exchange-{status}", extended=detail or None)
