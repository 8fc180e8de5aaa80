"""The mapping engine: a legacy request in, a plan of Altinn 3 calls out, a legacy answer back.

Sans-IO, like httpx's auth flow. ``Engine.start`` returns a generator (a *plan*) that yields
:mod:`proxy.mapping.calls` requests and receives their answers via ``send``; it returns a
:class:`LegacyAnswer` or raises a :mod:`proxy.errors` error. Every Altinn 3 response is judged
here (:func:`proxy.mapping.problem.judge`: an answer, an accepted error status, or a refusal); a
refusal, and a failure with no response at all (a network failure, a token refused, which the
executor ``throw``-s into the plan at the yield), go through the operation's fault table to the
Altinn fault the legacy client expects. Live traffic, ``explain`` and the load-time examples run
this same code; only who answers the yielded requests differs.

Invariants:
* Nothing here parses or compiles: operations arrive compiled (``proxy.mapping.compiler``).
* A plan captures its :class:`MappingSet` when it starts; a hot reload never changes a running plan.
* ``identity`` is resolved before any expression that could leak data into a call is evaluated.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from lxml import etree

from proxy import errors
from proxy.errors import (
    AuthorizationDenied,
    MappingRuntimeError,
    OperationNotTranslated,
    ProxyError,
    TokenError,
    TokenRefused,
    UpstreamError,
)
from proxy.identity.principal import OrgGrant, Principal
from proxy.mapping.calls import (
    IDEMPOTENT_METHODS,
    AllocateId,
    Altinn3Call,
    Altinn3Response,
    BeginIdempotent,
    Body,
    BytesBody,
    CallBatch,
    JsonBody,
    LegacyAnswer,
    LoadReceipts,
    MultipartBody,
    MultipartPart,
    PeekStream,
    PlanRequest,
    Recall,
    Remember,
    ResolveId,
    ResolveIdAmong,
    ResponseKind,
    SaveReceipt,
    StreamBody,
    Wait,
)
from proxy.mapping.expressions import ExpressionFailure, Value
from proxy.mapping.fields import CompiledField, read_fields
from proxy.mapping.problem import judge
from proxy.mapping.routing import RoutingTable
from proxy.mapping.schema import LegacySide
from proxy.maskinporten.request import TokenRequest
from proxy.soap.catalogue import default_catalogue
from proxy.soap.contracts import ContractRegistry, OperationContract
from proxy.soap.surface import Surface

Context = dict[str, Any]
Evaluate = Callable[[Mapping[str, Any]], Any]
Authorizer = Callable[[Principal, str], OrgGrant]
"""``authorize(principal, reportee) -> OrgGrant``; raises AuthorizationDenied / InvalidReportee."""
Plan = Generator[PlanRequest, Any, LegacyAnswer]
Clock = Callable[[], datetime]


def default_authorize(principal: Principal, reportee: str) -> OrgGrant:
    """The principal's own grant for ``reportee`` (identity's ``authorize`` replaces this when wired)."""
    grant = principal.grant_for(reportee)
    if grant is None:
        raise AuthorizationDenied("The system is not authorized to act for this reportee")
    return grant


@dataclass(frozen=True)
class OperationRequest:
    """A parsed legacy request, as the SOAP (or REST) front hands it over after authentication."""

    service: str
    operation: str
    #: The SOAP operation element, or a REST request's values (``route``, ``query``, ``body``).
    body: etree._Element | Mapping[str, Any]
    principal: Principal
    #: MTOM/streamed attachments by name, reachable from expressions as ``streams.<name>``.
    streams: Mapping[str, AsyncIterable[bytes]] = field(default_factory=dict)


@dataclass(frozen=True)
class ActingIdentity:
    """Who the Altinn 3 calls act as; exposed to expressions as ``identity``."""

    acts_as: str
    #: The organisation acted for: the reportee (system user) or the service owner's own org.
    org: str
    caller_id: str
    service_owner: str | None = None
    external_ref: str | None = None


@dataclass(frozen=True)
class CompiledOwnerOf:
    """``identity.reportee_of``: the caller's organisation that owns a legacy id is the reportee."""

    name: str
    kind: str
    value: Evaluate

    def request(self, context: Mapping[str, Any], principal: Principal) -> ResolveIdAmong:
        """The store lookup among the caller's own organisations."""
        legacy_id = _legacy_id(self.value(context), f"{self.kind} id")
        return ResolveIdAmong(self.kind, legacy_id, tuple(sorted(principal.orgs)), self.name)


