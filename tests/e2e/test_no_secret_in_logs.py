"""No secret in any log line or metric, whatever a legacy caller does (through the real process).

Every translated flow runs once against ``altinn-proxy serve`` at log level ``debug``: correspondence
sent over Basic and over WS-Security, listed, read, confirmed and its receipt and status read; a
broker file initiated, uploaded, listed, downloaded and confirmed; and callers with wrong passwords
on both bindings. Then every log line, every metric and every fault text is scanned for the legacy
passwords, the lines of the Maskinporten client key, every grant assertion and access token the
fake Maskinporten saw or issued, and anything shaped like a JWT (exchanged Altinn tokens included).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from proxy.sandbox.broker_model import FileTransferStatus
from proxy.sandbox.world import SandboxKeys
from tests.e2e.conftest import legacy_client
from tests.e2e.leaks import known_secrets, leaks
from tests.e2e.test_altinn3_faults import Faulty, faulty_deployment
from tests.e2e.test_broker import RECIPIENT, SENDER, _available, _initiate, _upload
from tests.e2e.test_correspondence_agency import _served_calls, _served_client
from tests.e2e.test_correspondence_flow import (
    AGENCY,
    CORRESPONDENCE,
    END_USER,
    INBOX,
    _agency_wsdl,
    _inbox,
    _insert,
)

pytestmark = pytest.mark.slow


@pytest.fixture
async def debug_deployment(
    tmp_path: Path, sandbox_keys: SandboxKeys, altinn3_contract: Any, reference: os.PathLike[str]
) -> AsyncIterator[Faulty]:
    async with faulty_deployment(
        tmp_path, sandbox_keys, altinn3_contract, reference, log_level="debug"
    ) as deployed:
        yield deployed


def _correspondence_flow(proxy_url: str, agency_wsdl: Path) -> list[str]:
    import zeep.exceptions

    texts: list[str] = []
    _served_calls(proxy_url)
    agency = legacy_client(agency_wsdl, proxy_url + AGENCY)
    _insert(agency, "secret-scan", END_USER[2])
    inbox = legacy_client(proxy_url + INBOX + "?wsdl", proxy_url + INBOX)
    reader = legacy_client(proxy_url + CORRESPONDENCE + "?wsdl", proxy_url + CORRESPONDENCE)
    for item in _inbox(inbox, END_USER):
        reader.GetCorrespondenceForEndUserSystemBasicV2(*END_USER[:2], item.ReporteeElementId, 1044)
        reader.SaveCorrespondenceConfirmationBasic(*END_USER[:2], item.ReporteeElementId)
    wrong_basic = (END_USER[0], "wrong-" + END_USER[1])
    wrong_ws = _served_client(
        proxy_url + "/ServiceEngineExternal/CorrespondenceAgencyExternal.svc", *wrong_basic
    )
    for call in (
        lambda: _inbox(inbox, (*wrong_basic, END_USER[2])),
        lambda: wrong_ws.service.GetCorrespondenceStatusDetailsV3(
            {"ServiceCode": "4711", "ServiceEditionCode": 1, "Reportee": END_USER[2]}
        ),
    ):
        try:
            call()
        except zeep.exceptions.Fault as fault:
            texts.append(f"{fault.message} {fault.detail!r}")
    assert len(texts) == 2, "the wrong passwords were not refused"
    return texts


async def test_every_flow_leaves_no_secret_in_logs_metrics_or_faults(
    debug_deployment: Faulty, reference: os.PathLike[str]
) -> None:
    deployed = debug_deployment
    url = deployed.proxy.base_url
    deployed.fakes.correspondence.publish_due()
    texts = await asyncio.to_thread(_correspondence_flow, url, _agency_wsdl(reference))
    deployed.fakes.correspondence.publish_due()

    payload = os.urandom(256 * 1024)
    file_reference = await deployed.call(_initiate, deployed.basic, SENDER, RECIPIENT[2], "secret-scan")
    await deployed.call(_upload, deployed.streamed, SENDER, file_reference, payload)
    broker = deployed.fakes.broker
    await broker.wait_until(
        lambda: all(t.status is FileTransferStatus.PUBLISHED for t in broker.transfers.values())
    )
    assert [f.FileReference for f in await deployed.call(_available, deployed.basic, RECIPIENT)] == [
        file_reference
    ]
    user, password, org = RECIPIENT
    assert (
        await deployed.call(deployed.streamed.DownloadFileStreamedBasic, user, password, file_reference, org)
        == payload
    )
    await deployed.call(deployed.basic.ConfirmDownloadedBasic, user, password, file_reference, org)

    assert len(deployed.fakes.maskinporten.assertions_seen) >= 3
    assert any(line.get("level") == "debug" for line in deployed.proxy.lines), "debug lines were not written"
    secrets = known_secrets(deployed.fakes, deployed.workdir)
    assert leaks(texts, secrets) == []
    assert leaks([f"token={secrets[-1]}", "a password: demo-so-password"], secrets), "the scan sees nothing"
    # The deployment's exit scans every log line and metric.
