"""The README's onboarding walk-through, as an operator runs it: ``altinn-proxy sandbox`` as a real
process, every command with ``--config`` the settings file it writes, the customer approving in the
fake portal, and the legacy call that failed before now served.
"""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path
from typing import Any

import aiohttp
from lxml import etree

from proxy.sandbox import fixtures
from tests.e2e.test_identity import FAULT_NS, INBOX_NS, INBOX_PATH, inbox_request
from tests.foundation.process import ProxyProcess, run_cli, start_proxy

TIMEOUT = aiohttp.ClientTimeout(total=30)
NEW = fixtures.ONBOARDING_ORG


async def banner_lines(proxy: ProxyProcess, last: str) -> list[str]:
    """The banner the sandbox prints on stdout, up to the line containing ``last``."""
    assert proxy.process.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(60):
        while not any(last in line for line in lines):
            lines.append((await proxy.process.stdout.readline()).decode())
    return lines


async def legacy_inbox(base_url: str) -> dict[str, Any]:
    """demo-eus3's inbox call; ``{"status": ..., "message": AltinnErrorMessage or None}``."""
    headers = {
        "Content-Type": "text/xml; charset=utf-8",
        "SOAPAction": f'"{INBOX_NS}/IReporteeElementListExternalBasic/GetReporteeElementListBasicV2"',
    }
    body = inbox_request("demo-eus3", "demo-eus3-password", NEW)
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.post(base_url + INBOX_PATH, data=body, headers=headers) as response,
    ):
        answer = etree.fromstring(await response.read())
    message = answer.find(f".//{{{FAULT_NS}}}AltinnErrorMessage")
    return {"status": response.status, "message": None if message is None else message.text}


async def test_the_onboarding_walk_through(tmp_path: Path) -> None:
    proxy = await start_proxy("sandbox", "--port", "0", "--log-format", "json", cwd=tmp_path)
    try:
        lines = await banner_lines(proxy, "system status")
        settings_file = tmp_path / ".sandbox" / "settings.yaml"
        assert any(str(settings_file) in line for line in lines), lines
        platform = re.search(r"curl -X POST (\S+)/sandbox/customer", "".join(lines))
        assert platform is not None
        config = ("--config", str(settings_file))

        refused = await legacy_inbox(proxy.base_url)
        assert refused["status"] == 500
        assert f"no system user for this organisation ({NEW})" in refused["message"]

        code, out, err = await run_cli("check", *config)
        assert code == 0, err
        code, out, err = await run_cli("system", "register", *config)
        assert code == 3, err
        assert f"+ right {fixtures.BROKER_RESOURCE}" in out
        code, out, err = await run_cli("system", "register", *config, "--apply")
        assert code == 0, err
        code, out, err = await run_cli("system", "request", *config, "--org", NEW)
        assert code == 0, err
        request_id = re.search(rf"{NEW}: request ([0-9a-f-]{{36}})", out)
        assert request_id is not None, out
        assert "confirm" not in out or "DONTCHOOSEREPORTEE=true" in out

        waiting = await legacy_inbox(proxy.base_url)
        assert waiting["status"] == 500
        assert f"organisation {NEW} has not approved this system's access" in waiting["message"]

        code, out, err = await run_cli("system", "status", *config)
        assert code == 1
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as session,
            session.post(
                f"{platform.group(1)}/sandbox/customer/requests/{request_id.group(1)}/approve"
            ) as answer,
        ):
            assert answer.status == 200
        code, out, err = await run_cli("system", "status", *config)
        assert code == 0, out + err
        assert all(" ready " in line for line in out.splitlines()[1:]), out

        served = await legacy_inbox(proxy.base_url)
        assert served == {"status": 200, "message": None}
    finally:
        assert await proxy.terminate(signal.SIGINT) == 0
