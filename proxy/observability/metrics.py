"""Process-wide Prometheus metrics of the web layer, and the metrics endpoint on its own port.

Each package defines its own metrics next to its code in the default registry; this module serves
them all. Labels are bounded: routes are the matched resource's canonical path, never the raw URL, and
methods are :func:`method_label`'s (a client may send any token as a method).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

M = TypeVar("M", bound=MetricWrapperBase)
_BOUND: dict[tuple[Any, tuple[str, ...]], Any] = {}
#: HTTP methods that become a label value as they are; any other token a client sends is ``other``.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = Counter(
    "altinn_proxy_http_requests_total", "HTTP requests served", ["route", "method", "status_class"]
)
REQUEST_SECONDS = Histogram(
    "altinn_proxy_http_request_seconds",
    "Time to serve an HTTP request",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120),
)
STREAMED_REQUEST_SECONDS = Histogram(
    "altinn_proxy_http_streamed_request_seconds",
    "Time to serve a request that streamed a file (MTOM upload or download), kept apart from the others",
    ["route"],
    buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)
LEGACY_CALLS = Counter(
    "altinn_proxy_legacy_calls_total",
    "Authenticated legacy calls: who still calls what. caller is the credentials file's name for the "
    "caller (bounded by that file), front soap or rest, operation Service/Operation or METHOD route.",
    ["caller", "front", "operation"],
)
IN_FLIGHT = Gauge("altinn_proxy_http_in_flight", "Requests being served right now")
READY = Gauge("altinn_proxy_ready", "1 while the process is ready for traffic (what /readyz answers)")
#: The ``Server`` header of every response: the product, never the versions of Python or aiohttp.
SERVER_HEADER = "altinn-proxy"


def bound(metric: M, *values: str) -> M:
    """``metric.labels(*values)``, remembered: the hot path skips the label checks and the lock.

    Only for bounded label values (the same rule as for every label here); a child once bound stays
    the metric's child for the life of the process (nothing here calls ``remove`` or ``clear``).
    """
    key = (metric, values)
    child = _BOUND.get(key)
    if child is None:
        child = _BOUND[key] = metric.labels(*values)
    return child


def method_label(method: str) -> str:
    """A bounded label for an HTTP method: one of :data:`HTTP_METHODS`, else ``other``."""
    upper = method.upper()
    return upper if upper in HTTP_METHODS else "other"


async def _metrics(_: web.Request) -> web.Response:
    response = web.Response(body=generate_latest(REGISTRY))
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    response.charset = "utf-8"
    return response


async def hide_server_software(_: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` of every app: a ``Server`` header without Python's or aiohttp's version."""
    response.headers["Server"] = SERVER_HEADER


MetricsPortRoutes = Callable[[web.Application], None]
#: Routes the proxy's application adds to the metrics port (e.g. the migration board).
METRICS_PORT_ROUTES: web.AppKey[list[MetricsPortRoutes]] = web.AppKey("metrics_port_routes", list)


def create_metrics_app(main: web.Application | None = None) -> web.Application:
    """A tiny application that serves ``/metrics`` (run it on the metrics port), plus the routes
    ``main`` asks for under :data:`METRICS_PORT_ROUTES`."""
    app = web.Application()
    app.on_response_prepare.append(hide_server_software)
    app.router.add_get("/metrics", _metrics)
    for install in main.get(METRICS_PORT_ROUTES, []) if main is not None else []:
        install(app)
    return app
