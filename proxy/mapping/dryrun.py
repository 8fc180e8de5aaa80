"""Run a plan without any I/O, answering from canned responses (load-time examples and explain)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from proxy.errors import NotFound
from proxy.mapping.calls import (
    AllocateId,
    Altinn3Call,
    Altinn3Response,
    BeginIdempotent,
    CallBatch,
    LegacyAnswer,
    LoadReceipts,
    PeekStream,
    PlanRequest,
    Recall,
    Remember,
    ResolveId,
    ResolveIdAmong,
    SaveReceipt,
    Wait,
)
from proxy.mapping.engine import Plan
from proxy.mapping.peek import PeekedStream


class MissingResponse(Exception):
    """A step needs a canned response that was not given."""

    def __init__(self, step: str) -> None:
        super().__init__(f"no canned response for step {step!r}")
        self.step = step


@dataclass
class DryRun:
    """Canned answers by step name; store calls get deterministic ids. Records what the plan asked."""

    responses: Mapping[str, Altinn3Response]
    first_id: int = 1000001
    seen: list[PlanRequest] = field(default_factory=list)
    _ids: dict[str, int] = field(default_factory=dict)

    def answer(self, request: PlanRequest) -> Any:
        """The canned answer to one request of a plan."""
        self.seen.append(request)
        if isinstance(request, Altinn3Call):
            return self._response(request.step)
        if isinstance(request, CallBatch):
            return tuple(self._response(request.step) for _ in request.calls)
        if isinstance(request, AllocateId):
            return self._ids.setdefault(request.guid, self.first_id + len(self._ids))
        if isinstance(request, ResolveId):
            resolved = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{request.kind}/{request.legacy_id}"))
            if request.with_parent:
                return {"guid": resolved, "parent": str(uuid.uuid5(uuid.NAMESPACE_URL, f"parent/{resolved}"))}
            return resolved
        if isinstance(request, ResolveIdAmong):
            if not request.owner_orgs:
                raise NotFound(f"no {request.kind} with id {request.legacy_id}")
            guid = uuid.uuid5(uuid.NAMESPACE_URL, f"{request.kind}/{request.legacy_id}")
            return str(guid), request.owner_orgs[0]
        if isinstance(request, BeginIdempotent | SaveReceipt | Recall | Wait):
            return None  # a dry run is always a first submission, keeps nothing and never waits
        if isinstance(request, Remember):
            return request.value
        if isinstance(request, PeekStream):
            # No stream is read in a dry run: the canned ``text`` of the step stands for its first bytes.
            canned = self.responses.get(request.step)
            head = b"" if canned is None or canned.content is None else canned.content[: request.size]
            return PeekedStream(head, [], aiter(request.source), getattr(request.source, "length", None))
        if isinstance(request, LoadReceipts):
            canned = self.responses.get(request.step)
            return [] if canned is None else canned.json
        raise TypeError(f"unexpected plan request {type(request).__name__}")

    def _response(self, step: str) -> Altinn3Response:
        found = self.responses.get(step)
        if found is None:
            raise MissingResponse(step)
        return found


def drive(plan: Plan, answer: Callable[[PlanRequest], Any]) -> LegacyAnswer:
    """Run ``plan`` to its end synchronously, answering each request with ``answer``."""
    value: Any = None
    while True:
        try:
            request = plan.send(value)
        except StopIteration as stop:
            result: LegacyAnswer = stop.value
            return result
        try:
            value = answer(request)
        except BaseException:
            plan.close()
            raise
