"""``~`` and ``is none`` take the fast path and evaluate exactly as Jinja does."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.mapping.expressions import VALUES
from proxy.mapping.fastpath import fast_expression, with_fallback


def _context() -> dict[str, Any]:
    return {
        "identity": {"caller_id": "demo-so"},
        "fields": {"reference": "ESR-1", "count": 3, "nothing": None},
        "results": {"create": None, "existing": {"ids": ["a"]}},
    }


@pytest.mark.parametrize(
    "source",
    [
        "(identity.caller_id ~ '\\n' ~ fields.reference) | uuid5",
        "identity.caller_id ~ '-' ~ fields.count",
        "fields.nothing ~ 'x'",
        "results.create is none",
        "results.existing is none",
        "results.create is none and fields.count > 2",
    ],
)
def test_concatenation_and_is_none_are_fast_and_agree_with_jinja(source: str) -> None:
    fast = fast_expression(VALUES, source)
    assert fast is not None
    jinja = VALUES.compile_expression(source, undefined_to_none=False)
    assert fast(_context()) == jinja(**_context())


@pytest.mark.parametrize("source", ["fields.missing is none", "fields.missing ~ 'x'"])
def test_a_missing_value_is_still_judged_by_jinja(source: str) -> None:
    jinja = VALUES.compile_expression(source, undefined_to_none=False)
    evaluate = with_fallback(fast_expression(VALUES, source), lambda c: jinja(**c))
    try:
        expected: Any = jinja(**_context())
    except Exception as error:  # the comparison is the point: same type, same message
        expected = (type(error).__name__, str(error))
    try:
        actual: Any = evaluate(_context())
    except Exception as error:
        actual = (type(error).__name__, str(error))
    assert actual == expected
