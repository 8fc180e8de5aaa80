"""Acceptance of issue 14: a new legacy operation is one YAML file, and no Python.

The walkthrough of ``mappings/README.md`` adds ``GetReceiptListBasicV2`` of
``ReceiptAgencyExternalBasic`` (a real Altinn 2 operation the shipped mappings do not translate).
This test copies ``mappings/`` to a temporary folder, adds the README's file verbatim, and serves
it: the proxy's own served WSDL builds a zeep client, which sends a correspondence and then lists
its receipt, through the sandbox's strict Altinn 3 fakes.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from proxy.pipeline.loading import check
from tests.e2e.conftest import World
from tests.shipped import MAPPINGS, shipped_surface

SERVICE_OWNER = ("demo-so", "demo-so-password")
REPORTEE = "310000019"
RECEIPTS = "/IntermediaryExternal/ReceiptAgencyExternalBasic.svc"
AGENCY = "/ServiceEngineExternal/CorrespondenceAgencyExternalBasic.svc"
MARKER = "<!-- walkthrough: receipt-list.yaml -->"


def walkthrough_file() -> str:
    """The YAML block the README's walkthrough shows (the test runs exactly what people read)."""
    readme = (MAPPINGS / "README.md").read_text(encoding="utf-8")
    start = readme.index("```yaml\n", readme.index(MARKER)) + len("```yaml\n")
    return readme[start : readme.index("```\n", start)]


@pytest.fixture
def mappings_dir(tmp_path: Path) -> Path:
    """The shipped mappings plus the walkthrough's file, in a folder of their own."""
    folder = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, folder, ignore=shutil.ignore_patterns("*.md"))
    (folder / "receipt-list.yaml").write_text(walkthrough_file(), encoding="utf-8")
    return folder


def test_the_shipped_mappings_do_not_translate_the_walkthrough_operation() -> None:
    assert shipped_surface().contracts.get("ReceiptAgencyExternalBasic", "GetReceiptListBasicV2") is None


def test_the_walkthrough_file_passes_check(mappings_dir: Path) -> None:
    assert check(mappings_dir) == []


def _client(url: str) -> Any:
    import zeep
    from zeep.transports import Transport

    return zeep.Client(url + "?wsdl", transport=Transport(timeout=30, operation_timeout=30)).service


async def test_the_new_operation_is_served_and_answers_through_its_own_wsdl(world: World) -> None:
    user, password = SERVICE_OWNER

    def scenario() -> tuple[Any, Any]:
        agency = _client(world.proxy_url + AGENCY)
        receipts = _client(world.proxy_url + RECEIPTS)
        correspondence = {
            "ServiceCode": "4711",
            "ServiceEdition": "1",
            "Reportee": REPORTEE,
            "Content": {"LanguageCode": "1044", "MessageTitle": "Walkthrough", "MessageBody": "Melding"},
            "VisibleDateTime": "2026-01-01T00:00:00",
        }
        sent = agency.InsertCorrespondenceBasicV2(user, password, "TTD_DEMO", "walkthrough-1", correspondence)
        listed = receipts.GetReceiptListBasicV2(user, password, "Correspondence")
        other = receipts.GetReceiptListBasicV2(user, password, "FormTask")
        return sent, (listed, other)

    sent, (listed, other) = await asyncio.to_thread(scenario)

    assert sent.ReceiptStatusCode == "OK"
    (receipt,) = listed  # zeep unwraps a ReceiptList into a list of Receipt
    assert receipt.ReceiptId == sent.ReceiptId
    assert (receipt.ReceiptStatus, receipt.ReceiptType) == ("OK", "Correspondence")
    assert [(r.ReferenceType, r.ReferenceValue) for r in receipt.References.Reference] == [
        ("ExternalShipmentReference", "walkthrough-1")
    ]
    assert not other
