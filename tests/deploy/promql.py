"""Just enough PromQL reading to say which series and labels an expression uses.

Not a parser: it tokenises, drops string literals and range durations, and classifies identifiers as
functions, keywords, label names (inside ``{...}`` and ``by``/``without``/``on``/``ignoring`` lists)
or metric names. That is all a drift check between queries and the code's metrics needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FUNCTIONS = frozenset(
    {
        "abs",
        "absent",
        "absent_over_time",
        "avg_over_time",
        "ceil",
        "changes",
        "clamp",
        "clamp_max",
        "clamp_min",
        "count_over_time",
        "days_in_month",
        "day_of_month",
        "day_of_week",
        "delta",
        "deriv",
        "exp",
        "floor",
        "histogram_quantile",
        "holt_winters",
        "hour",
        "idelta",
        "increase",
        "irate",
        "label_join",
        "label_replace",
        "ln",
        "log2",
        "log10",
        "max_over_time",
        "min_over_time",
        "minute",
        "month",
        "predict_linear",
        "quantile_over_time",
        "rate",
        "resets",
        "round",
        "scalar",
        "sgn",
        "sort",
        "sort_desc",
        "sqrt",
        "stddev_over_time",
        "sum_over_time",
        "time",
        "timestamp",
        "vector",
        "year",
        "last_over_time",
        "present_over_time",
    }
)
AGGREGATIONS = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "group",
    }
)
GROUPING = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    }
)
OPERATORS = frozenset(
    {
        "and",
        "or",
        "unless",
        "bool",
        "offset",
    }
)
#: Grafana's interval variables, as a duration PromQL accepts.
GRAFANA_INTERVALS = re.compile(r"\$__(rate_interval|interval|range)\b")

_TOKEN = re.compile(
    r"""(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
      |(?P<range>\[[^\]]*\])
      |(?P<duration>(?:\d+(?:ms|[smhdwy]))+\b)
      |(?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      |(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
      |(?P<matchop>=~|!~|!=|==|=)
      |(?P<punct>[{}(),])
      |(?P<other>\S)""",
    re.VERBOSE,
)


@dataclass
class Usage:
    """What one expression refers to."""

    metrics: dict[str, set[str]] = field(default_factory=dict)
    """Metric name -> label names used in its ``{...}`` matchers."""
    grouping_labels: set[str] = field(default_factory=set)


def read(expression: str) -> Usage:
    """The metrics and labels ``expression`` refers to."""
    tokens = [
        (m.lastgroup or "", m.group())
        for m in _TOKEN.finditer(GRAFANA_INTERVALS.sub("5m", expression))
        if m.lastgroup not in ("string", "range", "duration", "number")
    ]
    usage = Usage()
    index = 0
    while index < len(tokens):
        kind, text = tokens[index]
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if kind == "ident" and text in GROUPING and following == "(":
            index += 2
            while index < len(tokens) and tokens[index][1] != ")":
                if tokens[index][0] == "ident":
                    usage.grouping_labels.add(tokens[index][1])
                index += 1
        elif kind == "ident" and not _is_syntax(text, following):
            labels = usage.metrics.setdefault(text, set())
            if following == "{":
                index = _matchers(tokens, index + 2, labels)
        elif text == "{":
            index = _matchers(tokens, index + 1, usage.metrics.setdefault("{}", set()))
        index += 1
    return usage


def _is_syntax(identifier: str, following: str) -> bool:
    """A function, aggregation, operator or grouping keyword rather than a metric name."""
    if identifier in OPERATORS or identifier in GROUPING:
        return True
    return (identifier in FUNCTIONS or identifier in AGGREGATIONS) and following in ("(", "by", "without")


def _matchers(tokens: list[tuple[str, str]], index: int, labels: set[str]) -> int:
    """Collect label names of a ``{...}`` body starting at ``index``; return the index of ``}``."""
    while index < len(tokens) and tokens[index][1] != "}":
        if tokens[index][0] == "ident" and index + 1 < len(tokens) and tokens[index + 1][0] == "matchop":
            labels.add(tokens[index][1])
        index += 1
    return index
