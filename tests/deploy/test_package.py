"""The built wheel, installed as the image installs it (locked dependencies, then the package without
its source tree beside it), runs `version`, `check` and `sandbox`.

It builds and installs from the package registry, so it runs under ``CI=true`` (or with
``ALTINN_PROXY_TEST_PACKAGE=1``) and is skipped with that reason elsewhere.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.deploy.chart import REPO
from tests.deploy.tools import under_ci

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        not (under_ci() or os.environ.get("ALTINN_PROXY_TEST_PACKAGE") == "1"),
        reason="builds the wheel and installs it into a clean venv from the package registry: "
        "runs under CI=true or with ALTINN_PROXY_TEST_PACKAGE=1",
    ),
]

SETTINGS = """\
listen: {port: 0, metrics_port: 0}
altinn:
  environment: custom
  platform_url: http://127.0.0.1:9
  maskinporten_issuer: http://127.0.0.1:9/
  maskinporten_token_endpoint: http://127.0.0.1:9/token
maskinporten: {client_id: 7b1c1f27-0d5e-4b0f-9d1c-3a3b0c6f2f10, key_file: client.pem, kid: test-kid}
identity: {credentials_file: credentials.yaml}
data_dir: data
"""


def run(*command: str | Path, cwd: Path) -> str:
    """Run a command to completion; its stdout (the test fails with its stderr otherwise)."""
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=540
    )
    assert done.returncode == 0, f"{command}: {done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` folder of a clean venv holding the locked dependencies and the built wheel."""
    work = tmp_path_factory.mktemp("package")
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", work / "dist", REPO, cwd=work)
    (wheel,) = (work / "dist").glob("altinn_proxy-*.whl")
    run(sys.executable, "-m", "venv", work / "venv", cwd=work)
    pip = work / "venv" / "bin" / "pip"
    run(
        pip,
        "install",
        "--quiet",
        "--require-hashes",
        "--only-binary=:all:",
        "-r",
        REPO / "requirements.lock",
        cwd=work,
    )
    run(pip, "install", "--quiet", "--no-deps", wheel, cwd=work)
    run(pip, "check", cwd=work)
    return work / "venv" / "bin"


def test_version(installed: Path, tmp_path: Path) -> None:
    assert run(installed / "altinn-proxy", "version", cwd=tmp_path).startswith("altinn-proxy ")


def test_check_uses_the_shipped_mappings(installed: Path, tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "client.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (tmp_path / "credentials.yaml").write_text("version: 1\ncallers: {}\n")
    (tmp_path / "settings.yaml").write_text(SETTINGS)
    out = run(installed / "altinn-proxy", "check", "--config", "settings.yaml", cwd=tmp_path)
    assert "mappings ok" in out
    assert "(the mappings shipped with the package)" in out
    assert str(REPO) not in out, "the installed package must not read the source tree"


def test_sandbox_serves_from_the_installed_package(installed: Path, tmp_path: Path) -> None:
    sandbox = subprocess.Popen(
        [str(installed / "altinn-proxy"), "sandbox", "--port", "0", "--log-format", "json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert sandbox.stdout is not None
        base = ""
        for line in sandbox.stdout:
            if line.strip().startswith("proxy:"):
                base = line.split()[-1]
                break
        assert base, "the sandbox printed no banner"
        wsdl = f"{base}/ServiceEngineExternal/CorrespondenceAgencyExternalBasic.svc?wsdl"
        with urllib.request.urlopen(wsdl, timeout=30) as response:  # noqa: S310  (loopback only)
            assert response.status == 200
            assert b"InsertCorrespondenceBasicV2" in response.read()
    finally:
        sandbox.send_signal(signal.SIGINT)
        code = sandbox.wait(timeout=60)
        if sandbox.stdout is not None:
            sandbox.stdout.close()
    assert code == 0
