"""Validate a mapping directory's files fully and compile them into a :class:`MappingSet` (pure).

The files arrive as bytes (:class:`MappingSources`; :mod:`proxy.pipeline.loading` reads them).
Every problem is collected with ``file:line``; sources with any problem yield no set at all (hot
reload keeps the old one). Validation covers: YAML syntax, unknown keys and wrong shapes (pydantic,
``extra="forbid"``), the legacy side against the SOAP catalogue, the declared contracts, field paths
against them, expressions and templates that do not compile or refer to undefined variables /
fields / vars / earlier steps, missing template files, fault rules, and the example of each
operation, which must run against its canned responses and answer (and ask) exactly what the
contract declares.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

from lxml import etree
from pydantic import ValidationError

from proxy import errors
from proxy.errors import ConfigurationError, MappingRuntimeError, ProxyError
from proxy.identity.principal import CallerKind, OrgGrant, Principal
from proxy.mapping.calls import Altinn3Response, ResponseKind
from proxy.mapping.contracts import (
    TypeTable,
    alias_contract,
    collect_types,
    compile_contract,
    path_problem,
)
from proxy.mapping.dryrun import DryRun, MissingResponse, drive
from proxy.mapping.engine import (
    CompiledCall,
    CompiledFault,
    CompiledIdentity,
    CompiledIdStep,
    CompiledLoadReceipts,
    CompiledMemo,
    CompiledOperation,
    CompiledOwnerOf,
    CompiledPeek,
    CompiledSaveReceipt,
    CompiledStep,
    CompiledUntil,
    CompiledValue,
    Evaluate,
    MappingSet,
    OperationRequest,
    StepAction,
    as_evaluate,
    build_body,
    default_idempotent,
    run_operation,
)
from proxy.mapping.expressions import (
    ExpressionError,
    Names,
    compile_expression,
    compile_value,
    compile_xml_template,
)
from proxy.mapping.fields import CompiledField, compile_field
from proxy.mapping.paths import CallPath, compile_path
from proxy.mapping.routing import Route, RoutingTable
from proxy.mapping.schema import (
    FieldSpec,
    LegacySide,
    LoadReceiptSpec,
    MappingFile,
    OperationSpec,
    SaveReceiptSpec,
)
from proxy.mapping.source import Loc, Located, Positions, Problem, YamlError, read_yaml
from proxy.soap.catalogue import Catalogue, Service, default_catalogue
from proxy.soap.conformance import check_element
from proxy.soap.contracts import ContractRegistry, ElementDecl, Field, OperationContract
from proxy.soap.surface import Surface

MAPPING_SUFFIXES = (".yaml", ".yml")
_EXAMPLE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


@dataclass(frozen=True)
class MappingSources:
    """The files of a mapping directory as read: relative POSIX path → bytes (dot-files left out).

    ``root`` is the directory's name, for ``file:line`` in messages. Reading it is the caller's I/O
    (:func:`proxy.pipeline.loading.read_sources`); compiling it is pure.
    """

    root: str
    files: Mapping[str, bytes]

    @property
    def digest(self) -> str:
        """SHA-256 over every file's relative name and bytes (what hot reload compares)."""
        digest = hashlib.sha256()
        for name in sorted(self.files):
            digest.update(name.encode() + b"\0")
            digest.update(self.files[name] + b"\0")
        return digest.hexdigest()

    def mapping_files(self) -> list[str]:
        """The mapping files: ``*.yaml``/``*.yml`` at the top of the directory, sorted."""
        return sorted(name for name in self.files if "/" not in name and name.endswith(MAPPING_SUFFIXES))

    def where(self, name: str) -> str:
        """How messages name the file ``name``."""
        return str(PurePath(self.root) / name)


