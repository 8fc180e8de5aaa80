"""The driver that feeds a mapping plan through the Altinn 3 client and the id store.

Upstream and token failures are thrown back into the plan, where the operation's fault table
translates them; anything else (store unavailable, cancellation) ends the plan as it is.
A ``CallBatch`` runs its calls concurrently, at most ``concurrency`` at a time; the first failure
cancels the rest of the batch, unless its calls ``keep`` their answers: then every call runs to its
end (each 2xx answer is remembered as it arrives) and the first failure is raised after.

Idempotency: when a plan's ``BeginIdempotent`` claims a new key, this driver owns the claim until the
plan ends: its answer bytes are recorded with the store, and any other ending (a fault, a store
failure, cancellation) releases the claim with ``store.fail`` so a resend starts afresh.

Trailing writes: a ``SaveReceipt`` is answered at once and held back until the plan's next request;
before any other request it is written as it always was, and when the plan ends right after it, it
is written together with the answer's idempotency record in one transaction (``store.finish``).
Either way every write is committed before the legacy answer leaves, and in the plan's order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from proxy.altinn3.peek import peek
from proxy.errors import NotFound, ProxyError, StoreUnavailable, TokenError, UpstreamError
from proxy.mapping.calls import (
    AllocateId,
    Altinn3Call,
    Altinn3Response,
    BeginIdempotent,
    CallBatch,
    IdStore,
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
from proxy.store.model import (
    Begun,
    IdempotencyKey,
    Outcome,
    Receipt,
    ReceiptReference,
    ReceiptStatus,
)


class CallSender(Protocol):
    """What the executor needs from :class:`proxy.altinn3.client.Altinn3Client`."""

    async def send(self, call: Altinn3Call) -> Altinn3Response:
        """Send one call."""
        ...


#: Altinn 2's ErrorID for a receipt search that finds nothing.
RECEIPT_NOT_FOUND = 30008


class StateStore(IdStore, Protocol):
    """What the executor needs from :class:`proxy.store.Store`: ids, idempotency and receipts."""

    async def resolve_id_among(
        self, kind: str, legacy_id: int, owner_orgs: tuple[str, ...]
    ) -> tuple[str, str]:
        """``(guid, owner_org)`` when one of ``owner_orgs`` owns ``legacy_id``, else ``NotFound``."""
        ...

    async def begin(self, key: IdempotencyKey) -> Begun:
        """Claim ``key`` or learn the outcome of the first identical submission."""
        ...

    async def complete(self, key: IdempotencyKey, outcome: Outcome) -> None:
        """Record the outcome of a claimed submission."""
        ...

    async def fail(self, claim: Begun) -> None:
        """Release a claim after a failed attempt."""
        ...

    async def save_receipt(self, receipt: Receipt) -> None:
        """Insert or replace a receipt."""
        ...

    async def finish(
        self, receipts: Sequence[Receipt] = (), completion: tuple[IdempotencyKey, Outcome] | None = None
    ) -> None:
        """Save ``receipts`` and complete ``completion`` in one transaction."""
        ...

    async def get_receipt(self, receipt_id: int, owner_org: str) -> Receipt:
        """The org's receipt; ``NotFound`` when absent or another org's."""
        ...

    async def find_receipts(self, owner_org: str, reference: ReceiptReference) -> list[Receipt]:
        """The org's receipts carrying ``reference``."""
        ...

    async def remember(self, key: IdempotencyKey, value: str, *, durable: bool = False) -> str:
        """Record ``value`` under ``key`` unless one is recorded (for ever when ``durable``); the recorded value."""
        ...

    async def recall(self, key: IdempotencyKey) -> str | None:
        """The value recorded under ``key``, or None."""
        ...


Sleep = Callable[[float], Awaitable[object]]


async def execute(
    plan: Plan, client: CallSender, store: StateStore, sleep: Sleep = asyncio.sleep
) -> LegacyAnswer:
    """Run ``plan`` to its legacy answer (or its typed error); ``sleep`` serves its ``Wait`` pauses."""
    value: Any = None
    failure: ProxyError | None = None
    pending = _Pending()
    try:
        while True:
            try:
                request = plan.throw(failure) if failure is not None else plan.send(value)
            except StopIteration as stop:
                answer: LegacyAnswer = stop.value
                completion = (pending.claim.key, answer.xml) if pending.claim is not None else None
                await store.finish(pending.held, completion)
                pending.claim = None
                return answer
            except BaseException:
                await _flush(store, pending)
                raise
            value, failure = None, None
            if isinstance(request, SaveReceipt):
                pending.held.append(_receipt(request))
                continue
            await _flush(store, pending)
            if isinstance(request, Wait):
                await sleep(request.seconds)
                continue
            try:
                value = await _answer(request, client, store, pending)
            except (UpstreamError, TokenError) as error:
                failure = error
    finally:
        plan.close()
        if pending.claim is not None:
            await _release(store, pending.claim)


class _Pending:
    """The idempotency claim this run holds and has not yet completed, and receipts not yet written."""

    def __init__(self) -> None:
        self.claim: Begun | None = None
        self.held: list[Receipt] = []


async def _flush(store: StateStore, pending: _Pending) -> None:
    held, pending.held = pending.held, []
    for receipt in held:
        await store.save_receipt(receipt)


#: Pauses between further tries to release a claim while the store is unreachable (about 2 min).
_RELEASE_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
_releasing: set[asyncio.Task[None]] = set()


