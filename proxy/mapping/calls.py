"""The values that cross the sans-IO boundary between the mapping engine and the executor.

The engine *yields* :class:`Altinn3Call`, :class:`CallBatch`, :class:`AllocateId` and
:class:`ResolveId`; the executor answers with :class:`Altinn3Response`, a tuple of them, an ``int`` or
a ``str``. The state requests (:class:`BeginIdempotent`, :class:`SaveReceipt`,
:class:`LoadReceipts`, :class:`Remember`, :class:`Recall`) are answered from the store; each
documents its answer, as do :class:`Wait` (a pause between polls) and
:class:`PeekStream` (a look at a request stream's first bytes).
A call never carries a token: the executor's client adds it from ``Altinn3Call.token``.
Byte payloads and streams are kept out of reprs so that a logged call cannot leak a document.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlencode

from lxml import etree

from proxy.maskinporten.request import TokenRequest

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


class ResponseKind(StrEnum):
    """How the executor reads an answer: parsed JSON, whole bytes, a pass-through stream, or nothing."""

    JSON = "json"
    BYTES = "bytes"
    STREAM = "stream"
    NONE = "none"


@dataclass(frozen=True)
class JsonBody:
    """A JSON request body (already plain Python values)."""

    value: Any


@dataclass(frozen=True)
class BytesBody:
    """A small binary body held in memory (e.g. a decoded inline base64 attachment)."""

    data: bytes = field(repr=False)
    content_type: str = "application/octet-stream"

    def __repr__(self) -> str:
        return f"BytesBody(<{len(self.data)} bytes>, content_type={self.content_type!r})"


@dataclass(frozen=True)
class MultipartPart:
    """One part of a ``multipart/form-data`` body."""

    name: str
    value: str | bytes = field(repr=False)
    filename: str | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class MultipartBody:
    """A ``multipart/form-data`` body."""

    parts: tuple[MultipartPart, ...]


@dataclass(frozen=True)
class StreamBody:
    """A body streamed from the legacy request (MTOM attachment) without buffering it."""

    source: AsyncIterable[bytes] = field(repr=False)
    content_type: str = "application/octet-stream"
    length: int | None = None


Body = JsonBody | BytesBody | MultipartBody | StreamBody | None


@dataclass(frozen=True)
class BaseUrls:
    """Where Altinn 3 lives: the platform gateway and the per-org app host pattern."""

    platform: str = "https://platform.tt02.altinn.no"
    #: ``{org}`` is replaced by the service owner code of the app.
    apps: str = "https://{org}.apps.tt02.altinn.no"

    def resolve(self, call: Altinn3Call) -> str:
        """The absolute URL of ``call`` including its query string."""
        if call.app_org is None:
            base = self.platform.rstrip("/")
        else:
            base = self.apps.format(org=call.app_org).rstrip("/")
        url = base + call.path
        if call.query:
            url += "?" + urlencode(call.query)
        return url


@dataclass(frozen=True)
class Altinn3Call:
    """One outbound Altinn 3 request, described completely except for the bearer token."""

    #: Bounded label for metrics and logs (``correspondence``, ``broker``, ``app``...).
    api: str
    method: str
    #: Path relative to the base, starting with ``/`` (already expanded and escaped).
    path: str
    token: TokenRequest
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    body: Body = None
    response: ResponseKind = ResponseKind.JSON
    #: ``None``: the platform gateway; else the service owner code of an app (``{org}.apps...``).
    app_org: str | None = None
    #: Statuses >= 400 handed back as a response instead of raised (e.g. 404 meaning "none").
    accept_status: frozenset[int] = frozenset()
    idempotent: bool = False
    #: The mapping step that produced the call (for explain, logs and canned responses).
    step: str = ""
    #: ``(caller, operation, key)`` of a memo the executor records the answer's JSON text under as
    #: soon as a 2xx answer arrives (see ``keep`` in mappings/README.md).
    keep: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class CallBatch:
    """Calls that may run concurrently (a ``foreach`` step); answered with a tuple in the same order."""

    calls: tuple[Altinn3Call, ...]
    concurrency: int
    step: str = ""


@dataclass(frozen=True)
class Altinn3Response:
    """What the executor hands back for a call."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = field(default=None, repr=False)
    stream: AsyncIterator[bytes] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class AllocateId:
    """Ask the store for the legacy integer id of ``guid`` (allocating one the first time).

    ``parent`` (a GUID, e.g. a data element's instance) is recorded with the id when it has none.
    """

    kind: str
    guid: str
    owner_org: str
    step: str = ""
    parent: str | None = None


@dataclass(frozen=True)
class ResolveId:
    """Ask the store for the GUID behind a legacy id; the store raises NotFound for another org's id.

    With ``with_parent`` the answer is ``{"guid": ..., "parent": ...}`` (``parent`` None if none was
    recorded).
    """

    kind: str
    legacy_id: int
    owner_org: str
    step: str = ""
    with_parent: bool = False


