"""Declarative mapping of legacy operations to Altinn 3 calls (pure: no aiohttp, no I/O).

The active set and its hot reload live in :mod:`proxy.pipeline.registry`, stream peeking in
:mod:`proxy.altinn3.peek`: both beside the executor.

Public API: :class:`Engine`, :class:`OperationRequest`, :class:`MappingSet`, :func:`compile_sources`,
:class:`RoutingTable`/:class:`Route`, the call values of
:mod:`proxy.mapping.calls`, and :func:`proxy.mapping.tools.explain`.
"""

from proxy.mapping.calls import (
    AllocateId,
    Altinn3Call,
    Altinn3Response,
    BaseUrls,
    CallBatch,
    IdStore,
    LegacyAnswer,
    ResolveId,
    ResolveIdAmong,
)
from proxy.mapping.compiler import MappingSources, compile_sources
from proxy.mapping.engine import Engine, MappingSet, OperationRequest, Plan
from proxy.mapping.routing import Route, RoutingTable

__all__ = [
    "AllocateId",
    "Altinn3Call",
    "Altinn3Response",
    "BaseUrls",
    "CallBatch",
    "Engine",
    "IdStore",
    "LegacyAnswer",
    "MappingSet",
    "MappingSources",
    "OperationRequest",
    "Plan",
    "ResolveId",
    "ResolveIdAmong",
    "Route",
    "RoutingTable",
    "compile_sources",
]