@dataclass(frozen=True)
class CompiledIdentity:
    """The identity block: how to get an :class:`ActingIdentity` and the token for it."""

    acts_as: str
    reportee: Evaluate | None
    scopes: frozenset[str]
    exchange: bool
    reportee_of: CompiledOwnerOf | None = None

    def resolve(
        self,
        principal: Principal,
        context: Mapping[str, Any],
        authorize: Authorizer,
        owner: str | None = None,
    ) -> tuple[ActingIdentity, TokenRequest]:
        """Check the caller may act, and say as whom and with which token.

        ``owner`` is the org :attr:`reportee_of` found; it stands in for the ``reportee`` expression.
        """
        if self.acts_as == "service_owner":
            if not principal.is_service_owner or not principal.org:
                raise AuthorizationDenied("This operation is only available to service owners")
            missing = self.scopes - set(principal.scopes)
            if missing:
                raise AuthorizationDenied("The service owner is not configured for this operation")
            identity = ActingIdentity(
                "service_owner", principal.org, principal.caller_id, principal.service_owner
            )
            return identity, TokenRequest(scopes=self.scopes, exchange=self.exchange)
        reportee = owner if self.reportee is None else self.reportee(context)
        grant = authorize(principal, "" if reportee is None else str(reportee).strip())
        identity = ActingIdentity("system_user", grant.org, principal.caller_id, None, grant.external_ref)
        return identity, self._system_user_token(grant)

    def token_for(self, principal: Principal, org: str, authorize: Authorizer) -> TokenRequest:
        """The token of the system user of ``org``, another of the caller's organisations (a call's
        ``acting_for``); the caller must be allowed to act for it, exactly as for the reportee."""
        if self.acts_as != "system_user":
            raise AuthorizationDenied("Only a system user's call can act for another organisation")
        return self._system_user_token(authorize(principal, org.strip()))

    def _system_user_token(self, grant: OrgGrant) -> TokenRequest:
        return TokenRequest(
            scopes=self.scopes,
            system_user_org=grant.org,
            external_ref=grant.external_ref,
            exchange=self.exchange,
        )


@dataclass(frozen=True)
class CompiledCall:
    """A call step's request, ready to be filled in from a context."""

    api: str
    method: str
    path: Evaluate
    app_org: Evaluate | None
    query: tuple[tuple[str, Evaluate], ...]
    headers: tuple[tuple[str, Evaluate], ...]
    body: Callable[[Mapping[str, Any]], Body]
    response: ResponseKind
    accept: frozenset[int]
    idempotent: bool
    keep: Evaluate | None = None
    #: The organisation whose system user makes the call, when not the operation's (``acting_for``).
    acting_for: Evaluate | None = None

    def acting_org(self, context: Mapping[str, Any]) -> str | None:
        """The organisation ``acting_for`` names for one context, or None for the operation's identity."""
        return None if self.acting_for is None else str(self.acting_for(context) or "")

    def build(
        self, context: Mapping[str, Any], token: TokenRequest, step: str, scope: tuple[str, str] = ("", "")
    ) -> Altinn3Call:
        """The :class:`Altinn3Call` for one context (one item, for ``foreach``).

        ``scope`` is the ``(caller, operation)`` a ``keep`` memo is recorded under.
        """
        query: list[tuple[str, str]] = []
        for name, evaluate in self.query:
            value = evaluate(context)
            if value is None:
                continue
            values = value if isinstance(value, list | tuple) else (value,)
            query.extend((name, _query_text(v)) for v in values)
        headers = tuple(
            (name, str(value)) for name, evaluate in self.headers if (value := evaluate(context)) is not None
        )
        return Altinn3Call(
            api=self.api,
            method=self.method,
            path=str(self.path(context)),
            token=token,
            query=tuple(query),
            headers=headers,
            body=self.body(context),
            response=self.response,
            app_org=None if self.app_org is None else str(self.app_org(context)),
            accept_status=self.accept,
            idempotent=self.idempotent,
            step=step,
            keep=None if self.keep is None else (*scope, str(self.keep(context))),
        )


