"""The mapping file format, as pydantic models (``extra="forbid"``: a typo'd key is an error).

These models only check shape. Everything that needs more than one field at a time (expressions
that must compile, names that must be defined, the example that must render) is checked by
``proxy.mapping.compiler``. ``mappings/README.md`` documents the format for people.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from proxy.mapping.rest_routes import ROUTE_TEMPLATES

# Error classes a fault rule may raise: the ones whose meaning an upstream answer can carry.
FAULT_ERRORS = (
    "ClientError",
    "InvalidField",
    "InvalidReportee",
    "UnknownService",
    "NotFound",
    "Conflict",
    "AuthorizationDenied",
    "PersonSignatureRequired",
    "UpstreamError",
    "UpstreamUnavailable",
    "TokenError",
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Model):
    """One request field: a ``/``-separated path of local names below the operation element."""

    path: str = Field(min_length=1)
    type: Literal["string", "int", "bool", "datetime", "base64", "xml", "json"] = "string"
    list: bool = False
    required: bool = False
    #: For a list of records: the fields of each item, relative to the item element.
    fields: dict[str, FieldSpec | str] | None = None
    #: The path is not in the operation's contract (a name some hand-written clients send instead).
    undeclared: bool = False

    @model_validator(mode="after")
    def _records_are_lists(self) -> FieldSpec:
        if self.fields is not None and not self.list:
            raise ValueError("'fields' (a record) needs 'list: true'")
        return self


class RestRoute(_Model):
    """A legacy REST (``/api/...``) operation: the method and the Altinn 2 route template it serves."""

    method: Literal["GET", "POST", "PUT", "DELETE"]
    #: An Altinn 2 route template of :data:`~proxy.mapping.rest_routes.ROUTE_TEMPLATES`, spelt as there,
    #: e.g. ``/api/{who}/messages``.
    route: str = Field(pattern=r"^/api/")
    #: The ``_embedded`` list the front pages and filters with OData (``$top``, ``$skip``, ``$filter``).
    collection: str | None = Field(default=None, pattern=r"^[A-Za-z]+$")
    #: The item properties ``$filter`` may compare (with ``collection``).
    filters: list[str] = Field(default_factory=list)
    #: How the request body is read: ``json`` (parsed, bounded), ``stream`` (as ``streams.body``), none.
    body: Literal["none", "json", "stream"] = "none"

    @model_validator(mode="after")
    def _known_route(self) -> RestRoute:
        if self.route not in ROUTE_TEMPLATES:
            raise ValueError(f"{self.route!r} is not an Altinn 2 REST route (proxy/mapping/rest_routes.py)")
        if self.filters and self.collection is None:
            raise ValueError("'filters' need a 'collection'")
        return self


class LegacySide(_Model):
    """How the legacy client calls the operation: a service and operation of the SOAP catalogue, or a
    legacy REST route (``rest``).

    ``endpoint``, ``binding`` and ``soap_action`` may be written down for the reader; the loader
    refuses them when they disagree with the catalogue. ``request_element``/``response_element``
    likewise must agree with the contract, which is where the elements are declared.
    """

    service: str = Field(min_length=1)
    operation: str = Field(min_length=1)
    endpoint: str | None = None
    binding: Literal["basic", "ws", "basic_streamed"] | None = None
    soap_action: str | None = None
    #: Clark notation ``{namespace}LocalName`` of the operation's body element (checked, optional).
    request_element: str | None = Field(default=None, pattern=r"^\{[^}]+\}\w+$")
    #: Clark notation of the answer's body element (checked, optional).
    response_element: str | None = Field(default=None, pattern=r"^\{[^}]+\}\w+$")

    #: A legacy REST operation: the route it serves (then no SOAP elements, action or contract).
    rest: RestRoute | None = None

    @model_validator(mode="after")
    def _soap_or_rest(self) -> LegacySide:
        soap = (self.request_element, self.response_element, self.soap_action, self.binding, self.endpoint)
        if self.rest is not None and any(part is not None for part in soap):
            raise ValueError("a REST operation ('rest') takes no SOAP endpoint, binding, action or elements")
        return self


_NAME = r"^[A-Za-z_][\w.-]*$"
_QNAME = r"^([A-Za-z_][\w.-]*:)?[A-Za-z_][\w.-]*$"


class FieldDecl(_Model):
    """One child element of a declared type (the long form of ``"type flag flag"``)."""

    type: str = Field(default="string", pattern=_QNAME)
    #: ``minOccurs="1"``.
    required: bool = False
    nillable: bool = False
    #: ``maxOccurs="unbounded"``: the element itself repeats (WCF's named list types).
    repeated: bool = False
    #: A list wrapper: the element holds any number of ``list_item`` elements of ``type``.
    list_item: str | None = Field(default=None, pattern=_NAME)
    #: The binary payload of a streamed operation (an MTOM part on the wire).
    mtom: bool = False


FieldDecls = dict[str, str | FieldDecl]
"""Child elements in the order they are emitted: name → ``"type [required] [nillable] [repeated]
[mtom]"`` or a :class:`FieldDecl`."""


