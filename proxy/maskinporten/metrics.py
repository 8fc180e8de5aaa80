"""Prometheus metrics of the token provider (default registry).

Labels are bounded: ``kind`` is :attr:`TokenRequest.kind` (four values), ``outcome`` one of
``ok``, ``refused``, ``unavailable``. No org, client id or token ever becomes a label.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from proxy.observability.labels import closed, product

KINDS = ("system_user", "system_user_exchanged", "service_owner", "service_owner_exchanged")
OUTCOMES = ("ok", "refused", "unavailable")

TOKEN_FETCHES = closed(
    Counter(
        "altinn_proxy_token_fetches",
        "Token fetches from Maskinporten (and the Altinn exchange), by outcome and key kind.",
        ["kind", "outcome"],
    ),
    product(KINDS, OUTCOMES),
)
TOKEN_FETCH_SECONDS = Histogram(
    "altinn_proxy_token_fetch_seconds",
    "Time to obtain a token (grant plus exchange where used).",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0),
)
TOKEN_CACHE_HITS = Counter(
    "altinn_proxy_token_cache_hits",
    "token() calls answered from the cache without waiting.",
    ["kind"],
)
TOKEN_CACHE_WAITS = Counter(
    "altinn_proxy_token_cache_waits",
    "token() calls that had to wait for a fetch (cold, expired or invalidated key).",
    ["kind"],
)
TOKEN_REFUSALS_REPLAYED = closed(
    Counter(
        "altinn_proxy_token_refusals_replayed",
        "token() calls answered with a recently remembered refusal (e.g. MP-303), without a new grant.",
        ["kind"],
    ),
    product(KINDS),
)


class ExpirySource(Protocol):
    """Something that can tell how long its cached tokens still live."""

    def seconds_until_expiry(self) -> Iterable[tuple[str, float]]:
        """``(kind, seconds)`` for every cached token."""
        ...


class _ExpiryCollector(Collector):
    """Seconds until the soonest expiry of a cached token, per key kind, over all live providers."""

    def __init__(self) -> None:
        self._sources: weakref.WeakSet[ExpirySource] = weakref.WeakSet()

    def add(self, source: ExpirySource) -> None:
        """Report ``source``'s tokens until it is discarded (or garbage-collected)."""
        self._sources.add(source)

    def discard(self, source: ExpirySource) -> None:
        """Stop reporting ``source``'s tokens."""
        self._sources.discard(source)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One gauge family: the soonest expiry per key kind."""
        soonest: dict[str, float] = {}
        for source in list(self._sources):
            for kind, seconds in source.seconds_until_expiry():
                soonest[kind] = min(seconds, soonest.get(kind, seconds))
        family = GaugeMetricFamily(
            "altinn_proxy_token_seconds_until_expiry",
            "Seconds until the soonest-expiring cached token of each key kind expires.",
            labels=["kind"],
        )
        for kind in sorted(soonest):
            family.add_metric([kind], soonest[kind])
        yield family


EXPIRY = _ExpiryCollector()
REGISTRY.register(EXPIRY)