def _query_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class CompiledIdStep:
    """An ``allocate_id`` / ``resolve_id`` step."""

    allocate: bool
    kind: str
    value: Evaluate
    owner: Evaluate | None
    parent: Evaluate | None = None
    with_parent: bool = False


@dataclass(frozen=True)
class CompiledSaveReceipt:
    """A ``save_receipt`` step."""

    receipt_id: Evaluate
    status: str
    text: Evaluate
    type_name: str
    references: tuple[tuple[str, Evaluate], ...]


@dataclass(frozen=True)
class CompiledLoadReceipts:
    """A ``load_receipt`` step."""

    receipt_id: Evaluate | None
    reference_type: Evaluate | None
    reference_value: Evaluate | None
    required: bool = True


@dataclass(frozen=True)
class CompiledPeek:
    """A ``peek`` step: the first ``size`` bytes of a request stream, before any call sends it."""

    source: Evaluate
    size: int

    def request(self, context: Mapping[str, Any], step: str) -> PeekStream | None:
        """The peek, or None when the source is absent (the request carried no attachment)."""
        source = self.source(context)
        return None if source is None else PeekStream(cast(AsyncIterable[bytes], source), self.size, step)


#: The caller and operation of every durable memo: shared by all, named by the key alone.
DURABLE_SCOPE = "*"


@dataclass(frozen=True)
class CompiledMemo:
    """A ``remember`` (``value`` given) or ``recall`` step; a durable one is keyed by its key alone."""

    key: Evaluate
    value: Evaluate | None = None
    durable: bool = False

    def request(
        self, context: Mapping[str, Any], identity: ActingIdentity, operation: str, step: str
    ) -> Remember | Recall:
        """The store request for one context (one item, for ``foreach``)."""
        key = str(self.key(context))
        caller, operation = (
            (DURABLE_SCOPE, DURABLE_SCOPE) if self.durable else (identity.caller_id, operation)
        )
        if self.value is None:
            return Recall(caller, operation, key, step, durable=self.durable)
        return Remember(caller, operation, key, str(self.value(context)), step, durable=self.durable)


@dataclass(frozen=True)
class CompiledUntil:
    """``until``: poll a call step every ``every`` seconds while ``condition`` is false, ``within`` at most."""

    condition: Evaluate
    every: float
    within: float


@dataclass(frozen=True)
class CompiledValue:
    """A ``value`` step: an expression over earlier results, bound as this step's result."""

    evaluate: Evaluate


StepAction = (
    CompiledCall
    | CompiledIdStep
    | CompiledSaveReceipt
    | CompiledLoadReceipts
    | CompiledPeek
    | CompiledMemo
    | CompiledValue
)


@dataclass(frozen=True)
class CompiledStep:
    """One step of an operation."""

    name: str
    action: StepAction
    when: Evaluate | None = None
    foreach: Evaluate | None = None
    item: str = "item"
    concurrency: int = 4
    line: int | None = None
    until: CompiledUntil | None = None


@dataclass(frozen=True)
class CompiledFault:
    """One fault rule."""

    statuses: frozenset[int]
    error_code: str | None
    mp_code: str | None
    error: type[ProxyError]
    error_id: int | None
    message: str

    def matches(self, status: int | None, error_code: str | None, mp_code: str | None) -> bool:
        """Whether an upstream failure with these attributes is this rule's."""
        if self.statuses and status not in self.statuses:
            return False
        if self.error_code is not None and self.error_code != error_code:
            return False
        return self.mp_code is None or self.mp_code == mp_code

    def build(self, cause: ProxyError) -> ProxyError:
        """The legacy-facing error; the upstream detail goes to the extended message."""
        if issubclass(self.error, UpstreamError):
            return self.error(
                self.message,
                status=getattr(cause, "status", None),
                error_code=getattr(cause, "error_code", None),
                error_id=self.error_id,
                extended=cause.extended,
            )
        return self.error(self.message, error_id=self.error_id, extended=cause.extended)