class MessageDecl(_Model):
    """The body element of a request or an answer, and its SOAP headers (WCF message contracts)."""

    #: ``Name`` (in the service namespace) or ``prefix:Name``; default ``{Op}`` / ``{Op}Response``.
    element: str | None = Field(default=None, pattern=_QNAME)
    #: Header elements in the order they are bound: name (or ``prefix:name``) → ``"type [nillable]"``.
    headers: dict[str, str] = Field(default_factory=dict)
    fields: FieldDecls = Field(default_factory=dict)


class ContractDecl(_Model):
    """The legacy request and response types of an operation: the one declaration of its shape."""

    request: MessageDecl
    response: MessageDecl


class OwnerOfSpec(_Model):
    """The reportee is whichever of the caller's organisations owns this legacy id (one store lookup)."""

    #: The GUID behind the id is bound to ``results.<name>``, like a ``resolve_id`` step's.
    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    kind: str = Field(pattern=r"^[a-z_]+$")
    #: Expression: the legacy id.
    value: str


class Identity(_Model):
    """Whose token the Altinn 3 calls use."""

    acts_as: Literal["service_owner", "system_user"] = Field(alias="as")
    #: For ``system_user``: an expression giving the reportee (organisation number).
    reportee: str | None = None
    #: For ``system_user``, instead of ``reportee``: the caller's org that owns a legacy id.
    reportee_of: OwnerOfSpec | None = None
    scopes: list[str] = Field(min_length=1)
    exchange: bool = True

    @model_validator(mode="after")
    def _reportee_for_system_user(self) -> Identity:
        given = (self.reportee is not None) + (self.reportee_of is not None)
        if self.acts_as == "system_user" and (given != 1 or self.reportee == ""):
            raise ValueError(
                "'system_user' identity needs one of 'reportee' (an expression) and 'reportee_of'"
            )
        if self.acts_as == "service_owner" and given:
            raise ValueError("'service_owner' identity takes no 'reportee' or 'reportee_of'")
        return self


class BytesSpec(_Model):
    """A binary body: ``data`` evaluates to bytes (e.g. ``{{ item.data }}`` of a base64 field);
    ``content_type`` may be a template."""

    data: str
    content_type: str = "application/octet-stream"


class StreamSpec(_Model):
    """A streamed body: ``source`` evaluates to one of the request's attachment streams."""

    source: str
    content_type: str = "application/octet-stream"


class PartSpec(_Model):
    """One ``multipart/form-data`` part (``name`` may be a template, e.g. a routed data type)."""

    name: str
    value: str
    filename: str | None = None
    content_type: str | None = None


class CallSpec(_Model):
    """An Altinn 3 call. ``path`` and string values may be Jinja2 templates."""

    api: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
    path: str = Field(pattern=r"^/")
    #: An expression giving the service owner code of an app; absent: the platform gateway.
    app_org: str | None = None
    #: An expression giving another of the caller's organisations whose system user makes this call
    #: (e.g. one call per organisation with ``foreach: caller_orgs``); absent: the operation's identity.
    acting_for: str | None = None
    query: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    json_body: Any = Field(default=None, alias="json")
    bytes_body: BytesSpec | None = Field(default=None, alias="bytes")
    multipart: list[PartSpec] | None = None
    stream: StreamSpec | None = None
    response: Literal["json", "bytes", "stream", "none"] = "json"
    accept: list[int] = Field(default_factory=list)
    idempotent: bool | None = None
    #: Expression: a memo key under which the call's answer (JSON text, e.g. a created id) is
    #: remembered the moment it arrives, before sibling calls of a ``foreach`` finish or fail.
    keep: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_body(self) -> CallSpec:
        bodies = [b for b in (self.json_body, self.bytes_body, self.multipart, self.stream) if b is not None]
        if len(bodies) > 1:
            raise ValueError("a call has at most one of 'json', 'bytes', 'multipart', 'stream'")
        return self


