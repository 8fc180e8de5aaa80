"""Request-id and access-log middleware.

Every request gets an id: the caller's ``X-Request-Id`` when it is a sane token, else a fresh UUID.
It is echoed in the response, bound into every log line written while serving the request, and used
as the ``ErrorGuid`` of any fault, so an operator can go from a legacy client's error to the log.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from proxy.observability.metrics import IN_FLIGHT, REQUEST_SECONDS, REQUESTS, bound, method_label

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID = web.RequestKey("request_id", str)
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = structlog.get_logger("proxy.access")


def request_id_of(request: web.Request) -> str:
    """The id the middleware gave this request (a fresh one if the middleware did not run)."""
    value = request.get(REQUEST_ID)
    if value is None:
        value = request[REQUEST_ID] = str(uuid.uuid4())
    return value


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
            bound(REQUEST_SECONDS, route).observe(elapsed)
            log.info(
                "request",
                method=request.method,
                path=request.path,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                peer=request.remote,
            )
