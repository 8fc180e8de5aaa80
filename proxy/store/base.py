"""The store interface, and the logic both backends share.

Invariants (both backends):

* Id registry: ``(kind, guid, owner_org)`` is unique and maps to one legacy id for ever; a legacy id is
  never reused (PostgreSQL: one sequence; SQLite: ``AUTOINCREMENT``). Every race between replicas is
  decided by the database's unique constraint, never by Python state. Ids may have gaps (a lost race
  burns a sequence value); nothing depends on them being dense. An id's ``parent`` (the GUID of what
  the item belongs to, e.g. a data element's instance), once recorded, never changes.
* Id floor: :meth:`Store.migrate` moves the allocator (PostgreSQL: the sequence; SQLite: the
  ``AUTOINCREMENT`` counter) up to ``options.first_legacy_id`` when it is below, and never down, so
  no id below the floor is allocated after that and a lowered floor reuses nothing.
* Resolution always filters by owner org in SQL, and every miss raises the same ``NotFound`` text, so
  another org's id is indistinguishable from a non-existent one.
* Idempotency: exactly one ``begin`` per key sees ``NEW`` while a record exists; the insert of the
  in-flight row is that decision. A holder that died is replaced only after its lease ran out, by a
  compare-and-set on its token so two waiters cannot both take over.
* Memos: the first value remembered under a key stays (``remember`` returns it to every later
  writer), so two attempts of one submission agree on what the first created upstream. A durable
  memo is never purged (like the id registry); the others go with old idempotency records.
* Every write is committed before the method returns: an acknowledged id, receipt or outcome survives
  ``kill -9`` of the process.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

from proxy.errors import InProgress, NotFound
from proxy.store.model import (
    BeginState,
    Begun,
    IdempotencyKey,
    InFlightRecord,
    Outcome,
    Receipt,
    ReceiptReference,
    StoreOptions,
    as_utc,
    canonical_guid,
    check_kind,
    check_legacy_id,
    check_org,
    check_receipt,
    encode_outcome,
    not_found,
)

#: The kind under which receipt ids are registered (``allocate_id(RECEIPT_KIND, guid, org)``).
RECEIPT_KIND = "receipt"


class Store(abc.ABC):
    """Durable state of the proxy: legacy id registry, idempotency records and receipts.

    Obtain one with :func:`proxy.store.open_store`; it is safe to share between tasks and, through the
    database, between processes and replicas. Driver failures raise ``StoreUnavailable``.
    """

    def __init__(self, options: StoreOptions) -> None:
        self.options = options

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def description(self) -> str:
        """Backend and location with any password redacted, fit for logs."""

    @property
    @abc.abstractmethod
    def expected_schema_version(self) -> int:
        """The schema version this code migrates to and works with."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections. The store cannot be used afterwards."""

    @abc.abstractmethod
    async def migrate(self) -> int:
        """Apply pending schema migrations (idempotent, safe concurrently); return the schema version.

        Also raises the id allocator to ``options.first_legacy_id`` where it is below (never lowers it).
        """

    @abc.abstractmethod
    async def schema_version(self) -> int:
        """The schema version the database is at (0 for an empty database)."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the database answers a trivial query."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- id registry -----------------------------------------------------------------------------

    async def allocate_id(self, kind: str, guid: str, owner_org: str, parent: str | None = None) -> int:
        """The legacy integer id for ``guid`` of ``kind`` owned by ``owner_org``, allocated on first use.

        Idempotent: the same ``(kind, guid, owner_org)`` always gets the same positive 32-bit integer,
        across calls, processes and replicas. ``parent`` (a GUID: what the item belongs to, such as a
        data element's instance) is recorded with the id when it has none yet, so that
        :meth:`resolve_id_with_parent` can find the item from its legacy id alone.
        """
        return (await self.allocate_ids(kind, [guid], owner_org, parent))[guid]

    async def allocate_ids(
        self, kind: str, guids: Iterable[str], owner_org: str, parent: str | None = None
    ) -> dict[str, int]:
        """:meth:`allocate_id` for many GUIDs in one round trip (two with a ``parent``); keys are the GUIDs
        as given."""
        check_kind(kind)
        owner_org = check_org(owner_org)
        canonical = {guid: canonical_guid(guid) for guid in guids}
        if not canonical:
            return {}
        distinct = sorted(set(canonical.values()))
        ids = await self._allocate(kind, owner_org, distinct, self._now())
        if parent is not None:
            await self._adopt(kind, owner_org, distinct, canonical_guid(parent))
        return {given: ids[canon] for given, canon in canonical.items()}

    async def resolve_id(self, kind: str, legacy_id: int, owner_org: str) -> str:
        """The GUID behind ``legacy_id``; ``NotFound`` if it does not exist *or* belongs to another org."""
        return (await self.resolve_id_with_parent(kind, legacy_id, owner_org))[0]

    async def resolve_id_with_parent(
        self, kind: str, legacy_id: int, owner_org: str
    ) -> tuple[str, str | None]:
        """``(guid, parent)`` behind ``legacy_id`` (``parent`` None when none was recorded); ``NotFound``
        exactly as :meth:`resolve_id`."""
        check_kind(kind)
        check_legacy_id(kind, legacy_id)
        found = await self._resolve(kind, legacy_id, check_org(owner_org))
        if found is None:
            raise not_found(kind, legacy_id)
        return found

    async def resolve_id_among(self, kind: str, legacy_id: int, owner_orgs: Iterable[str]) -> tuple[str, str]:
        """``(guid, owner_org)`` of ``legacy_id`` when one of ``owner_orgs`` owns it, in one query.

        For callers that act for several organisations and send an id without saying whose it is.
        ``NotFound`` exactly as :meth:`resolve_id`: an id of an org outside ``owner_orgs`` (or no
        org at all) is indistinguishable from one that does not exist.
        """
        check_kind(kind)
        check_legacy_id(kind, legacy_id)
        orgs = sorted({check_org(org) for org in owner_orgs})
        found = await self._resolve_among(kind, legacy_id, orgs) if orgs else None
        if found is None:
            raise not_found(kind, legacy_id)
        return found

    # -- idempotency -----------------------------------------------------------------------------

    async def begin(self, key: IdempotencyKey) -> Begun:
        """Claim ``key`` for a new submission, or learn what the first identical submission answered.

        ``NEW``: the caller does the work, then calls :meth:`complete` (or :meth:`fail` to let a retry
        proceed). ``COMPLETED``: ``outcome`` is the stored answer; do nothing else. While an identical
        submission is in flight this waits up to ``options.in_flight_wait`` for it, then raises
        ``InProgress``. A holder whose lease expired is presumed dead and replaced.
        """
        digest = key.digest
        lease = self.options.idempotency_lease
        deadline: datetime | None = None
        while True:
            now = self._now()
            token = uuid.uuid4().hex
            if await self._insert_in_flight(digest, key.caller, key.operation, token, now, now + lease):
                return Begun(key, BeginState.NEW, token=token)
            record = await self._read_idempotency(digest)
            if record is None:
                continue  # released between our insert and our read: try to claim it again
            if record.state == BeginState.COMPLETED:
                return Begun(key, BeginState.COMPLETED, record.outcome)
            if record.lease_until <= now:
                if await self._take_over(digest, record.token, token, now, now + lease):
                    return Begun(key, BeginState.NEW, token=token)
                continue
            if deadline is None:
                deadline = now + self.options.in_flight_wait
            if now >= deadline:
                raise InProgress(
                    f"an identical {key.operation} submission with the same reference is still being "
                    "processed; retry later"
                )
            await self.options.sleep(self.options.poll_interval.total_seconds())

    async def complete(self, key: IdempotencyKey, outcome: Outcome) -> None:
        """Record the outcome of the submission claimed with :meth:`begin`; resends will get it.

        The first recorded outcome wins: completing an already completed key changes nothing.
        """
        fmt, payload = encode_outcome(outcome)
        await self._complete(key.digest, key.caller, key.operation, fmt, payload, self._now())

    async def fail(self, claim: Begun) -> None:
        """Release the key that ``claim`` (a ``NEW`` answer of :meth:`begin`) holds, so a retry starts afresh.

        Only this claim is released: if its lease ran out and a resend took the key over, the
        newcomer's claim stays. A completed key is left alone: a late failure report must not erase
        a delivered outcome.
        """
        if claim.token is not None:
            await self._release(claim.key.digest, claim.token)

    async def purge_expired(self, now: datetime | None = None) -> int:
        """Delete idempotency records older than ``options.idempotency_retention``; return how many.

        In-flight records are only purged once their lease has run out too. The id registry and
        receipts are kept.
        """
        moment = as_utc(now) if now is not None else self._now()
        cutoff = moment - self.options.idempotency_retention
        await self._purge_memos(cutoff)
        return await self._purge(cutoff, moment)

    # -- memos -----------------------------------------------------------------------------------

    async def remember(self, key: IdempotencyKey, value: str, *, durable: bool = False) -> str:
        """Record ``value`` under ``key`` unless a value is recorded already; return the recorded one.

        For what a submission created upstream before it could finish (e.g. an uploaded attachment's
        id): a resend after a crash finds it with :meth:`recall` and reuses it instead of creating
        another. Kept as long as idempotency records (``options.idempotency_retention``), or for
        ever when ``durable`` (a reference that outlives the submission, e.g. a broker file's).
        """
        return await self._remember(key.digest, value, self._now(), durable)

    async def recall(self, key: IdempotencyKey) -> str | None:
        """The value :meth:`remember` recorded under ``key``, or None."""
        return await self._recall(key.digest)

    # -- receipts --------------------------------------------------------------------------------

    async def save_receipt(self, receipt: Receipt) -> None:
        """Insert or replace ``receipt`` and the sub-receipts it lists, in one transaction.

        Sub-receipts saved earlier and not listed again are kept (an update may name only some).

        Every receipt id must have been allocated (any kind) for the receipt's owner org, else
        ``NotFound``: a caller cannot attach a receipt to another org's id.
        """
        check_receipt(receipt)
        if not await self._save_receipt(receipt, self._now()):
            raise not_found(RECEIPT_KIND, receipt.receipt_id)

    async def get_receipt(self, receipt_id: int, owner_org: str) -> Receipt:
        """The receipt with its direct sub-receipts; ``NotFound`` when absent or another org's."""
        check_legacy_id(RECEIPT_KIND, receipt_id)
        receipt = await self._load_receipt(receipt_id, check_org(owner_org))
        if receipt is None:
            raise not_found(RECEIPT_KIND, receipt_id)
        return receipt

    async def find_receipts(self, owner_org: str, reference: ReceiptReference) -> list[Receipt]:
        """The org's receipts carrying ``reference`` (e.g. an ``ExternalShipmentReference``), oldest first."""
        owner_org = check_org(owner_org)
        receipts = []
        for receipt_id in await self._find_receipt_ids(owner_org, reference):
            try:
                receipts.append(await self.get_receipt(receipt_id, owner_org))
            except NotFound:
                continue  # replaced concurrently; the listing shows what exists now
        return receipts

    # -- the end of a submission -----------------------------------------------------------------

    async def finish(
        self, receipts: Sequence[Receipt] = (), completion: tuple[IdempotencyKey, Outcome] | None = None
    ) -> None:
        """:meth:`save_receipt` for each of ``receipts``, then :meth:`complete`, in one transaction.

        The trailing writes of a submission, made durable together before its answer is sent: either
        all of them are committed or none is. A receipt on an id the org does not own is ``NotFound``
        and nothing is written, exactly as :meth:`save_receipt`.
        """
        for receipt in receipts:
            check_receipt(receipt)
        encoded = None
        if completion is not None:
            key, outcome = completion
            fmt, payload = encode_outcome(outcome)
            encoded = (key.digest, key.caller, key.operation, fmt, payload)
        if not receipts and encoded is None:
            return
        refused = await self._finish(list(receipts), encoded, self._now())
        if refused is not None:
            raise not_found(RECEIPT_KIND, refused)

    # -- helpers and backend primitives ----------------------------------------------------------

    def _now(self) -> datetime:
        return as_utc(self.options.clock())

    @abc.abstractmethod
    async def _allocate(
        self, kind: str, owner_org: str, guids: list[str], now: datetime
    ) -> Mapping[str, int]:
        """Ids for canonical, sorted, distinct ``guids``, inserting the missing ones."""

    @abc.abstractmethod
    async def _adopt(self, kind: str, owner_org: str, guids: list[str], parent: str) -> None:
        """Record ``parent`` on those of the (allocated) ``guids`` that have none yet."""

    @abc.abstractmethod
    async def _resolve(self, kind: str, legacy_id: int, owner_org: str) -> tuple[str, str | None] | None:
        """``(guid, parent)`` of the id, or None."""

    @abc.abstractmethod
    async def _resolve_among(
        self, kind: str, legacy_id: int, owner_orgs: list[str]
    ) -> tuple[str, str] | None:
        """``(guid, owner_org)`` for a non-empty list of orgs; a legacy id has exactly one owner."""

    @abc.abstractmethod
    async def _insert_in_flight(
        self, digest: str, caller: str, operation: str, token: str, now: datetime, lease_until: datetime
    ) -> bool:
        """Insert an in-flight row unless one exists for ``digest``; True if this call inserted it."""

    @abc.abstractmethod
    async def _read_idempotency(self, digest: str) -> InFlightRecord | None: ...

    @abc.abstractmethod
    async def _take_over(
        self, digest: str, old_token: str, new_token: str, now: datetime, lease_until: datetime
    ) -> bool:
        """Replace an expired in-flight holder, only if it still is ``old_token``."""

    @abc.abstractmethod
    async def _complete(
        self, digest: str, caller: str, operation: str, fmt: str, payload: bytes, now: datetime
    ) -> None: ...

    @abc.abstractmethod
    async def _release(self, digest: str, token: str) -> None:
        """Delete the in-flight row of ``digest`` if ``token`` still holds it."""

    @abc.abstractmethod
    async def _purge(self, cutoff: datetime, now: datetime) -> int: ...

    @abc.abstractmethod
    async def _remember(self, digest: str, value: str, now: datetime, durable: bool) -> str:
        """Insert ``value`` unless ``digest`` has one; return the stored value."""

    @abc.abstractmethod
    async def _recall(self, digest: str) -> str | None: ...

    @abc.abstractmethod
    async def _purge_memos(self, cutoff: datetime) -> None:
        """Delete memos created before ``cutoff``, except durable ones."""

    @abc.abstractmethod
    async def _save_receipt(self, receipt: Receipt, now: datetime) -> bool:
        """Write the receipt tree; False (and nothing written) if an id is not the owner's."""

    @abc.abstractmethod
    async def _finish(
        self,
        receipts: list[Receipt],
        completion: tuple[str, str, str, str, bytes] | None,
        now: datetime,
    ) -> int | None:
        """Save ``receipts`` and complete ``(digest, caller, operation, fmt, payload)`` atomically.

        Returns the id of the first receipt the org does not own (and writes nothing), else None.
        """

    @abc.abstractmethod
    async def _load_receipt(self, receipt_id: int, owner_org: str) -> Receipt | None: ...

    @abc.abstractmethod
    async def _find_receipt_ids(self, owner_org: str, reference: ReceiptReference) -> list[int]: ...
