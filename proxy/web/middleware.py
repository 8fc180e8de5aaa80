"""Request-id and access-log middleware.

Every request gets an id: the caller's ``X-Request-Id`` when it is a sane token, else a fresh UUID.
It is echoed in the response, bound into every log line written while serving the request, and used
as the ``ErrorGuid`` of any fault, so an operator can go from a legacy client's error to the log.

The access line names the legacy operation when a front has said which one it was
(:func:`name_legacy_operation`), and a request a front marked as streamed (:func:`mark_streamed`)
is timed in its own histogram, so that long transfers do not make ordinary calls look slow. The
kubelet's probes are logged at debug level only.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from proxy.observability.metrics import (
    IN_FLIGHT,
    REQUEST_SECONDS,
    REQUESTS,
    STREAMED_REQUEST_SECONDS,
    bound,
    method_label,
)
from proxy.web.health import PROBE_PATHS

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID = web.RequestKey("request_id", str)
LEGACY_OPERATION = web.RequestKey("legacy_operation", str)
STREAMED = web.RequestKey("streamed", bool)
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = structlog.get_logger("proxy.access")


def request_id_of(request: web.Request) -> str:
    """The id the middleware gave this request (a fresh one if the middleware did not run)."""
    value = request.get(REQUEST_ID)
    if value is None:
        value = request[REQUEST_ID] = str(uuid.uuid4())
    return value


def name_legacy_operation(request: web.Request, service: str, operation: str | None) -> None:
    """Name the legacy call being served (``Service/Operation``) for the access line."""
    request[LEGACY_OPERATION] = f"{service}/{operation}" if operation else service


def mark_streamed(request: web.Request) -> None:
    """Time this request as a streamed transfer (``altinn_proxy_http_streamed_request_seconds``)."""
    request[STREAMED] = True


def route_label(request: web.Request) -> str:
    """A bounded metrics label: the matched route's canonical path, or ``unmatched``."""
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Assign the request id, bind it for logging, echo it, and write one access line."""
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = offered if _SANE_ID.fullmatch(offered) else str(uuid.uuid4())
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    status = 500
    IN_FLIGHT.inc()
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        try:
            response = await handler(request)
            status = response.status
            if not response.prepared:
                response.headers[REQUEST_ID_HEADER] = request_id
            return response
        except web.HTTPException as error:
            status = error.status
            error.headers[REQUEST_ID_HEADER] = request_id
            raise
        finally:
            IN_FLIGHT.dec()
            elapsed = time.perf_counter() - started
            route = route_label(request)
            bound(REQUESTS, route, method_label(request.method), f"{status // 100}xx").inc()
            latency = STREAMED_REQUEST_SECONDS if request.get(STREAMED) else REQUEST_SECONDS
            bound(latency, route).observe(elapsed)
            write = log.debug if request.path in PROBE_PATHS else log.info
            write(
                "request",
                method=request.method,
                path=request.path,
                operation=request.get(LEGACY_OPERATION),
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                peer=request.remote,
            )
