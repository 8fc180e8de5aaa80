"""The thin aiohttp adapter of the SOAP front: routes, body reading, the one fault boundary.

Everything about SOAP itself lives in :mod:`proxy.soap` (sans-IO). This module reads bodies with a
deadline and a byte budget (413 early on an oversized Content-Length), streams MTOM attachments
from the socket to the operation handler, writes streamed replies, and is the only place where a
:class:`proxy.errors.ProxyError` becomes a SOAP fault (and is counted). A
:class:`~proxy.errors.MappingRuntimeError` is logged with the mapping's file:line and its cause.
Unexpected exceptions (bugs) become a generic Server fault carrying the request id; the traceback
goes to the log only.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from aiohttp import web
from lxml import etree

from proxy.errors import (
    AuthenticationFailed,
    MappingRuntimeError,
    OperationNotTranslated,
    ProxyError,
    RequestTimeout,
    RequestTooLarge,
    UnknownOperation,
)
from proxy.identity.principal import LegacyCredentials, Principal
from proxy.observability.metrics import LEGACY_CALLS, bound
from proxy.soap.catalogue import TEST_OPERATION_NAME, Binding, CredentialPlacement, Operation, Service
from proxy.soap.encode import EncodedMessage, SoapReply, encode_fault, encode_reply
from proxy.soap.envelope import MULTIPART_RELATED, ContentType, SoapVersion
from proxy.soap.handler import OperationHandler, SoapContext
from proxy.soap.mtom import MessageEnd, MtomInfo, MultipartReader, PartData, PartEnd, PartStart
from proxy.soap.payload import SizedStream
from proxy.soap.request import SoapCall, parse_request, request_version
from proxy.soap.surface import Surface
from proxy.soap.wsdl import ServiceDescription, describe, rewrite_addresses
from proxy.soap.xmlsafe import XmlLimits
from proxy.web.admission import Admission
from proxy.web.middleware import mark_streamed, name_legacy_operation, request_id_of
from proxy.web.refusals import as_legacy_caller_sees_it
from proxy.web.soap_metrics import SOAP_FAULTS, SOAP_REQUESTS, SOAP_UNTRANSLATED

log = structlog.get_logger()

#: The IIS areas that hosted Altinn 2 SOAP endpoints.
AREAS = (
    "AuthenticationExternal",
    "IntermediaryExternal",
    "ServiceEngineExternal",
    "ArchiveExternal",
    "AuthorizationExternal",
    "RegisterExternal",
)
_ROUTE = "/{area:(?i:" + "|".join(AREAS) + ")}/{endpoint:[^/]+\\.(?i:svc)}"
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")
_MAX_CACHED_DESCRIPTIONS = 512


@dataclass(frozen=True)
class SoapConfig:
    """Settings of the SOAP front (the integrator maps ``proxy.settings`` onto this)."""

    #: Public base URL put into served WSDLs (e.g. ``https://altinn-proxy.example.no``); when unset
    #: it is taken from the request (Host, or X-Forwarded-Host/-Proto when trusted).
    external_base_url: str | None = None
    trust_forwarded_headers: bool = False
    limits: XmlLimits = field(default_factory=XmlLimits)
    #: Largest streamed (MTOM or inline) attachment accepted.
    max_attachment_bytes: int = 1024 * 1024 * 1024
    #: Deadline for reading a whole XML message (or MTOM root part).
    body_read_timeout: float = 60.0
    #: Longest wait for the next bytes of a streamed attachment.
    body_idle_timeout: float = 30.0
    #: Overall deadline for a streamed attachment, however steadily it trickles in.
    attachment_deadline: float = 3600.0
    #: Longest wait for a client to take the next part of a streamed answer (a client that stops
    #: reading a download would otherwise hold the upstream download open for ever).
    send_idle_timeout: float = 60.0
    #: XML messages larger than this are parsed in a worker thread, off the event loop.
    parse_in_thread_above: int = 256 * 1024
    #: Optional directory of operator-supplied original WSDLs named ``{ServiceName}.wsdl``.
    original_wsdl_dir: Path | None = None


Authenticator = Callable[[LegacyCredentials, SoapCall, str | None], Awaitable[Principal]]
"""``authenticate(credentials, call, peer_address)``; raises AuthenticationFailed."""
UntranslatedObserver = Callable[[SoapCall, str | None], Awaitable[None]]
"""``observe(call, peer_address)`` before an untranslated operation is answered (e.g. usage per caller)."""


async def answer_test(call: SoapCall, context: SoapContext) -> SoapReply:
    """The built-in ``Test`` (IAltinnContractBase ping): an empty ``TestResponse``."""
    name = call.operation.response_element
    return SoapReply(etree.Element(name.clark, nsmap={None: name.namespace}))  # type: ignore[dict-item]


def add_soap_routes(
    app: web.Application,
    *,
    handlers: Mapping[tuple[str, str], OperationHandler],
    config: SoapConfig,
    authenticate: Authenticator | None,
    surface: Callable[[], Surface],
    on_untranslated: UntranslatedObserver | None = None,
    admission: Admission | None = None,
) -> None:
    """Serve every catalogued SOAP endpoint (POST calls, GET ``?wsdl``/``?singleWsdl``/``?xsd=``) on ``app``.

    ``surface()`` gives the services as currently served (the active mapping set's: a hot reload
    changes dispatch and WSDLs together). ``handlers`` are keyed by ``(service name, operation
    name)``; ``Test`` is answered unless a handler overrides it; any other unregistered operation
    answers ``OperationNotTranslated``. ``authenticate`` is called for operations that carry
    credentials; None skips authentication. ``admission`` bounds the calls served at once (None: no
    bound).
    """
    endpoint = _SoapEndpoint(surface, handlers, config, authenticate, on_untranslated, admission)
    app.router.add_route("*", _ROUTE, endpoint.handle)


class _SoapEndpoint:
    def __init__(
        self,
        surface: Callable[[], Surface],
        handlers: Mapping[tuple[str, str], OperationHandler],
        config: SoapConfig,
        authenticate: Authenticator | None,
        on_untranslated: UntranslatedObserver | None = None,
        admission: Admission | None = None,
    ) -> None:
        self._admission = admission or Admission(sys.maxsize)
        self._surface = surface
        self._on_untranslated = on_untranslated
        self._handlers = handlers
        self._config = config
        self._authenticate = authenticate
        #: Generated descriptions of one surface by (service, address): built on first request.
        self._descriptions: dict[tuple[str, str], ServiceDescription] = {}
        self._described: Surface | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        request_id = request_id_of(request)
        surface = self._surface()
        service = surface.catalogue.for_path(request.path)
        content_type = request.headers.get("Content-Type")
        if service is None and request.method in ("GET", "HEAD"):
            # Scanners probe for .svc paths: a plain 404, not a SOAP fault counted against clients.
            raise web.HTTPNotFound(text="no Altinn 2 SOAP service at this path\n")
        if service is None:
            error = UnknownOperation(f"there is no Altinn 2 SOAP service at {request.path[:200]}")
            return self._fault(
                error, request_version(content_type, SoapVersion.SOAP11), request_id, None, None, status=404
            )
        if request.method in ("GET", "HEAD"):
            return await self._metadata(request, service, surface)
        if request.method != "POST":
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST"])
        version = request_version(content_type, service.soap_version)
        operation: Operation | None = None
        name_legacy_operation(request, service.name, None)
        if service.binding is Binding.BASIC_STREAMED:
            mark_streamed(request)
        try:
            with self._admission.admit():
                call = await self._read_call(request, service)
                operation = call.operation
                name_legacy_operation(request, service.name, operation.name)
                reply = await self._invoke(call, request_id, request.remote)
                encoded = encode_reply(call, reply)
                response = await self._write(request, encoded)
            bound(SOAP_REQUESTS, service.name, operation.name, "ok").inc()
            return response
        except MappingRuntimeError as error:
            # A mapping bug this request revealed: the operator needs where and why, the client does not.
            log.error(
                "mapping.runtime_error",
                request_id=request_id,
                location=error.location,
                service=service.name,
                operation=operation.name if operation else None,
                cause=str(error.__cause__),
            )
            return self._fault(error, version, request_id, service, operation)
        except ProxyError as error:
            return self._fault(error, version, request_id, service, operation)
        except Exception:
            log.exception(
                "soap.unexpected_error",
                request_id=request_id,
                service=service.name,
                operation=operation.name if operation else None,
            )
            unexpected = ProxyError(
                f"An unexpected error occurred in the proxy; quote ErrorGuid {request_id} to its operator."
            )
            return self._fault(unexpected, version, request_id, service, operation, kind="unexpected")

    async def _invoke(self, call: SoapCall, request_id: str, remote: str | None) -> SoapReply:
        handler = self._handlers.get(call.key)
        if handler is None and call.operation.name == TEST_OPERATION_NAME:
            handler = answer_test
        if handler is None:
            SOAP_UNTRANSLATED.labels(call.service.name, call.operation.name).inc()
            if self._on_untranslated is not None:
                await self._on_untranslated(call, remote)
            raise OperationNotTranslated(
                f"{call.operation.name} of {call.service.name} has no Altinn 3 equivalent in this proxy"
            )
        principal = None
        if self._authenticate is not None and call.operation.credentials is not CredentialPlacement.NONE:
            if call.credentials is None:
                raise AuthenticationFailed("the request carries no system user name and password")
            principal = await self._authenticate(call.credentials, call, remote)
            operation = f"{call.service.name}/{call.operation.name}"
            bound(LEGACY_CALLS, principal.caller_id, "soap", operation).inc()
        return await handler(call, SoapContext(request_id, principal, remote))

    def _fault(
        self,
        error: ProxyError,
        version: SoapVersion,
        request_id: str,
        service: Service | None,
        operation: Operation | None,
        *,
        status: int | None = None,
        kind: str | None = None,
    ) -> web.Response:
        error = as_legacy_caller_sees_it(
            error,
            request_id,
            service=service.name if service else None,
            operation=operation.name if operation else None,
        )
        encoded = encode_fault(error, version, request_id, operation=operation)
        SOAP_FAULTS.labels(kind or error.kind).inc()
        SOAP_REQUESTS.labels(
            service.name if service else "unknown", operation.name if operation else "unknown", "fault"
        ).inc()
        log.info(
            "soap.fault",
            request_id=request_id,
            kind=kind or error.kind,
            error_id=error.error_id,
            service=service.name if service else None,
            operation=operation.name if operation else None,
            message=error.message,
        )
        return web.Response(
            status=status or encoded.status, body=encoded.body, headers={"Content-Type": encoded.content_type}
        )

    async def _read_call(self, request: web.Request, service: Service) -> SoapCall:
        config = self._config
        content_type = request.headers.get("Content-Type")
        parsed = ContentType.parse(content_type)
        if parsed.media_type == MULTIPART_RELATED:
            budget = config.limits.max_bytes + config.max_attachment_bytes
            _check_length(request, budget)
            try:
                root, attachment = await self._read_mtom(request, parsed)
            except TimeoutError:
                raise _body_too_slow(config.body_read_timeout) from None
        else:
            _check_length(request, config.limits.max_bytes)
            root = await self._read_all(request, config.limits.max_bytes)
            attachment = None
        soap_action = request.headers.get("SOAPAction")
        if len(root) > config.parse_in_thread_above:
            return await asyncio.to_thread(
                parse_request,
                service,
                content_type=content_type,
                soap_action=soap_action,
                body=root,
                limits=config.limits,
                attachment=attachment,
            )
        return parse_request(
            service,
            content_type=content_type,
            soap_action=soap_action,
            body=root,
            limits=config.limits,
            attachment=attachment,
        )

    async def _read_all(self, request: web.Request, limit: int) -> bytes:
        body = bytearray()
        try:
            async with asyncio.timeout(self._config.body_read_timeout):
                while chunk := await request.content.readany():
                    body += chunk
                    if len(body) > limit:
                        raise RequestTooLarge(f"the request body is larger than {limit} bytes")
        except TimeoutError:
            raise _body_too_slow(self._config.body_read_timeout) from None
        return bytes(body)

    async def _read_mtom(
        self, request: web.Request, content_type: ContentType
    ) -> tuple[bytes, AsyncIterator[bytes] | None]:
        info = MtomInfo.from_content_type(content_type)
        reader = MultipartReader(info.boundary)
        limit = self._config.limits.max_bytes
        root = bytearray()
        parts = 0
        pending: list[bytes] = []
        consumed = 0
        async with asyncio.timeout(self._config.body_read_timeout):
            while True:
                chunk = await request.content.readany()
                if not chunk:
                    reader.close()
                    return bytes(root), None
                consumed += len(chunk)
                for event in reader.feed(chunk):
                    if isinstance(event, PartStart):
                        parts += 1
                    elif isinstance(event, PartData):
                        if parts == 1:
                            root += event.data
                            if len(root) > limit:
                                raise RequestTooLarge(f"the MTOM root part is larger than {limit} bytes")
                        else:
                            pending.append(event.data)
                    elif isinstance(event, PartEnd) and parts >= 2:
                        pending.append(b"")  # marks the end of the attachment
                if parts >= 2:
                    attachment = self._attachment(request, reader, pending)
                    length = _attachment_length(request, info, reader, pending, consumed)
                    return bytes(root), attachment if length is None else SizedStream(attachment, length)
                if reader.finished:
                    return bytes(root), None

    async def _attachment(
        self, request: web.Request, reader: MultipartReader, pending: list[bytes]
    ) -> AsyncIterator[bytes]:
        limit = self._config.max_attachment_bytes
        total = 0
        for data in pending:
            if data == b"":
                return
            total += len(data)
            if total > limit:
                raise RequestTooLarge(f"the attachment is larger than {limit} bytes")
            yield data
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.attachment_deadline
        while True:
            wait = min(self._config.body_idle_timeout, deadline - loop.time())
            try:
                async with asyncio.timeout(max(wait, 0.0)):
                    chunk = await request.content.readany()
            except TimeoutError:
                if wait < self._config.body_idle_timeout:
                    raise RequestTimeout(
                        f"the upload did not complete within {self._config.attachment_deadline:g} seconds"
                    ) from None
                raise RequestTimeout(f"the client sent nothing for {wait:g} seconds") from None
            if not chunk:
                reader.close()
                return
            for event in reader.feed(chunk):
                if isinstance(event, PartData):
                    total += len(event.data)
                    if total > limit:
                        raise RequestTooLarge(f"the attachment is larger than {limit} bytes")
                    yield event.data
                elif isinstance(event, PartEnd | MessageEnd):
                    return

    async def _send(self, request: web.Request, response: web.StreamResponse, data: bytes) -> None:
        """Write ``data``; a client that takes none of it for ``send_idle_timeout`` is cut off."""
        try:
            async with asyncio.timeout(self._config.send_idle_timeout):
                await response.write(data)
        except TimeoutError:
            log.warning("soap.client_stopped_reading", seconds=self._config.send_idle_timeout)
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError("the client stopped reading the answer") from None

    async def _write(self, request: web.Request, encoded: EncodedMessage) -> web.StreamResponse:
        if encoded.stream is None:
            return web.Response(
                status=encoded.status, body=encoded.body, headers={"Content-Type": encoded.content_type}
            )
        response = web.StreamResponse(status=encoded.status, headers={"Content-Type": encoded.content_type})
        try:
            await response.prepare(request)
            await self._send(request, response, encoded.head)
            async for chunk in encoded.stream:
                await self._send(request, response, chunk)
            await self._send(request, response, encoded.tail)
            await response.write_eof()
        finally:
            # A client that went away mid-download must not leave the upstream response open.
            close = getattr(encoded.stream, "aclose", None)
            if close is not None:
                await close()
        return response

    async def _metadata(self, request: web.Request, service: Service, surface: Surface) -> web.Response:
        query = {key.lower(): value.lower() for key, value in request.query.items()}
        address = self._base_url(request) + service.paths[0]
        if "xsd" in query:
            description = await asyncio.to_thread(self._describe, service, address, surface)
            index = query["xsd"].removeprefix("xsd")
            if not index.isdigit() or int(index) >= len(description.schemas):
                raise web.HTTPNotFound(text="no such schema")
            return _xml(description.schemas[int(index)])
        if "wsdl" in query or "singlewsdl" in query:
            original = await asyncio.to_thread(self._original_wsdl, service, address)
            if original is not None:
                return _xml(original)
            # Generating a large service's schemas takes a while: off the loop, like the file read.
            return _xml((await asyncio.to_thread(self._describe, service, address, surface)).wsdl)
        return web.Response(
            text=f"{service.name}: Altinn 2 compatibility endpoint. Metadata: {address}?wsdl\n",
            content_type="text/plain",
        )

    def _describe(self, service: Service, address: str, surface: Surface) -> ServiceDescription:
        if surface is not self._described:
            self._descriptions.clear()  # a new mapping set: its contracts, its WSDLs
            self._described = surface
        key = (service.name, address)
        description = self._descriptions.get(key)
        if description is None:
            if len(self._descriptions) >= _MAX_CACHED_DESCRIPTIONS:
                self._descriptions.clear()  # many distinct Host headers: start over rather than grow
            description = self._descriptions[key] = describe(service, surface.contracts, address)
        return description

    def _original_wsdl(self, service: Service, address: str) -> bytes | None:
        """The operator's own WSDL for ``service`` with its addresses set to ``address`` (file I/O)."""
        directory = self._config.original_wsdl_dir
        if directory is None:
            return None
        path = directory / f"{service.name}.wsdl"
        return rewrite_addresses(path.read_bytes(), address) if path.is_file() else None

    def _base_url(self, request: web.Request) -> str:
        if self._config.external_base_url:
            return self._config.external_base_url.rstrip("/")
        scheme = request.scheme
        host = request.host
        if self._config.trust_forwarded_headers:
            scheme = request.headers.get("X-Forwarded-Proto", scheme).split(",")[0].strip().lower()
            host = request.headers.get("X-Forwarded-Host", host).split(",")[0].strip()
        if scheme not in ("http", "https"):
            scheme = "http"
        if not _HOST.match(host or ""):
            host = "localhost"
        return f"{scheme}://{host}"


