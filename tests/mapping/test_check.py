"""Broken mappings are refused with file:line; the real mapping directory passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.errors import ConfigurationError
from proxy.pipeline.loading import check, load_mapping_set
from tests.mapping.helpers import MAPPINGS

NS = "http://www.altinn.no/services/ServiceEngine/ContextHandler/2014/10"
MINIMAL = """\
version: 1
namespaces:
  t: urn:test:types
types:
  t:Context:
    Status: string required
    Count: int
operations:
  - legacy:
      service: ContextHandlerExternalBasic
      operation: GetReporteeElementContextExternalBasic
      endpoint: /ServiceEngineExternal/ContextHandlerExternalBasic.svc
      binding: basic
      soap_action: NS/IContextHandlerExternalBasic/GetReporteeElementContextExternalBasic
    contract:
      request:
        fields:
          systemUserName: string required
          systemPassword: string required
          Reportee: string required
          Text: string nillable
      response:
        fields:
          GetReporteeElementContextExternalBasicResult: t:Context nillable
    identity:
      as: system_user
      reportee: fields.reportee
      scopes: [altinn:correspondence.read]
    fields:
      reportee: {path: Reportee, required: true}
      text: Text
    steps:
      - name: lookup
        call:
          api: correspondence
          method: GET
          path: "/correspondence/api/v1/correspondence/{{ fields.text | segment }}"
    answer: |
      <GetReporteeElementContextExternalBasicResponse xmlns="NS">
        <GetReporteeElementContextExternalBasicResult xmlns:t="urn:test:types">
          <t:Status>{{ results.lookup.status }}</t:Status>
          <t:Count>1</t:Count>
        </GetReporteeElementContextExternalBasicResult>
      </GetReporteeElementContextExternalBasicResponse>
    example:
      request: |
        <GetReporteeElementContextExternalBasic xmlns="NS">
          <systemUserName>x</systemUserName><systemPassword>x</systemPassword>
          <Reportee>910000000</Reportee><Text>x</Text>
        </GetReporteeElementContextExternalBasic>
      responses:
        lookup: {json: {status: Published}}
