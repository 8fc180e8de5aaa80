"""The legacy REST front's way into the pipeline: mapped REST operations, run like SOAP ones.

A REST operation is a mapping operation with ``legacy.rest`` (see ``mappings/README.md``); its answer
is the reply document ``{"status", "headers", "body"}`` as JSON text (so an idempotent resend replays
all of it), which :meth:`MappedRestOperations.run` hands back to the front as a
:class:`~proxy.web.rest.RestReply`. ReporteeIds (``r<id>``) are ids of the registry, kind
:data:`REPORTEE_ID_KIND`, owned by the party's own organisation: one store lookup among the caller's
organisations resolves them, and another org's id is refused exactly like an unknown one.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from proxy.errors import AuthorizationDenied, NotFound
from proxy.identity.principal import Principal
from proxy.mapping.engine import CompiledOperation, OperationRequest
from proxy.pipeline.operations import Pipeline
from proxy.web.rest import RestCall, RestReply

#: The id registry kind of the ReporteeIds that ``/api/reportees`` hands out (``r`` + the id).
REPORTEE_ID_KIND = "reportee"


class MappedRestOperations:
    """The REST front's backend: the REST operations of the *current* mapping set.

    ``pipeline()`` is None until the application's services have started (nothing is mapped yet).
    """

    def __init__(self, pipeline: Callable[[], Pipeline | None]) -> None:
        self._pipeline = pipeline

    def operation(self, method: str, template: str) -> CompiledOperation | None:
        """The mapped operation for ``method`` on the Altinn 2 route ``template``, if any."""
        pipeline = self._pipeline()
        return None if pipeline is None else pipeline.mappings.current().rest_operation(method, template)

    async def run(self, call: RestCall) -> RestReply:
        """Run the operation through the engine and the executor; decode its reply document."""
        pipeline = self._pipeline()
        assert pipeline is not None  # an operation is only found once the services run
        legacy = call.operation.legacy
        request = OperationRequest(
            legacy.service, legacy.operation, call.values, call.principal, call.streams
        )
        answer = await pipeline.run(request)
        document = json.loads(answer.xml)
        return RestReply(document["status"], document["headers"], document["body"], answer.stream)

    async def reportee_of(self, principal: Principal, reportee_id: int) -> str:
        """The organisation behind ``r<reportee_id>``, when it is one of the caller's."""
        pipeline = self._pipeline()
        assert pipeline is not None
        try:
            _, org = await pipeline.store.resolve_id_among(
                REPORTEE_ID_KIND, reportee_id, tuple(sorted(principal.orgs))
            )
        except NotFound:
            raise AuthorizationDenied(
                f"r{reportee_id} is not a ReporteeId this caller may act for; list them with /api/reportees"
            ) from None
        return org