def _attachment_length(
    request: web.Request, info: MtomInfo, reader: MultipartReader, pending: list[bytes], consumed: int
) -> int | None:
    """The attachment's size, known before it is read: Altinn 3 uploads need a Content-Length.

    When the part already ended it is what was read. Otherwise it is the request's Content-Length
    less what came before the part's data and the closing delimiter that writers put after it
    (``CRLF --boundary-- CRLF``); :class:`SizedStream` refuses a payload that disagrees. Without a
    Content-Length (chunked) it is unknown.
    """
    if b"" in pending:
        return sum(len(data) for data in pending)
    total = request.content_length
    if total is None:
        return None
    before = consumed - reader.buffered - sum(len(data) for data in pending)
    closing = len(f"\r\n--{info.boundary}--\r\n".encode("latin-1"))
    length = total - before - closing
    return length if length >= 0 else None


def _body_too_slow(seconds: float) -> RequestTimeout:
    return RequestTimeout(f"the request body did not arrive within {seconds:g} seconds")


def _check_length(request: web.Request, limit: int) -> None:
    length = request.content_length
    if length is not None and length > limit:
        raise RequestTooLarge(f"the request body ({length} bytes) is larger than {limit} bytes")


def _xml(data: bytes) -> web.Response:
    return web.Response(body=data, headers={"Content-Type": "text/xml; charset=utf-8"})
