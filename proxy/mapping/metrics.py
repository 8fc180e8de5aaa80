"""The mapping set metric: ``altinn_proxy_mapping_set_info{hash=...} 1`` for the active set only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Gauge

if TYPE_CHECKING:
    from proxy.mapping.engine import MappingSet

MAPPING_SET = Gauge(
    "altinn_proxy_mapping_set_info", "The active mapping set (label: content hash, 12 hex digits)", ["hash"]
)


def observe_active_set(mapping_set: MappingSet) -> None:
    """Point the metric at ``mapping_set``: one series, so the label set stays bounded."""
    MAPPING_SET.clear()
    MAPPING_SET.labels(hash=mapping_set.digest[:12]).set(1)
