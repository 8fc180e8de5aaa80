"""The dashboard and the alert rules query only series that the proxy's code defines.

Metrics are renamed and relabelled as the code evolves; these tests turn a dashboard panel or an
alert that would silently show nothing into a failing test that names the query.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from tests.deploy import chart, promql
from tests.deploy.metric_catalog import MetricDefinition, exposed_series, scan


@pytest.fixture(scope="module")
def series() -> dict[str, frozenset[str]]:
    """Every series the proxy can expose (plus Prometheus's own ``up``), with its labels."""
    return exposed_series(chart.PROXY_SOURCE) | chart.PROMETHEUS_SERIES


def problems_of(expression: str, series: dict[str, frozenset[str]]) -> list[str]:
    """Why ``expression`` would not match what the proxy exposes (empty when it would)."""
    usage = promql.read(expression)
    found: list[str] = []
    known_labels: set[str] = set(chart.TARGET_LABELS)
    for metric, matcher_labels in usage.metrics.items():
        if metric not in series:
            found.append(f"unknown metric {metric!r}")
            continue
        known_labels |= series[metric]
        unknown = matcher_labels - series[metric] - chart.TARGET_LABELS
        if unknown:
            found.append(f"{metric} has no label(s) {sorted(unknown)}")
    if not usage.metrics:
        found.append("no metric at all")
    if unknown_grouping := usage.grouping_labels - known_labels:
        found.append(f"grouping by label(s) no metric here has: {sorted(unknown_grouping)}")
    return found


def report(checked: Iterable[tuple[str, str]], series: dict[str, frozenset[str]]) -> list[str]:
    """One line per broken query."""
    return [
        f"{where}: {'; '.join(problems)}\n    {expression}"
        for where, expression in checked
        if (problems := problems_of(expression, series))
    ]


def test_the_catalog_reads_prometheus_client_naming() -> None:
    counter = MetricDefinition("x_requests_total", "Counter", frozenset({"a"}), "here")
    histogram = MetricDefinition("x_seconds", "Histogram", frozenset({"a"}), "here")
    assert set(counter.series()) == {"x_requests_total", "x_requests_created"}
    assert histogram.series()["x_seconds_bucket"] == {"a", "le"}
    assert histogram.series()["x_seconds_count"] == {"a"}


def test_the_catalog_agrees_with_the_live_registry() -> None:
    from prometheus_client import Counter, Histogram

    from proxy.observability import metrics

    scanned = {d.name.removesuffix("_total"): d for d in scan(chart.PROXY_SOURCE / "observability")}
    for live in (metrics.REQUESTS, metrics.REQUEST_SECONDS, metrics.IN_FLIGHT, metrics.READY):
        definition = scanned[live._name]
        assert definition.labels == set(live._labelnames)
        assert definition.kind == type(live).__name__
    assert isinstance(metrics.REQUESTS, Counter)
    assert isinstance(metrics.REQUEST_SECONDS, Histogram)


def test_promql_reader_separates_metrics_labels_and_functions() -> None:
    usage = promql.read(
        'histogram_quantile(0.99, sum by (le, route) (rate(m_bucket{job="j",route!~"a|b"}[$__rate_interval])))'
        " / ignoring (kind) group_left sum(other_total)"
    )
    assert usage.metrics == {"m_bucket": {"job", "route"}, "other_total": set()}
    assert usage.grouping_labels == {"le", "route", "kind"}


def test_promql_reader_skips_offset_durations() -> None:
    usage = promql.read("sum(x_total unless x_total offset 1h30m) > 0 or vector(0)")
    assert usage.metrics == {"x_total": set()}


def test_a_renamed_metric_is_reported(series: dict[str, frozenset[str]]) -> None:
    assert problems_of("sum(rate(altinn_proxy_soap_faults{job='x'}[5m]))", series) == [
        "unknown metric 'altinn_proxy_soap_faults'"
    ]
    assert problems_of("sum by (tenant) (rate(altinn_proxy_soap_faults_total[5m]))", series) == [
        "grouping by label(s) no metric here has: ['tenant']"
    ]


def test_dashboard_parses_and_is_labelled_for_the_sidecar() -> None:
    board = chart.dashboard()
    assert board["uid"] == "altinn-proxy"
    assert {variable["name"] for variable in board["templating"]["list"]} >= {
        "datasource",
        "namespace",
        "job",
    }
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert chart.values()["dashboard"]["labels"] == {"grafana_dashboard": "1"}


def test_every_dashboard_query_uses_metrics_the_code_defines(series: dict[str, frozenset[str]]) -> None:
    checked = list(chart.dashboard_expressions(chart.dashboard()))
    assert len(checked) > 20
    assert report(checked, series) == []


def test_dashboard_answers_the_operators_questions() -> None:
    used = {
        metric
        for _, expression in chart.dashboard_expressions(chart.dashboard())
        for metric in promql.read(expression).metrics
    }
    assert used >= {
        "altinn_proxy_http_requests_total",  # requests/s by route and status
        "altinn_proxy_http_request_seconds_bucket",  # latency p50/p99
        "altinn_proxy_soap_faults_total",  # faults by kind
        "altinn_proxy_soap_untranslated_total",  # which legacy callers still use what
        "altinn_proxy_soap_requests_total",
        "altinn_proxy_token_fetches_total",
        "altinn_proxy_token_seconds_until_expiry",
        "altinn_proxy_altinn3_requests_total",  # outbound calls by API and status
        "altinn_proxy_http_streamed_request_seconds_bucket",  # streamed transfers, apart
        "altinn_proxy_rest_errors_total",  # the legacy REST front
        "altinn_proxy_rest_untranslated_total",
        "altinn_proxy_legacy_calls_total",  # who still calls what
        "altinn_proxy_onboarding_state",  # which customer organisation is not ready, and why
    }


def test_per_second_titles_show_rates_and_counts_say_so() -> None:
    """A panel titled "/s" shows rates only; a panel of counts per interval does not say "/s"."""
    for title, expression in chart.dashboard_expressions(chart.dashboard()):
        counts = "increase(" in expression
        if "/s" in title:
            assert not counts, f"{title!r} shows counts: {expression}"
            assert "rate(" in expression, f"{title!r} shows no rate: {expression}"
        if counts:
            assert "/s" not in title, title


def test_every_alert_uses_metrics_the_code_defines(series: dict[str, frozenset[str]]) -> None:
    rules = chart.alert_rules(chart.values())
    assert report(((rule["alert"], rule["expr"]) for rule in rules), series) == []


def test_alerts_cover_what_operators_must_hear_about() -> None:
    rules = {rule["alert"]: rule for rule in chart.alert_rules(chart.values())}
    assert set(rules) >= {
        "AltinnProxyHighFaultRate",
        "AltinnProxyUpstreamErrors",
        "AltinnProxyUpstreamUnavailable",
        "AltinnProxyTokenRefused",
        "AltinnProxyTokenFetchFailing",
        "AltinnProxyLockoutSpike",
        "AltinnProxyNotReady",
        "AltinnProxyMappingSetsDiffer",
        "AltinnProxyHighLatencyP99",
    }
    assert "MP-303" in rules["AltinnProxyTokenRefused"]["annotations"]["description"]
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"], name
        assert 'namespace="ns",job="release-altinn-proxy"' in rule["expr"], (
            f"{name} is not scoped to the release"
        )


def test_thresholds_come_from_values() -> None:
    custom = chart.values()
    custom["alerts"]["faultRatio"] = 0.125
    rules = {rule["alert"]: rule for rule in chart.alert_rules(custom)}
    assert rules["AltinnProxyHighFaultRate"]["expr"].endswith("> 0.125")
