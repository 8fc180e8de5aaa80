"""``GetCorrespondenceStatusHistoryBasic`` over loopback, from the ORIGINAL agency WSDL.

A WCF message contract: the credentials travel as the ``SystemUserName``/``SystemPassword`` SOAP
headers and the body is ``CorrespondenceStatusHistoryRequest`` with a list of senders references.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import zeep.exceptions

from tests.e2e.conftest import World, legacy_client

SERVICE_OWNER = {"SystemUserName": "demo-so", "SystemPassword": "demo-so-password"}
REPORTEES = {"history-a": "310000019", "history-b": "310000027"}
AGENCY = "/ServiceEngineExternal/CorrespondenceAgencyExternalBasic.svc"


def _agency(reference: Path, address: str) -> Any:
    wsdl = reference / "altinn2/CorrespondenceAgencyExternal/Basic/CorrespondenceAgencyExternalBasic.wsdl"
    return legacy_client(wsdl, address)


def _send(agency: Any, shipment: str, reportee: str) -> Any:
    correspondence = {
        "ServiceCode": "4711",
        "ServiceEdition": "1",
        "Reportee": reportee,
        "Content": {"LanguageCode": "1044", "MessageTitle": shipment, "MessageBody": "Melding"},
        "VisibleDateTime": "2026-01-01T00:00:00",
    }
    return agency.InsertCorrespondenceBasicV2(
        "demo-so", "demo-so-password", "TTD_DEMO", shipment, correspondence
    )


def _history(agency: Any, references: list[str], headers: dict[str, str]) -> Any:
    return agency.GetCorrespondenceStatusHistoryBasic(
        CorrespondenceSendersReferences={"string": references}, _soapheaders=headers
    )


async def test_the_history_of_each_known_senders_reference(world: World, reference: Path) -> None:
    agency = await asyncio.to_thread(_agency, reference, world.proxy_url + AGENCY)
    for shipment, reportee in REPORTEES.items():
        await asyncio.to_thread(_send, agency, shipment, reportee)
    world.fakes.correspondence.publish_due()

    result = await asyncio.to_thread(
        _history, agency, ["history-a", "never-sent", "history-b", "history-a"], SERVICE_OWNER
    )

    information = result.CorrespondenceStatusInformation
    listed = information.CorrespondenceStatusDetailsList.StatusV2
    assert sorted((item.SendersReference, item.Reportee) for item in listed) == sorted(
        (shipment, reportee) for shipment, reportee in REPORTEES.items()
    )
    for item in listed:
        assert item.CorrespondenceID > 0
        assert [change.StatusType for change in item.StatusChanges.StatusChangeV2] == ["Created"]
    assert information.LimitReached is False
    assert len({item.CorrespondenceID for item in listed}) == 2


async def test_credentials_in_the_headers_are_checked(world: World, reference: Path) -> None:
    agency = await asyncio.to_thread(_agency, reference, world.proxy_url + AGENCY)
    wrong = {**SERVICE_OWNER, "SystemPassword": "not-the-password"}
    with pytest.raises(zeep.exceptions.Fault) as refused:
        await asyncio.to_thread(_history, agency, ["history-a"], wrong)
    end_user = {"SystemUserName": "demo-eus", "SystemPassword": "demo-eus-password"}
    with pytest.raises(zeep.exceptions.Fault) as not_owner:
        await asyncio.to_thread(_history, agency, ["history-a"], end_user)

    assert refused.value.detail.findtext(".//{*}ErrorID") == "989"
    assert not_owner.value.detail.findtext(".//{*}ErrorID") == "5"
    assert world.fakes.correspondence.correspondences == {}