def compile_sources(
    sources: MappingSources, catalogue: Catalogue | None = None
) -> tuple[MappingSet | None, list[Problem]]:
    """Validate and compile every mapping file of ``sources``; (None, problems) if any is wrong.

    Each operation is checked against ``catalogue`` (default: every Altinn 2 service the proxy knows).
    """
    catalogue = catalogue or default_catalogue()
    names = sources.mapping_files()
    if not names:
        return None, [Problem(sources.root, None, "no mapping files (*.yaml)")]
    problems: list[Problem] = []
    parsed: list[_ParsedFile] = []
    for name in names:
        read, found = _parse_file(sources, name)
        problems.extend(found)
        if read is not None:
            parsed.append(read)
    types, found = collect_types((item.spec, item.positions) for item in parsed)
    problems.extend(found)
    operations: dict[tuple[str, str], CompiledOperation] = {}
    for item in parsed:
        compiled, found = _compile_file(item, types, catalogue)
        problems.extend(found)
        for operation in compiled:
            if operation.key in operations:
                other = operations[operation.key]
                problems.append(
                    Problem(
                        operation.file, operation.line, f"{operation.key[1]} is also mapped at {other.where}"
                    )
                )
            operations[operation.key] = operation
    rest: dict[tuple[str, str], CompiledOperation] = {}
    for operation in operations.values():
        route = operation.legacy.rest
        if route is None:
            continue
        key = (route.method, route.route.lower())
        if key in rest:
            problems.append(
                Problem(
                    operation.file,
                    operation.line,
                    f"{route.method} {route.route} is also mapped at {rest[key].where}",
                )
            )
        rest[key] = operation
    if problems:
        return None, problems
    contracts = ContractRegistry(
        {key: operation.contract for key, operation in operations.items() if operation.contract is not None}
    )
    surface = Surface.of(catalogue, contracts)
    return MappingSet(operations, sources.digest, tuple(names), surface, rest), []


def problems_error(problems: list[Problem]) -> ConfigurationError:
    """One :class:`ConfigurationError` listing ``problems`` (at least one), located at the first."""
    first = problems[0]
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    detail = "\n".join(str(p) for p in problems)
    return ConfigurationError(f"{first.message}{more}\n{detail}", location=f"{first.file}:{first.line}")


@dataclass(frozen=True)
class _ParsedFile:
    sources: MappingSources
    name: str
    spec: MappingFile
    positions: Positions


def _parse_file(sources: MappingSources, name: str) -> tuple[_ParsedFile | None, list[Problem]]:
    where = sources.where(name)
    try:
        raw, positions = read_yaml(sources.files[name].decode("utf-8"), where)
    except YamlError as error:
        return None, [Problem(where, error.line, f"not valid YAML: {error}")]
    except UnicodeDecodeError as error:
        return None, [Problem(where, None, f"cannot read: {error}")]
    try:
        spec = MappingFile.model_validate(raw)
    except ValidationError as error:
        return None, [_pydantic_problem(positions, item) for item in error.errors()]
    return _ParsedFile(sources, name, spec, positions), []


def _compile_file(
    parsed: _ParsedFile, types: TypeTable, catalogue: Catalogue
) -> tuple[list[CompiledOperation], list[Problem]]:
    """Compile one mapping file; returns the operations that compiled and every problem found."""
    spec, positions = parsed.spec, parsed.positions
    compiled: list[CompiledOperation] = []
    problems: list[Problem] = []
    file_faults_loc: Loc = ("faults",)
    try:
        file_faults = _compile_faults(spec.faults, file_faults_loc)
    except Located as error:
        return [], [positions.problem(error.loc, error.message)]
    for index, operation in enumerate(spec.operations):
        loc: Loc = ("operations", index)
        try:
            if operation.legacy.rest is not None:
                compiled.extend(_compile_rest(operation, loc, parsed, file_faults))
                continue
            assert operation.contract is not None  # the schema requires it of a SOAP operation
            service = _legacy_service(operation.legacy, catalogue, (*loc, "legacy"))
            contract = compile_contract(
                operation.contract,
                service,
                operation.legacy.operation,
                spec.namespaces,
                types,
                (*loc, "contract"),
            )
            _check_elements(operation.legacy, contract, (*loc, "legacy"))
            main = _compile_operation(operation, contract, loc, parsed, file_faults)
            compiled.append(main)
            for alias_index, alias in enumerate(operation.aliases):
                here: Loc = (*loc, "aliases", alias_index)
                alias_service = _legacy_service(alias, catalogue, here)
                twin_contract = alias_contract(
                    contract, operation.legacy.operation, alias_service, alias.operation
                )
                _check_elements(alias, twin_contract, here)
                twin = dataclasses.replace(
                    main, legacy=alias, contract=twin_contract, line=positions.line(here)
                )
                _check_example(twin, operation, (*loc, "example"), contract)
                compiled.append(twin)
        except Located as error:
            problems.append(positions.problem(error.loc, error.message))
    return compiled, problems


