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

An authenticated call is then translated by the mapping operation declared for its method and
route template (``legacy.rest`` in ``mappings/``) and run like a SOAP operation, with the same
engine, store and tokens: the front hands over the route parameters (``who`` already resolved to an
organisation number), the query (names in lower case) and the JSON body or the body stream. The
reply is the answer's HAL document in the negotiated format (:mod:`proxy.web.hal`), paged and
filtered with OData (:mod:`proxy.web.odata`) where the operation declares a ``collection``, or the
answer's download stream. A documented route with no mapping answers ``501``; a path that is no
Altinn 2 route answers ``404``, as Altinn 2 did.

Invariants: :meth:`_RestFront.handle` is the one place a :class:`~proxy.errors.ProxyError` becomes a
legacy REST reply (status, reason phrase, ``{"ErrorCode", "ErrorMessage"}``) and is counted; nothing
else answers for ``/api/``. The ApiKey and the certificate never reach a log line, a reply or a
metric label; metric labels come from :data:`ROUTE_TEMPLATES` and
:func:`~proxy.observability.metrics.method_label` only.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from aiohttp import web

from proxy.errors import (
    AuthenticationFailed,
    AuthorizationDenied,
    InvalidReportee,
    MalformedRequest,
    OperationNotTranslated,
    ProxyError,
    RequestTimeout,
    RequestTooLarge,
    UnknownOperation,
)
from proxy.identity.principal import Principal
from proxy.identity.reportee import authorize, parse_reportee, require_service_owner
from proxy.mapping.rest_routes import ROUTE_TEMPLATES
from proxy.mapping.schema import LegacySide
from proxy.observability.metrics import LEGACY_CALLS, bound, method_label
from proxy.soap.payload import SizedStream
from proxy.web import hal
from proxy.web.admission import Admission
from proxy.web.middleware import request_id_of
from proxy.web.odata import Query, parse_query
from proxy.web.refusals import as_legacy_caller_sees_it
from proxy.web.rest_metrics import REST_ERRORS, REST_REQUESTS, REST_UNTRANSLATED

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


_PARAMETER = re.compile(r"\{(\w+)\}")
_REPORTEE_ID = re.compile(r"r\d{1,12}", re.IGNORECASE)
_MAX_REASON = 200
_ROUTE = "/{api:(?i:api)}{tail:(?:/.*)?}"
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")

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


class RestOperation(Protocol):
    """What the front needs of a mapped REST operation (``proxy.mapping.engine.CompiledOperation``)."""

    @property
    def legacy(self) -> LegacySide:
        """The operation's legacy side; ``legacy.rest`` is set for a REST operation."""
        ...


@dataclass(frozen=True)
class RestReply:
    """A translated operation's answer: the reply document (status, headers, HAL body), or a download."""

    status: int
    headers: Mapping[str, str]
    body: Any
    stream: AsyncIterator[bytes] | None = None


@dataclass(frozen=True)
class RestCall:
    """One REST request, authenticated and resolved, as the backend runs it."""

    operation: RestOperation
    principal: Principal
    #: ``route`` (parameters; ``who`` as an organisation number), ``query`` (lower-case names), ``body``.
    values: Mapping[str, Any]
    streams: Mapping[str, AsyncIterable[bytes]]


class RestBackend(Protocol):
    """The mapping side of the REST front (wired in ``proxy.app``)."""

    def operation(self, method: str, template: str) -> RestOperation | None:
        """The mapped operation for ``method`` on the Altinn 2 route ``template``, if any."""
        ...

    async def run(self, call: RestCall) -> RestReply:
        """Run the operation (identity, plan, Altinn 3 calls, answer)."""
        ...

    async def reportee_of(self, principal: Principal, reportee_id: int) -> str:
        """The organisation behind a ReporteeId of ``/api/reportees``; AuthorizationDenied if not the caller's."""
        ...


@dataclass(frozen=True)
class RestLimits:
    """Bounds on REST request bodies (the integrator maps ``proxy.settings`` onto this)."""

    max_json_bytes: int = 50 * 1024 * 1024
    max_stream_bytes: int = 1024 * 1024 * 1024 + 64 * 1024 * 1024
    #: Deadline for a whole JSON body.
    body_read_timeout: float = 60.0
    #: Longest wait for the next bytes of a streamed body.
    body_idle_timeout: float = 30.0
    #: Overall deadline of a streamed body, however steadily it trickles in.
    stream_deadline: float = 3600.0


@dataclass(frozen=True)
class RestIdentity:
    """How the REST front authenticates: the ApiKey check and the certificate authenticator (None: no CA).

    ``backend`` runs the translated operations (None: every route answers ``501``).
    """

    check_api_key: ApiKeyCheck
    certificates: CertificateAuthenticator | None
    backend: RestBackend | None = None
    limits: RestLimits = RestLimits()
    #: The public base URL of HAL links (``listen.external_url``); None: the scheme and Host called.
    external_base_url: str | None = None


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