class IdSpec(_Model):
    """A store call: allocate a legacy id for a GUID, or resolve a legacy id to its GUID."""

    kind: str = Field(pattern=r"^[a-z_]+$")
    #: Expression: the GUID (allocate) or the legacy id (resolve).
    value: str
    #: Expression: the owning organisation; defaults to the identity's organisation.
    owner: str | None = None
    #: ``allocate_id`` only, expression: the GUID the item belongs to (e.g. a data element's instance),
    #: recorded with the id so that the id alone finds the item again.
    parent: str | None = None
    #: ``resolve_id`` only: the result is ``{guid, parent}`` instead of the GUID.
    with_parent: bool = False


class SaveReceiptSpec(_Model):
    """A store call: save a legacy receipt the receipt operations can answer from later."""

    #: Expression: the receipt id (an id allocated for the identity's organisation).
    id: str
    status: Literal["NotSet", "OK", "UnExpectedError", "ValidationFailed", "Rejected"] = "OK"
    text: str = ""
    #: Altinn 2 ``ReceiptTypeName``, e.g. ``Correspondence``.
    type: str = Field(min_length=1)
    #: Reference type (e.g. ``ExternalShipmentReference``) → expression giving its value.
    references: dict[str, str] = Field(default_factory=dict)


class LoadReceiptSpec(_Model):
    """A store call: the organisation's receipts by id and/or by one reference (a list of dicts)."""

    id: str | None = None
    reference_type: str | None = None
    reference_value: str | None = None
    #: False: finding nothing gives an empty list instead of the receipt-not-found fault (30008).
    required: bool = True

    @model_validator(mode="after")
    def _something_to_find(self) -> LoadReceiptSpec:
        if self.id is None and self.reference_value is None:
            raise ValueError("'load_receipt' needs 'id' or 'reference_value'")
        if (self.reference_type is None) != (self.reference_value is None):
            raise ValueError("'reference_type' and 'reference_value' go together")
        return self


class PeekSpec(_Model):
    """Look at the first bytes of a request stream before any call sends it (see ``proxy.mapping.peek``).

    The step's result has the bytes as ``head`` and is itself the whole stream, to be sent on in
    place of ``source``; a ``source`` that is ``none`` (no attachment) gives ``none``.
    """

    #: Expression: one of the request's attachment streams, e.g. ``streams.get('attachment')``.
    source: str
    #: How many bytes to look at (chunks are read until at least this many are seen).
    bytes: int = Field(ge=1, le=65536)


class RememberSpec(_Model):
    """A store call: record a value under a key of this submission (first value wins; see ``recall``)."""

    #: Expression: the key, e.g. ``"{{ fields.reference }} attachment {{ index }}"``; the caller and
    #: the operation are added, so keys never meet another caller's.
    key: str = Field(min_length=1)
    #: Expression: the value to keep (a string).
    value: str = Field(min_length=1)
    #: Kept for ever and shared by every caller and operation (the key alone names it), for a
    #: reference that outlives the submission; nothing checks who reads it (see mappings/README.md).
    durable: bool = False


class RecallSpec(_Model):
    """A store call: the value a ``remember`` step recorded under the key, or none."""

    key: str = Field(min_length=1)
    #: Read a ``durable`` memo (one any caller or operation may have kept under this key).
    durable: bool = False


class UntilSpec(_Model):
    """Poll a call until its answer says it is done (Altinn 3's asynchronous states, e.g. a malware scan).

    The call is repeated every ``every`` seconds while ``condition`` (an expression over ``result``,
    the answer's JSON) is false, at most until ``within`` seconds have been waited; the step's result
    is the last answer either way, so the steps after it decide what an unfinished state means.
    """

    condition: str = Field(min_length=1)
    every: float = Field(default=0.5, gt=0, le=60)
    within: float = Field(default=30, gt=0, le=600)