def _compile_rest(
    spec: OperationSpec, loc: Loc, parsed: _ParsedFile, file_faults: tuple[CompiledFault, ...]
) -> list[CompiledOperation]:
    """A legacy REST operation and its aliases (other routes): no SOAP catalogue, no contract."""
    main = _compile_operation(spec, None, loc, parsed, file_faults)
    twins = [
        dataclasses.replace(main, legacy=alias, line=parsed.positions.line((*loc, "aliases", index)))
        for index, alias in enumerate(spec.aliases)
    ]
    for twin in twins:
        _check_example(twin, spec, (*loc, "example"), None)
    return [main, *twins]


def _legacy_service(legacy: LegacySide, catalogue: Catalogue, loc: Loc) -> Service:
    """The catalogued service of ``legacy``, refusing any detail that disagrees with the catalogue."""
    service = catalogue.by_name(legacy.service)
    if service is None:
        raise Located((*loc, "service"), f"unknown service {legacy.service!r}: not in the SOAP catalogue")
    operation = service.operation(legacy.operation)
    if operation is None:
        known = ", ".join(op.name for op in service.operations)
        raise Located(
            (*loc, "operation"), f"unknown operation {legacy.operation!r} of {service.name} (it has: {known})"
        )
    if legacy.endpoint is not None and legacy.endpoint.lower() not in {p.lower() for p in service.paths}:
        raise Located(
            (*loc, "endpoint"),
            f"endpoint {legacy.endpoint} is not {service.name}'s ({', '.join(service.paths)})",
        )
    if legacy.binding is not None and legacy.binding != service.binding.value:
        raise Located(
            (*loc, "binding"),
            f"binding {legacy.binding} does not match the endpoint: {service.name} is {service.binding.value}",
        )
    if legacy.soap_action is not None and legacy.soap_action != operation.soap_action:
        raise Located(
            (*loc, "soap_action"),
            f"SOAPAction {legacy.soap_action} is not {operation.name}'s: {operation.soap_action}",
        )
    return service


def _check_elements(legacy: LegacySide, contract: OperationContract, loc: Loc) -> None:
    for key, written, declared in (
        ("request_element", legacy.request_element, contract.request_name),
        ("response_element", legacy.response_element, contract.response_name),
    ):
        if written is not None and written != declared.clark:
            raise Located((*loc, key), f"{key} {written} disagrees with the contract: {declared.clark}")


def _pydantic_problem(positions: Positions, item: Any) -> Problem:
    loc = tuple(part for part in item["loc"] if isinstance(part, str | int))
    # pydantic appends union/tag names to the loc; keep the longest prefix that exists in the file
    while loc and loc not in positions.lines:
        loc = loc[:-1]
    key = ".".join(str(part) for part in item["loc"])
    message = item["msg"]
    if item["type"] == "extra_forbidden":
        message = f"unknown key {item['loc'][-1]!r}"
    elif item["type"] == "missing":
        message = f"missing key {item['loc'][-1]!r}"
    return positions.problem(loc, f"{key}: {message}" if key else message)


