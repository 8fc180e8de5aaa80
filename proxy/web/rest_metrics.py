"""Prometheus metrics of the legacy REST front (default registry; labels are bounded by construction).

``route`` is one of the documented Altinn 2 REST route templates (``proxy.web.rest.ROUTE_TEMPLATES``)
or ``other``; ``method`` one of the HTTP methods Altinn 2 served, or ``other``.
"""

from __future__ import annotations

from prometheus_client import Counter

REST_ERRORS = Counter(
    "altinn_proxy_rest_errors_total",
    "Legacy REST error replies, by error kind (proxy.errors ProxyError.kind, or 'unexpected') and status.",
    ["kind", "status"],
)
REST_UNTRANSLATED = Counter(
    "altinn_proxy_rest_untranslated_total",
    "Authenticated legacy REST calls that this proxy does not translate to Altinn 3, by route template.",
    ["method", "route"],
)
