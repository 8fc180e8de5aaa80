"""``altinn-proxy check --online`` against the sandbox's Maskinporten: a verdict per organisation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.sandbox.fixtures import BROKER_RESOURCE, ONBOARDING_ORG, SYSTEM_ID
from proxy.sandbox.world import (
    Fakes,
    SandboxKeys,
    sandbox_settings_document,
    start_fakes,
    write_sandbox_files,
)
from tests.foundation.process import run_cli


@dataclass(frozen=True)
class Deployed:
    """The fakes and a settings file (written as an operator would) pointing at them."""

    fakes: Fakes
    config: Path

    def rewrite(self, section: str, key: str, value: Any) -> None:
        """Change one setting in the file."""
        document = yaml.safe_load(self.config.read_text())
        document[section][key] = value
        self.config.write_text(yaml.safe_dump(document, sort_keys=False))


@pytest.fixture
async def deployed(tmp_path: Path, sandbox_keys: SandboxKeys) -> AsyncIterator[Deployed]:
    """The sandbox fakes and a settings file for them."""
    async with start_fakes(tmp_path, keys=sandbox_keys) as fakes:
        await asyncio.to_thread(write_sandbox_files, tmp_path, fakes.keys)
        config = tmp_path / "settings.yaml"
        document = sandbox_settings_document(fakes, tmp_path, port=0)
        await asyncio.to_thread(config.write_text, yaml.safe_dump(document, sort_keys=False))
        yield Deployed(fakes, config)


async def test_every_organisation_gets_its_token(deployed: Deployed) -> None:
    # The sandbox's customer still to onboard approves its system user first.
    deployed.fakes.system_register.seed_system_user(SYSTEM_ID, ONBOARDING_ORG, [BROKER_RESOURCE])
    code, out, err = await run_cli("check", "--config", str(deployed.config), "--online")
    assert (code, err) == (0, "")
    lines = out.splitlines()[1:]
    assert lines == [
        "ok   service owner: token issued",
        "ok   organisation 310000019: token issued",
        "ok   organisation 310000027: token issued",
        f"ok   organisation {ONBOARDING_ORG}: token issued",
    ]


async def test_an_organisation_without_system_user_is_mp_303(deployed: Deployed) -> None:
    users = deployed.fakes.maskinporten.system_users
    for key in [key for key in users if key[1] == "310000027"]:
        del users[key]
    code, out, _ = await run_cli("check", "--config", str(deployed.config), "--online")
    assert code == 1
    verdicts = out.splitlines()[1:]
    assert verdicts[:2] == ["ok   service owner: token issued", "ok   organisation 310000019: token issued"]
    assert verdicts[2].startswith("FAIL organisation 310000027: no system user (MP-303)")


async def test_a_wrong_key_id_is_named(deployed: Deployed) -> None:
    deployed.rewrite("maskinporten", "kid", "not-the-registered-kid")
    code, out, _ = await run_cli("check", "--config", str(deployed.config), "--online")
    assert code == 1
    verdicts = out.splitlines()[1:]
    assert len(verdicts) == 4
    for line in verdicts:
        assert line.startswith("FAIL ")
        assert "unknown client or key id (MP-124; signed with key id 'not-the-registered-kid')" in line


async def test_plain_check_stays_offline(deployed: Deployed) -> None:
    deployed.rewrite("maskinporten", "kid", "not-the-registered-kid")
    code, out, _ = await run_cli("check", "--config", str(deployed.config))
    assert code == 0
    assert len(out.splitlines()) == 1
    assert not deployed.fakes.maskinporten.grants
