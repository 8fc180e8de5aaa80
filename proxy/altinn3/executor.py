"""The driver that feeds a mapping plan through the Altinn 3 client and the id store.

Upstream and token failures are thrown back into the plan, where the operation's fault table
translates them; anything else (store unavailable, cancellation) ends the plan as it is.
A ``CallBatch`` runs its calls concurrently, at most ``concurrency`` at a time; the first failure
cancels the rest of the batch.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from proxy.errors import ProxyError, TokenError, UpstreamError
from proxy.mapping.calls import (
    AllocateId,
    Altinn3Call,
    Altinn3Response,
    CallBatch,
    IdStore,
    LegacyAnswer,
    PlanRequest,
    ResolveId,
)
from proxy.mapping.engine import Plan


class CallSender(Protocol):
    """What the executor needs from :class:`proxy.altinn3.client.Altinn3Client`."""

    async def send(self, call: Altinn3Call) -> Altinn3Response:
        """Send one call."""
        ...


async def execute(plan: Plan, client: CallSender, store: IdStore) -> LegacyAnswer:
    """Run ``plan`` to its legacy answer (or its typed error)."""
    value: Any = None
    failure: ProxyError | None = None
    try:
        while True:
            try:
                request = plan.throw(failure) if failure is not None else plan.send(value)
            except StopIteration as stop:
                answer: LegacyAnswer = stop.value
                return answer
            value, failure = None, None
            try:
                value = await _answer(request, client, store)
            except (UpstreamError, TokenError) as error:
                failure = error
    finally:
        plan.close()


async def _answer(request: PlanRequest, client: CallSender, store: IdStore) -> Any:
    if isinstance(request, Altinn3Call):
        return await client.send(request)
    if isinstance(request, CallBatch):
        return await _batch(request, client)
    if isinstance(request, AllocateId):
        return await store.allocate_id(request.kind, request.guid, request.owner_org)
    if isinstance(request, ResolveId):
        return await store.resolve_id(request.kind, request.legacy_id, request.owner_org)
    raise TypeError(f"unexpected plan request {type(request).__name__}")


async def _batch(batch: CallBatch, client: CallSender) -> tuple[Altinn3Response, ...]:
    limit = asyncio.Semaphore(batch.concurrency)

    async def one(call: Altinn3Call) -> Altinn3Response:
        async with limit:
            return await client.send(call)

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(call)) for call in batch.calls]
    except BaseExceptionGroup as group_error:
        first = group_error.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    return tuple(task.result() for task in tasks)
