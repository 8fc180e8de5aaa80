"""REST operations in mapping files: how they are declared, checked at load, and run without a server."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from proxy.errors import AuthorizationDenied
from proxy.identity.principal import CallerKind, OrgGrant, Principal
from proxy.mapping.calls import Altinn3Call, Altinn3Response, PlanRequest
from proxy.mapping.compiler import MappingSources, compile_sources
from proxy.mapping.dryrun import drive
from proxy.mapping.engine import Engine, OperationRequest
from proxy.mapping.routing import RoutingTable
from proxy.pipeline.loading import load_mapping_set
from tests.mapping.helpers import MAPPINGS

HEADER = """
version: 1
operations:
  - legacy:
      service: LegacyRest
      operation: Probe
      rest: {rest}
    identity: {{as: system_user, reportee: fields.who, scopes: [altinn:broker.read], exchange: false}}
    fields:
      who: {{path: route/who, required: true}}
      top: {{path: query/$top, type: int}}
      names: {{path: body/_embedded/items, list: true, fields: {{name: Name, size: {{path: Size, type: int}}}}}}
    steps:
      - name: listed
        call: {{api: broker, method: GET, path: /broker/api/v1/filetransfer, query: {{resourceId: x}}}}
"""


def _compile(
    tmp_path: Path, rest: str, answer: str, request: str = "{route: {who: '310000019'}}"
) -> list[str]:
    text = (
        HEADER.format(rest=rest)
        + textwrap.indent(answer, "    ")
        + f"    example:\n      principal: {{org: '310000019'}}\n      request: {request}\n      responses: {{listed: {{json: ['a', 'b']}}}}\n"
    )
    (tmp_path / "probe.yaml").write_text(text)
    _, problems = compile_sources(MappingSources(str(tmp_path), {"probe.yaml": text.encode()}))
    return [problem.message for problem in problems]


def test_a_rest_operation_compiles_with_a_document_answer(tmp_path: Path) -> None:
    answer = "answer_json:\n  _embedded:\n    items: {$foreach: results.listed, $as: id, $item: {Id: '{{ id }}', N: '{{ index }}'}}\n"
    assert _compile(tmp_path, "{method: GET, route: '/api/{who}/messages', collection: items}", answer) == []


@pytest.mark.parametrize(
    ("rest", "answer", "expected"),
    [
        ("{method: GET, route: '/api/{who}/nothing'}", "answer_json: {}\n", "is not an Altinn 2 REST route"),
        (
            "{method: GET, route: '/api/{who}/messages', filters: [A]}",
            "answer_json: {}\n",
            "'filters' need a 'collection'",
        ),
        ("{method: GET, route: '/api/{who}/messages'}", "answer: <x/>\n", "answers with 'answer_json'"),
        (
            "{method: GET, route: '/api/{who}/messages'}",
            "answer_json: {$item: {}, $each: x}\n",
            "$item goes with",
        ),
        ("{method: GET, route: '/api/{who}/messages'}", "answer_json: {A: '{{ fields.typo }}'}\n", "typo"),
        (
            "{method: GET, route: '/api/{who}/messages'}",
            "answer_json: {}\nanswer_status: '{{ nothing }}'\n",
            "nothing",
        ),
    ],
)
def test_mistakes_are_refused_at_load_with_a_reason(
    tmp_path: Path, rest: str, answer: str, expected: str
) -> None:
    problems = _compile(tmp_path, rest, answer)
    assert any(expected in problem for problem in problems), problems


def _principal() -> Principal:
    return Principal("probe", CallerKind.END_USER_SYSTEM, orgs={"310000019": OrgGrant("310000019")})


def test_fields_come_from_route_query_and_json_body(tmp_path: Path) -> None:
    answer = (
        "answer_json:\n  Top: '{{ fields.top }}'\n  Names: '{{ fields.names }}'\n  Who: '{{ fields.who }}'\n"
        'answer_status: "{{ 201 if fields.names else 200 }}"\n'
        "answer_headers: {Location: '/api/{{ fields.who }}/messages/1', Skipped: '{{ none }}'}\n"
    )
    assert _compile(tmp_path, "{method: POST, route: '/api/{who}/messages', body: json}", answer) == []
    (mappings := tmp_path / "set").mkdir()
    (tmp_path / "probe.yaml").rename(mappings / "probe.yaml")
    engine = Engine(lambda: load_mapping_set(mappings), RoutingTable())
    values: dict[str, Any] = {
        "route": {"who": "310000019"},
        "query": {"$top": "5"},
        "body": {"_embedded": {"items": [{"Name": "a", "Size": 3}, {"Name": "b"}]}},
    }
    seen: list[PlanRequest] = []

    def answer_call(request: PlanRequest) -> Any:
        seen.append(request)
        assert isinstance(request, Altinn3Call)
        return Altinn3Response(200, json=[])

    reply = drive(
        engine.start(OperationRequest("LegacyRest", "Probe", values, _principal())),
        answer_call,
    )
    document = json.loads(reply.xml)
    assert document == {
        "status": 201,
        "headers": {"Location": "/api/310000019/messages/1"},
        "body": {
            "Top": 5,
            "Names": [{"name": "a", "size": 3}, {"name": "b", "size": None}],
            "Who": "310000019",
        },
    }
    assert len(seen) == 1


def test_the_shipped_rest_mappings_route_each_template_once() -> None:
    mappings = load_mapping_set(MAPPINGS)
    routes = [
        (op.legacy.rest.method, op.legacy.rest.route) for op in mappings.operations.values() if op.legacy.rest
    ]
    assert len(routes) == len(set(routes)) == len(mappings.rest)
    assert ("GET", "/api/{who}/messages") in routes
    assert mappings.rest_operation("GET", "/API/{WHO}/MESSAGES") is mappings.rest_operation(
        "GET", "/api/{who}/messages"
    )


def test_acting_for_makes_each_call_with_that_organisations_system_user(tmp_path: Path) -> None:
    text = textwrap.dedent(
        """
        version: 1
        operations:
          - legacy: {service: LegacyRest, operation: Probe, rest: {method: GET, route: /api/reportees}}
            identity: {as: system_user, reportee: "caller_orgs[0]", scopes: [altinn:broker.read], exchange: false}
            fields:
              extra: query/extra
            steps:
              - name: lists
                foreach: "(caller_orgs | list) + ([fields.extra] if fields.extra else [])"
                as: org
                call: {api: broker, method: GET, acting_for: "{{ org }}", path: /broker/api/v1/filetransfer}
            answer_json: {N: "{{ results.lists | length }}"}
            example:
              principal: {org: "310000019"}
              request: {}
              responses: {lists: {json: []}}
        """
    )
    (tmp_path / "probe.yaml").write_text(text)
    engine = Engine(lambda: load_mapping_set(tmp_path), RoutingTable())
    principal = Principal(
        "probe",
        CallerKind.END_USER_SYSTEM,
        orgs={"310000019": OrgGrant("310000019"), "310000027": OrgGrant("310000027", external_ref="b")},
    )
    seen: list[Altinn3Call] = []

    def answer_batch(request: PlanRequest) -> Any:
        calls = request.calls  # type: ignore[union-attr]
        seen.extend(calls)
        return tuple(Altinn3Response(200, json=[]) for _ in calls)

    values: dict[str, Any] = {"route": {}, "query": {}, "body": None}
    drive(engine.start(OperationRequest("LegacyRest", "Probe", values, principal)), answer_batch)
    assert [(c.token.system_user_org, c.token.external_ref) for c in seen] == [
        ("310000019", None),
        ("310000027", "b"),
    ]
    # An organisation the caller may not act for is refused before any call.
    seen.clear()
    stranger = {**values, "query": {"extra": "310000035"}}
    with pytest.raises(AuthorizationDenied):
        drive(engine.start(OperationRequest("LegacyRest", "Probe", stranger, principal)), answer_batch)
    assert seen == []
