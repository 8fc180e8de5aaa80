"""``altinn-proxy credentials add|hash``: hashed entries, secrets from stdin only."""

from __future__ import annotations

import argparse
import io
import stat
from pathlib import Path

import pytest

from proxy.errors import ConfigurationError
from proxy.identity.cli import add_cli_commands
from proxy.identity.credentials import load_credentials, parse_credentials
from proxy.identity.passwords import PasswordHash, hash_api_key, verify_password
from proxy.identity.principal import CallerKind, OrgGrant
from tests.identity.conftest import ORG_A, ORG_B, SERVICE_OWNER_ORG


def run(argv: list[str], stdin: str, monkeypatch: pytest.MonkeyPatch) -> int:
    parser = argparse.ArgumentParser(prog="altinn-proxy")
    add_cli_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code: int = args.func(args)
    return code


def test_add_writes_a_hashed_end_user_system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "credentials.yaml"
    argv = ["credentials", "add", str(path), "12345", "--org", f"{ORG_A}=customer-a", "--org", ORG_B]
    assert run(argv, "a long password\n", monkeypatch) == 0
    assert "a long password" not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    entry = load_credentials(path).caller("12345")
    assert entry is not None
    assert entry.password_hash is not None
    assert verify_password(entry.password_hash, "a long password")
    assert dict(entry.principal.orgs) == {ORG_A: OrgGrant(ORG_A, "customer-a"), ORG_B: OrgGrant(ORG_B)}


def test_add_a_service_owner_next_to_existing_callers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "credentials.yaml"
    run(["credentials", "add", str(path), "12345", "--org", ORG_A], "first password\n", monkeypatch)
    argv = [
        "credentials",
        "add",
        str(path),
        "ttd-agency",
        "--service-owner",
        "ttd",
        "--org",
        SERVICE_OWNER_ORG,
    ]
    run([*argv, "--scope", "altinn:serviceowner"], "second password\n", monkeypatch)
    book = load_credentials(path)
    assert set(book.callers) == {"12345", "ttd-agency"}
    assert book.callers["ttd-agency"].principal.kind is CallerKind.SERVICE_OWNER


def test_add_refuses_to_overwrite_and_to_write_an_invalid_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "credentials.yaml"
    run(["credentials", "add", str(path), "12345", "--org", ORG_A], "first password\n", monkeypatch)
    before = path.read_text()
    with pytest.raises(ConfigurationError, match="exists already"):
        run(["credentials", "add", str(path), "12345", "--org", ORG_B], "other password\n", monkeypatch)
    with pytest.raises(ConfigurationError, match="check digit"):
        run(["credentials", "add", str(path), "999", "--org", "310000018"], "other password\n", monkeypatch)
    with pytest.raises(ConfigurationError, match="at least 8"):
        run(["credentials", "add", str(path), "999", "--org", ORG_B], "short\n", monkeypatch)
    assert path.read_text() == before
    assert list(tmp_path.iterdir()) == [path], "no temporary file is left behind"
    run(
        ["credentials", "add", str(path), "12345", "--org", ORG_B, "--replace"],
        "other password\n",
        monkeypatch,
    )
    assert set(load_credentials(path).callers["12345"].principal.orgs) == {ORG_B}


def test_hash_prints_a_usable_password_hash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["credentials", "hash"], "a long password\n", monkeypatch) == 0
    printed = capsys.readouterr().out.strip()
    assert verify_password(PasswordHash.parse(printed), "a long password")
    document = {
        "callers": {"x": {"password_hash": printed, "kind": "end_user_system", "orgs": [{"org": ORG_A}]}}
    }
    assert parse_credentials(document).caller("x") is not None


def test_hash_an_api_key(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    run(["credentials", "hash", "--api-key"], "key-abc\n", monkeypatch)
    assert capsys.readouterr().out.strip() == hash_api_key("key-abc")


def test_secrets_cannot_be_given_on_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit):
        run(
            ["credentials", "add", str(tmp_path / "c.yaml"), "1", "--org", ORG_A, "--password", "x"],
            "",
            monkeypatch,
        )
