"""The chart's alert rules, rendered by Helm, checked and unit-tested by Prometheus's own promtool
(scenarios in alerts-test.yaml: every alert fires, including on series that appear already at 1)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.rendered import realistic_values, render
from tests.deploy.tools import promtool

SCENARIOS = Path(__file__).with_name("alerts-test.yaml")


def rendered_rules() -> dict[str, Any]:
    """The PrometheusRule's spec as a Prometheus rules file."""
    (rule,) = [item for item in render(realistic_values()) if item["kind"] == "PrometheusRule"]
    return {"groups": rule["spec"]["groups"]}


def promtool_run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def write_rules(folder: Path, rules: dict[str, Any]) -> None:
    (folder / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")


def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    write_rules(tmp_path, rendered_rules())
    checked = promtool_run("check", "rules", "rules.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_fires_in_its_scenario(tmp_path: Path) -> None:
    rules = rendered_rules()
    write_rules(tmp_path, rules)
    shutil.copy(SCENARIOS, tmp_path / SCENARIOS.name)
    tested = promtool_run("test", "rules", SCENARIOS.name, cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    scenarios = yaml.safe_load(SCENARIOS.read_text(encoding="utf-8"))["tests"]
    fired = {
        case["alertname"]
        for scenario in scenarios
        for case in scenario["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert alerts - fired == set(), "every alert needs a scenario in which it fires"


def test_increase_alone_would_miss_the_first_event(tmp_path: Path) -> None:
    """The scenario that proves it: with only the increase() half, the first refused token is missed."""
    rules = rendered_rules()
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "AltinnProxyTokenRefused":
                rule["expr"] = re.sub(r" or .*$", "", rule["expr"])
    write_rules(tmp_path, rules)
    scenarios = yaml.safe_load(SCENARIOS.read_text(encoding="utf-8"))
    scenarios["tests"] = [
        test for test in scenarios["tests"] if test["name"].startswith("the first refused token")
    ]
    (tmp_path / "first.yaml").write_text(yaml.safe_dump(scenarios), encoding="utf-8")
    tested = promtool_run("test", "rules", "first.yaml", cwd=tmp_path)
    assert tested.returncode != 0
    assert "AltinnProxyTokenRefused" in tested.stdout + tested.stderr