def translate_fault(faults: tuple[CompiledFault, ...], error: ProxyError) -> ProxyError:
    """The first matching rule's error for an upstream/token failure, else the failure itself."""
    status = getattr(error, "status", None)
    error_code = getattr(error, "error_code", None)
    mp_code = error.code if isinstance(error, TokenRefused) else None
    for rule in faults:
        if rule.matches(status, None if error_code is None else str(error_code), mp_code):
            return rule.build(error)
    return error


@dataclass(frozen=True)
class CompiledOperation:
    """Everything needed to run one legacy operation, compiled."""

    legacy: LegacySide
    #: The legacy request and response types (for an alias: derived from its operation's).
    #: The legacy types (None for a legacy REST operation, whose request is its route, query and body).
    contract: OperationContract | None
    fields: tuple[CompiledField, ...]
    identity: CompiledIdentity
    vars: tuple[tuple[str, Evaluate], ...]
    steps: tuple[CompiledStep, ...]
    answer: Callable[[Mapping[str, Any]], str]
    answer_stream: Evaluate | None
    faults: tuple[CompiledFault, ...]
    file: str
    line: int | None
    #: The caller's reference that makes resends idempotent (``idempotency.key``), or None.
    idempotency_key: Evaluate | None = None
    #: The line of the answer template (for the location of a failure to render it).
    answer_line: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        """(service, operation) as the SOAP catalogue spells them."""
        return (self.legacy.service, self.legacy.operation)

    @property
    def where(self) -> str:
        """``file:line`` of the operation, for messages."""
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class MappingSet:
    """A validated, compiled set of mapping files, identified by the hash of their content."""

    operations: Mapping[tuple[str, str], CompiledOperation]
    digest: str
    files: tuple[str, ...] = ()
    #: The SOAP services as these mappings make them: dispatch and WSDLs follow the contracts.
    surface: Surface = field(default_factory=lambda: Surface.of(default_catalogue(), ContractRegistry()))
    #: The REST operations by (method, lower-case Altinn 2 route template).
    rest: Mapping[tuple[str, str], CompiledOperation] = field(default_factory=dict)

    def rest_operation(self, method: str, route: str) -> CompiledOperation | None:
        """The REST operation serving ``method`` on the route template ``route``, if one is mapped."""
        return self.rest.get((method, route.lower()))

    def operation(self, service: str, operation: str) -> CompiledOperation:
        """The operation, or :class:`OperationNotTranslated` when no mapping covers it."""
        found = self.operations.get((service, operation))
        if found is None:
            raise OperationNotTranslated(
                f"{operation} of {service} is not translated to Altinn 3 by this proxy"
            )
        return found


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Engine:
    """Starts plans for legacy requests against the current mapping set."""

    def __init__(
        self,
        mappings: Callable[[], MappingSet],
        routing: RoutingTable,
        authorize: Authorizer = default_authorize,
        clock: Clock = _utc_now,
    ) -> None:
        self._mappings = mappings
        self._routing = routing
        self._authorize = authorize
        self._clock = clock

    def start(self, request: OperationRequest) -> Plan:
        """A plan for ``request``; resolves the operation now, so an unknown one fails before any I/O."""
        operation = self._mappings().operation(request.service, request.operation)
        return run_operation(operation, request, self._routing, self._authorize, self._clock)


def run_operation(
    operation: CompiledOperation,
    request: OperationRequest,
    routing: RoutingTable,
    authorize: Authorizer,
    clock: Clock,
) -> Plan:
    """The plan of one operation (a generator; see the module docstring).

    A template or expression that fails on this request is a :class:`MappingRuntimeError` located
    at the mapping's ``file:line`` (the step's, or the answer's); any other exception is a bug and
    goes on as it is.
    """
    position = _Position(operation.line)
    try:
        return (yield from _run(operation, request, routing, authorize, clock, position))
    except ExpressionFailure as failure:
        location = f"{operation.file}:{position.line}" if position.line else operation.file
        raise MappingRuntimeError(
            f"The proxy could not translate {operation.legacy.operation}: its mapping failed on this request",
            location=location,
        ) from failure