def _compile_fields(specs: dict[str, FieldSpec | str], loc: Loc) -> tuple[CompiledField, ...]:
    compiled = []
    for name, spec in specs.items():
        here = (*loc, name)
        if not name.isidentifier():
            raise Located(here, f"field name {name!r} must be an identifier")
        try:
            if isinstance(spec, str):
                compiled.append(compile_field(name, spec))
                continue
            children = _compile_fields(spec.fields, (*here, "fields")) if spec.fields else ()
            compiled.append(
                compile_field(
                    name, spec.path, type=spec.type, many=spec.list, required=spec.required, children=children
                )
            )
        except ValueError as error:
            raise Located(here, str(error)) from None
    return tuple(compiled)


def _value(source: Any, names: Names, loc: Loc) -> Evaluate:
    try:
        return as_evaluate(compile_value(source, names))
    except ExpressionError as error:
        raise Located(loc, str(error)) from None


def _path(source: str, names: Names, loc: Loc) -> CallPath:
    try:
        return compile_path(source, names)
    except ExpressionError as error:
        raise Located(loc, str(error)) from None


def _expression(source: str, names: Names, loc: Loc) -> Evaluate:
    try:
        return compile_expression(source, names)
    except ExpressionError as error:
        raise Located(loc, str(error)) from None


_EACH_KEYS = frozenset({"$foreach", "$as", "$let", "$item"})


def _tree(source: Any, names: Names, loc: Loc) -> Evaluate:
    """Compile a JSON body: string leaves may be templates; keys whose value is None are dropped.

    ``{$foreach: expr, $as: name, $let: {name: value}, $item: tree}`` builds a list: one ``$item``
    per element of ``expr`` (named ``$as``, default ``item``, with its ``index``), after the ``$let``
    values (evaluated in order, per element). Without ``$foreach``, ``{$let, $item}`` is one ``$item``.
    """
    if isinstance(source, dict) and "$item" in source:
        return _tree_each(source, names, loc)
    if isinstance(source, dict):
        items = [(key, _tree(value, names, (*loc, key))) for key, value in source.items()]
        return lambda context: {
            key: value for key, evaluate in items if (value := evaluate(context)) is not None
        }
    if isinstance(source, list):
        elements = [_tree(value, names, (*loc, index)) for index, value in enumerate(source)]
        return lambda context: [evaluate(context) for evaluate in elements]
    return _value(source, names, loc)


def _tree_each(source: dict[str, Any], names: Names, loc: Loc) -> Evaluate:
    unknown = sorted(set(source) - _EACH_KEYS)
    if unknown:
        raise Located(loc, f"$item goes with $foreach, $as and $let only, not {', '.join(unknown)}")
    item_name = str(source.get("$as", "item"))
    single = "$foreach" not in source
    items = (
        (lambda context: (None,))
        if single
        else _expression(str(source["$foreach"]), names, (*loc, "$foreach"))
    )
    scope_names = Names(names.fields, names.vars, names.results, names.extra | {item_name, "index"})
    lets: list[tuple[str, Evaluate]] = []
    for name, value in (source.get("$let") or {}).items():
        lets.append((name, _value(value, scope_names, (*loc, "$let", name))))
        scope_names = Names(names.fields, names.vars, names.results, scope_names.extra | {name})
    item = _tree(source["$item"], scope_names, (*loc, "$item"))

    def each(context: Mapping[str, Any]) -> list[Any]:
        built = []
        for index, element in enumerate(items(context) or ()):
            scope = {**context, item_name: element, "index": index}
            for name, evaluate in lets:
                scope[name] = evaluate(scope)
            built.append(item(scope))
        return built

    if single:
        return lambda context: each(context)[0]
    return each


