"""``altinn-proxy system register|request|status`` against the strict fakes, judged by Altinn's contract.

The commands run as an operator runs them: ``main([...])`` with ``--config`` the settings file the
sandbox writes, in a thread (each command runs its own event loop; the fakes serve on the test's).
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from proxy.cli import main
from proxy.onboarding.memory import read_requests
from proxy.sandbox import fixtures
from proxy.sandbox.world import sandbox_settings_document, write_settings_file
from tests.e2e.conftest import World
from tests.e2e.test_identity import call, fault, inbox_request

TIMEOUT = aiohttp.ClientTimeout(total=30)
NEW = fixtures.ONBOARDING_ORG


def settings_file(world: World, **changes: Any) -> Path:
    """The sandbox's settings file for this world (``changes`` merged into the top level)."""
    document = sandbox_settings_document(world.fakes, world.workdir, port=0)
    document.update(changes)
    return write_settings_file(world.workdir / ".sandbox" / "settings.yaml", document)


async def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run one command; its exit code and what it printed (stdout, or stderr when it failed)."""
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    return code, captured.out if code in (0, 3) or captured.out.strip() else captured.err


async def customer(world: World, method: str, path: str) -> Any:
    """Act as the customer in the fake Altinn portal."""
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.request(method, world.fakes.platform_url + "/sandbox/customer" + path) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


async def test_register_shows_the_difference_and_applies_it_once(
    world: World, capsys: pytest.CaptureFixture[str], altinn3_contract: Any
) -> None:
    config = str(settings_file(world))
    code, out = await run(capsys, "system", "register", "--config", config)
    assert code == 3, out
    assert f"+ right {fixtures.BROKER_RESOURCE}" in out
    assert "--apply" in out

    code, out = await run(capsys, "system", "register", "--config", config, "--apply")
    assert code == 0, out
    assert "updated" in out
    registered = world.fakes.system_register.systems[fixtures.SYSTEM_ID]
    values = {a["value"] for right in registered["rights"] for a in right["resource"]}
    assert values == {fixtures.BROKER_RESOURCE, fixtures.CORRESPONDENCE_RESOURCE, fixtures.FORM_APP_RESOURCE}
    assert registered["clientId"] == [fixtures.CLIENT_ID]

    code, out = await run(capsys, "system", "register", "--config", config, "--apply", "--json")
    assert code == 0, out
    answer = json.loads(out)
    assert answer["action"] == "unchanged"
    assert answer["changes"] == []
    assert {r["resource"] for r in answer["rights"]} == values
    assert altinn3_contract.checked > 0


async def test_a_routed_service_added_to_the_settings_changes_the_difference(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = str(settings_file(world))
    assert (await run(capsys, "system", "register", "--config", plain, "--apply"))[0] == 0
    document = sandbox_settings_document(world.fakes, world.workdir, port=0)
    document["routing"]["broker"].append(
        {"service_code": "4799", "service_edition": "1", "resource_id": "ttd-broker-4799"}
    )
    more = str(write_settings_file(world.workdir / "more.yaml", document))
    code, out = await run(capsys, "system", "register", "--config", more)
    assert code == 3
    assert "+ right ttd-broker-4799" in out
    # Altinn's resource register does not know it: applying is refused with Altinn's own reason.
    code, out = await run(capsys, "system", "register", "--config", more, "--apply")
    assert code == 1
    assert "AUTH.VLD-00003" in out
    assert "ttd-broker-4799" in out


async def test_request_status_approve_and_the_legacy_call_works(
    world: World, capsys: pytest.CaptureFixture[str], altinn3_contract: Any
) -> None:
    config = str(settings_file(world))
    # Before: the new customer's legacy call fails with Maskinporten's MP-303.
    status, answer = await call(world, inbox_request("demo-eus3", "demo-eus3-password", NEW))
    assert status == 500
    assert fault(answer)["ErrorID"] == "5"

    assert (await run(capsys, "system", "register", "--config", config, "--apply"))[0] == 0
    code, out = await run(capsys, "system", "status", "--config", config, "--json")
    assert code == 1, out
    states = {o["org"]: o for o in json.loads(out)["organisations"]}
    assert states[NEW]["state"] == "no_system_user"
    assert states[NEW]["token"] == "refused MP-303"
    assert states["310000019"]["state"] == "ready"
    assert states["310000019"]["token"] == "ok"

    code, out = await run(capsys, "system", "request", "--config", config, "--org", NEW)
    assert code == 0, out
    sent = read_requests(world.settings.data_dir)[NEW]
    assert sent.status == "New"
    assert sent.confirm_url in out
    assert "DONTCHOOSEREPORTEE=true" in sent.confirm_url
    stored = world.fakes.system_register.requests[sent.request_id]
    assert {a["value"] for r in stored.rights for a in r["resource"]} == {
        fixtures.BROKER_RESOURCE,
        fixtures.CORRESPONDENCE_RESOURCE,
        fixtures.FORM_APP_RESOURCE,
    }
    # Asking again answers the open request, not a second one.
    code, out = await run(capsys, "system", "request", "--config", config, "--all", "--json")
    assert code == 0
    assert [r["request_id"] for r in json.loads(out)] == [sent.request_id]
    assert len(world.fakes.system_register.requests) == 1

    code, out = await run(capsys, "system", "status", "--config", config)
    assert code == 1
    line = next(text for text in out.splitlines() if text.startswith(NEW))
    assert "pending" in line
    assert sent.confirm_url in line

    await customer(world, "POST", f"/requests/{sent.request_id}/approve")
    code, out = await run(capsys, "system", "status", "--config", config, "--json")
    assert code == 0, out
    assert {o["state"] for o in json.loads(out)["organisations"]} == {"ready"}

    status, answer = await call(world, inbox_request("demo-eus3", "demo-eus3-password", NEW))
    assert status == 200, answer
    assert altinn3_contract.problems == []


async def test_a_rejected_request_is_reported(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(settings_file(world))
    assert (await run(capsys, "system", "register", "--config", config, "--apply"))[0] == 0
    assert (await run(capsys, "system", "request", "--config", config, "--org", NEW))[0] == 0
    sent = read_requests(world.settings.data_dir)[NEW]
    await customer(world, "POST", f"/requests/{sent.request_id}/reject")
    code, out = await run(capsys, "system", "status", "--config", config, "--json")
    assert code == 1
    states = {o["org"]: o["state"] for o in json.loads(out)["organisations"]}
    assert states[NEW] == "rejected"


async def test_a_request_for_a_right_the_system_lacks_is_refused(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(settings_file(world))  # not registered: the system still lacks the broker right
    code, out = await run(capsys, "system", "request", "--config", config, "--org", NEW)
    assert code == 1
    assert "AUTH-00001" in out
    assert "Right not found or not delegable" in out


async def test_settings_without_a_system_section_name_what_to_add(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    document = sandbox_settings_document(world.fakes, world.workdir, port=0)
    del document["system"]
    config = str(write_settings_file(world.workdir / "nosystem.yaml", document))
    code, out = await run(capsys, "system", "status", "--config", config)
    assert code == 1
    assert "system.vendor_org" in out
    assert "Traceback" not in out


async def test_credentials_add_takes_the_external_ref_from_the_system_user(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = str(settings_file(world))
    credentials = world.workdir / "new-credentials.yaml"
    add = ("credentials", "add", str(credentials), "demo-new", "--from-system-user", "--config", config)

    code, out = await run(capsys, *add, "--org", NEW)
    assert code == 1
    assert f"organisation {NEW} has no system user" in out
    assert not credentials.exists()

    user = world.fakes.system_register.seed_system_user(fixtures.SYSTEM_ID, NEW, [fixtures.BROKER_RESOURCE])
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-enough-password\n"))
    code, out = await run(capsys, *add, "--org", NEW, "--org", "310000019=my-ref")
    assert code == 0, out
    written = yaml.safe_load(credentials.read_text())["callers"]["demo-new"]["orgs"]
    assert written == [
        {"org": NEW, "externalRef": user.external_ref},
        {"org": "310000019", "externalRef": "my-ref"},
    ]
