"""The plain-Python fast path gives exactly what Jinja gives, and hands everything else to Jinja."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import Undefined

from proxy.errors import InvalidField
from proxy.mapping.expressions import VALUES, XML
from proxy.mapping.fastpath import fast_expression, fast_template, with_fallback


@dataclass(frozen=True)
class Identity:
    org: str
    caller_id: str


def _route(code: str, edition: str) -> dict[str, str]:
    return {"resource_id": f"res-{code}-{edition}"}


def context() -> dict[str, Any]:
    return {
        "fields": {
            "title": "T & t <x>",
            "empty": None,
            "language": "2068",
            "reportee": "310000019",
            "code": "4711",
            "edition": "1",
            "items": ["shadowed by dict.items"],
            "links": [{"url": "https://a", "text": "A"}, {"url": None, "text": "B"}],
            "flag": True,
            "count": 3,
        },
        "vars": {"resource": "res-4711-1"},
        "results": {"create": {"correspondences": [{"correspondenceId": "c-1"}]}, "init": ["a1", "a2"]},
        "identity": Identity("310000035", "demo-so"),
        "route": _route,
        "now": "2026-01-01T10:00:00.000Z",
        "index": 1,
    }


EXPRESSIONS = [
    "fields.title",
    "fields.title or ''",
    "fields.empty or ''",
    "fields.empty or none",
    "fields.empty and fields.title",
    "not fields.empty",
    "fields.language | lcid_to_iso",
    "fields.reportee | recipient_urn",
    "identity.org | org_urn",
    "identity.caller_id",
    "route(fields.code, fields.edition).resource_id",
    "route(fields.code, edition=fields.edition)['resource_id']",
    "results.create.correspondences[0].correspondenceId",
    "results.init[index]",
    "results.init[-1]",
    "fields.links | remap_keys({'url': 'linkURL', 'text': 'linkText'})",
    "fields.links | selectattr('url') | list",
    "[vars.resource, fields.code]",
    "(fields.code, 1)",
    "{'a': fields.code, 'b': [1, 2]}",
    "fields.count > 2",
    "1 < fields.count <= 3",
    "fields.code in ['4711', '4712']",
    "fields.code not in ['4711']",
    "fields.title if fields.flag else 'no'",
    "fields.items",
    "fields.title | upper",
    "fields.count is number",
    "fields.title[:2]",
    "now | iso_to_xs",
]


@pytest.mark.parametrize("source", EXPRESSIONS)
def test_expressions_evaluate_as_jinja_does(source: str) -> None:
    jinja = VALUES.compile_expression(source, undefined_to_none=False)
    evaluate = with_fallback(fast_expression(VALUES, source), lambda c: jinja(**c))
    values = context()
    assert evaluate(values) == jinja(**values)


@pytest.mark.parametrize(
    "source",
    [
        "fields.title",
        "fields.title or ''",
        "fields.language | lcid_to_iso",
        "route(fields.code, fields.edition).resource_id",
        "results.init[index]",
        "[vars.resource]",
        "fields.count > 2",
    ],
)
def test_the_common_forms_take_the_fast_path(source: str) -> None:
    assert fast_expression(VALUES, source) is not None


@pytest.mark.parametrize(
    "source", ["fields.title | selectattr('x', 'none')", "fields.count is number", "x[1:2]"]
)
def test_forms_that_need_jinja_get_no_fast_path(source: str) -> None:
    assert fast_expression(VALUES, source) is None


def _outcome(evaluate: Any, values: dict[str, Any]) -> tuple[str, str]:
    try:
        result = evaluate(values)
        return ("value", str(result))
    except Exception as error:  # the comparison is the point: same type, same message
        return (type(error).__name__, str(error))


@pytest.mark.parametrize(
    "source",
    ["fields.missing", "fields.missing or 'x'", "nothing.at_all", "results.init[7]", "identity.nope"],
)
def test_missing_values_fail_exactly_as_jinja(source: str) -> None:
    jinja = VALUES.compile_expression(source, undefined_to_none=False)
    evaluate = with_fallback(fast_expression(VALUES, source), lambda c: jinja(**c))
    fast_outcome = _outcome(evaluate, context())
    assert fast_outcome == _outcome(lambda c: jinja(**c), context())
    assert fast_outcome[0] == "UndefinedError"


def test_errors_raised_by_filters_propagate_unchanged() -> None:
    evaluate = fast_expression(VALUES, "fields.title | recipient_urn")
    assert evaluate is not None
    with pytest.raises(InvalidField):
        evaluate(context())


def test_the_sandbox_still_refuses_unsafe_calls() -> None:
    source = "fields.links.append(1)"
    jinja = VALUES.compile_expression(source, undefined_to_none=False)
    evaluate = with_fallback(fast_expression(VALUES, source), lambda c: jinja(**c))
    with pytest.raises(SecurityError):
        evaluate(context())


@pytest.mark.parametrize(
    "source",
    [
        "/api/v1/attachment/{{ results.init[index] }}/upload",
        "{{ fields.code }}-{{ fields.empty }}-{{ fields.flag }}",
        "plain {{ fields.title }}\n",
    ],
)
def test_value_templates_render_as_jinja_does(source: str) -> None:
    fast = fast_template(VALUES, source)
    assert fast is not None
    assert fast(context()) == VALUES.from_string(source).render(context())


def test_xml_templates_escape_and_finalize_as_jinja_does() -> None:
    source = '<a>\n  <b>{{ fields.title }}</b><c>{{ fields.empty }}</c><d x="{{ fields.title }}"/>\n</a>\n'
    fast = fast_template(XML, source)
    assert fast is not None
    rendered = fast(context())
    assert rendered == XML.from_string(source).render(context())
    assert "T &amp; t &lt;x&gt;" in rendered
    assert "<c></c>" in rendered


def test_templates_with_blocks_are_left_to_jinja() -> None:
    assert fast_template(XML, "{% for x in fields.links %}{{ x.url }}{% endfor %}") is None


def test_field_paths_find_what_the_child_walk_finds() -> None:
    from lxml import etree

    from proxy.mapping.fields import _walk, compile_field

    body = etree.fromstring(
        b'<Op xmlns="urn:op" xmlns:c="urn:c"><c:A><c:B>1</c:B><B>2</B></c:A><A><b:B xmlns:b="urn:b">3</b:B>'
        b"</A><A xmlns=''><B>4</B><B/></A><X><A><B>no</B></A></X></Op>"
    )
    many = compile_field("b", "A/B", many=True)
    one = compile_field("b", "A/B")
    walked = [element.text for element in _walk(body, many.steps)]
    assert walked == ["1", "2", "3", "4", None]
    assert many.read(body) == ["1", "2", "3", "4", None]
    assert one.read(body) == "1"
    assert compile_field("x", "Missing/B").read(body) is None


@pytest.mark.parametrize(
    "links",
    [
        [{"url": "u", "text": "t"}, {"url": None, "text": "x"}, {"url": "", "text": "y"}],
        [],
        None,
    ],
)
@pytest.mark.parametrize(
    "expression",
    [
        "links | selectattr('url') | remap_keys({'url': 'linkURL', 'text': 'linkText'}) or none",
        "links | rejectattr('url') | remap_keys({'text': 'linkText'}) or none",
    ],
)
def test_selectattr_and_rejectattr_select_as_jinja_does(expression: str, links: Any) -> None:
    fast = fast_expression(VALUES, expression)
    assert fast is not None
    jinja = VALUES.compile_expression(expression, undefined_to_none=False)
    assert fast({"links": links}) == jinja(links=links)


def test_selectattr_on_an_item_without_the_attribute_is_jinja_s_error() -> None:
    expression = "links | selectattr('url') | remap_keys({'url': 'linkURL'}) or none"
    jinja = VALUES.compile_expression(expression, undefined_to_none=False)
    evaluate = with_fallback(fast_expression(VALUES, expression), lambda values: jinja(**values))
    with pytest.raises(UndefinedError):
        evaluate({"links": [{"text": "no url"}]})


def test_selectattr_with_a_test_or_a_dotted_name_is_left_to_jinja() -> None:
    assert fast_expression(VALUES, "links | selectattr('url', 'none') | first") is None
    assert fast_expression(VALUES, "links | selectattr('a.b') | first") is None


@dataclass(frozen=True)
class Named:
    mro: str


def test_an_attribute_the_sandbox_allowed_for_one_type_is_judged_again_for_another() -> None:
    source = "target.mro"
    jinja = VALUES.compile_expression(source, undefined_to_none=False)
    evaluate = with_fallback(fast_expression(VALUES, source), lambda c: jinja(**c))
    assert evaluate({"target": Named("m")}) == "m"  # remembered as safe for Named
    refused = evaluate({"target": Named})  # type.mro is internal: the sandbox's unsafe Undefined
    assert isinstance(refused, Undefined)
    assert isinstance(jinja(target=Named), Undefined)
    with pytest.raises(SecurityError):
        str(refused)


def test_str_format_is_the_sandbox_s_formatter_on_the_fast_path_too() -> None:
    source = "template.format(fields.code)"
    jinja = VALUES.compile_expression(source, undefined_to_none=False)
    evaluate = with_fallback(fast_expression(VALUES, source), lambda c: jinja(**c))
    values = {**context(), "template": "code {0}"}
    assert evaluate(values) == jinja(**values) == "code 4711"
    values["template"] = "{0.__class__}"
    with pytest.raises(SecurityError):
        evaluate(values)


def test_a_keyword_argument_named_like_a_python_keyword_is_left_to_jinja() -> None:
    assert fast_expression(VALUES, "route(fields.code, class=1)") is None


@pytest.mark.parametrize(
    "source", ["fields.title", "fields.missing or 'x'", "results.init[7]", "nothing.at_all"]
)
def test_a_fallback_compiled_in_answers_as_with_fallback(source: str) -> None:
    jinja = VALUES.compile_expression(source, undefined_to_none=False)
    compiled_in = fast_expression(VALUES, source, lambda c: jinja(**c))
    wrapped = with_fallback(fast_expression(VALUES, source), lambda c: jinja(**c))
    assert _outcome(compiled_in, context()) == _outcome(wrapped, context())


def _marked(**markers: Any) -> Any:
    def function(value: Any) -> Any:
        return value

    function.__dict__.update(markers)
    return function


@pytest.mark.parametrize(
    "markers", [{}, {"unsafe_callable": True}, {"alters_data": True}, {"jinja_pass_arg": None}]
)
def test_a_function_s_sandbox_markers_decide_as_jinja_decides(markers: dict[str, Any]) -> None:
    source = "function(fields.code)"
    jinja = VALUES.compile_expression(source, undefined_to_none=False)
    evaluate = with_fallback(fast_expression(VALUES, source), lambda c: jinja(**c))
    values = {**context(), "function": _marked(**markers)}
    assert _outcome(evaluate, values) == _outcome(lambda c: jinja(**c), values)