class IdempotencySpec(_Model):
    """Resends of the same submission answer what the first one answered, without calling Altinn 3."""

    #: Expression: the caller's own reference (e.g. ``{{ fields.reference }}``); with the caller and
    #: the operation it forms the idempotency key.
    key: str = Field(min_length=1)


class StepSpec(_Model):
    """One step; its result is bound to ``results.<name>``."""

    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    when: str | None = None
    foreach: str | None = None
    item: str = Field(default="item", alias="as", pattern=r"^[a-z_][a-z0-9_]*$")
    concurrency: int = Field(default=4, ge=1, le=64)
    call: CallSpec | None = None
    allocate_id: IdSpec | None = None
    resolve_id: IdSpec | None = None
    save_receipt: SaveReceiptSpec | None = None
    load_receipt: LoadReceiptSpec | None = None
    peek: PeekSpec | None = None
    remember: RememberSpec | None = None
    recall: RecallSpec | None = None
    #: For a ``call`` step: repeat it until its answer satisfies a condition (see :class:`UntilSpec`).
    until: UntilSpec | None = None
    #: Expression: a value computed from earlier results (e.g. a decision), bound like any result.
    value: str | None = None

    @model_validator(mode="after")
    def _one_action(self) -> StepSpec:
        actions = [
            a
            for a in (
                self.call,
                self.allocate_id,
                self.resolve_id,
                self.save_receipt,
                self.load_receipt,
                self.peek,
                self.remember,
                self.recall,
                self.value,
            )
            if a is not None
        ]
        if len(actions) != 1:
            raise ValueError(
                "a step has exactly one of 'call', 'allocate_id', 'resolve_id', 'save_receipt', "
                "'load_receipt', 'peek', 'remember', 'recall', 'value'"
            )
        if self.until is not None and (self.call is None or self.call.response != "json"):
            raise ValueError("'until' polls a 'call' step whose response is JSON")
        if self.foreach is not None and (
            self.save_receipt is not None or self.peek is not None or self.value is not None
        ):
            raise ValueError("'foreach' is not allowed on 'save_receipt', 'peek' and 'value' steps")
        if self.foreach is not None and self.call is not None and self.call.response == "stream":
            raise ValueError("a 'foreach' call cannot stream its response")
        if self.allocate_id is not None and self.allocate_id.with_parent:
            raise ValueError("'with_parent' belongs to 'resolve_id'; 'allocate_id' records a 'parent'")
        if self.resolve_id is not None and self.resolve_id.parent is not None:
            raise ValueError("'parent' belongs to 'allocate_id'; 'resolve_id' reads it with 'with_parent'")
        return self


class FaultMatch(_Model):
    """What an upstream failure must look like for a rule to apply (all given parts must match)."""

    status: int | list[int] | None = None
    error_code: str | int | None = None
    mp_code: str | None = Field(default=None, pattern=r"^MP-\d{3}$")

    @model_validator(mode="after")
    def _not_empty(self) -> FaultMatch:
        if self.status is None and self.error_code is None and self.mp_code is None:
            raise ValueError("a fault match needs 'status', 'error_code' or 'mp_code'")
        return self


class FaultRule(_Model):
    """Upstream failure → the Altinn fault a legacy client understands."""

    match: FaultMatch
    raise_: Literal[FAULT_ERRORS] = Field(alias="raise")  # type: ignore[valid-type]
    error_id: int | None = None
    message: str = Field(min_length=1)


class ExampleResponse(_Model):
    """A canned Altinn 3 answer for one step of the example (also used by tests and explain)."""

    status: int = 200
    json_body: Any = Field(default=None, alias="json")
    text: str | None = None


class ExamplePrincipal(_Model):
    """The caller of the example request."""

    org: str = "991825827"
    service_owner: str | None = "ttd"


class ExampleRoute(_Model):
    """A routing entry the example needs (deployment routing stays in the settings)."""

    service_code: str
    service_edition: str
    resource_id: str | None = None
    broker_resource: str | None = None
    require_zip: bool = False
    org: str | None = None
    app: str | None = None
    data_type: str | None = None
    data_format_id: str | None = None
    data_format_version: str | None = None
    attachment_types: dict[str, str] = Field(default_factory=dict)
    default_attachment_type: str | None = None