async def _release(store: StateStore, claim: Begun) -> None:
    # Best effort and shielded from our own cancellation: if the release is lost, the key's lease
    # runs out and a resend takes it over (see proxy.store.base). When the store is unreachable
    # (a database restart), the release is tried again in the background, so that a resend after
    # the store is back need not wait out the whole lease.
    try:
        await asyncio.shield(store.fail(claim))
    except StoreUnavailable:
        task = asyncio.get_running_loop().create_task(_release_later(store, claim))
        _releasing.add(task)
        task.add_done_callback(_releasing.discard)
    except Exception:  # noqa: S110  (the lease is the fallback, see above)
        pass


async def _release_later(store: StateStore, claim: Begun) -> None:
    for delay in _RELEASE_RETRY_DELAYS:
        await asyncio.sleep(delay)
        try:
            await store.fail(claim)
        except StoreUnavailable:
            continue
        except Exception:
            return
        return


async def _answer(request: PlanRequest, client: CallSender, store: StateStore, pending: _Pending) -> Any:
    if isinstance(request, Altinn3Call):
        return await _send(request, client, store)
    if isinstance(request, CallBatch):
        return await _batch(request, client, store)
    if isinstance(request, AllocateId):
        return await store.allocate_id(request.kind, request.guid, request.owner_org, request.parent)
    if isinstance(request, ResolveId) and request.with_parent:
        guid, parent = await store.resolve_id_with_parent(request.kind, request.legacy_id, request.owner_org)
        return {"guid": guid, "parent": parent}
    if isinstance(request, ResolveId):
        return await store.resolve_id(request.kind, request.legacy_id, request.owner_org)
    if isinstance(request, ResolveIdAmong):
        return await store.resolve_id_among(request.kind, request.legacy_id, request.owner_orgs)
    if isinstance(request, BeginIdempotent):
        key = IdempotencyKey(request.caller, request.operation, request.reference)
        begun = await store.begin(key)
        if begun.is_new:
            pending.claim = begun
            return None
        return begun.outcome if isinstance(begun.outcome, bytes) else None
    if isinstance(request, LoadReceipts):
        return await _load_receipts(request, store)
    if isinstance(request, Remember):
        return await store.remember(
            IdempotencyKey(request.caller, request.operation, request.key),
            request.value,
            durable=request.durable,
        )
    if isinstance(request, Recall):
        return await store.recall(IdempotencyKey(request.caller, request.operation, request.key))
    if isinstance(request, PeekStream):
        return await peek(request.source, request.size)
    raise TypeError(f"unexpected plan request {type(request).__name__}")


def _receipt(request: SaveReceipt) -> Receipt:
    return Receipt(
        receipt_id=request.receipt_id,
        owner_org=request.owner_org,
        status=ReceiptStatus(request.status),
        text=request.text,
        type_name=request.type_name,
        last_changed=request.last_changed,
        references=tuple(ReceiptReference(type_name, value) for type_name, value in request.references),
    )


async def _load_receipts(request: LoadReceipts, store: StateStore) -> list[dict[str, Any]]:
    """Receipts as plain values for templates; ``NotFound`` (Altinn's 30008) when none matches.

    Another org's receipt is missed exactly like an unknown one: the store filters by owner org.
    """
    found: list[Receipt] = []
    if request.receipt_id is not None:
        try:
            found = [await store.get_receipt(request.receipt_id, request.owner_org)]
        except NotFound as missing:
            raise NotFound(missing.message, error_id=RECEIPT_NOT_FOUND) from None
    if request.reference is not None:
        wanted = ReceiptReference(*request.reference)
        if request.receipt_id is None:
            found = await store.find_receipts(request.owner_org, wanted)
        else:
            found = [receipt for receipt in found if wanted in receipt.references]
    if not found and request.required:
        raise NotFound("no receipt matches the search", error_id=RECEIPT_NOT_FOUND)
    return [_receipt_values(receipt) for receipt in found]


def _receipt_values(receipt: Receipt) -> dict[str, Any]:
    return {
        "receipt_id": receipt.receipt_id,
        "parent_receipt_id": receipt.parent_receipt_id or 0,
        "status": receipt.status.value,
        "text": receipt.text,
        "type_name": receipt.type_name,
        "last_changed": _iso(receipt.last_changed),
        "history": receipt.history,
        "references": [{"type": ref.type_name, "value": ref.value} for ref in receipt.references],
        "sub_receipts": [_receipt_values(sub) for sub in receipt.sub_receipts],
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _send(call: Altinn3Call, client: CallSender, store: StateStore) -> Altinn3Response:
    """Send ``call``; a ``keep`` memo records a 2xx answer's JSON text before anything else happens.

    So what one call of a batch created is remembered even when a sibling fails and ends the plan.
    """
    response = await client.send(call)
    if call.keep is not None and 200 <= response.status < 300 and isinstance(response.json, str):
        await store.remember(IdempotencyKey(*call.keep), response.json)
    return response


async def _batch(batch: CallBatch, client: CallSender, store: StateStore) -> tuple[Altinn3Response, ...]:
    limit = asyncio.Semaphore(batch.concurrency)

    async def one(call: Altinn3Call) -> Altinn3Response:
        async with limit:
            return await _send(call, client, store)

    if any(call.keep is not None for call in batch.calls):
        # Calls that keep what they create run to their end, so every answer is kept.
        answers = await asyncio.gather(*(one(call) for call in batch.calls), return_exceptions=True)
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        return tuple(answer for answer in answers if isinstance(answer, Altinn3Response))

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(call)) for call in batch.calls]
    except BaseExceptionGroup as group_error:
        first = group_error.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    return tuple(task.result() for task in tasks)
