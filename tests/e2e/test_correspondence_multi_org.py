"""An end-user system acting for two organisations reads and confirms by id alone.

Read/confirm/archive requests name no reportee: the proxy acts for whichever of the caller's
organisations owns the legacy id (``identity.reportee_of``), and an id owned by none of them is
refused exactly like an unknown one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
import zeep.exceptions

from proxy.identity.passwords import hash_password
from proxy.sandbox.correspondence_model import Status
from proxy.sandbox.world import SandboxKeys, default_mappings_dir
from tests.e2e.conftest import World, legacy_client, run_world

ORG_A, ORG_B = "310000019", "310000027"
MULTI = ("multi-eus", "multi-eus-password")
SINGLE = ("demo-eus", "demo-eus-password")
AGENCY = "/ServiceEngineExternal/CorrespondenceAgencyExternalBasic.svc"
INBOX = "/ServiceEngineExternal/ReporteeElementListExternalBasic.svc"
CORRESPONDENCE = "/ServiceEngineExternal/CorrespondenceExternalBasic.svc"


def _add_caller_for_both_orgs(workdir: Path) -> None:
    path = workdir / "credentials.yaml"
    document = yaml.safe_load(path.read_text())
    document["callers"][MULTI[0]] = {
        "password_hash": hash_password(MULTI[1]).encode(),
        "kind": "end_user_system",
        "orgs": [{"org": ORG_A}, {"org": ORG_B}],
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))


@pytest.fixture
async def world(tmp_path: Path, altinn3_contract: Any, sandbox_keys: SandboxKeys) -> AsyncIterator[World]:
    """The sandbox world with one more legacy caller, configured for both demo organisations."""
    async with run_world(
        tmp_path, altinn3_contract, sandbox_keys, default_mappings_dir(), prepare=_add_caller_for_both_orgs
    ) as running:
        yield running


def _send(agency: Any, shipment: str, reportee: str) -> None:
    correspondence = {
        "ServiceCode": "4711",
        "ServiceEdition": "1",
        "Reportee": reportee,
        "Content": {"LanguageCode": "1044", "MessageTitle": f"Til {reportee}", "MessageBody": "Melding"},
        "VisibleDateTime": "2026-01-01T00:00:00",
    }
    agency.InsertCorrespondenceBasicV2("demo-so", "demo-so-password", "TTD_DEMO", shipment, correspondence)


def _inbox_id(inbox: Any, org: str) -> int:
    search = {"FromDate": "2020-01-01T00:00:00", "Reportee": org, "ToDate": "2099-12-31T00:00:00"}
    (item,) = inbox.GetReporteeElementListBasicV2(*MULTI, searchBE=search, languageID=1044)
    return int(item.ReporteeElementId)


async def test_reads_and_confirms_in_whichever_org_owns_the_id(world: World, reference: Path) -> None:
    wsdl = reference / "altinn2/CorrespondenceAgencyExternal/Basic/CorrespondenceAgencyExternalBasic.wsdl"
    agency = await asyncio.to_thread(legacy_client, wsdl, world.proxy_url + AGENCY)
    await asyncio.to_thread(_send, agency, "multi-a", ORG_A)
    await asyncio.to_thread(_send, agency, "multi-b", ORG_B)
    world.fakes.correspondence.publish_due()
    inbox = await asyncio.to_thread(legacy_client, world.proxy_url + INBOX + "?wsdl", world.proxy_url + INBOX)
    id_a = await asyncio.to_thread(_inbox_id, inbox, ORG_A)
    id_b = await asyncio.to_thread(_inbox_id, inbox, ORG_B)
    reader = await asyncio.to_thread(
        legacy_client, world.proxy_url + CORRESPONDENCE + "?wsdl", world.proxy_url + CORRESPONDENCE
    )

    read_a = await asyncio.to_thread(reader.GetCorrespondenceForEndUserSystemBasicV2, *MULTI, id_a, 1044)
    read_b = await asyncio.to_thread(reader.GetCorrespondenceForEndUserSystemBasicV2, *MULTI, id_b, 1044)
    await asyncio.to_thread(reader.SaveCorrespondenceConfirmationBasic, *MULTI, id_b)

    # The proxy's served WSDL declares Reportee as an integer, so zeep gives an int.
    assert (read_a.Correspondence.CorrespondenceTitle, str(read_a.Correspondence.Reportee)) == (
        f"Til {ORG_A}",
        ORG_A,
    )
    assert (read_b.Correspondence.CorrespondenceTitle, str(read_b.Correspondence.Reportee)) == (
        f"Til {ORG_B}",
        ORG_B,
    )
    by_reference = {
        c.request["sendersReference"]: c for c in world.fakes.correspondence.correspondences.values()
    }
    assert Status.Confirmed in [event.status for event in by_reference["multi-b"].history]
    assert Status.Confirmed not in [event.status for event in by_reference["multi-a"].history]


async def test_an_id_of_an_org_the_caller_does_not_act_for_is_unknown(world: World, reference: Path) -> None:
    wsdl = reference / "altinn2/CorrespondenceAgencyExternal/Basic/CorrespondenceAgencyExternalBasic.wsdl"
    agency = await asyncio.to_thread(legacy_client, wsdl, world.proxy_url + AGENCY)
    await asyncio.to_thread(_send, agency, "multi-only-b", ORG_B)
    world.fakes.correspondence.publish_due()
    inbox = await asyncio.to_thread(legacy_client, world.proxy_url + INBOX + "?wsdl", world.proxy_url + INBOX)
    id_b = await asyncio.to_thread(_inbox_id, inbox, ORG_B)
    reader = await asyncio.to_thread(
        legacy_client, world.proxy_url + CORRESPONDENCE + "?wsdl", world.proxy_url + CORRESPONDENCE
    )

    def fault(legacy_id: int) -> str:
        with pytest.raises(zeep.exceptions.Fault) as raised:
            reader.SaveCorrespondenceConfirmationBasic(*SINGLE, legacy_id)
        return str(raised.value.message).replace(str(legacy_id), "<id>")

    foreign = await asyncio.to_thread(fault, id_b)
    unknown = await asyncio.to_thread(fault, id_b + 1000)
    assert foreign == unknown
    (stored,) = world.fakes.correspondence.correspondences.values()
    assert Status.Confirmed not in [event.status for event in stored.history]
