"""The chart's static files: they parse, the schema guards the values, and nothing drifts from the code."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from proxy.settings import Settings, validate_settings
from tests.deploy import chart

#: Settings keys the chart sets itself (values.schema.json must not offer them).
CHART_OWNED = {
    "listen.host",
    "listen.port",
    "listen.metrics_host",
    "listen.metrics_port",
    "data_dir",
    "mappings_dir",
    "maskinporten.key_file",
    "maskinporten.certificate_file",
    "maskinporten.certificate_password_file",
    "store.password_file",
    "identity.credentials_file",
    "identity.client_ca_file",
}


def validator() -> jsonschema.Draft202012Validator:
    """A validator for the chart's values schema (the schema itself checked first)."""
    schema = chart.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors_of(values: dict[str, Any]) -> list[str]:
    """Schema violations, as ``path: message``."""
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator().iter_errors(values)]


def test_chart_yaml_describes_an_application() -> None:
    meta = chart.load_yaml(chart.CHART / "Chart.yaml")
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == "altinn-proxy"
    assert meta["type"] == "application"
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["version"])


@pytest.mark.parametrize("path", ["values.yaml", "ci/production-values.yaml"])
def test_values_files_validate_against_the_schema(path: str) -> None:
    values = chart.load_yaml(chart.CHART / path)
    assert errors_of(values) == []


@pytest.mark.parametrize(
    ("typo", "where"),
    [
        ({"replicaCout": 3}, ""),
        ({"settings": {"timeouts": {"drain_dealy": 5}}}, "settings.timeouts"),
        ({"settings": {"maskinporten": {"key_file": "/elsewhere"}}}, "settings.maskinporten"),
        ({"secrets": {"credentials": {"existingSecretName": "x"}}}, "secrets.credentials"),
        (
            {"networkPolicy": {"ingress": {"controllerNamespaceSelector": {"matchLabel": {}}}}},
            "networkPolicy",
        ),
    ],
)
def test_a_typo_is_rejected(typo: dict[str, Any], where: str) -> None:
    values = _merge(chart.values(), typo)
    problems = errors_of(values)
    assert any("Additional properties are not allowed" in p and p.startswith(where) for p in problems), (
        problems
    )


def test_wrong_kinds_of_values_are_rejected() -> None:
    assert errors_of(_merge(chart.values(), {"settings": {"altinn": {"environment": "prod"}}}))
    assert errors_of(_merge(chart.values(), {"secrets": {"maskinporten": {"kind": "pem"}}}))
    assert errors_of(_merge(chart.values(), {"settings": {"store": {"url": "mysql://db"}}}))


def _schema_keys(node: dict[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, child in node.get("properties", {}).items():
        keys.add(prefix + name)
        target = child.get("items", child) if child.get("type") == "array" else child
        keys |= _schema_keys(target, f"{prefix}{name}.")
    return keys


def _model_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        keys.add(prefix + name)
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))[0]
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            keys |= _model_keys(inner, f"{prefix}{name}.")
    return keys


def test_settings_schema_matches_proxy_settings() -> None:
    """Every settings key the chart accepts exists in proxy/settings.py, and every key there is offered."""
    offered = _schema_keys(chart.schema()["properties"]["settings"])
    known = _model_keys(Settings)
    assert offered - known == set(), "values.schema.json offers settings the proxy rejects"
    missing = known - offered - CHART_OWNED - {"listen"}
    assert missing == set(), "proxy/settings.py has keys values.schema.json does not offer: add them"
    assert offered & CHART_OWNED == set()


def test_default_settings_with_the_chart_keys_are_valid_proxy_settings(tmp_path: Path) -> None:
    """values.yaml's settings plus what the chart fills in pass the proxy's own validation."""
    for name in ("key", "credentials.yaml"):
        (tmp_path / name).write_text("placeholder", encoding="utf-8")
    settings = copy.deepcopy(chart.values()["settings"])
    settings["maskinporten"].update(client_id="client", kid="kid", key_file=str(tmp_path / "key"))
    settings["identity"]["credentials_file"] = str(tmp_path / "credentials.yaml")
    settings.update(
        listen={"host": "0.0.0.0", "port": 8080}, data_dir=str(tmp_path), mappings_dir=str(tmp_path)
    )
    validated = validate_settings(settings)
    assert validated.timeouts.drain_delay == 5


def test_templates_only_read_values_that_exist() -> None:
    """Without helm at hand: every ``.Values.a.b`` in a template names a key of values.yaml."""
    values = chart.values()
    missing = []
    for template in sorted(chart.TEMPLATES.glob("*")):
        for reference in re.findall(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", template.read_text()):
            try:
                chart.lookup(values, reference.lstrip("."))
            except KeyError:
                missing.append(f"{template.name}: .Values{reference}")
    assert missing == []


def test_template_actions_are_balanced() -> None:
    """Every ``{{`` closes, and every if/range/with/define has its end."""
    for template in sorted(chart.TEMPLATES.glob("*")):
        text = template.read_text(encoding="utf-8")
        assert text.count("{{") == text.count("}}"), template.name
        actions = re.findall(r"\{\{-?\s*(if|range|with|define|end)\b", text)
        opened = sum(1 for action in actions if action != "end")
        assert opened == actions.count("end"), template.name


def test_mappings_come_from_the_repository() -> None:
    """The chart's mappings/ is a link to the repository's, so the ConfigMap carries the real files."""
    link = chart.CHART / "mappings"
    assert link.is_symlink()
    assert link.resolve() == (chart.REPO / "mappings").resolve()
    for mapping in link.glob("*.yaml"):
        assert isinstance(yaml.safe_load(mapping.read_text(encoding="utf-8")), dict), mapping.name


def test_the_pod_runs_restricted() -> None:
    deployment = (chart.TEMPLATES / "deployment.yaml").read_text(encoding="utf-8")
    for setting in (
        "runAsNonRoot: true",
        "readOnlyRootFilesystem: true",
        "allowPrivilegeEscalation: false",
        'drop: ["ALL"]',
        "type: RuntimeDefault",
        "automountServiceAccountToken: false",
        "path: /healthz",
        "path: /readyz",
        "startupProbe:",
        "checksum/settings:",
        "checksum/mappings:",
    ):
        assert setting in deployment, setting
    assert "secretKeyRef" not in deployment, "secrets are mounted as files, never put in the environment"


def _merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
