"""Legacy values that become part of an Altinn 3 URL cannot change its shape.

Every path parameter of every shipped mapping is fed traversal, encoded slashes, ``?``, ``#``, ``;``
and over-long values: each is either refused with a fault before any call or sent as exactly one
segment, and the URL the HTTP client would request keeps the template's literal segments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from yarl import URL

from proxy.errors import InvalidField, ProxyError, UpstreamError
from proxy.mapping.engine import CompiledCall
from proxy.mapping.expressions import Names
from proxy.mapping.paths import MAX_SEGMENT_LENGTH, CallPath, PathParameter, compile_path
from proxy.pipeline.loading import check, load_mapping_set
from tests.mapping.helpers import BASE, MAPPINGS
from tests.mapping.test_check import MINIMAL

GUID = "0194f7a0-0000-7000-8000-000000000001"
VALID = {"guid": GUID, "digits": "1000001", "segment": "ttd-demo"}
HOSTILE = [
    "../../../../correspondence/api/v1/correspondence",
    "..",
    ".",
    "",
    "   ",
    "%2e%2e",
    "%2E%2E%2Fcorrespondence",
    ".%2e",
    "a/b",
    "a%2Fb",
    "a\\b",
    "x?role=Recipient",
    "x#fragment",
    "x;jsessionid=1",
    "x\r\nHost: elsewhere.example",
    "https://elsewhere.example/",
    "//elsewhere.example",
    "A" * 10_000,
    "9" * 40,
    f"{GUID}/../../../correspondence",
    f"{GUID}?x=1",
    f"{GUID}#x",
    f"{GUID};x",
    f"{GUID}%2F..",
    f"/{GUID}",
    GUID[:-1],
    GUID + "0",
    GUID.replace("-", ""),
    "{" + GUID + "}",
    "urn:uuid:" + GUID,
]


def _shipped_paths() -> Iterator[tuple[str, CallPath]]:
    mapping_set = load_mapping_set(MAPPINGS)
    for (service, operation), compiled in sorted(mapping_set.operations.items()):
        for step in compiled.steps:
            if isinstance(step.action, CompiledCall):
                path = step.action.path
                assert isinstance(path, CallPath), f"{operation}/{step.name}: the path is not a CallPath"
                yield f"{service}.{operation}/{step.name}", path


SHIPPED = dict(_shipped_paths())
PARAMETERIZED = {where: path for where, path in SHIPPED.items() if path.parameters}


def _with_values(path: CallPath, values: list[str]) -> CallPath:
    """``path`` whose parameters evaluate to ``values`` (in order), whatever they read in a mapping."""
    supply = iter(values)
    parts = tuple(part if isinstance(part, str) else _constant(part, next(supply)) for part in path.parts)
    return CallPath(path.source, parts)


def _constant(parameter: PathParameter, value: str) -> PathParameter:
    return dataclasses.replace(parameter, evaluate=lambda _context: value)


def _render(path: CallPath, values: list[str]) -> str | ProxyError:
    """The rendered path, or the fault it raised."""
    try:
        return _with_values(path, values)({})
    except ProxyError as refused:
        return refused


def _assert_shape(path: CallPath, rendered: str) -> None:
    """The URL the client requests has the template's literal segments and one segment per parameter."""
    url = URL(BASE.platform + rendered, encoded=True)  # as proxy.altinn3.client sends it
    assert url.host == URL(BASE.platform).host
    assert url.query_string == ""
    assert url.fragment == ""
    segments = url.raw_path.split("/")
    assert len(segments) == len(path.parts), rendered
    for part, segment in zip(path.parts, segments, strict=True):
        if isinstance(part, str):
            assert segment == part
        else:
            assert segment not in ("", ".", "..")
            assert "/" not in segment
            assert not {"?", "#", ";", "\\", "\r", "\n", " "} & set(segment), segment


def test_every_call_of_every_mapping_was_checked() -> None:
    assert len(SHIPPED) >= 20
    assert len(PARAMETERIZED) >= 15
    assert {p.type_name for path in PARAMETERIZED.values() for p in path.parameters} == {
        "guid",
        "digits",
        "segment",
    }


