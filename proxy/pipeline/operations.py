"""One mapped legacy operation, from the front to the executor and back.

Invariants:
* The plan runs on the mapping set active when it starts (a hot reload never changes a running
  plan); the SOAP front dispatches on the same set's surface.
* An upload stream the plan did not (fully) send is closed when the operation ends, so it never
  keeps reading the client's socket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from proxy.altinn3.executor import CallSender, StateStore, execute
from proxy.identity.principal import OrgGrant, Principal
from proxy.identity.reportee import authorize, parse_reportee
from proxy.mapping.calls import LegacyAnswer
from proxy.mapping.engine import Engine, OperationRequest
from proxy.mapping.routing import FormRoute, Route, RoutingTable
from proxy.pipeline.registry import MappingRegistry
from proxy.settings import Settings
from proxy.soap.catalogue import CredentialPlacement
from proxy.soap.encode import SoapReply
from proxy.soap.handler import OperationHandler, SoapContext
from proxy.soap.headers import with_header_fields
from proxy.soap.request import SoapCall


def routing_table(settings: Settings) -> RoutingTable:
    """The settings' routing tables as the mapping engine's lookup table."""
    routes: dict[tuple[str, str], dict[str, Any]] = {}
    for route in settings.routing.correspondence:
        routes.setdefault((route.service_code, route.service_edition), {})["resource_id"] = route.resource_id
    for broker in settings.routing.broker:
        key = (broker.service_code, broker.service_edition)
        routes.setdefault(key, {}).update(
            broker_resource=broker.resource_id,
            manifest_shim=broker.manifest_shim,
            require_zip=broker.require_zip,
        )
    for app_route in settings.routing.apps:
        key = (app_route.service_code, app_route.service_edition)
        routes.setdefault(key, {}).update(
            org=app_route.org,
            app=app_route.app,
            data_type=app_route.data_type,
            data_format_id=app_route.data_format_id,
            data_format_version=app_route.data_format_version,
            sub_forms=tuple(FormRoute(**sub.model_dump()) for sub in app_route.sub_forms),
            attachment_types=MappingProxyType(dict(app_route.attachment_types)),
            default_attachment_type=app_route.default_attachment_type,
        )
    return RoutingTable.of(Route(code, edition, **fields) for (code, edition), fields in routes.items())


def authorize_reportee(principal: Principal, reportee: str) -> OrgGrant:
    """Validate the reportee number, then check the caller may act for it."""
    return authorize(principal, parse_reportee(reportee))


@dataclass(frozen=True)
class Pipeline:
    """Runs mapped operations: request → plan (active mapping set) → executor → legacy answer."""

    mappings: MappingRegistry
    engine: Engine
    altinn3: CallSender
    store: StateStore

    async def run(self, request: OperationRequest) -> LegacyAnswer:
        """The legacy answer to ``request``, or the :class:`proxy.errors.ProxyError` it ends in."""
        return await execute(self.engine.start(request), self.altinn3, self.store)


class MappedOperations(Mapping[tuple[str, str], OperationHandler]):
    """The SOAP handlers: every operation of the *current* mapping set (hot reload included).

    ``pipeline()`` is None until the application's services have started (nothing is mapped yet).
    """

    def __init__(self, pipeline: Callable[[], Pipeline | None]) -> None:
        self._pipeline = pipeline

    def _operations(self) -> Mapping[tuple[str, str], Any]:
        pipeline = self._pipeline()
        if pipeline is None:
            return {}
        operations = pipeline.mappings.current().operations
        return {key: operation for key, operation in operations.items() if operation.legacy.rest is None}

    def __getitem__(self, key: tuple[str, str]) -> OperationHandler:
        # One lookup per request (not a copy of every operation): this runs for each SOAP call.
        pipeline = self._pipeline()
        operation = None if pipeline is None else pipeline.mappings.current().operations.get(key)
        if operation is None or operation.legacy.rest is not None:
            raise KeyError(key)
        return self._handle

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._operations())

    def __len__(self) -> int:
        return len(self._operations())

    async def _handle(self, call: SoapCall, context: SoapContext) -> SoapReply:
        pipeline = self._pipeline()
        assert pipeline is not None  # a handler is only found once the services run
        assert context.principal is not None  # every mapped operation carries credentials
        streams = {"attachment": call.attachment} if call.attachment is not None else {}
        body = call.body
        if call.operation.credentials is CredentialPlacement.HEADER:
            body = with_header_fields(call.body, call.headers)
        request = OperationRequest(call.service.name, call.operation.name, body, context.principal, streams)
        try:
            answer = await pipeline.run(request)
        finally:
            close = getattr(call.attachment, "aclose", None)
            if close is not None:
                await close()
        if answer.stream is None:
            return SoapReply(None, xml=answer.xml)  # spliced into the envelope, not parsed again
        return SoapReply(answer.element(), stream=answer.stream)
