"""The shipped mapping directory, loaded once per test session (its contracts are the served ones)."""

from __future__ import annotations

import functools
from pathlib import Path

from proxy.mapping.engine import MappingSet
from proxy.pipeline.loading import load_mapping_set
from proxy.soap.catalogue import Service
from proxy.soap.surface import Surface

MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"


@functools.cache
def shipped_mappings() -> MappingSet:
    """``mappings/`` compiled (call it off the event loop the first time: it takes a moment)."""
    return load_mapping_set(MAPPINGS)


def shipped_surface() -> Surface:
    """The SOAP services as the shipped mappings make them."""
    return shipped_mappings().surface


def shipped_service(name: str) -> Service:
    """One service of the shipped surface (its mapped operations derived from their contracts)."""
    service = shipped_surface().catalogue.by_name(name)
    assert service is not None, name
    return service
