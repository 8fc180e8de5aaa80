"""Fixtures for the foundation tests: a minimal valid settings file with real key material."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


@pytest.fixture(scope="session")
def private_key_pem() -> bytes:
    """A fresh RSA key, generated once per test session."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture
def settings_file(tmp_path: Path, private_key_pem: bytes) -> Path:
    """A valid settings file (custom environment on loopback, ports chosen by the OS)."""
    (tmp_path / "client.pem").write_bytes(private_key_pem)
    (tmp_path / "credentials.yaml").write_text("version: 1\ncallers: {}\n")
    path = tmp_path / "settings.yaml"
    path.write_text(
        f"""\
listen:
  port: 0
  metrics_port: 0
altinn:
  environment: custom
  platform_url: http://127.0.0.1:9
  maskinporten_issuer: http://127.0.0.1:9/
  maskinporten_token_endpoint: http://127.0.0.1:9/token
maskinporten:
  client_id: 7b1c1f27-0d5e-4b0f-9d1c-3a3b0c6f2f10
  key_file: client.pem
  kid: test-kid
identity:
  credentials_file: credentials.yaml
data_dir: data
mappings_dir: {MAPPINGS}
routing:
  correspondence:
    - {{service_code: "4711", service_edition: "1", resource_id: ttd-migratedcorrespondence-4711-1}}
"""
    )
    return path