@dataclass(frozen=True)
class ResolveIdAmong:
    """Ask the store which of ``owner_orgs`` owns a legacy id; answered with ``(guid, owner_org)``.

    For a caller acting for several organisations whose request names none (e.g. reading a
    correspondence by its id): the owner becomes the org acted for. An id owned by no org of the
    list is ``NotFound``, exactly as an unknown id.
    """

    kind: str
    legacy_id: int
    owner_orgs: tuple[str, ...]
    step: str = ""


@dataclass(frozen=True)
class BeginIdempotent:
    """Claim the submission ``(caller, operation, reference)`` before any Altinn 3 call.

    Answered with ``None`` when this is a new submission (the executor then records the plan's
    answer when it ends, or releases the claim when it fails), or with the answer bytes an identical
    earlier submission produced, which the plan returns unchanged without calling Altinn 3.
    """

    caller: str
    operation: str
    reference: str
    step: str = "idempotency"


@dataclass(frozen=True)
class SaveReceipt:
    """Store a legacy receipt (``receipt_id`` must be an id the store allocated for ``owner_org``)."""

    receipt_id: int
    owner_org: str
    status: str
    text: str
    type_name: str
    last_changed: datetime
    references: tuple[tuple[str, str], ...] = ()
    step: str = ""


@dataclass(frozen=True)
class LoadReceipts:
    """Look up the org's receipts by id and/or reference; answered with a list of receipt dicts.

    Each dict has ``receipt_id``, ``parent_receipt_id``, ``status``, ``text``, ``type_name``,
    ``last_changed`` (ISO 8601 UTC), ``history``, ``references`` (``[{type, value}]``) and
    ``sub_receipts`` (the same, one level). Nothing found (another org's receipt included) is
    ``NotFound`` with Altinn's receipt ErrorID 30008, or an empty list when not ``required``.
    """

    owner_org: str
    receipt_id: int | None = None
    reference: tuple[str, str] | None = None
    step: str = ""
    required: bool = True


@dataclass(frozen=True)
class Remember:
    """Record ``value`` under ``(caller, operation, key)`` unless one is recorded; answered with the recorded one.

    For what an unfinished submission already created upstream (an uploaded attachment's id): a
    resend after a crash finds it with :class:`Recall` instead of creating another.
    """

    caller: str
    operation: str
    key: str
    value: str
    step: str = ""
    #: Kept for ever (not purged with old idempotency records).
    durable: bool = False


@dataclass(frozen=True)
class Recall:
    """The value :class:`Remember` recorded under ``(caller, operation, key)``; answered with it or None."""

    caller: str
    operation: str
    key: str
    step: str = ""
    durable: bool = False


@dataclass(frozen=True)
class Wait:
    """Pause the plan before it polls again (the executor sleeps on its injected clock); answered with None."""

    seconds: float
    step: str = ""


@dataclass(frozen=True)
class PeekStream:
    """Read the first ``size`` bytes of a request stream before anything is sent on.

    Answered with a :class:`proxy.mapping.peek.PeekedStream`: those bytes as ``head``, and the whole
    stream again (the peeked bytes replayed, then the rest), to be sent on in their place.
    """

    source: AsyncIterable[bytes] = field(repr=False)
    size: int
    step: str = ""


PlanRequest = (
    Altinn3Call
    | CallBatch
    | AllocateId
    | ResolveId
    | ResolveIdAmong
    | BeginIdempotent
    | SaveReceipt
    | LoadReceipts
    | Remember
    | Recall
    | Wait
    | PeekStream
)
"""Everything a plan can yield."""


class IdStore(Protocol):
    """The part of the state store the executor needs (the integrator adapts ``proxy.store``)."""

    async def allocate_id(self, kind: str, guid: str, owner_org: str, parent: str | None = None) -> int:
        """The legacy id for ``guid`` owned by ``owner_org``; stable across calls and replicas."""
        ...

    async def resolve_id(self, kind: str, legacy_id: int, owner_org: str) -> str:
        """The GUID behind ``legacy_id``; raises ``proxy.errors.NotFound`` for unknown/foreign ids."""
        ...

    async def resolve_id_with_parent(
        self, kind: str, legacy_id: int, owner_org: str
    ) -> tuple[str, str | None]:
        """``(guid, parent)`` behind ``legacy_id``; ``NotFound`` as :meth:`resolve_id`."""
        ...


@dataclass(frozen=True)
class LegacyAnswer:
    """The legacy reply: the serialised ``{Op}Response`` element, plus an optional download stream.

    For a REST operation ``xml`` holds the reply document instead, as JSON text: ``{"status",
    "headers", "body"}`` (``proxy.web.rest`` encodes ``body`` as the client negotiated), so that an
    idempotent resend replays status and headers too.
    """

    operation: str
    xml: bytes
    stream: AsyncIterator[bytes] | None = field(default=None, repr=False)

    def element(self) -> etree._Element:
        """The response element as an lxml tree (parsed on demand; the front may splice ``xml``)."""
        return etree.fromstring(self.xml, parser=_ANSWER_PARSER)


_ANSWER_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False)
