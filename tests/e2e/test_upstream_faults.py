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

from proxy.app import SERVICES
from proxy.errors import StoreUnavailable
from proxy.sandbox import fixtures
from proxy.sandbox.world import SandboxKeys
from proxy.settings import Settings
from tests.e2e.conftest import World, run_world
from tests.e2e.rest_world import EUS, rest_world
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


async def test_a_store_failure_names_no_database_and_is_logged_for_the_operator(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = world.app[SERVICES].store
    detail = "the PostgreSQL store at postgresql://postgres@10.1.2.3:5432/proxy failed: connection refused"

    async def unavailable(*args: Any, **kwargs: Any) -> None:
        raise StoreUnavailable(detail)

    monkeypatch.setattr(store, "finish", unavailable)
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{INSERT_ACTION}"'}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
        session.post(
            world.proxy_url + AGENCY_PATH, data=insert_envelope("store-1"), headers=headers
        ) as response,
    ):
        answer = etree.fromstring(await response.read())
    fields = fault(answer)
    assert fields["ErrorID"] == str(StoreUnavailable.error_id)
    assert "retry later" in fields["AltinnErrorMessage"]
    assert fields["ErrorGuid"] in fields["AltinnExtendedErrorMessage"]
    assert not [value for value in fields.values() if "postgresql" in value or "10.1.2.3" in value]
    logged = [line for line in capsys.readouterr().out.splitlines() if "store.unavailable" in line]
    assert len(logged) == 1
    assert "warning" in logged[0]
    assert "10.1.2.3" in logged[0]
    assert fields["ErrorGuid"] in logged[0]


async def test_a_rest_caller_gets_the_quotable_part_of_a_token_refusal_and_nothing_more(
    tmp_path: Path, altinn3_contract: Any, sandbox_keys: SandboxKeys, capsys: pytest.CaptureFixture[str]
) -> None:
    async with rest_world(tmp_path, altinn3_contract, sandbox_keys) as world:
        world.fakes.maskinporten.system_users.clear()
        async with world.client(EUS) as client:
            body = await client.json("GET", "/api/my/messages", status=403)
    assert body["ErrorCode"] == 5
    message = body["ErrorMessage"]
    assert "MP-303" in message
    secrets = [fixtures.CLIENT_ID, fixtures.CLIENT_KID, "http://", "https://", "127.0.0.1"]
    assert [secret for secret in secrets if secret in message] == []
    logged = [line for line in capsys.readouterr().out.splitlines() if "upstream.refused" in line]
    assert len(logged) == 1
    assert "MP-303" in logged[0]
    assert "warning" in logged[0]
