"""Broken mappings are refused with file:line; the real mapping directory passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.errors import ConfigurationError
from proxy.mapping.compiler import load_mapping_set
from proxy.mapping.tools import check
from tests.mapping.helpers import MAPPINGS

MINIMAL = """\
version: 1
operations:
  - legacy:
      service: PingService
      operation: PingBasic
      request_element: "{urn:test}PingBasic"
      response_element: "{urn:test}PingBasicResponse"
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
          path: "/correspondence/api/v1/correspondence/{{ fields.text }}"
    answer: |
      <PingBasicResponse xmlns="urn:test"><Result>{{ results.lookup.status }}</Result></PingBasicResponse>
    example:
      request: <PingBasic xmlns="urn:test"><Reportee>910000000</Reportee><Text>x</Text></PingBasic>
      responses:
        lookup: {json: {status: Published}}
"""


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
        ("{{ fields.text }}", "{{ fields.txt }}", "fields.txt", "undefined field fields.txt"),
        ("{{ results.lookup.status }}", "{{ result.lookup }}", "answer: |", "undefined variable 'result'"),
        ("<Result>{{", "<Result>{% if %}{{", "answer: |", "does not compile"),
        ("</Result>", "</Resul>", "answer: |", "well-formed"),
        (
            "        lookup: {json",
            "        other: {json",
            "responses:",
            "no canned response for step 'lookup'",
        ),
        ("      text: Text", "      text: Text/[1]", "Text/[1]", "local names"),
    ],
    ids=[
        "typo-key",
        "undefined-field",
        "undefined-variable",
        "template-syntax",
        "malformed-xml",
        "example",
        "path",
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
    text = MINIMAL.replace("      operation: PingBasic", "      operation: [PingBasic")
    _write(tmp_path, text)
    (problem,) = check(tmp_path)
    assert "not valid YAML" in problem.message
    assert problem.line is not None


def test_loading_a_broken_directory_raises_configuration_error(tmp_path: Path) -> None:
    _write(tmp_path, MINIMAL.replace("      scopes:", "      scopez:"))
    with pytest.raises(ConfigurationError, match="scopez"):
        load_mapping_set(tmp_path)
