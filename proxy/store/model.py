"""Values the store takes and returns, and the validation both backends share.

Everything that decides *what* is stored (canonical GUIDs, the idempotency digest, the legacy id range,
timestamp encoding) lives here once, so the SQLite and PostgreSQL backends can only differ in *how*.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from proxy.errors import ConfigurationError, InvalidField, NotFound

#: Legacy clients declare these ids as ``xs:int``: a positive signed 32-bit integer.
MAX_LEGACY_ID = 2**31 - 1
#: The highest allowed ``first_legacy_id``: the registry must keep some room to allocate in.
MAX_FIRST_LEGACY_ID = MAX_LEGACY_ID - 1

_KIND_PATTERN = re.compile(r"[a-z][a-z0-9_.-]{0,39}")
_MAX_ORG_LENGTH = 64
_MAX_KEY_PART_LENGTH = 1000

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC (the default clock)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class StoreOptions:
    """How the store behaves; every time-related seam is injectable for tests.

    ``idempotency_lease``: how long an in-flight submission holds its key before another replica may
    take it over (the first one is presumed dead). ``idempotency_retention``: how long records are
    kept before :meth:`Store.purge_expired` removes them. ``in_flight_wait``: how long ``begin`` waits
    for an identical in-flight submission to finish before answering "in progress" (zero: answer at
    once); ``poll_interval`` is how often it looks meanwhile.

    ``first_legacy_id``: no id below it is ever allocated, so the proxy's ids can be kept clear of
    the (large) ids legacy clients still hold from Altinn 2. :meth:`Store.migrate` raises the
    allocator to it; lowering it later changes nothing (ids are never reused or renumbered, and
    allocation continues above the highest id ever allocated).
    """

    idempotency_lease: timedelta = timedelta(minutes=5)
    idempotency_retention: timedelta = timedelta(days=7)
    in_flight_wait: timedelta = timedelta(seconds=10)
    poll_interval: timedelta = timedelta(milliseconds=200)
    connect_timeout: float = 10.0
    pool_min_size: int = 1
    pool_max_size: int = 10
    first_legacy_id: int = 1
    clock: Clock = utc_now
    sleep: Sleep = asyncio.sleep

    def __post_init__(self) -> None:
        check_first_legacy_id(self.first_legacy_id)


def check_first_legacy_id(first: int) -> int:
    """The lowest id the registry may allocate: 1 .. :data:`MAX_FIRST_LEGACY_ID`."""
    if isinstance(first, bool) or not isinstance(first, int) or not 1 <= first <= MAX_FIRST_LEGACY_ID:
        raise ConfigurationError(
            f"the first legacy id must be an integer from 1 to {MAX_FIRST_LEGACY_ID}, got {first!r}"
        )
    return first


def check_kind(kind: str) -> str:
    """A registry kind such as ``receipt`` or ``correspondence``: short, lower-case, stable."""
    if not isinstance(kind, str) or not _KIND_PATTERN.fullmatch(kind):
        raise InvalidField(f"id kind {kind!r} must be 1-40 lower-case letters, digits, '_', '.' or '-'")
    return kind


def check_org(owner_org: str) -> str:
    """The owning organisation (or party) identifier; never empty."""
    if not isinstance(owner_org, str) or not owner_org.strip() or len(owner_org) > _MAX_ORG_LENGTH:
        raise InvalidField(f"owner org must be a non-empty string of at most {_MAX_ORG_LENGTH} characters")
    return owner_org.strip()


def canonical_guid(guid: str) -> str:
    """The GUID in lower-case hyphenated form, so ``{ABC...}`` and ``abc...`` get the same legacy id."""
    try:
        return str(uuid.UUID(guid.strip()))
    except (AttributeError, ValueError):
        raise InvalidField(f"{guid!r} is not an Altinn 3 GUID") from None


def not_found(kind: str, legacy_id: object) -> NotFound:
    """The one "not found" answer: identical whether the id is unknown or belongs to another org."""
    return NotFound(f"no {kind} with id {legacy_id}")


def check_legacy_id(kind: str, legacy_id: int) -> int:
    """A legacy id outside the registry's range cannot exist: answer exactly as for an unknown one."""
    if isinstance(legacy_id, bool) or not isinstance(legacy_id, int) or not 0 < legacy_id <= MAX_LEGACY_ID:
        raise not_found(kind, legacy_id)
    return legacy_id


