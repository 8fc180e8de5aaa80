"""The legacy REST front (``/api/...``): Altinn 2's identity rules and error replies.

Every request under ``/api/`` (any case, as IIS served it) is checked in Altinn 2's order:

1. an ``ApiKey`` header (any case): missing -> ``400 Required header 'ApiKey' is missing.``,
   unknown or locked out -> ``403``;
2. ``ForceEIAuthentication`` in the query (the only login this proxy offers is the enterprise
   certificate): missing -> ``401 Authorization failed: There is no authenticated organization number
   set on this request.``;
3. the enterprise client certificate, from the TLS connection or from a trusted ingress's header
   (:class:`~proxy.identity.certificates.ClientCertificateAuthenticator` decides which to believe)
   -> the caller, else ``401``;
4. ``{who}``: a number must be a valid reportee the caller may act for (``400``/``403``); the
   ``/api/serviceowner/...`` routes need a service owner (``403``).

No REST operation is translated yet, so an authenticated call answers ``501`` naming the method and
the documented Altinn 2 route template it matched (or its path).

Invariants: :meth:`_RestFront.handle` is the one place a :class:`~proxy.errors.ProxyError` becomes a
legacy REST reply (status, reason phrase, ``{"ErrorCode", "ErrorMessage"}``) and is counted; nothing
else answers for ``/api/``. The ApiKey and the certificate never reach a log line, a reply or a
metric label; metric labels come from :data:`ROUTE_TEMPLATES` and
:func:`~proxy.observability.metrics.method_label` only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import structlog
from aiohttp import web

from proxy.errors import (
    AuthenticationFailed,
    AuthorizationDenied,
    MalformedRequest,
    OperationNotTranslated,
    ProxyError,
)
from proxy.identity.principal import Principal
from proxy.identity.reportee import authorize, parse_reportee, require_service_owner
from proxy.observability.metrics import LEGACY_CALLS, bound, method_label
from proxy.web.middleware import request_id_of
from proxy.web.rest_metrics import REST_ERRORS, REST_UNTRANSLATED

API_KEY_HEADER = "ApiKey"
FORCE_EI_PARAMETER = "forceeiauthentication"
MISSING_API_KEY = "Required header 'ApiKey' is missing."
NO_ORGANISATION_NUMBER = (
    "Authorization failed: There is no authenticated organization number set on this request."
)
NO_CERTIFICATE_AUTHORITY = (
    "Enterprise certificates cannot be accepted: no client CA bundle is configured in this proxy"
)
OTHER_ROUTE = "other"

#: The Altinn 2 REST route templates (ALTINN2-API.md section 8), most specific first.
ROUTE_TEMPLATES: tuple[str, ...] = (
    "/api/authentication/authenticatewithpassword",
    "/api/authorization/token",
    "/api/brokerservice/inbox/hasavailablefiles",
    "/api/enterpriseusers",
    "/api/enterpriseusers/{userName}",
    "/api/enterpriseusers/{userName}/rotatesecret",
    "/api/help",
    "/api/metadata",
    "/api/metadata/codelists",
    "/api/metadata/roledefinitions",
    "/api/metadata/rolerequirements",
    "/api/metadata/formtask/{serviceCode}/{serviceEditionCode}",
    "/api/metadata/correspondence/{serviceCode}/{serviceEditionCode}",
    "/api/reportees",
    "/api/reportees/{reporteeId}",
    "/api/serviceowner/help",
    "/api/serviceowner/reportees",
    "/api/serviceowner/organizations",
    "/api/serviceowner/organizations/{who}/personalcontacts",
    "/api/serviceowner/organizations/{who}/officialcontacts",
    "/api/serviceowner/organizations/{who}/personalcontacts/{person}/roles",
    "/api/serviceowner/authorization/roles",
    "/api/serviceowner/authorization/rights",
    "/api/serviceowner/authorization/apprights",
    "/api/serviceowner/roledefinitions",
    "/api/serviceowner/roledefinitions/{id}",
    "/api/serviceowner/delegations/roles",
    "/api/serviceowner/consents",
    "/api/serviceowner/notifications/validaterecipient",
    "/api/serviceowner/srr",
    "/api/{who}/messages",
    "/api/{who}/messages/trashbin",
    "/api/{who}/messages/{messageId}",
    "/api/{who}/messages/{messageId}/print",
    "/api/{who}/messages/{messageId}/confirm",
    "/api/{who}/messages/{messageId}/archive",
    "/api/{who}/messages/{messageId}/validate",
    "/api/{who}/messages/{messageId}/signingtext",
    "/api/{who}/messages/{messageId}/forms",
    "/api/{who}/messages/{messageId}/forms/{formId}",
    "/api/{who}/messages/{messageId}/forms/{formId}/formdata",
    "/api/{who}/messages/{messageId}/attachments",
    "/api/{who}/messages/{messageId}/attachments/streamedattachment",
    "/api/{who}/messages/{messageId}/attachments/{attachmentId}",
    "/api/{who}/brokerservice/outbox",
    "/api/{who}/brokerservice/outbox/{fileReference}",
    "/api/{who}/brokerservice/outbox/{fileReference}/receipt",
    "/api/{who}/brokerservice/inbox",
    "/api/{who}/brokerservice/inbox/{fileReference}",
    "/api/{who}/brokerservice/inbox/{fileReference}/download",
    "/api/{who}/brokerservice/inbox/{fileReference}/confirmdownloaded",
    "/api/{who}/brokerservice/inbox/{fileReference}/receipt",
    "/api/{who}/authorization/roles",
    "/api/{who}/authorization/rights",
    "/api/{who}/authorization/apprights",
    "/api/{who}/authorization/delegations",
    "/api/{who}/authorization/roledefinitions",
    "/api/{who}/lookup/{serviceCode}/{serviceEditionCode}",
    "/api/{who}/profile",
    "/api/{who}/profile/contactinformation",
)

_PARAMETER = re.compile(r"\{(\w+)\}")
_REPORTEE_ID = re.compile(r"r\d{1,12}", re.IGNORECASE)
_MAX_REASON = 200
_ROUTE = "/{api:(?i:api)}{tail:(?:/.*)?}"

_log = structlog.get_logger("proxy.rest")

ApiKeyCheck = Callable[[str, str], Awaitable[str]]
"""``check_api_key(api_key, peer)`` -> the key's configured name; raises AuthenticationFailed."""