class RestExampleRequest(_Model):
    """A REST example request: route parameters, query parameters (lower-case names), JSON body."""

    route: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str] = Field(default_factory=dict)
    body: Any = None


class Example(_Model):
    """A request with canned answers that must produce a well-formed answer at load time."""

    #: The SOAP body element (XML text), or for a REST operation its parts.
    request: str | RestExampleRequest
    principal: ExamplePrincipal = ExamplePrincipal()
    routes: list[ExampleRoute] = Field(default_factory=list)
    responses: dict[str, ExampleResponse] = Field(default_factory=dict)


class OperationSpec(_Model):
    """One legacy operation and its translation."""

    legacy: LegacySide
    #: The legacy types; aliases derive theirs from it (see ``mappings/README.md``). SOAP only: a REST
    #: operation's request is its route, query and JSON body, its answer a HAL document.
    contract: ContractDecl | None = None
    #: The same translation under other legacy names (e.g. the WS twin ``InsertCorrespondenceV2`` of
    #: ``InsertCorrespondenceBasicV2``); the answer template can use ``legacy.operation``.
    aliases: list[LegacySide] = Field(default_factory=list)
    identity: Identity
    #: Makes the operation idempotent per caller and reference (see :class:`IdempotencySpec`).
    idempotency: IdempotencySpec | None = None
    fields: dict[str, FieldSpec | str] = Field(default_factory=dict)
    #: Named expressions evaluated in order after identity, before the steps.
    vars: dict[str, str] = Field(default_factory=dict)
    steps: list[StepSpec] = Field(default_factory=list)
    #: The Jinja2 template of the whole ``{Op}Response`` element (or ``answer_file``).
    answer: str | None = None
    answer_file: str | None = None
    #: REST only: the answer document (a tree like a call's ``json``), encoded as the client negotiated.
    answer_json: Any = None
    #: REST only: the answer's status and headers (``Location``, ``Content-Disposition``...), templated.
    #: A status, or an expression giving one (e.g. a refusal's 400 with ``{ErrorCode, ErrorMessage}``).
    answer_status: int | str = 200
    answer_headers: dict[str, str] = Field(default_factory=dict)
    #: For downloads: an expression giving a step's streamed result, sent on as the MTOM attachment.
    answer_stream: str | None = None
    faults: list[FaultRule] = Field(default_factory=list)
    example: Example

    @model_validator(mode="after")
    def _one_answer(self) -> OperationSpec:
        if self.legacy.rest is not None:
            if self.contract is not None:
                raise ValueError("a REST operation has no SOAP 'contract'")
            if self.answer is not None or self.answer_file is not None:
                raise ValueError("a REST operation answers with 'answer_json', not 'answer'/'answer_file'")
            if self.answer_json is None and self.answer_stream is None:
                raise ValueError("a REST operation needs 'answer_json' or 'answer_stream'")
            if any(alias.rest is None for alias in self.aliases):
                raise ValueError("the aliases of a REST operation are REST routes too")
        elif self.contract is None:
            raise ValueError("a SOAP operation needs its 'contract'")
        elif (self.answer is None) == (self.answer_file is None):
            raise ValueError("an operation has exactly one of 'answer' and 'answer_file'")
        elif self.answer_json is not None or self.answer_headers:
            raise ValueError("'answer_json' and 'answer_headers' are for REST operations")
        names = [step.name for step in self.steps]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate step names: {', '.join(duplicates)}")
        return self


class MappingFile(_Model):
    """One file of ``mappings/``: a legacy service family."""

    version: Literal[1]
    description: str | None = None
    #: Prefixes for the namespaces of ``types`` and of ``prefix:Name`` references in this file.
    namespaces: dict[str, str] = Field(default_factory=dict)
    #: Complex types by ``prefix:Name``, shared by every file of the directory (an equal
    #: declaration may be repeated so that each file stands alone).
    types: dict[str, FieldDecls] = Field(default_factory=dict)
    #: Fault rules shared by every operation of the file (tried after the operation's own).
    faults: list[FaultRule] = Field(default_factory=list)
    operations: list[OperationSpec] = Field(min_length=1)