# Timestamps are stored as UTC text with a fixed width on SQLite so that string order is time order.
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is refused because its meaning depends on the host."""
    if moment.tzinfo is None:
        raise InvalidField("timestamps must be timezone-aware")
    return moment.astimezone(UTC)


def encode_timestamp(moment: datetime) -> str:
    """Fixed-width UTC text for SQLite (lexical order is chronological order)."""
    return as_utc(moment).strftime(_TIMESTAMP_FORMAT)


def decode_timestamp(text: str) -> datetime:
    """The inverse of :func:`encode_timestamp`."""
    return datetime.strptime(text, _TIMESTAMP_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class IdempotencyKey:
    """What makes two submissions "the same": who sent it, which operation, their own reference."""

    caller: str
    operation: str
    reference: str

    def __post_init__(self) -> None:
        for name in ("caller", "operation", "reference"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or len(value) > _MAX_KEY_PART_LENGTH:
                raise InvalidField(
                    f"idempotency {name} must be a non-empty string of at most {_MAX_KEY_PART_LENGTH} characters"
                )

    @property
    def digest(self) -> str:
        """A fixed-size primary key; length prefixes keep ``("a:b", "c")`` apart from ``("a", "b:c")``."""
        hasher = hashlib.sha256()
        for part in (self.caller, self.operation, self.reference):
            encoded = part.encode()
            hasher.update(len(encoded).to_bytes(4, "big"))
            hasher.update(encoded)
        return hasher.hexdigest()


Outcome = Mapping[str, Any] | bytes


class BeginState(StrEnum):
    """What :meth:`Store.begin` found."""

    NEW = "new"  # nobody did this before: the caller proceeds and later calls complete() or fail()
    COMPLETED = "completed"  # done before: ``outcome`` is what the first submission answered


@dataclass(frozen=True)
class Begun:
    """The answer of :meth:`Store.begin`."""

    key: IdempotencyKey
    state: BeginState
    outcome: Outcome | None = None
    #: The claim's token when ``NEW``: :meth:`Store.fail` releases the key only while it still holds it.
    token: str | None = field(default=None, repr=False)

    @property
    def is_new(self) -> bool:
        """True when the caller must do the work (and then complete or fail the key)."""
        return self.state is BeginState.NEW


def encode_outcome(outcome: Outcome) -> tuple[str, bytes]:
    """``(format, payload)`` for storage: raw bytes as they are, mappings as compact JSON."""
    if isinstance(outcome, bytes | bytearray | memoryview):
        return "bytes", bytes(outcome)
    if isinstance(outcome, Mapping):
        return "json", json.dumps(dict(outcome), separators=(",", ":"), sort_keys=True).encode()
    raise InvalidField("an idempotency outcome must be a mapping or bytes")


def decode_outcome(fmt: str, payload: bytes) -> Outcome:
    """The inverse of :func:`encode_outcome`."""
    if fmt == "bytes":
        return bytes(payload)
    decoded: dict[str, Any] = json.loads(payload)
    return decoded


@dataclass(frozen=True)
class InFlightRecord:
    """An idempotency row as the shared ``begin`` logic needs to see it."""

    state: str  # "in_flight" or "completed"
    token: str
    lease_until: datetime
    outcome: Outcome | None


class ReceiptStatus(StrEnum):
    """Altinn 2 ``ReceiptStatusCode`` values."""

    NOT_SET = "NotSet"
    OK = "OK"
    UNEXPECTED_ERROR = "UnExpectedError"
    VALIDATION_FAILED = "ValidationFailed"
    REJECTED = "Rejected"


@dataclass(frozen=True)
class ReceiptReference:
    """One ``Reference`` of a receipt, e.g. ``ExternalShipmentReference`` = the caller's own id."""

    type_name: str
    value: str


@dataclass(frozen=True)
class Receipt:
    """What the legacy receipt operations answer with.

    ``receipt_id`` comes from the id registry and must belong to ``owner_org``. ``sub_receipts`` are
    saved with this receipt (their ``parent_receipt_id`` is set to this one) and returned one level
    deep by :meth:`Store.get_receipt`. ``created_at`` is kept from the first save.
    """

    receipt_id: int
    owner_org: str
    status: ReceiptStatus
    text: str
    type_name: str
    last_changed: datetime
    references: tuple[ReceiptReference, ...] = ()
    history: str = ""
    parent_receipt_id: int | None = None
    created_at: datetime | None = None
    sub_receipts: tuple[Receipt, ...] = field(default=())

    def references_json(self) -> str:
        """The references as stored: an ordered JSON list of ``[type, value]`` pairs."""
        return json.dumps([[ref.type_name, ref.value] for ref in self.references], separators=(",", ":"))


def references_from_json(text: str) -> tuple[ReceiptReference, ...]:
    """The inverse of :meth:`Receipt.references_json`."""
    return tuple(ReceiptReference(str(type_name), str(value)) for type_name, value in json.loads(text))


def check_receipt(receipt: Receipt) -> Receipt:
    """Validate a receipt (and its sub-receipts) before it is written."""
    check_legacy_id("receipt", receipt.receipt_id)
    check_org(receipt.owner_org)
    if receipt.status not in set(ReceiptStatus):
        raise InvalidField(f"receipt status {receipt.status!r} is not one of {', '.join(ReceiptStatus)}")
    as_utc(receipt.last_changed)
    for sub in receipt.sub_receipts:
        if sub.receipt_id == receipt.receipt_id:
            raise InvalidField("a receipt cannot be its own sub-receipt")
        if sub.owner_org != receipt.owner_org:
            raise InvalidField("a sub-receipt must belong to the same org as its parent")
        if sub.sub_receipts:
            raise InvalidField("sub-receipts are stored one level deep")
        check_receipt(sub)
    return receipt