@dataclass
class _Position:
    """The line of the mapping a plan is evaluating, for the location of a :class:`MappingRuntimeError`."""

    line: int | None


def _run(
    operation: CompiledOperation,
    request: OperationRequest,
    routing: RoutingTable,
    authorize: Authorizer,
    clock: Clock,
    position: _Position,
) -> Plan:
    results: dict[str, Any] = {}
    variables: dict[str, Any] = {}
    context: Context = {
        "fields": read_fields(operation.fields, request.body),
        "vars": variables,
        "results": results,
        "route": routing.lookup,
        "routing": routing,
        "caller_orgs": tuple(sorted(request.principal.orgs)),
        "now": clock().astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "streams": request.streams,
        "legacy": {"service": operation.legacy.service, "operation": operation.legacy.operation},
    }
    owner = None
    if operation.identity.reportee_of is not None:
        lookup = operation.identity.reportee_of
        results[lookup.name], owner = yield lookup.request(context, request.principal)
    identity, token = operation.identity.resolve(request.principal, context, authorize, owner)
    context["identity"] = identity

    def tokens(org: str | None) -> TokenRequest:
        return token if org is None else operation.identity.token_for(request.principal, org, authorize)

    for name, evaluate in operation.vars:
        variables[name] = evaluate(context)

    if operation.idempotency_key is not None:
        reference = operation.idempotency_key(context)
        if reference is None or str(reference).strip() == "":
            raise errors.InvalidField("the reference that makes this submission idempotent is missing")
        earlier = yield BeginIdempotent(identity.caller_id, operation.legacy.operation, str(reference))
        if earlier is not None:
            return LegacyAnswer(operation.legacy.operation, bytes(earlier))

    for step in operation.steps:
        position.line = step.line or operation.line
        try:
            items = None if step.foreach is None else step.foreach(context)
            if step.foreach is not None and not items:
                results[step.name] = []  # no items, nothing to run (the common case: no attachments)
                continue
            results[step.name] = yield from _run_step(
                step, items, context, identity, tokens, operation, clock
            )
        except (UpstreamError, TokenError) as error:
            raise translate_fault(operation.faults, error) from error

    position.line = operation.answer_line or operation.line
    xml = operation.answer(context)
    stream = None if operation.answer_stream is None else operation.answer_stream(context)
    return LegacyAnswer(operation.legacy.operation, xml.encode("utf-8"), stream=stream)


def _run_step(
    step: CompiledStep,
    items: Any,
    context: Context,
    identity: ActingIdentity,
    tokens: Callable[[str | None], TokenRequest],
    operation: CompiledOperation,
    clock: Clock,
) -> Generator[PlanRequest, Any, Any]:
    """One step's result. A ``foreach`` step's ``when`` is judged per ``items`` item (a skipped item gives None).

    ``tokens(org)`` is the token of a call: the operation's own for None, else the system user of
    ``org`` (a call's ``acting_for``).
    """
    action = step.action
    if step.foreach is None:
        if step.when is not None and not step.when(context):
            return None
        if isinstance(action, CompiledIdStep | CompiledLoadReceipts):
            return (yield _store_request(action, context, identity, step.name))
        if isinstance(action, CompiledMemo):
            return (yield action.request(context, identity, operation.legacy.operation, step.name))
        if isinstance(action, CompiledSaveReceipt):
            return (yield _save_receipt(action, context, identity, clock, step.name))
        if isinstance(action, CompiledPeek):
            peek = action.request(context, step.name)
            return None if peek is None else (yield peek)
        if isinstance(action, CompiledValue):
            return action.evaluate(context)
        memo_scope = (identity.caller_id, operation.legacy.operation)
        single = (action.build(context, tokens(action.acting_org(context)), step.name, memo_scope),)
        return (yield from _call_until(step, single, [context]))[0]

    scopes = [{**context, step.item: item, "index": index} for index, item in enumerate(items or ())]
    chosen = [step.when is None or bool(step.when(scope)) for scope in scopes]
    found: list[Any] = [None] * len(scopes)
    if isinstance(action, CompiledCall):
        wanted = [position for position, keep in enumerate(chosen) if keep]
        targets = [scopes[position] for position in wanted]
        memo_scope = (identity.caller_id, operation.legacy.operation)
        calls = tuple(
            action.build(scope, tokens(action.acting_org(scope)), step.name, memo_scope) for scope in targets
        )
        for position, value in zip(wanted, (yield from _call_until(step, calls, targets)), strict=True):
            found[position] = value
        return found
    # Store steps run one item at a time (a store round trip is cheap next to a call).
    for position, scope in enumerate(scopes):
        if not chosen[position]:
            continue
        if isinstance(action, CompiledMemo):
            found[position] = yield action.request(scope, identity, operation.legacy.operation, step.name)
        elif isinstance(action, CompiledIdStep | CompiledLoadReceipts):
            found[position] = yield _store_request(action, scope, identity, step.name)
        else:  # the schema allows no other foreach action
            raise TypeError(f"step {step.name!r} cannot run per item")
    return found


