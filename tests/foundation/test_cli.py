"""The command line: located one-line errors, exit codes, no tracebacks."""

from __future__ import annotations

from pathlib import Path

import pytest

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


async def test_missing_settings_file_is_one_line(tmp_path: Path) -> None:
    code, _, err = await run_cli("check", "--config", str(tmp_path / "absent.yaml"))
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "cannot read settings file" in err