@pytest.mark.parametrize("where", sorted(PARAMETERIZED))
def test_hostile_values_in_every_path_parameter_never_leave_the_intended_path(where: str) -> None:
    path = PARAMETERIZED[where]
    valid = [VALID[p.type_name] for p in path.parameters]
    _assert_shape(path, path({}) if not path.parameters else _with_values(path, valid)({}))
    for index, parameter in enumerate(path.parameters):
        for value in HOSTILE:
            values = [*valid[:index], value, *valid[index + 1 :]]
            rendered = _render(path, values)
            if isinstance(rendered, str):
                _assert_shape(path, rendered)
                continue
            expected = InvalidField if parameter.from_caller else UpstreamError
            assert isinstance(rendered, expected), (where, value, rendered)
            assert parameter.source in rendered.message
            assert len(rendered.message) < 300  # a hostile value is never echoed in full


def test_a_guid_is_written_canonically() -> None:
    path = compile_path("/a/{{ fields.id | guid }}/b", Names(frozenset({"id"}), frozenset(), frozenset()))
    assert path({"fields": {"id": f" {GUID.upper()} "}}) == f"/a/{GUID}/b"


def test_digits_and_segments_are_one_encoded_segment_each() -> None:
    names = Names(frozenset({"org", "id"}), frozenset(), frozenset())
    path = compile_path("/apps/{{ fields.org | segment }}/items/{{ fields.id | digits }}", names)
    assert path({"fields": {"org": "ttd", "id": 42}}) == "/apps/ttd/items/42"
    assert [p.type_name for p in path.parameters] == ["segment", "digits"]
    for value in HOSTILE:
        rendered = _render(path, [value, "1"])
        if isinstance(rendered, str):
            _assert_shape(path, rendered)
        else:
            assert isinstance(rendered, InvalidField)
            assert value.strip() in ("", ".", "..") or len(value.strip()) > MAX_SEGMENT_LENGTH
    for value in ["-1", "1.5", "1e3", "0x10", "١٢", "1" * 19, " ", "1/2"]:
        with pytest.raises(InvalidField, match=r"fields\.id must be a whole number"):
            _with_values(path, ["ttd", value])({})


def test_a_parameter_expression_may_hold_a_slash() -> None:
    path = compile_path(
        "/a/{{ 100 // fields.n | digits }}/b", Names(frozenset({"n"}), frozenset(), frozenset())
    )
    assert path({"fields": {"n": 7}}) == "/a/14/b"


def test_a_parameter_reading_an_earlier_answer_is_an_upstream_fault() -> None:
    names = Names(frozenset(), frozenset(), frozenset({"created"}))
    path = compile_path("/x/{{ results.created.id | guid }}", names)
    (parameter,) = path.parameters
    assert parameter == PathParameter("results.created.id", "guid", parameter.evaluate, False)
    with pytest.raises(UpstreamError, match="Altinn 3 answered a value the proxy cannot use in a URL"):
        path({"results": {"created": {"id": "../x"}}})


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/correspondence/api/v1/correspondence/{{ fields.text }}", "must be exactly one parameter"),
        ("/correspondence/api/v1/correspondence/{{ fields.text | urlencode }}", "ending in its type"),
        ("/correspondence/api/v1/c-{{ fields.text | segment }}", "must be exactly one parameter"),
        ("/correspondence/{{ fields.text | segment }}{{ fields.text | segment }}", "exactly one parameter"),
        ("/correspondence/{% if true %}x{% endif %}", "no {% %} blocks"),
        ("/correspondence/../x", "may not be '..'"),
        ("/correspondence/x?role=Sender", "use query: for ?"),
        ("/correspondence/{{ fields.nope | guid }}", "undefined field fields.nope"),
    ],
)
def test_an_unsafe_path_declaration_is_refused_with_file_and_line(
    tmp_path: Path, path: str, message: str
) -> None:
    text = MINIMAL.replace('"/correspondence/api/v1/correspondence/{{ fields.text | segment }}"', f'"{path}"')
    assert text != MINIMAL
    mapping = tmp_path / "ping.yaml"
    mapping.write_text(text)

    (problem,) = check(tmp_path)

    assert message in problem.message
    assert problem.file == str(mapping)
    assert problem.line == next(n for n, line in enumerate(text.splitlines(), 1) if 'path: "' in line)