def add_rest_routes(
    app: web.Application, identity: Callable[[], RestIdentity], admission: Admission | None = None
) -> None:
    """Serve ``/api/...`` (any case) on ``app`` with the legacy REST identity checks.

    ``identity`` is called per request, so the services it returns may be created after the routes
    (in the app's cleanup context). ``admission`` bounds the calls served at once (None: no bound).
    """
    app.router.add_route("*", _ROUTE, _RestFront(identity, admission or Admission(sys.maxsize)).handle)


class _RestFront:
    def __init__(self, identity: Callable[[], RestIdentity], admission: Admission) -> None:
        self._identity = identity
        self._admission = admission

    async def handle(self, request: web.Request) -> web.StreamResponse:
        method = method_label(request.method)
        route = match_route(request.path)
        peer = _peer(request)
        principal: Principal | None = None
        media_type = hal.negotiate(request.headers.get("Accept"))
        try:
            with self._admission.admit():
                identity = self._identity()
                principal = await self._authenticate(identity, request, peer)
                bound(LEGACY_CALLS, principal.caller_id, "rest", f"{method} {route.template}").inc()
                org = await self._authorize(identity, principal, route)
                operation = None
                if identity.backend is not None and route.template != OTHER_ROUTE:
                    operation = identity.backend.operation(request.method.upper(), route.template)
                if identity.backend is None or operation is None:
                    self._untranslated(request, method, route, principal, org, peer)
                assert operation is not None
                response = await self._translate(
                    request, identity, operation, principal, route, org, media_type
                )
            REST_REQUESTS.labels(method, route.template, "ok").inc()
            return response
        except ProxyError as error:
            shown = as_legacy_caller_sees_it(
                error, request_id_of(request), method=method, route=route.template
            )
            if shown is not error and shown.extended:
                # The REST shape has no extended message: what the caller may quote joins the message.
                shown.message = f"{shown.message} ({shown.extended})"
            return self._reply(shown, method, route, peer, principal, error.kind)
        except Exception:
            request_id = request_id_of(request)
            _log.exception("rest.unexpected_error", method=method, route=route.template, peer=peer)
            unexpected = ProxyError(
                f"An unexpected error occurred in the proxy; quote request id {request_id} to its operator."
            )
            return self._reply(unexpected, method, route, peer, principal, "unexpected")

    @staticmethod
    def _untranslated(
        request: web.Request, method: str, route: RouteMatch, principal: Principal, org: str | None, peer: str
    ) -> None:
        if route.template == OTHER_ROUTE:
            raise UnknownOperation(f"No Altinn 2 REST resource matches {request.path[:_MAX_REASON]}")
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
        raise OperationNotTranslated(f"{method} {route.template} has no Altinn 3 equivalent in this proxy")

    async def _translate(
        self,
        request: web.Request,
        identity: RestIdentity,
        operation: RestOperation,
        principal: Principal,
        route: RouteMatch,
        org: str | None,
        media_type: str,
    ) -> web.StreamResponse:
        declared = operation.legacy.rest
        assert declared is not None
        query: Query | None = None
        if declared.collection is not None:
            query = parse_query(request.query, declared.filters)
        parameters = dict(route.parameters)
        if org is not None and "who" in parameters:
            parameters["who"] = org
        values: dict[str, Any] = {
            "route": parameters,
            "query": {name.lower(): value for name, value in request.query.items()},
            "body": None,
        }
        streams: dict[str, AsyncIterable[bytes]] = {}
        if declared.body == "json":
            values["body"] = await _read_json(request, identity.limits)
        elif declared.body == "stream":
            streams["body"] = _body_stream(request, identity.limits)
        assert identity.backend is not None
        try:
            reply = await identity.backend.run(RestCall(operation, principal, values, streams))
        finally:
            # An upload the plan did not (fully) send must not keep reading the client's socket.
            for stream in streams.values():
                close = getattr(stream, "aclose", None)
                if close is not None:
                    await close()
        if reply.stream is not None:
            return await _write_stream(request, reply)
        base_url = (identity.external_base_url or "").rstrip("/") or _base_url(request)
        body = hal.absolute_links(reply.body, base_url)
        headers = dict(reply.headers)
        if query is not None and declared.collection is not None and isinstance(body, dict):
            body, cut = _page(body, declared.collection, query, request, base_url)
            if cut:
                headers["X-Warning-LimitReached"] = str(query.top)
        if "Location" in headers and headers["Location"].startswith("/"):
            headers["Location"] = base_url + headers["Location"]
        message = body.get("ErrorMessage") if isinstance(body, dict) and reply.status >= 400 else None
        return web.Response(
            status=reply.status,
            reason=reason_phrase(str(message)) if message else None,
            body=hal.encode(body, media_type),
            headers={**headers, "Content-Type": f"{media_type}; charset=utf-8"},
        )

    async def _authenticate(self, identity: RestIdentity, request: web.Request, peer: str) -> Principal:
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
    async def _authorize(identity: RestIdentity, principal: Principal, route: RouteMatch) -> str | None:
        """The organisation the call acts for (None when the route names none)."""
        if route.template.startswith("/api/serviceowner/"):
            return require_service_owner(principal).org
        who = route.parameters.get("who")
        if who is None:
            return principal.org
        if who.lower() == "my":
            return _own_organisation(principal)
        if _REPORTEE_ID.fullmatch(who):
            if identity.backend is None:
                return principal.org
            return await identity.backend.reportee_of(principal, int(who[1:]))
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
        REST_REQUESTS.labels(method, route.template, "error").inc()
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


