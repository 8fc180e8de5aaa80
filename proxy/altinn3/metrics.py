"""Outbound Altinn 3 metrics (default registry; labels bounded: api name, method, status class)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from proxy.observability.labels import Known, closed

REQUESTS = Counter(
    "altinn_proxy_altinn3_requests_total",
    "Altinn 3 requests by API, method and outcome (2xx..5xx, error for no answer)",
    ["api", "method", "status_class"],
)
LATENCY = Histogram(
    "altinn_proxy_altinn3_request_seconds",
    "Altinn 3 request latency until the response headers arrived",
    ["api", "method"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RETRIES = Counter(
    "altinn_proxy_altinn3_retries_total", "Altinn 3 calls retried, by reason", ["api", "reason"]
)


def _mapped_apis(known: Known) -> list[tuple[str]]:
    return [(api,) for api in sorted(known.apis)]


REJECTED_BY_BREAKER = closed(
    Counter(
        "altinn_proxy_altinn3_circuit_rejections_total", "Calls refused because the circuit was open", ["api"]
    ),
    _mapped_apis,
)


def status_class(status: int | None) -> str:
    """``2xx``..``5xx``, or ``error`` when no answer came."""
    return "error" if status is None else f"{status // 100}xx"