""".replace("NS", NS)


def _write(directory: Path, text: str) -> Path:
    path = directory / "ping.yaml"
    path.write_text(text)
    return path


def _line_of(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_shipped_mappings_pass() -> None:
    assert check(MAPPINGS) == []


def test_a_minimal_mapping_passes(tmp_path: Path) -> None:
    _write(tmp_path, MINIMAL)
    assert check(tmp_path) == []
    assert len(load_mapping_set(tmp_path).digest) == 64


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        ("      scopes:", "      scopez:", "scopez", "unknown key 'scopez'"),
        (
            "{{ fields.text | segment }}",
            "{{ fields.txt | segment }}",
            "fields.txt",
            "undefined field fields.txt",
        ),
        ("{{ results.lookup.status }}", "{{ result.lookup }}", "answer: |", "undefined variable 'result'"),
        ("<t:Status>{{", "<t:Status>{% if %}{{", "answer: |", "does not compile"),
        ("</t:Status>", "</t:Statu>", "answer: |", "well-formed"),
        (
            "        lookup: {json",
            "        other: {json",
            "responses:",
            "no canned response for step 'lookup'",
        ),
        ("      text: Text", "      text: Text/[1]", "Text/[1]", "local names"),
        # The legacy side must be the catalogue's, in every detail.
        (
            "IContextHandlerExternalBasic/GetReporteeElementContextExternalBasic",
            "IContextHandlerExternalBasic/GetContext",
            "soap_action:",
            "SOAPAction",
        ),
        (
            "      operation: GetReporteeElementContextExternalBasic",
            "      operation: GetContextBasic",
            "operation: GetContextBasic",
            "unknown operation 'GetContextBasic' of ContextHandlerExternalBasic",
        ),
        (
            "      service: ContextHandlerExternalBasic",
            "      service: PingService",
            "PingService",
            "unknown service",
        ),
        ("      binding: basic", "      binding: ws", "binding: ws", "does not match the endpoint"),
        (
            "      endpoint: /ServiceEngineExternal/ContextHandlerExternalBasic.svc",
            "      endpoint: /ServiceEngineExternal/ContextHandlerExternal.svc",
            "endpoint:",
            "is not ContextHandlerExternalBasic's",
        ),
        # The example answer must conform to the declared response type.
        (
            "          <t:Status>{{ results.lookup.status }}</t:Status>\n          <t:Count>1</t:Count>",
            "          <t:Count>1</t:Count>\n          <t:Status>{{ results.lookup.status }}</t:Status>",
            "answer: |",
            "Status is out of order: it must come before Count",
        ),
        (
            "          <t:Status>{{ results.lookup.status }}</t:Status>\n",
            "",
            "answer: |",
            "GetReporteeElementContextExternalBasicResult/Status is required but missing",
        ),
        ("<t:Count>1</t:Count>", "<t:Count>one</t:Count>", "answer: |", "'one', not a valid int"),
        (
            "<t:Count>1</t:Count>",
            '<t:Count xmlns:i="http://www.w3.org/2001/XMLSchema-instance" i:nil="true"/>',
            "answer: |",
            "Count is nil but not nillable",
        ),
        # The contract itself, and the field paths read against it.
        ("          Text: string nillable", "          Text: strng", "Text: strng", "unknown type 'strng'"),
        (
            "          Text: string nillable",
            "          Text: x:Thing",
            "Text: x:Thing",
            "unknown namespace prefix 'x'",
        ),
        ("      text: Text", "      text: Txt", "text: Txt", "has no element 'Txt'"),
    ],
    ids=[
        "typo-key",
        "undefined-field",
        "undefined-variable",
        "template-syntax",
        "malformed-xml",
        "example",
        "path",
        "wrong-soap-action",
        "unknown-operation",
        "unknown-service",
        "binding-not-the-endpoints",
        "wrong-endpoint",
        "answer-elements-swapped",
        "answer-required-element-missing",
        "answer-wrong-type",
        "answer-nil-not-nillable",
        "unknown-type",
        "unknown-prefix",
        "field-path-not-in-contract",
    ],
)
def test_a_broken_mapping_is_refused_with_file_and_line(
    tmp_path: Path, old: str, new: str, needle: str, message: str
) -> None:
    text = MINIMAL.replace(old, new)
    assert text != MINIMAL
    path = _write(tmp_path, text)

    problems = check(tmp_path)

    matching = [p for p in problems if message in p.message]
    assert len(matching) == 1, problems
    problem = matching[0]
    assert problem.file == str(path)
    assert problem.line == _line_of(text, needle)
    assert message in problem.message
    assert str(problem).startswith(f"{path}:{problem.line}: ")


def test_a_template_problem_points_at_the_answer_key(tmp_path: Path) -> None:
    text = MINIMAL.replace("{{ results.lookup.status }}", "{{ results.nope }}")
    _write(tmp_path, text)
    (problem,) = check(tmp_path)
    assert problem.line == _line_of(text, "answer: |")
    assert "results.nope" in problem.message


def test_a_missing_template_file_is_reported(tmp_path: Path) -> None:
    answer_block = MINIMAL[MINIMAL.index("    answer: |") : MINIMAL.index("    example:")]
    text = MINIMAL.replace(answer_block, "    answer_file: templates/ping.xml.j2\n")
    _write(tmp_path, text)
    (problem,) = check(tmp_path)
    assert problem.line == _line_of(text, "answer_file")
    assert "does not exist" in problem.message


def test_a_yaml_syntax_error_has_its_line(tmp_path: Path) -> None:
    text = MINIMAL.replace("      binding: basic", "      binding: [basic")
    _write(tmp_path, text)
    (problem,) = check(tmp_path)
    assert "not valid YAML" in problem.message
    assert problem.line is not None


def test_loading_a_broken_directory_raises_configuration_error(tmp_path: Path) -> None:
    _write(tmp_path, MINIMAL.replace("      scopes:", "      scopez:"))
    with pytest.raises(ConfigurationError, match="scopez"):
        load_mapping_set(tmp_path)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            'resolve_id: {kind: receipt, value: "1", parent: "{{ fields.text }}"}',
            "'parent' belongs to 'allocate_id'",
        ),
        (
            'allocate_id: {kind: receipt, value: "{{ fields.text }}", with_parent: true}',
            "'with_parent' belongs to",
        ),
    ],
    ids=["parent-on-resolve", "with-parent-on-allocate"],
)
def test_an_id_parent_is_recorded_on_allocation_and_read_on_resolution(
    tmp_path: Path, step: str, message: str
) -> None:
    text = MINIMAL.replace("    steps:\n", f"    steps:\n      - name: ids\n        {step}\n", 1)
    _write(tmp_path, text)
    problems = check(tmp_path)
    assert [p for p in problems if message in p.message], problems