def _own_organisation(principal: Principal) -> str:
    """The organisation ``my`` means: the caller's own (a service owner's, or an end-user system's only one)."""
    if principal.org:
        return principal.org
    if len(principal.orgs) == 1:
        return next(iter(principal.orgs))
    raise InvalidReportee(
        "This caller acts for several organisations: name one (its organisation number) instead of 'my'"
    )


def _page(
    body: dict[str, Any], collection: str, query: Query, request: web.Request, base_url: str
) -> tuple[Any, bool]:
    """``body`` with its ``_embedded`` collection paged and filtered, and whether the list was cut."""
    embedded = body.get("_embedded") or {}
    items = embedded.get(collection) or []
    page, cut = query.page(items)
    links = dict(body.get("_links") or {})
    if cut:
        following = {name: value for name, value in request.query.items() if name.lower() != "$skip"}
        following["$skip"] = str(query.skip + len(page))
        links["next"] = {"href": base_url + str(request.rel_url.with_query(following))}
    return {**body, "_links": links, "_embedded": {**embedded, collection: page}}, cut


async def _read_json(request: web.Request, limits: RestLimits) -> Any:
    """The request's JSON body, read within the deadline and the byte limit (None when empty)."""
    length = request.content_length
    if length is not None and length > limits.max_json_bytes:
        raise RequestTooLarge(
            f"the request body ({length} bytes) is larger than {limits.max_json_bytes} bytes"
        )
    body = bytearray()
    try:
        async with asyncio.timeout(limits.body_read_timeout):
            while chunk := await request.content.readany():
                body += chunk
                if len(body) > limits.max_json_bytes:
                    raise RequestTooLarge(f"the request body is larger than {limits.max_json_bytes} bytes")
    except TimeoutError:
        raise RequestTimeout(
            f"the request body did not arrive within {limits.body_read_timeout:g} seconds"
        ) from None
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedRequest(f"The request body is not valid JSON: {error}") from None


def _body_stream(request: web.Request, limits: RestLimits) -> AsyncIterable[bytes]:
    """The request body as a stream (sized when the client sent a Content-Length), never buffered."""
    length = request.content_length
    if length is not None and length > limits.max_stream_bytes:
        raise RequestTooLarge(
            f"the request body ({length} bytes) is larger than {limits.max_stream_bytes} bytes"
        )
    chunks = _chunks(request, limits)
    return chunks if length is None else SizedStream(chunks, length)


async def _chunks(request: web.Request, limits: RestLimits) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.stream_deadline
    total = 0
    while True:
        wait = min(limits.body_idle_timeout, deadline - loop.time())
        try:
            async with asyncio.timeout(max(wait, 0.0)):
                chunk = await request.content.readany()
        except TimeoutError:
            if wait < limits.body_idle_timeout:
                raise RequestTimeout(
                    f"the upload did not complete within {limits.stream_deadline:g} seconds"
                ) from None
            raise RequestTimeout(f"the client sent nothing for {wait:g} seconds") from None
        if not chunk:
            return
        total += len(chunk)
        if total > limits.max_stream_bytes:
            raise RequestTooLarge(f"the request body is larger than {limits.max_stream_bytes} bytes")
        yield chunk


async def _write_stream(request: web.Request, reply: RestReply) -> web.StreamResponse:
    """Send a download as it arrives from Altinn 3; the upstream answer is closed whatever happens."""
    assert reply.stream is not None
    headers = {"Content-Type": "application/octet-stream", **reply.headers}
    response = web.StreamResponse(status=reply.status, headers=headers)
    try:
        await response.prepare(request)
        async for chunk in reply.stream:
            await response.write(chunk)
        await response.write_eof()
    except (ProxyError, ConnectionError) as error:
        # The status line is gone: the only honest answer is a cut connection (no chunked terminator),
        # so the client cannot take a partial file for a whole one.
        _log.warning("rest.download_aborted", error=type(error).__name__, request_id=request_id_of(request))
        if request.transport is not None:
            request.transport.close()
    finally:
        close = getattr(reply.stream, "aclose", None)
        if close is not None:
            await close()
    return response


def _base_url(request: web.Request) -> str:
    """The scheme and host the client called, for absolute HAL links (the Host header, checked)."""
    host = request.host if _HOST.fullmatch(request.host or "") else "localhost"
    return f"{request.scheme}://{host}"