def _compile_operation(
    spec: OperationSpec,
    contract: OperationContract | None,
    loc: Loc,
    parsed: _ParsedFile,
    file_faults: tuple[CompiledFault, ...],
) -> CompiledOperation:
    positions = parsed.positions
    fields = _compile_fields(spec.fields, (*loc, "fields"))
    undeclared = {
        name for name, field in spec.fields.items() if isinstance(field, FieldSpec) and field.undeclared
    }
    for compiled_field in fields:
        if compiled_field.name in undeclared or contract is None:
            continue  # a REST operation's fields name its route, query and body, which no contract declares
        problem = path_problem(
            contract, compiled_field.steps, (child.steps for child in compiled_field.children)
        )
        if problem is not None:
            raise Located((*loc, "fields", compiled_field.name), f"field path: {problem}")
    field_names = frozenset(f.name for f in fields)
    names = Names(field_names, frozenset(), frozenset())

    reportee = None
    if spec.identity.reportee is not None:
        reportee = _expression(spec.identity.reportee, names, (*loc, "identity", "reportee"))
    reportee_of = None
    if spec.identity.reportee_of is not None:
        owner_of = spec.identity.reportee_of
        here_of: Loc = (*loc, "identity", "reportee_of")
        if owner_of.name in {step.name for step in spec.steps}:
            raise Located((*here_of, "name"), f"{owner_of.name!r} is also the name of a step")
        reportee_of = CompiledOwnerOf(
            owner_of.name, owner_of.kind, _value(owner_of.value, names, (*here_of, "value"))
        )
        names = Names(field_names, frozenset(), frozenset({owner_of.name}))
    identity = CompiledIdentity(
        spec.identity.acts_as,
        reportee,
        frozenset(spec.identity.scopes),
        spec.identity.exchange,
        reportee_of,
    )

    variables: list[tuple[str, Evaluate]] = []
    for name, source in spec.vars.items():
        if not name.isidentifier():
            raise Located((*loc, "vars", name), f"var name {name!r} must be an identifier")
        variables.append((name, _value(source, names, (*loc, "vars", name))))
        names = Names(field_names, names.vars | {name}, names.results)

    names_before_steps = names
    steps: list[CompiledStep] = []
    for index, step in enumerate(spec.steps):
        here: Loc = (*loc, "steps", index)
        step_names = names
        foreach = None
        if step.foreach is not None:
            foreach = _expression(step.foreach, names, (*here, "foreach"))
            step_names = Names(names.fields, names.vars, names.results, frozenset({step.item, "index"}))
        when = None if step.when is None else _expression(step.when, step_names, (*here, "when"))
        action: StepAction
        if step.call is not None:
            action = _compile_call(step.call, step_names, (*here, "call"))
        elif step.save_receipt is not None:
            action = _compile_save_receipt(step.save_receipt, step_names, (*here, "save_receipt"))
        elif step.load_receipt is not None:
            action = _compile_load_receipt(step.load_receipt, step_names, (*here, "load_receipt"))
        elif step.peek is not None:
            peek_source = _expression(step.peek.source, step_names, (*here, "peek", "source"))
            action = CompiledPeek(peek_source, step.peek.bytes)
        elif step.remember is not None:
            action = CompiledMemo(
                _value(step.remember.key, step_names, (*here, "remember", "key")),
                _value(step.remember.value, step_names, (*here, "remember", "value")),
                durable=step.remember.durable,
            )
        elif step.recall is not None:
            action = CompiledMemo(
                _value(step.recall.key, step_names, (*here, "recall", "key")), durable=step.recall.durable
            )
        elif step.value is not None:
            action = CompiledValue(_expression(step.value, step_names, (*here, "value")))
        else:
            id_spec = step.allocate_id or step.resolve_id
            assert id_spec is not None
            key = "allocate_id" if step.allocate_id is not None else "resolve_id"
            action = CompiledIdStep(
                allocate=step.allocate_id is not None,
                kind=id_spec.kind,
                value=_value(id_spec.value, step_names, (*here, key, "value")),
                owner=None
                if id_spec.owner is None
                else _value(id_spec.owner, step_names, (*here, key, "owner")),
                parent=None
                if id_spec.parent is None
                else _value(id_spec.parent, step_names, (*here, key, "parent")),
                with_parent=id_spec.with_parent,
            )
        until = None
        if step.until is not None:
            polled = Names(
                step_names.fields, step_names.vars, step_names.results, step_names.extra | {"result"}
            )
            until = CompiledUntil(
                _expression(step.until.condition, polled, (*here, "until", "condition")),
                step.until.every,
                step.until.within,
            )
        steps.append(
            CompiledStep(
                step.name, action, when, foreach, step.item, step.concurrency, positions.line(here), until
            )
        )
        names = Names(names.fields, names.vars, names.results | {step.name})

    answer_names = Names(names.fields, names.vars, names.results, names.extra | {"legacy"})
    if spec.legacy.rest is not None:
        answer_loc: Loc = (*loc, "answer_json" if spec.answer_json is not None else "answer_stream")
        answer = _rest_answer(spec, answer_names, loc)
    else:
        answer_source, answer_loc = _answer_source(spec, loc, parsed)
        try:
            answer = compile_xml_template(answer_source, answer_names)
        except ExpressionError as error:
            raise Located(answer_loc, str(error)) from None
    answer_stream = None
    if spec.answer_stream is not None:
        answer_stream = _expression(spec.answer_stream, names, (*loc, "answer_stream"))

    operation = CompiledOperation(
        legacy=spec.legacy,
        contract=contract,
        fields=fields,
        identity=identity,
        vars=tuple(variables),
        steps=tuple(steps),
        answer=answer,
        answer_stream=answer_stream,
        faults=_compile_faults(spec.faults, (*loc, "faults")) + file_faults,
        file=positions.file,
        line=positions.line(loc),
        idempotency_key=None
        if spec.idempotency is None
        else _value(spec.idempotency.key, names_before_steps, (*loc, "idempotency", "key")),
        answer_line=positions.line(answer_loc),
    )
    _check_example(operation, spec, (*loc, "example"), contract)
    return operation


