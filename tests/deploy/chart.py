"""Paths of the chart and small readers for its files (no helm binary is needed)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "altinn-proxy"
TEMPLATES = CHART / "templates"
PROXY_SOURCE = REPO / "proxy"

#: Labels Prometheus adds to every scraped series (target labels of a ServiceMonitor scrape).
#: ``worker`` is added by the pod's own metrics endpoint under ``serve --workers N`` (proxy/web/workers.py).
TARGET_LABELS = frozenset(
    {"namespace", "job", "pod", "instance", "service", "container", "endpoint", "worker"}
)
#: Series that Prometheus itself produces for every target.
PROMETHEUS_SERIES: dict[str, frozenset[str]] = {"up": frozenset()}

_VALUES_REFERENCE = re.compile(r"\{\{-?\s*\$a\.([A-Za-z0-9_.]+)\s*-?\}\}|\{\{-?\s*\$sel\s*-?\}\}")


def load_yaml(path: Path) -> Any:
    """One YAML document."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def values() -> dict[str, Any]:
    """The chart's default values."""
    loaded = load_yaml(CHART / "values.yaml")
    assert isinstance(loaded, dict)
    return loaded


def schema() -> dict[str, Any]:
    """The chart's values schema."""
    loaded = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def dashboard() -> dict[str, Any]:
    """The Grafana dashboard the chart ships."""
    loaded = json.loads((CHART / "dashboards" / "altinn-proxy.json").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def dashboard_expressions(board: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(panel title, expr)`` for every query of every panel (rows included)."""
    stack = list(board.get("panels", []))
    while stack:
        panel = stack.pop()
        stack.extend(panel.get("panels", []))
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def lookup(data: Mapping[str, Any], dotted: str) -> Any:
    """``data["a"]["b"]`` for ``"a.b"``; KeyError names the missing part."""
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def alert_rules(chart_values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The PrometheusRule's rules with the Helm actions inside ``expr`` filled in.

    Only two actions may appear in an ``expr``: ``{{ $sel }}`` (this release's label matchers) and
    ``{{ $a.KEY }}`` (a threshold from ``alerts`` in values.yaml); anything else is left in place so
    that the expression fails to read as PromQL.
    """
    text = (TEMPLATES / "prometheusrule.yaml").read_text(encoding="utf-8")
    alerts = chart_values["alerts"]

    def fill(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return 'namespace="ns",job="release-altinn-proxy"'
        return str(lookup(alerts, match.group(1)))

    body = text[text.index("spec:") :]
    # The Helm actions outside expressions (labels, escaped annotations) do not matter here.
    body = re.sub(r"^\s*\{\{-? (with|end|if).*\}\}\s*$", "", body, flags=re.MULTILINE)
    body = re.sub(r"\{\{-? with \$a\.extraAlertLabels \}\}.*?\{\{ end \}\}", "", body)
    body = re.sub(r"\{\{`(.*?)`\}\}", lambda m: m.group(1).replace("{{", "<").replace("}}", ">"), body)
    body = _VALUES_REFERENCE.sub(fill, body)
    document = yaml.safe_load(body)
    return [rule for group in document["spec"]["groups"] for rule in group["rules"]]
