"""The chart rendered and linted by Helm's own library (the PyPI wheel ``helm-python-sdk``)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.deploy import chart
from tests.deploy.tools import require

RELEASE = "release"
NAMESPACE = "ns"
#: The series selector of this release in rendered alert rules (ServiceMonitor job = Service name).
SELECTOR = f'namespace="{NAMESPACE}",job="{RELEASE}-altinn-proxy"'


def helm() -> Any:
    """The ``helm_python`` module (skips, or fails under CI, when it is not installed)."""
    try:
        import helm_python
    except ImportError:
        require(False, "helm-python-sdk (PyPI)")
        raise
    return helm_python


def production_values() -> dict[str, Any]:
    """The shipped production example."""
    loaded = chart.load_yaml(chart.CHART / "ci" / "production-values.yaml")
    assert isinstance(loaded, dict)
    return loaded


def _throwaway_key_pem() -> str:
    """A Maskinporten key made for this test run only (keys are never committed)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def realistic_values() -> dict[str, Any]:
    """What a platform team writes: PostgreSQL, 3 fixed replicas, mTLS at ingress-nginx, inline secrets."""
    return {
        "replicaCount": 3,
        "settings": {
            "maskinporten": {"client_id": "2f8d3c1e-0000-4000-8000-000000000002", "kid": "key-2026"},
            "identity": {"trusted_proxies": ["10.42.0.0/16"]},
            "store": {"url": "postgresql://altinn_proxy@pg.db.svc:5432/altinn_proxy"},
        },
        "secrets": {
            "maskinporten": {
                "key": _throwaway_key_pem(),
            },
            "credentials": {"content": "version: 1\ncallers: {}\n"},
            "postgres": {"password": "not-a-real-password"},
            "clientCa": {"pem": "-----BEGIN CERTIFICATE-----\nnot a real CA\n-----END CERTIFICATE-----\n"},
        },
        "ingress": {
            "enabled": True,
            "hosts": [{"host": "altinn.example.org", "paths": [{"path": "/", "pathType": "Prefix"}]}],
            "tls": [{"secretName": "altinn-proxy-tls", "hosts": ["altinn.example.org"]}],
            "mtls": {"enabled": True, "caSecret": "ingress-nginx/enterprise-cas"},
        },
        "networkPolicy": {
            "egress": {"postgres": {"to": [{"namespaceSelector": {"matchLabels": {"name": "db"}}}]}}
        },
    }


def merged(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay`` over ``base``, recursively (lists and scalars are replaced)."""
    result = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def render(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every Kubernetes object ``helm template`` renders for ``values`` (raises HelmRenderError)."""
    module = helm()
    loaded = module.Chart.load(str(chart.CHART))
    manifests = loaded.render(dict(values), name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects: list[dict[str, Any]] = []
    for path, text in sorted(manifests.items()):
        if not path.endswith((".yaml", ".yml")):
            continue
        objects.extend(document for document in yaml.safe_load_all(text) if document)
    return objects


def refusal(values: Mapping[str, Any]) -> str:
    """The message with which ``helm template`` refuses ``values`` (fails the test if it renders)."""
    module = helm()
    with pytest.raises(module.HelmError) as refused:
        render(values)
    return str(refused.value)


def lint(values: Mapping[str, Any]) -> list[str]:
    """``helm lint --strict`` findings of warning level or worse."""
    report = helm().lint(str(chart.CHART), dict(values), strict=True, namespace=NAMESPACE)
    findings = [f"{m['path']}: {m['error']}" for m in report.get("messages", []) if m["severity"] >= 2]
    return findings + list(report.get("errors", []))
