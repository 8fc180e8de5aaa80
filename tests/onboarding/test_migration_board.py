"""Per-organisation state at run time: token outcomes and Altinn 3 refusals turn into the state metric,
the legacy caller's fault text and the migration board, within one call.

The world has one ready organisation (310000019), one waiting for its request to be approved
(310000043) and one whose customer withdrew a right (310000027). The board is read as HTML, and once
in a real headless Chromium that takes a screenshot a person can look at.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from lxml import html
from prometheus_client import REGISTRY

from proxy.observability.metrics import create_metrics_app
from proxy.onboarding.memory import read_requests
from proxy.sandbox import fixtures
from tests.e2e.conftest import World
from tests.e2e.test_identity import INBOX_NS, call, fault, inbox_request
from tests.onboarding.browser import headless_page
from tests.onboarding.test_system_commands import customer, run, settings_file

READY, WITHDRAWN, NEW = "310000019", "310000027", fixtures.ONBOARDING_ORG
TIMEOUT = aiohttp.ClientTimeout(total=30)
ARTIFACTS = Path(__file__).resolve().parents[2] / ".test-artifacts"


def state_of(org: str) -> str:
    """The state whose ``altinn_proxy_onboarding_state`` child is 1 for ``org``."""
    states = {
        sample.labels["state"]
        for family in REGISTRY.collect()
        if family.name == "altinn_proxy_onboarding_state"
        for sample in family.samples
        if sample.labels.get("org") == org and sample.value == 1.0
    }
    assert len(states) == 1, states
    return states.pop()


async def untranslated_call(world: World, username: str, password: str) -> int:
    """DeleteReporteeElementBasic, which the proxy does not translate."""
    body = f"""<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
<DeleteReporteeElementBasic xmlns="{INBOX_NS}"><systemUserName>{username}</systemUserName>
<systemPassword>{password}</systemPassword><reporteeElementId>1</reporteeElementId></DeleteReporteeElementBasic>
</s:Body></s:Envelope>""".encode()
    headers = {
        "Content-Type": "text/xml; charset=utf-8",
        "SOAPAction": f'"{INBOX_NS}/IReporteeElementListExternalBasic/DeleteReporteeElementBasic"',
    }
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.post(
            world.proxy_url + "/ServiceEngineExternal/ReporteeElementListExternalBasic.svc",
            data=body,
            headers=headers,
        ) as response,
    ):
        return response.status


async def three_states(world: World, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, str]]:
    """Drive the world into ready / pending / rights withdrawn; the faults the callers read."""
    config = str(settings_file(world))
    assert (await run(capsys, "system", "register", "--config", config, "--apply"))[0] == 0
    assert (await run(capsys, "system", "request", "--config", config, "--org", NEW))[0] == 0

    status, answer = await call(world, inbox_request("demo-eus", "demo-eus-password", READY))
    assert status == 200
    assert await untranslated_call(world, "demo-eus", "demo-eus-password") == 500

    faults = {}
    status, answer = await call(world, inbox_request("demo-eus3", "demo-eus3-password", NEW))
    assert status == 500
    faults[NEW] = fault(answer)

    status, answer = await call(world, inbox_request("demo-eus2", "demo-eus2-password", WITHDRAWN))
    assert status == 200, "ready before the customer withdraws the right"
    await customer(world, "POST", f"/{WITHDRAWN}/withdraw/{fixtures.CORRESPONDENCE_RESOURCE}")
    status, answer = await call(world, inbox_request("demo-eus2", "demo-eus2-password", WITHDRAWN))
    assert status == 500
    faults[WITHDRAWN] = fault(answer)
    return faults


@contextlib.asynccontextmanager
async def metrics_port(world: World) -> AsyncIterator[str]:
    """The metrics port's application (with the board) for the world's proxy, on loopback."""
    from aiohttp import web

    runner = web.AppRunner(create_metrics_app(world.app), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_states_turn_into_metric_fault_text_and_board_within_one_call(
    world: World, capsys: pytest.CaptureFixture[str], altinn3_contract: Any
) -> None:
    faults = await three_states(world, capsys)
    sent = read_requests(world.settings.data_dir)[NEW]

    assert state_of(READY) == "ready"
    assert state_of(NEW) == "pending"
    assert state_of(WITHDRAWN) == "rights_missing"

    pending = faults[NEW]["AltinnErrorMessage"]
    assert pending == (
        f"organisation {NEW} has not approved this system's access: ask it to approve the request sent on "
        f"{sent.created[:10]} at {sent.confirm_url}"
    )
    withdrawn = faults[WITHDRAWN]["AltinnErrorMessage"]
    assert f"organisation {WITHDRAWN} has withdrawn" in withdrawn
    assert fixtures.CORRESPONDENCE_RESOURCE in withdrawn
    for text in (pending, withdrawn, faults[NEW].get("AltinnExtendedErrorMessage", "")):
        assert "eyJ" not in text  # no token, assertion or key ever reaches a caller

    async with (
        metrics_port(world) as base,
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.get(base + "/board") as response,
    ):
        assert response.status == 200
        assert response.content_type == "text/html"
        page = html.fromstring(await response.text())
    assert not page.xpath("//script"), "the board has no script"
    states = {row.get("id"): row.get("data-state") for row in page.xpath("//tr[@data-state]")}
    assert states["row-demo-eus-310000019"] == "ready"
    assert states["row-demo-eus3-310000043"] == "pending"
    assert states["row-demo-eus2-310000027"] == "rights_missing"
    assert states["row-demo-so-owner"] == "service_owner"
    assert page.xpath(f"//a[@class='confirm'][@href='{sent.confirm_url}']")
    ready_row = page.xpath("//tr[@id='row-demo-eus-310000019']")[0].text_content()
    assert "GetReporteeElementListBasicV2" in ready_row
    assert "DeleteReporteeElementBasic" in ready_row
    assert "(not translated)" in ready_row

    # The customer approves and gives the right back: the next call of each is served, state ready.
    await customer(world, "POST", f"/requests/{sent.request_id}/approve")
    assert (await call(world, inbox_request("demo-eus3", "demo-eus3-password", NEW)))[0] == 200
    assert state_of(NEW) == "ready"
    assert altinn3_contract.problems == []


async def test_the_board_in_a_real_browser(
    world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    await three_states(world, capsys)
    sent = read_requests(world.settings.data_dir)[NEW]
    async with metrics_port(world) as base, headless_page(tmp_path / "chromium-profile") as page:
        await page.load(base + "/board")
        seen = await page.evaluate("document.body.innerText")
        links = await page.evaluate("[...document.querySelectorAll('a.confirm')].map(a => a.href)")
        badges = await page.evaluate(
            "Object.fromEntries([...document.querySelectorAll('tr[data-state]')]"
            ".map(r => [r.id, r.querySelector('.state').innerText]))"
        )
        shot = await page.screenshot(ARTIFACTS / "migration-board.png")
    print(f"migration board screenshot: {shot}")
    assert "Migration board" in seen
    assert badges["row-demo-eus-310000019"] == "Ready"
    assert badges["row-demo-eus3-310000043"] == "Waiting for approval"
    assert badges["row-demo-eus2-310000027"] == "Rights withdrawn"
    assert links == [sent.confirm_url]
    assert "GetReporteeElementListBasicV2" in seen
    assert "DeleteReporteeElementBasic" in seen
    assert f"give back the right to {fixtures.CORRESPONDENCE_RESOURCE}" in seen
    assert shot.stat().st_size > 10_000
    assert os.path.getsize(shot) == shot.stat().st_size