def _call_until(
    step: CompiledStep, calls: tuple[Altinn3Call, ...], scopes: list[Context]
) -> Generator[PlanRequest, Any, list[Any]]:
    """The results of ``calls``, each repeated while the step's ``until`` condition is false for it.

    ``scopes[i]`` is the context ``calls[i]`` was built from. A ``foreach`` step's calls go out as one
    :class:`CallBatch` (also when only one is left to poll), a single step's as the call itself.
    """
    if not calls:
        return []
    answers = yield _outgoing(step, calls)
    results = [_result(call, answer) for call, answer in zip(calls, _as_tuple(answers), strict=True)]
    until = step.until
    if until is None:
        return results
    waited = 0.0
    while waited < until.within:
        pending = [
            position
            for position, result in enumerate(results)
            if not until.condition({**scopes[position], "result": result})
        ]
        if not pending:
            break
        pause = min(until.every, until.within - waited)
        yield Wait(pause, step.name)
        waited += pause
        again = tuple(calls[position] for position in pending)
        answers = yield _outgoing(step, again)
        for position, call, answer in zip(pending, again, _as_tuple(answers), strict=True):
            results[position] = _result(call, answer)
    return results


def _outgoing(step: CompiledStep, calls: tuple[Altinn3Call, ...]) -> Altinn3Call | CallBatch:
    return calls[0] if step.foreach is None else CallBatch(calls, step.concurrency, step.name)


def _as_tuple(answers: Altinn3Response | tuple[Altinn3Response, ...]) -> tuple[Altinn3Response, ...]:
    return answers if isinstance(answers, tuple) else (answers,)


def _store_request(
    action: CompiledIdStep | CompiledLoadReceipts,
    context: Mapping[str, Any],
    identity: ActingIdentity,
    step: str,
) -> AllocateId | ResolveId | LoadReceipts:
    if isinstance(action, CompiledIdStep):
        return _id_request(action, context, identity, step)
    return _load_receipts(action, context, identity, step)


def _id_request(
    action: CompiledIdStep, context: Mapping[str, Any], identity: ActingIdentity, step: str
) -> AllocateId | ResolveId:
    owner = identity.org if action.owner is None else str(action.owner(context))
    value = action.value(context)
    if action.allocate:
        parent = None if action.parent is None else action.parent(context)
        return AllocateId(action.kind, str(value), owner, step, None if parent is None else str(parent))
    return ResolveId(action.kind, _legacy_id(value, f"{action.kind} id"), owner, step, action.with_parent)


def _legacy_id(value: object, what: str) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise errors.InvalidField(f"{what} must be an integer") from None


