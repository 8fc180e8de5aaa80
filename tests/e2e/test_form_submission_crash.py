"""Issue 15: a proxy killed (SIGKILL) between making the app instance and answering.

The proxy runs as a child process (``altinn-proxy serve``) over a SQLite store with a short
idempotency lease; the fakes run here. The app holds ``process/next`` of the first submission until
the proxy is dead, so the instance exists with its form and attachments and no answer was given. A
fresh proxy on the same store, sent the same shipment once the dead holder's lease has run out,
finishes that instance: one instance, processed to its end, and a receipt.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from lxml import etree

from proxy.sandbox.world import SandboxKeys, sandbox_settings_document, start_fakes, write_sandbox_files
from tests.e2e.test_form_submission import ACTION, INBOUND, envelope, receipt_of
from tests.foundation.process import start_proxy

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 1.0
TIMEOUT = aiohttp.ClientTimeout(total=60)


async def _submit(session: aiohttp.ClientSession, url: str, reference: str) -> tuple[int, etree._Element]:
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{ACTION}"'}
    async with session.post(url + INBOUND, data=envelope(reference), headers=headers) as response:
        return response.status, etree.fromstring(await response.read())


async def test_a_resend_after_a_kill_between_instance_and_answer_finishes_that_instance(
    tmp_path: Path, sandbox_keys: SandboxKeys, altinn3_contract: Any
) -> None:
    async with start_fakes(tmp_path, observer=altinn3_contract, keys=sandbox_keys) as fakes:
        await asyncio.to_thread(write_sandbox_files, tmp_path, fakes.keys)
        document = sandbox_settings_document(fakes, tmp_path, port=0)
        document["store"] = {
            "url": f"sqlite://{tmp_path / 'state.db'}",
            "idempotency_lease_seconds": LEASE_SECONDS,
        }
        config = tmp_path / "settings.yaml"
        await asyncio.to_thread(config.write_text, yaml.safe_dump(document, sort_keys=False))

        fakes.apps.holds["next"] = asyncio.Event()
        first = await start_proxy("serve", "--config", str(config), cwd=REPO)
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            sent = asyncio.create_task(_submit(session, first.base_url, "crash-1"))
            # The instance is made and its process/next is being held.
            await asyncio.wait_for(fakes.apps.held.wait(), 30)
            assert await first.terminate(signal.SIGKILL) == -signal.SIGKILL
            with pytest.raises(aiohttp.ClientError):
                await sent
        fakes.apps.holds["next"].set()
        del fakes.apps.holds["next"]
        [made] = [i for i in fakes.apps.instances.values() if not i.hard_deleted]
        assert made.process_ended is None
        assert len(made.data) == 3  # the form and both attachments, and no answer was given

        second = await start_proxy("serve", "--config", str(config), cwd=REPO)
        try:
            await asyncio.sleep(LEASE_SECONDS * 2)  # the dead holder's claim runs out
            async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
                status, answer = await _submit(session, second.base_url, "crash-1")
        finally:
            await second.terminate(signal.SIGTERM)
        assert status == 200, etree.tostring(answer)
        receipt = receipt_of(answer)
        assert receipt["ReceiptStatusCode"] == "OK"
        assert receipt["References"]["ArchiveReference"].startswith("AR")
        [instance] = [i for i in fakes.apps.instances.values() if not i.hard_deleted]
        assert instance is made
        assert instance.process_ended is not None
        assert sorted(e.data_type for e in instance.data).count("vedlegg") == 2