def _rest_answer(spec: OperationSpec, names: Names, loc: Loc) -> Callable[[Mapping[str, Any]], str]:
    """A REST operation's answer: the reply document (status, headers, body) as JSON text."""
    body = _tree(spec.answer_json, names, (*loc, "answer_json"))
    headers = [
        (name, _value(value, names, (*loc, "answer_headers", name)))
        for name, value in spec.answer_headers.items()
    ]
    status = _value(spec.answer_status, names, (*loc, "answer_status"))

    def render(context: Mapping[str, Any]) -> str:
        reply = {
            "status": int(status(context)),
            "headers": {name: str(v) for name, evaluate in headers if (v := evaluate(context)) is not None},
            "body": body(context),
        }
        return json.dumps(reply, ensure_ascii=False, separators=(",", ":"))

    return render


def _answer_source(spec: OperationSpec, loc: Loc, parsed: _ParsedFile) -> tuple[str, Loc]:
    if spec.answer is not None:
        return spec.answer, (*loc, "answer")
    assert spec.answer_file is not None
    here: Loc = (*loc, "answer_file")
    target = posixpath.normpath(posixpath.join(posixpath.dirname(parsed.name), spec.answer_file))
    if target == ".." or target.startswith(("../", "/")):
        raise Located(here, "answer_file must stay inside the mapping directory")
    data = parsed.sources.files.get(target)
    if data is None:
        raise Located(here, f"template file {spec.answer_file!r} does not exist")
    try:
        return data.decode("utf-8"), here
    except UnicodeDecodeError as error:
        raise Located(here, f"cannot read template {spec.answer_file!r}: {error}") from None


