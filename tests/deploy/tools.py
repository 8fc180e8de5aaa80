"""The real deployment tools the deploy tests drive, and what happens where one is missing.

``make deploy-tools`` installs them from the package registries (``.ci/run`` does so before the
suite): the PyPI wheels ``helm-python-sdk`` (Helm's library: lint and render, no helm binary) and
``kubernetes-validate`` (Kubernetes' own schemas, strict), the npm packages
``@kubernetes-models/prometheus-operator`` (the CRD schemas and types) and ``typescript`` (which
checks rendered objects against those types, naming unknown fields), and Debian's ``prometheus``
(``promtool``). Where one is missing its tests skip with the reason, except under ``CI=true``, where
they fail: CI must never pass by skipping what it was meant to check.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.deploy.chart import REPO

NODE_TOOLS = REPO / "tests" / "deploy" / "node"
INSTALL_HINT = "`make deploy-tools` installs it"


def under_ci() -> bool:
    """True where a missing tool is a failure, not a skip."""
    return os.environ.get("CI") == "true"


def require(available: bool, tool: str) -> None:
    """Skip (or, under CI, fail) the calling test when ``tool`` is not available."""
    if available:
        return
    message = f"{tool} is not installed here ({INSTALL_HINT})"
    if under_ci():
        pytest.fail(f"{message}; under CI=true the deploy checks must run")
    pytest.skip(message)


def promtool() -> str:
    """The path of ``promtool`` (skips/fails when absent)."""
    found = shutil.which("promtool")
    require(found is not None, "promtool (Debian package prometheus)")
    assert found is not None
    return found


def node_validator() -> tuple[str, Path]:
    """``(node, script)`` validating prometheus-operator objects (skips/fails when absent)."""
    node = shutil.which("node")
    modules = NODE_TOOLS / "node_modules"
    installed = (modules / "@kubernetes-models" / "prometheus-operator").is_dir() and (
        modules / "typescript"
    ).is_dir()
    require(
        node is not None and installed, "node with npm @kubernetes-models/prometheus-operator and typescript"
    )
    assert node is not None
    return node, NODE_TOOLS / "validate.mjs"
