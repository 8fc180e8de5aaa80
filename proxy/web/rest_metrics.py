"""Prometheus metrics of the legacy REST front (default registry; labels are bounded by construction).

``route`` is one of the documented Altinn 2 REST route templates (``proxy.mapping.rest_routes.ROUTE_TEMPLATES``)
or ``other``; ``method`` one of the HTTP methods Altinn 2 served, or ``other``.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter

from proxy.mapping.rest_routes import ROUTE_TEMPLATES
from proxy.observability.labels import Known, closed, product

#: The methods the legacy REST API served.
REST_METHODS = ("GET", "POST", "PUT", "DELETE")


def _routes(_: Known) -> tuple[tuple[str, ...], ...]:
    return product(REST_METHODS, ROUTE_TEMPLATES)


REST_ERRORS = Counter(
    "altinn_proxy_rest_errors_total",
    "Legacy REST error replies, by error kind (proxy.errors ProxyError.kind, or 'unexpected') and status.",
    ["kind", "status"],
)
REST_UNTRANSLATED = closed(
    Counter(
        "altinn_proxy_rest_untranslated_total",
        "Authenticated legacy REST calls that this proxy does not translate to Altinn 3, by route template.",
        ["method", "route"],
    ),
    _routes,
)
REST_REQUESTS = Counter(
    "altinn_proxy_rest_requests_total",
    "Legacy REST calls answered, by method, route template and outcome (ok or error).",
    ["method", "route", "outcome"],
)


def precreate(routes: Iterable[tuple[str, str]]) -> None:
    """Create the request series of each ``(method, route template)`` at zero, so that ``increase()``
    sees their first event."""
    for method, route in routes:
        for outcome in ("ok", "error"):
            REST_REQUESTS.labels(method, route, outcome)
