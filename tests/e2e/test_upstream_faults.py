"""What a legacy caller sees of an upstream refusal, and what the operator's log gets.

A fault never names the proxy's Maskinporten client id, its key id or a URL; the operator's detail
(status, errorCode or MP code, the upstream's own description, the request id) is logged at warning
level for every refusal. MP-303 (no system user) reads as such, not as a scope problem.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from lxml import etree

from proxy.sandbox import fixtures
from proxy.sandbox.world import SandboxKeys
from proxy.settings import Settings
from tests.e2e.conftest import World, run_world
from tests.e2e.test_durability import AGENCY_PATH, INSERT_ACTION, insert_envelope
from tests.e2e.test_identity import call, fault, inbox_request


def _leaks(fields: dict[str, str], world: World) -> list[str]:
    text = " ".join(fields.values())
    secrets = [fixtures.CLIENT_ID, fixtures.CLIENT_KID, "wrong-kid", "http://", "https://", "127.0.0.1"]
    secrets += [world.fakes.maskinporten_url, world.fakes.platform_url]
    return [secret for secret in secrets if secret in text]


async def test_no_system_user_is_mp_303_with_no_client_details_and_a_warning(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.fakes.maskinporten.system_users.clear()
    status, answer = await call(world, inbox_request("demo-eus", "demo-eus-password", "310000019"))

    fields = fault(answer)
    assert (status, fields["ErrorID"]) == (500, "5")
    assert "no system user for this organisation" in fields["AltinnErrorMessage"]
    assert "MP-303" in fields["AltinnExtendedErrorMessage"]
    assert fields["ErrorGuid"] in fields["AltinnExtendedErrorMessage"]
    assert _leaks(fields, world) == []
    logged = [line for line in capsys.readouterr().out.splitlines() if "upstream.refused" in line]
    assert len(logged) == 1
    assert "warning" in logged[0]
    assert "MP-303" in logged[0]
    assert fields["ErrorGuid"] in logged[0]


def _wrong_kid(settings: Settings) -> Settings:
    maskinporten = settings.maskinporten.model_copy(update={"kid": "wrong-kid"})
    return settings.model_copy(update={"maskinporten": maskinporten})


@pytest.fixture
async def wrong_kid_world(
    tmp_path: Path, altinn3_contract: Any, sandbox_keys: SandboxKeys, mappings_dir: Path
) -> AsyncIterator[World]:
    """The world with the proxy signing its grants under a key id Maskinporten does not know."""
    async with run_world(
        tmp_path, altinn3_contract, sandbox_keys, mappings_dir, adjust=_wrong_kid
    ) as running:
        yield running


async def test_a_wrong_key_id_is_a_token_fault_that_names_neither_client_nor_kid(
    wrong_kid_world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world = wrong_kid_world
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{INSERT_ACTION}"'}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
        session.post(
            world.proxy_url + AGENCY_PATH, data=insert_envelope("kid-1"), headers=headers
        ) as response,
    ):
        answer = etree.fromstring(await response.read())
    fields = fault(answer)
    assert fields["ErrorID"] == "5"
    assert "MP-124" in fields["AltinnExtendedErrorMessage"]
    assert _leaks(fields, world) == []
    logged = [line for line in capsys.readouterr().out.splitlines() if "upstream.refused" in line]
    assert len(logged) == 1
    assert "warning" in logged[0]
    assert "MP-124" in logged[0]
