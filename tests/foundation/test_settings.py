"""Settings: validated once, every problem one located line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.errors import ConfigurationError
from proxy.settings import load_settings


def _rewrite(path: Path, old: str, new: str) -> Path:
    path.write_text(path.read_text().replace(old, new))
    return path


def test_valid_file_loads_with_relative_paths_resolved(settings_file: Path) -> None:
    settings = load_settings(settings_file, environ={})
    assert settings.listen.port == 0
    assert settings.maskinporten.key_file == settings_file.parent / "client.pem"
    assert settings.altinn.platform == "http://127.0.0.1:9"
    assert settings.routing.correspondence[0].resource_id == "ttd-migratedcorrespondence-4711-1"
    assert settings.store_url == f"sqlite:///{settings_file.parent / 'data' / 'altinn-proxy.db'}"


def test_named_environment_fills_urls(settings_file: Path) -> None:
    text = settings_file.read_text().split("maskinporten:\n", 1)[1]
    settings_file.write_text("maskinporten:\n" + text)
    settings = load_settings(settings_file, environ={})
    assert settings.altinn.platform == "https://platform.tt02.altinn.no"
    assert settings.altinn.maskinporten_well_known is not None


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  port: 0", "  prot: 0", ":2: listen.prot: unknown key (did you mean 'port'?)"),
        ("  port: 0", "  port: eighty", ":2: listen.port: Input should be a valid integer"),
        ("key_file: client.pem", "key_file: missing.pem", ":11: maskinporten.key_file: file"),
        ("  kid: test-kid\n", "", "maskinporten: Value error, key_file needs kid"),
        ("  client_id: 7b1c1f27-0d5e-4b0f-9d1c-3a3b0c6f2f10\n", "", "maskinporten.client_id: required key"),
    ],
)
def test_problems_are_located_one_line_messages(
    settings_file: Path, old: str, new: str, expected: str
) -> None:
    _rewrite(settings_file, old, new)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(settings_file, environ={})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(settings_file))
    assert expected.replace("Value error, ", "") in message


def test_environment_overrides_and_names_the_variable(settings_file: Path) -> None:
    settings = load_settings(settings_file, environ={"ALTINN_PROXY_LISTEN__METRICS_PORT": "9999"})
    assert settings.listen.metrics_port == 9999
    with pytest.raises(ConfigurationError, match=r"environment ALTINN_PROXY_LISTEN__PORT: listen\.port"):
        load_settings(settings_file, environ={"ALTINN_PROXY_LISTEN__PORT": "not-a-port"})


def test_duplicate_routes_are_refused(settings_file: Path) -> None:
    route = (
        '    - {service_code: "4711", service_edition: "1", resource_id: ttd-migratedcorrespondence-4711-1}\n'
    )
    settings_file.write_text(settings_file.read_text() + route)
    with pytest.raises(ConfigurationError, match="ServiceCode 4711 edition 1 is routed twice"):
        load_settings(settings_file, environ={})


def test_key_material_never_appears_in_errors(settings_file: Path, private_key_pem: bytes) -> None:
    _rewrite(settings_file, "  port: 0", "  port: [1, 2]")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(settings_file, environ={})
    assert b"PRIVATE KEY" not in str(caught.value).encode()
    assert private_key_pem[40:80].decode() not in str(caught.value)
