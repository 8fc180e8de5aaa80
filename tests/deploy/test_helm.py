"""The chart through Helm's own library: lint, render, the guard rails, and Kubernetes' and the
prometheus-operator's schemas (the tools come from `make deploy-tools`; see tests/deploy/tools.py)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.deploy.rendered import lint as helm_lint
from tests.deploy.rendered import merged, production_values, realistic_values, refusal, render
from tests.deploy.tools import node_validator, require

KUBERNETES_VERSIONS = ("1.25", "1.30", "1.35")
OPERATOR_KINDS = frozenset({"ServiceMonitor", "PrometheusRule"})


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [item for item in objects if item["kind"] == kind]


def test_the_defaults_are_refused_with_the_documented_message() -> None:
    assert "settings.maskinporten.client_id is required" in refusal({})


@pytest.mark.parametrize("values", [production_values, realistic_values], ids=["production", "realistic"])
def test_lint_strict_is_clean(values: Any) -> None:
    assert helm_lint(values()) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"settings": {"store": {"url": "sqlite:////data/altinn-proxy.db"}}},
            "several replicas must share one store",
        ),
        (
            {"settings": {"identity": {"client_certificate_header": "X-Forwarded-Client-Cert"}}},
            "ingress-nginx forwards the client certificate in the header ssl-client-cert",
        ),
        ({"secrets": {"clientCa": {"pem": ""}}}, "set secrets.clientCa"),
        ({"settings": {"identity": {"trusted_proxies": []}}}, "needs settings.identity.trusted_proxies"),
        ({"networkPolicy": {"egress": {"postgres": {"to": []}}}}, "the NetworkPolicy blocks PostgreSQL"),
        ({"persistence": {"enabled": True}}, "would share one ReadWriteOnce claim"),
        (
            {"replicaCount": 1, "autoscaling": {"enabled": True}, "persistence": {"enabled": True}},
            "would share one ReadWriteOnce claim",
        ),
        (
            {"settings": {"store": {"url": "postgresql://altinn_proxy:hunter2@pg.db.svc/altinn_proxy"}}},
            "settings.store.url contains a password",
        ),
    ],
    ids=[
        "sqlite-with-replicas",
        "mtls-header-mismatch",
        "mtls-without-client-ca",
        "mtls-without-trusted-proxies",
        "networkpolicy-blocks-postgres",
        "persistence-with-replicas",
        "persistence-with-hpa",
        "password-in-store-url",
    ],
)
def test_a_configuration_that_cannot_work_is_refused(change: dict[str, Any], message: str) -> None:
    text = refusal(merged(realistic_values(), change))
    assert message in text
    assert "hunter2" not in text


def test_one_replica_may_keep_sqlite_on_a_claim() -> None:
    values = merged(
        realistic_values(),
        {
            "replicaCount": 1,
            "settings": {"store": {"url": "sqlite:////data/altinn-proxy.db"}},
            "persistence": {"enabled": True},
        },
    )
    values["secrets"].pop("postgres")
    (claim,) = of_kind(render(values), "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_the_realistic_deployment_renders_as_a_platform_team_needs_it() -> None:
    objects = render(realistic_values())
    (deployment,) = of_kind(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][0] == "serve"
    assert "env" not in container, "no setting by environment: the settings file is the one source"
    settings_map = next(
        item for item in of_kind(objects, "ConfigMap") if item["metadata"]["name"].endswith("-settings")
    )
    settings = settings_map["data"]["settings.yaml"]
    assert "client_certificate_header: ssl-client-cert" in settings
    assert "client_ca_file: /etc/altinn-proxy/secrets/client-ca/ca.pem" in settings
    assert "password_file: /etc/altinn-proxy/secrets/postgres/password" in settings
    assert "not-a-real-password" not in json.dumps([item for item in objects if item["kind"] != "Secret"])
    (ingress,) = of_kind(objects, "Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "1100m"
    assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    assert annotations["nginx.ingress.kubernetes.io/auth-tls-pass-certificate-to-upstream"] == "true"
    (policy,) = of_kind(objects, "NetworkPolicy")
    assert any(rule["ports"] == [{"port": 5432, "protocol": "TCP"}] for rule in policy["spec"]["egress"])


def test_the_users_ingress_annotations_win() -> None:
    values = merged(
        realistic_values(),
        {"ingress": {"annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "2g"}}},
    )
    (ingress,) = of_kind(render(values), "Ingress")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "2g"


def _kubernetes_validate() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        require(False, "kubernetes-validate (PyPI)")
        raise
    return kubernetes_validate


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("values", [production_values, realistic_values], ids=["production", "realistic"])
def test_every_object_validates_strictly_against_kubernetes(version: str, values: Any) -> None:
    validator = _kubernetes_validate()
    objects = [item for item in render(values()) if item["kind"] not in OPERATOR_KINDS]
    assert len(objects) >= 8
    problems = []
    for item in objects:
        try:
            validator.validate(item, version, strict=True)
        except validator.ValidationError as error:
            problems.append(f"{item['kind']} {item['metadata']['name']}: {error.message}")
    assert problems == []


def test_a_wrong_object_is_refused_by_the_kubernetes_schemas() -> None:
    """The validation above can fail: an unknown field in a rendered Deployment is reported."""
    validator = _kubernetes_validate()
    (deployment,) = of_kind(render(realistic_values()), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["probes"] = {}
    with pytest.raises(validator.ValidationError):
        validator.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def _operator_problems(objects: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    node, script = node_validator()
    return subprocess.run(
        [node, str(script)],
        input=json.dumps(objects),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("values", [production_values, realistic_values], ids=["production", "realistic"])
def test_servicemonitor_and_prometheusrule_match_the_operator_schemas(values: Any) -> None:
    objects = [item for item in render(values()) if item["kind"] in OPERATOR_KINDS]
    assert {item["kind"] for item in objects} == OPERATOR_KINDS
    checked = _operator_problems(objects)
    assert (checked.returncode, checked.stdout) == (0, "")


def test_a_wrong_rule_is_refused_by_the_operator_schemas() -> None:
    (rule,) = of_kind(render(realistic_values()), "PrometheusRule")
    rule["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    checked = _operator_problems([rule])
    assert checked.returncode == 1
    assert "for must match pattern" in checked.stdout


@pytest.mark.parametrize(
    ("kind", "path", "field"),
    [
        ("PrometheusRule", ("spec", "groups", 0, "rules", 0), "fro"),
        ("PrometheusRule", ("spec", "groups", 0), "rule"),
        ("ServiceMonitor", ("spec", "endpoints", 0), "intervall"),
    ],
)
def test_an_unknown_field_is_refused_by_the_operator_types(
    kind: str, path: tuple[Any, ...], field: str
) -> None:
    """A misspelt field passes the bundled schemas (the API server would prune it): the types name it."""
    (item,) = of_kind(render(realistic_values()), kind)
    target: Any = item
    for step in path:
        target = target[step]
    target[field] = "5m"
    checked = _operator_problems([item])
    assert checked.returncode == 1
    assert f"'\"{field}\"' does not exist in type" in checked.stdout, checked.stdout
    assert checked.stdout.startswith(f"{kind} release-altinn-proxy: "), checked.stdout