def _compile_call(spec: Any, names: Names, loc: Loc) -> CompiledCall:
    query = tuple(
        (key, _value(value, names, (*loc, "query", key))) for key, value in (spec.query or {}).items()
    )
    headers = tuple(
        (key, _value(value, names, (*loc, "headers", key))) for key, value in (spec.headers or {}).items()
    )
    for key, _ in headers:
        if key.lower() == "authorization":
            raise Located(
                (*loc, "headers", key), "the bearer token is added by the client, never by a mapping"
            )
    json_body = None if spec.json_body is None else _tree(spec.json_body, names, (*loc, "json"))
    bytes_body = None
    if spec.bytes_body is not None:
        bytes_body = (
            _value(spec.bytes_body.data, names, (*loc, "bytes", "data")),
            _value(spec.bytes_body.content_type, names, (*loc, "bytes", "content_type")),
        )
    multipart = None
    if spec.multipart is not None:
        multipart = tuple(
            (
                _value(part.name, names, (*loc, "multipart", i, "name")),
                _value(part.value, names, (*loc, "multipart", i, "value")),
                part.filename,
                part.content_type,
            )
            for i, part in enumerate(spec.multipart)
        )
    stream = None
    if spec.stream is not None:
        stream = (
            _expression(spec.stream.source, names, (*loc, "stream", "source")),
            spec.stream.content_type,
        )
    return CompiledCall(
        api=spec.api,
        method=spec.method,
        path=_path(spec.path, names, (*loc, "path")),
        app_org=None if spec.app_org is None else _value(spec.app_org, names, (*loc, "app_org")),
        acting_for=None if spec.acting_for is None else _value(spec.acting_for, names, (*loc, "acting_for")),
        query=query,
        headers=headers,
        body=build_body(json_body, bytes_body, multipart, stream),
        response=ResponseKind(spec.response),
        accept=frozenset(spec.accept),
        idempotent=default_idempotent(spec.method) if spec.idempotent is None else spec.idempotent,
        keep=None if spec.keep is None else _value(spec.keep, names, (*loc, "keep")),
    )


def _compile_save_receipt(spec: SaveReceiptSpec, names: Names, loc: Loc) -> CompiledSaveReceipt:
    return CompiledSaveReceipt(
        receipt_id=_value(spec.id, names, (*loc, "id")),
        status=spec.status,
        text=_value(spec.text, names, (*loc, "text")),
        type_name=spec.type,
        references=tuple(
            (type_name, _value(value, names, (*loc, "references", type_name)))
            for type_name, value in spec.references.items()
        ),
    )


def _compile_load_receipt(spec: LoadReceiptSpec, names: Names, loc: Loc) -> CompiledLoadReceipts:
    def optional(source: str | None, key: str) -> Evaluate | None:
        return None if source is None else _value(source, names, (*loc, key))

    return CompiledLoadReceipts(
        receipt_id=optional(spec.id, "id"),
        reference_type=optional(spec.reference_type, "reference_type"),
        reference_value=optional(spec.reference_value, "reference_value"),
        required=spec.required,
    )


def _compile_faults(rules: Any, loc: Loc) -> tuple[CompiledFault, ...]:
    compiled = []
    for index, rule in enumerate(rules):
        error = getattr(errors, rule.raise_, None)
        if not (isinstance(error, type) and issubclass(error, ProxyError)):
            raise Located((*loc, index, "raise"), f"unknown error {rule.raise_!r}")
        status = rule.match.status
        statuses = (
            frozenset() if status is None else frozenset([status] if isinstance(status, int) else status)
        )
        code = rule.match.error_code
        compiled.append(
            CompiledFault(
                statuses=statuses,
                error_code=None if code is None else str(code),
                mp_code=rule.match.mp_code,
                error=error,
                error_id=rule.error_id,
                message=rule.message,
            )
        )
    return tuple(compiled)


def _example_principal(operation: CompiledOperation, spec: OperationSpec) -> Principal:
    example = spec.example.principal
    if operation.identity.acts_as == "service_owner":
        return Principal(
            caller_id="example",
            kind=CallerKind.SERVICE_OWNER,
            service_owner=example.service_owner,
            org=example.org,
            scopes=tuple(sorted(operation.identity.scopes)),
        )
    return Principal(
        caller_id="example", kind=CallerKind.END_USER_SYSTEM, orgs={example.org: OrgGrant(example.org)}
    )