def _save_receipt(
    action: CompiledSaveReceipt, context: Mapping[str, Any], identity: ActingIdentity, clock: Clock, step: str
) -> SaveReceipt:
    references = tuple(
        (type_name, str(value))
        for type_name, evaluate in action.references
        if (value := evaluate(context)) is not None
    )
    return SaveReceipt(
        receipt_id=_legacy_id(action.receipt_id(context), "receipt id"),
        owner_org=identity.org,
        status=action.status,
        text=str(action.text(context) or ""),
        type_name=action.type_name,
        last_changed=clock().astimezone(UTC),
        references=references,
        step=step,
    )


def _load_receipts(
    action: CompiledLoadReceipts, context: Mapping[str, Any], identity: ActingIdentity, step: str
) -> LoadReceipts:
    receipt_id = None if action.receipt_id is None else action.receipt_id(context)
    reference = None
    if action.reference_type is not None and action.reference_value is not None:
        value = action.reference_value(context)
        if value is not None and str(value) != "":
            reference = (str(action.reference_type(context)), str(value))
    if receipt_id is None and reference is None:
        raise errors.InvalidField("give a ReceiptId or a reference to find a receipt by")
    return LoadReceipts(
        identity.org,
        None if receipt_id is None else _legacy_id(receipt_id, "ReceiptId"),
        reference,
        step,
        required=action.required,
    )


def _result(call: Altinn3Call, response: Altinn3Response) -> Any:
    """What ``results.<step>`` holds: the JSON, the bytes, the stream, or None for an accepted error.

    The response is judged first (:func:`proxy.mapping.problem.judge`): a status the step does not
    accept is raised as the refusal it stands for.
    """
    response = judge(call, response)
    if response.status >= 400:
        return None
    if call.response is ResponseKind.JSON:
        return response.json
    if call.response is ResponseKind.BYTES:
        return response.content
    if call.response is ResponseKind.STREAM:
        return response.stream
    return None


def build_body(
    json_body: Evaluate | None,
    bytes_body: tuple[Evaluate, Evaluate] | None,
    multipart: tuple[tuple[Evaluate, Evaluate, str | None, str | None], ...] | None,
    stream: tuple[Evaluate, str] | None,
) -> Callable[[Mapping[str, Any]], Body]:
    """A body builder for the one body kind a call declares."""
    if json_body is not None:
        evaluate_json = json_body
        return lambda context: JsonBody(evaluate_json(context))
    if bytes_body is not None:
        evaluate_bytes, evaluate_type = bytes_body

        def make_bytes(context: Mapping[str, Any]) -> Body:
            data = evaluate_bytes(context)
            content_type = str(evaluate_type(context))
            return BytesBody(data if isinstance(data, bytes) else str(data).encode("utf-8"), content_type)

        return make_bytes
    if multipart is not None:
        parts_spec = multipart

        def make_multipart(context: Mapping[str, Any]) -> Body:
            parts = []
            for evaluate_name, evaluate, filename, content_type in parts_spec:
                value = evaluate(context)
                if value is None:
                    continue
                parts.append(
                    MultipartPart(
                        str(evaluate_name(context)),
                        value if isinstance(value, bytes) else str(value),
                        filename,
                        content_type,
                    )
                )
            return MultipartBody(tuple(parts))

        return make_multipart
    if stream is not None:
        evaluate_stream, content_type = stream

        def make_stream(context: Mapping[str, Any]) -> Body:
            source = cast(AsyncIterable[bytes], evaluate_stream(context))
            # A stream that knows its size (proxy.soap.payload.SizedStream) is sent with Content-Length.
            length = getattr(source, "length", None)
            return StreamBody(source, content_type, length=length if isinstance(length, int) else None)

        return make_stream
    return lambda context: None


def default_idempotent(method: str) -> bool:
    """Whether a method may be retried on a connection failure when the mapping does not say."""
    return method in IDEMPOTENT_METHODS


def constant(value: Any) -> Evaluate:
    """An evaluator that always gives ``value``."""
    return lambda context: value


def as_evaluate(compiled: Value | Any) -> Evaluate:
    """An evaluator for a compiled scalar (a :class:`Value`) or a literal."""
    if isinstance(compiled, Value):
        return compiled
    return constant(compiled)
