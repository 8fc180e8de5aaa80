"""The Prometheus series the proxy can expose, read from its source without importing it.

Scanning (rather than importing) sees every package, including ones whose import has side effects,
and names each series exactly as ``prometheus_client`` exposes it: a Counter ``x`` or ``x_total`` is
scraped as ``x_total``, a Histogram ``x`` as ``x_bucket``/``x_sum``/``x_count``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

_SUFFIXES: Mapping[str, tuple[str, ...]] = {
    "Counter": ("_total", "_created"),
    "CounterMetricFamily": ("_total", "_created"),
    "Gauge": ("",),
    "GaugeMetricFamily": ("",),
    "Histogram": ("_bucket", "_sum", "_count", "_created"),
    "HistogramMetricFamily": ("_bucket", "_sum", "_count", "_created"),
    "Summary": ("", "_sum", "_count", "_created"),
    "SummaryMetricFamily": ("", "_sum", "_count", "_created"),
    "Info": ("_info",),
    "InfoMetricFamily": ("_info",),
    "Enum": ("",),
    "StateSetMetricFamily": ("",),
}


@dataclass(frozen=True)
class MetricDefinition:
    """One metric constructor call found in the source."""

    name: str
    kind: str
    labels: frozenset[str]
    where: str

    def series(self) -> dict[str, frozenset[str]]:
        """Every exposed series name with the labels it carries."""
        base = self.name
        if self.kind.startswith("Counter") or self.kind.startswith("Info"):
            base = base.removesuffix("_total").removesuffix("_info")
        names: dict[str, frozenset[str]] = {}
        for suffix in _SUFFIXES[self.kind]:
            extra = (
                {"le"}
                if suffix == "_bucket"
                else {"quantile"}
                if suffix == "" and "Summary" in self.kind
                else set()
            )
            names[base + suffix] = self.labels | extra
        return names


def _constant_strings(node: ast.expr | None) -> frozenset[str] | None:
    if isinstance(node, ast.List | ast.Tuple) and all(
        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts
    ):
        return frozenset(e.value for e in node.elts if isinstance(e, ast.Constant))
    return None


def _definition(call: ast.Call, where: str) -> MetricDefinition | None:
    func = call.func
    kind = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    if kind not in _SUFFIXES or not call.args:
        return None
    first = call.args[0]
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
        return None
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    prefix = [
        value.value
        for key in ("namespace", "subsystem")
        if isinstance(value := keywords.get(key), ast.Constant)
        and isinstance(value.value, str)
        and value.value
    ]
    label_node = keywords.get("labels" if kind.endswith("Family") else "labelnames")
    if label_node is None and not kind.endswith("Family") and len(call.args) > 2:
        label_node = call.args[2]
    labels = _constant_strings(label_node) if label_node is not None else frozenset()
    return MetricDefinition("_".join([*prefix, first.value]), kind, labels or frozenset(), where)


def scan(source_root: Path) -> Iterator[MetricDefinition]:
    """Every metric constructor with a literal name under ``source_root``."""
    for path in sorted(source_root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (found := _definition(node, f"{path}:{node.lineno}")):
                yield found


def exposed_series(source_root: Path) -> dict[str, frozenset[str]]:
    """Series name -> label names, over every metric the source defines."""
    series: dict[str, frozenset[str]] = {}
    for definition in scan(source_root):
        for name, labels in definition.series().items():
            series[name] = series.get(name, frozenset()) | labels
    return series