def example_routing(spec: OperationSpec) -> RoutingTable:
    """The routing table an operation's example declares."""
    return RoutingTable.of(Route(**route.model_dump()) for route in spec.example.routes)


def example_responses(spec: OperationSpec) -> dict[str, Altinn3Response]:
    """The example's canned responses as :class:`Altinn3Response` values."""
    return {
        step: Altinn3Response(
            status=canned.status,
            headers={"Content-Type": "application/json"},
            json=canned.json_body,
            content=None if canned.text is None else canned.text.encode("utf-8"),
        )
        for step, canned in spec.example.responses.items()
    }


def example_request(contract: OperationContract) -> ElementDecl:
    """What an example request may hold: the body's children (a streamed payload optional, since it
    travels as an attachment) followed by the message-contract headers, as the front presents them."""
    body = tuple(dataclasses.replace(f, min_occurs=0) if f.mtom else f for f in contract.request.fields)
    headers = tuple(Field(h.name, h.type, nillable=h.nillable) for h in contract.request_headers)
    return dataclasses.replace(contract.request, fields=(*body, *headers))


def _example_body(
    operation: CompiledOperation, spec: OperationSpec, loc: Loc, declared: OperationContract | None
) -> Any:
    """The example request as the engine receives it: the SOAP body element, or REST values."""
    example = spec.example.request
    if spec.legacy.rest is not None or declared is None or operation.contract is None:
        if isinstance(example, str):
            raise Located((*loc, "request"), "a REST example request has 'route', 'query' and 'body'")
        return {"route": example.route, "query": example.query, "body": example.body}
    if not isinstance(example, str):
        raise Located((*loc, "request"), "a SOAP example request is the body element as XML text")
    try:
        body = etree.fromstring(example.encode("utf-8"), parser=_EXAMPLE_PARSER)
    except etree.XMLSyntaxError as error:
        raise Located((*loc, "request"), f"example request is not well-formed XML: {error}") from None
    problems = check_element(body, example_request(declared))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise Located((*loc, "request"), f"example request breaks the contract: {problems[0]}{more}")
    body.tag = operation.contract.request_name.clark  # an alias runs the example under its own name
    return body


def _check_example(
    operation: CompiledOperation, spec: OperationSpec, loc: Loc, declared: OperationContract | None
) -> None:
    """Run the example of ``spec`` as ``operation``; ``declared`` is the contract the example is written for
    (None for a REST operation)."""
    body = _example_body(operation, spec, loc, declared)
    request = OperationRequest(
        operation.legacy.service, operation.legacy.operation, body, _example_principal(operation, spec)
    )
    authorize: Callable[[Principal, str], OrgGrant] = lambda principal, reportee: OrgGrant(reportee)  # noqa: E731
    plan = run_operation(
        operation, request, example_routing(spec), authorize, lambda: datetime(2026, 1, 1, tzinfo=UTC)
    )
    try:
        answer = drive(plan, DryRun(example_responses(spec)).answer)
    except MissingResponse as error:
        raise Located((*loc, "responses"), f"example: {error}") from None
    except MappingRuntimeError as error:
        raise Located(loc, f"example does not run: {error.__cause__} (at {error.location})") from None
    except ProxyError as error:
        raise Located(loc, f"example does not run: {type(error).__name__}: {error}") from None
    if operation.contract is None:
        return  # a REST answer is a JSON document by construction
    try:
        element = answer.element()
    except etree.XMLSyntaxError as error:
        where = (*loc[:-1], "answer" if spec.answer is not None else "answer_file")
        raise Located(where, f"answer does not render well-formed XML for the example: {error}") from None
    problems = check_element(element, operation.contract.response)
    if problems:
        where = (*loc[:-1], "answer" if spec.answer is not None else "answer_file")
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise Located(
            where,
            f"the example answer of {operation.legacy.operation} breaks its contract: {problems[0]}{more}",
        )
