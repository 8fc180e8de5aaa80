"""The command line: located one-line errors, exit codes, no tracebacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.foundation.conftest import MAPPINGS
from tests.foundation.process import run_cli


async def test_version() -> None:
    code, out, _ = await run_cli("version")
    assert code == 0
    assert out.startswith("altinn-proxy ")


async def test_check_accepts_a_valid_file(settings_file: Path) -> None:
    code, out, err = await run_cli("check", "--config", str(settings_file))
    assert (code, err) == (0, "")
    assert "ok" in out


@pytest.mark.parametrize("command", ["check", "serve"])
@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("  port: 0", "  prot: 0", "listen.prot"),
        ("  port: 0", "  port: eighty", "listen.port"),
        ("key_file: client.pem", "key_file: missing.pem", "maskinporten.key_file"),
        ("platform_url: http://", "platform_url: htp://", "settings.yaml:6: altinn.platform_url"),
        (
            "token_endpoint: http://",
            "token_endpoint: //",
            "settings.yaml:8: altinn.maskinporten_token_endpoint",
        ),
    ],
)
async def test_bad_settings_exit_1_with_one_line_naming_the_key(
    settings_file: Path, command: str, old: str, new: str, key: str
) -> None:
    settings_file.write_text(settings_file.read_text().replace(old, new))
    code, out, err = await run_cli(command, "--config", str(settings_file))
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert key in lines[0]
    assert "Traceback" not in err


async def test_check_and_serve_refuse_the_same_settings_with_the_same_line(settings_file: Path) -> None:
    # One validator: check and serve give the same one line, with file:line and the key.
    text = settings_file.read_text()
    settings_file.write_text(
        text.replace("client_id: 7b1c1f27-0d5e-4b0f-9d1c-3a3b0c6f2f10", 'client_id: " "')
    )
    checked = await run_cli("check", "--config", str(settings_file))
    served = await run_cli("serve", "--config", str(settings_file))
    assert checked[0] == served[0] == 1
    assert checked[2].strip() == served[2].strip()
    assert "settings.yaml:10: maskinporten.client_id" in checked[2]


async def test_missing_settings_file_is_one_line(tmp_path: Path) -> None:
    code, _, err = await run_cli("check", "--config", str(tmp_path / "absent.yaml"))
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "cannot read settings file" in err


INSERT_REQUEST = """<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
 <s:Body>
  <InsertCorrespondenceBasicV2 xmlns="http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10">
   <systemUserName>explain-so</systemUserName>
   <systemPassword>explain-so-password</systemPassword>
   <SystemUserCode>x</SystemUserCode>
   <ExternalShipmentReference>explain-1</ExternalShipmentReference>
   <Correspondence>
    <ServiceCode>4711</ServiceCode><ServiceEdition>1</ServiceEdition><Reportee>310000019</Reportee>
    <Content><LanguageCode>1044</LanguageCode><MessageTitle>Hei</MessageTitle></Content>
    <VisibleDateTime>2026-12-01T08:00:00</VisibleDateTime>
   </Correspondence>
  </InsertCorrespondenceBasicV2>
 </s:Body>
</s:Envelope>"""


def _add_service_owner(settings_file: Path) -> None:
    from proxy.identity.passwords import hash_password

    password_hash = hash_password("explain-so-password").encode()
    (settings_file.parent / "credentials.yaml").write_text(
        "version: 1\ncallers:\n  explain-so:\n"
        f"    password_hash: '{password_hash}'\n    kind: service_owner\n    service_owner: ttd\n"
        "    org: '310000035'\n    scopes: [altinn:serviceowner, altinn:correspondence.write]\n"
    )


async def test_check_reports_a_broken_mapping_with_file_and_line(settings_file: Path, tmp_path: Path) -> None:
    mappings = tmp_path / "broken-mappings"
    mappings.mkdir()
    (mappings / "x.yaml").write_text("version: 1\noperations:\n  - legacy: {servise: X}\n")
    settings_file.write_text(
        settings_file.read_text().replace(f"mappings_dir: {MAPPINGS}", f"mappings_dir: {mappings}")
    )
    code, _, err = await run_cli("check", "--config", str(settings_file))
    assert code == 1
    assert "x.yaml:3" in err
    assert "Traceback" not in err


async def test_explain_shows_identity_and_calls_without_secrets(settings_file: Path, tmp_path: Path) -> None:
    _add_service_owner(settings_file)
    request = tmp_path / "insert.xml"
    request.write_text(INSERT_REQUEST)
    code, out, err = await run_cli("explain", "--config", str(settings_file), str(request))
    assert code == 0, err
    assert "InsertCorrespondenceBasicV2" in out
    assert "explain-so" in out
    assert "POST http://127.0.0.1:9/correspondence/api/v1/correspondence" in out
    assert "explain-so-password" not in out


async def test_explain_with_a_wrong_password_says_refused(settings_file: Path, tmp_path: Path) -> None:
    _add_service_owner(settings_file)
    request = tmp_path / "insert.xml"
    request.write_text(INSERT_REQUEST.replace("explain-so-password", "wrong"))
    code, out, _ = await run_cli("explain", "--config", str(settings_file), str(request))
    assert code == 0
    assert "refused" in out
    assert "wrong" not in out.split("refused", 1)[1]


async def test_store_migrate_then_check(settings_file: Path) -> None:
    code, out, err = await run_cli("store", "migrate", "--config", str(settings_file))
    assert code == 0, err
    code, out, err = await run_cli("store", "check", "--config", str(settings_file))
    assert code == 0, err
    assert "schema" in out.lower()


async def test_check_names_what_the_environment_overrides(settings_file: Path) -> None:
    """A file saying drain_delay: 10 must never be drained with another value without a word."""
    text = settings_file.read_text().replace(
        "data_dir: data\n", "data_dir: data\ntimeouts:\n  drain_delay: 10\n"
    )
    settings_file.write_text(text)
    line = text.splitlines().index("  drain_delay: 10") + 1
    code, out, err = await run_cli(
        "check", "--config", str(settings_file), env={"ALTINN_PROXY_TIMEOUTS__DRAIN_DELAY": "5"}
    )
    assert (code, err) == (0, "")
    assert (
        f"timeouts.drain_delay: from environment ALTINN_PROXY_TIMEOUTS__DRAIN_DELAY "
        f"(overrides {settings_file}:{line})"
    ) in out
    code, out, _ = await run_cli("check", "--config", str(settings_file))
    assert "from environment" not in out


async def test_the_shipped_mappings_serve_when_the_settings_name_none(settings_file: Path) -> None:
    text = "\n".join(line for line in settings_file.read_text().splitlines() if "mappings_dir" not in line)
    settings_file.write_text(text + "\n")
    code, out, err = await run_cli("check", "--config", str(settings_file))
    assert (code, err) == (0, "")
    assert "(the mappings shipped with the package)" in out