class CertificateAuthenticator(Protocol):
    """What the REST front needs of :class:`~proxy.identity.certificates.ClientCertificateAuthenticator`."""

    async def authenticate(
        self, *, peer: str, tls_der: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> Principal:
        """The caller the request's client certificate authenticates as."""
        ...


@dataclass(frozen=True)
class RestIdentity:
    """How the REST front authenticates: the ApiKey check and the certificate authenticator (None: no CA)."""

    check_api_key: ApiKeyCheck
    certificates: CertificateAuthenticator | None


@dataclass(frozen=True)
class _Template:
    template: str
    pattern: re.Pattern[str]

    @classmethod
    def compile(cls, template: str) -> _Template:
        parts = _PARAMETER.split(template)
        # split() alternates literal text and parameter names: literal, name, literal, ...
        regex = "".join(
            f"(?P<{part}>[^/]+)" if index % 2 else re.escape(part) for index, part in enumerate(parts)
        )
        return cls(template, re.compile(regex + "/?", re.IGNORECASE))


_TEMPLATES = tuple(_Template.compile(template) for template in ROUTE_TEMPLATES)


@dataclass(frozen=True)
class RouteMatch:
    """A request path matched to an Altinn 2 route template (``other`` when none matches)."""

    template: str
    parameters: Mapping[str, str]


def match_route(path: str) -> RouteMatch:
    """The documented Altinn 2 REST route template ``path`` matches, with its parameters."""
    for candidate in _TEMPLATES:
        found = candidate.pattern.fullmatch(path)
        if found is not None:
            return RouteMatch(candidate.template, found.groupdict())
    return RouteMatch(OTHER_ROUTE, {})


def add_rest_routes(app: web.Application, identity: Callable[[], RestIdentity]) -> None:
    """Serve ``/api/...`` (any case) on ``app`` with the legacy REST identity checks.

    ``identity`` is called per request, so the services it returns may be created after the routes
    (in the app's cleanup context).
    """
    app.router.add_route("*", _ROUTE, _RestFront(identity).handle)


class _RestFront:
    def __init__(self, identity: Callable[[], RestIdentity]) -> None:
        self._identity = identity

    async def handle(self, request: web.Request) -> web.StreamResponse:
        method = method_label(request.method)
        route = match_route(request.path)
        peer = _peer(request)
        principal: Principal | None = None
        try:
            principal = await self._authenticate(request, peer)
            bound(LEGACY_CALLS, principal.caller_id, "rest", f"{method} {route.template}").inc()
            org = self._authorize(principal, route)
            REST_UNTRANSLATED.labels(method, route.template).inc()
            _log.info(
                "rest.decision",
                method=method,
                route=route.template,
                caller_id=principal.caller_id,
                org=org,
                peer=peer,
                outcome="not_translated",
            )
            shown = route.template if route.template != OTHER_ROUTE else request.path[:_MAX_REASON]
            raise OperationNotTranslated(f"{method} {shown} has no Altinn 3 equivalent in this proxy")
        except ProxyError as error:
            return self._reply(error, method, route, peer, principal, error.kind)
        except Exception:
            request_id = request_id_of(request)
            _log.exception("rest.unexpected_error", method=method, route=route.template, peer=peer)
            unexpected = ProxyError(
                f"An unexpected error occurred in the proxy; quote request id {request_id} to its operator."
            )
            return self._reply(unexpected, method, route, peer, principal, "unexpected")

    async def _authenticate(self, request: web.Request, peer: str) -> Principal:
        identity = self._identity()
        api_key = request.headers.get(API_KEY_HEADER)
        if api_key is None:
            raise MalformedRequest(MISSING_API_KEY)
        try:
            await identity.check_api_key(api_key, peer)
        except AuthenticationFailed as error:
            # Altinn 2 answered an ApiKey it did not accept for the API with 403, not 401.
            raise AuthorizationDenied(error.message) from None
        if not any(name.lower() == FORCE_EI_PARAMETER for name in request.query):
            raise AuthenticationFailed(NO_ORGANISATION_NUMBER)
        if identity.certificates is None:
            raise AuthenticationFailed(NO_CERTIFICATE_AUTHORITY)
        return await identity.certificates.authenticate(
            peer=peer, tls_der=_tls_certificate(request), headers=request.headers
        )

    @staticmethod
    def _authorize(principal: Principal, route: RouteMatch) -> str | None:
        """The organisation the call acts for (None when the route names none)."""
        if route.template.startswith("/api/serviceowner/"):
            return require_service_owner(principal).org
        who = route.parameters.get("who")
        if who is None or who.lower() == "my" or _REPORTEE_ID.fullmatch(who):
            # ``my`` is the caller itself; a ReporteeId is resolved by the translation that needs it.
            return principal.org
        return authorize(principal, parse_reportee(who)).org

    @staticmethod
    def _reply(
        error: ProxyError,
        method: str,
        route: RouteMatch,
        peer: str,
        principal: Principal | None,
        kind: str,
    ) -> web.Response:
        status = error.http_status
        REST_ERRORS.labels(kind, str(status)).inc()
        if not isinstance(error, OperationNotTranslated):
            _log.info(
                "rest.refused",
                method=method,
                route=route.template,
                caller_id=principal.caller_id if principal is not None else None,
                org=principal.org if principal is not None else None,
                peer=peer,
                kind=kind,
                status=status,
                outcome="refused",
            )
        body = json.dumps({"ErrorCode": error.error_id, "ErrorMessage": error.message}, ensure_ascii=False)
        return web.Response(
            status=status,
            reason=reason_phrase(error.message),
            text=body,
            content_type="application/json",
        )


def reason_phrase(message: str) -> str:
    """``message`` as an HTTP reason phrase: printable ASCII on one line, at most 200 characters."""
    cleaned = "".join(char if " " <= char <= "~" else "?" for char in message)
    return cleaned[:_MAX_REASON]


def _peer(request: web.Request) -> str:
    """The TCP peer's address, from the socket itself: never from a header."""
    transport = request.transport
    peername = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return "unknown"


def _tls_certificate(request: web.Request) -> bytes | None:
    """The DER client certificate of the TLS connection, when the proxy terminates TLS and one was sent."""
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return None
    der: bytes | None = ssl_object.getpeercert(binary_form=True)
    return der or None
