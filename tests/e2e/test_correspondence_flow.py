"""Issue 8 end to end: a service owner sends, an end-user system lists, reads and confirms, the owner sees it.

The service owner's zeep client is built from the ORIGINAL ``CorrespondenceAgencyExternalBasic.wsdl``.
Only EC/EC2 WSDLs survive for the end-user services (``ReporteeElementList``,
``CorrespondenceExternal``), so the end-user system's clients are built from the proxy's own served
Basic WSDLs (``?wsdl``), which the contract declarations in
``mappings/correspondence-enduser.yaml`` declares (its ``contract`` blocks).
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import pytest
import zeep.exceptions

from proxy.sandbox.correspondence_model import Status
from tests.e2e.conftest import World, legacy_client

SERVICE_OWNER = ("demo-so", "demo-so-password")
END_USER = ("demo-eus", "demo-eus-password", "310000019")
OTHER_END_USER = ("demo-eus2", "demo-eus2-password", "310000027")
AGENCY = "/ServiceEngineExternal/CorrespondenceAgencyExternalBasic.svc"
INBOX = "/ServiceEngineExternal/ReporteeElementListExternalBasic.svc"
CORRESPONDENCE = "/ServiceEngineExternal/CorrespondenceExternalBasic.svc"
ATTACHMENTS = {"first.txt": b"first attachment\n", "second.bin": bytes(range(256))}
# proxy/web/middleware.py stores the request id under a str key (aiohttp >= 3.12 warns about it).


def _agency_wsdl(reference: os.PathLike[str]) -> Path:
    return (
        Path(reference) / "altinn2/CorrespondenceAgencyExternal/Basic/CorrespondenceAgencyExternalBasic.wsdl"
    )


def _insert(agency: Any, reference: str, reportee: str) -> Any:
    attachments = [
        {
            "FileName": name,
            "Name": name,
            "Encrypted": False,
            "Data": data,
            "SendersReference": f"{reference}-{name}",
        }
        for name, data in ATTACHMENTS.items()
    ]
    correspondence = {
        "ServiceCode": "4711",
        "ServiceEdition": "1",
        "Reportee": reportee,
        "Content": {
            "LanguageCode": "1044",
            "MessageTitle": "Vedtak om tilskudd",
            "MessageSummary": "Kort sammendrag",
            "MessageBody": "Hele meldingen",
            "Attachments": {"BinaryAttachments": {"BinaryAttachmentV2": attachments}},
        },
        "VisibleDateTime": "2026-01-01T00:00:00",
        "AllowSystemDeleteDateTime": "2030-01-01T00:00:00",
        "AllowForwarding": False,
    }
    return agency.InsertCorrespondenceBasicV2(*SERVICE_OWNER, "TTD_DEMO", reference, correspondence)


def _inbox(client: Any, who: tuple[str, str, str]) -> list[Any]:
    user, password, org = who
    search = {"FromDate": "2020-01-01T00:00:00", "Reportee": org, "ToDate": "2099-12-31T00:00:00"}
    found = client.GetReporteeElementListBasicV2(user, password, searchBE=search, languageID=1044)
    # zeep unwraps a result whose only member is the repeated item into a plain list
    return list(found or [])


def _status_changes(agency: Any, reference: str) -> list[str]:
    """The legacy status types the service owner sees through ``GetCorrespondenceStatusDetailsBasicV3``."""
    criteria = {
        "Reportee": END_USER[2],
        "SendersReference": reference,
        "ServiceCode": "4711",
        "ServiceEditionCode": 1,
    }
    result = agency.GetCorrespondenceStatusDetailsBasicV3(*SERVICE_OWNER, criteria)
    details = result.CorrespondenceStatusInformation.CorrespondenceStatusDetailsList.StatusV2
    return [change.StatusType for status in details for change in status.StatusChanges.StatusChangeV2]


def _fault_text(call: Any) -> tuple[str, str]:
    """The fault's message and detail, without the per-fault ErrorGuid."""
    with pytest.raises(zeep.exceptions.Fault) as raised:
        call()
    detail = raised.value.detail
    parts = (
        []
        if detail is None
        else [
            f"{element.tag}={element.text}"
            for element in detail.iter()
            if not str(element.tag).endswith("ErrorGuid")
        ]
    )
    return str(raised.value.message), "|".join(parts)


async def test_send_list_read_confirm_and_see_the_status(world: World, reference: os.PathLike[str]) -> None:
    agency = await asyncio.to_thread(legacy_client, _agency_wsdl(reference), world.proxy_url + AGENCY)
    receipt = await asyncio.to_thread(_insert, agency, "flow-1", END_USER[2])
    assert receipt.ReceiptStatusCode == "OK"
    assert receipt.ReceiptId > 0
    assert await asyncio.to_thread(_status_changes, agency, "flow-1") == ["Created"]

    # Altinn 3 publishes in the background; the fake publishes when asked.
    world.fakes.correspondence.publish_due()
    inbox_client = await asyncio.to_thread(
        legacy_client, world.proxy_url + INBOX + "?wsdl", world.proxy_url + INBOX
    )
    items = await asyncio.to_thread(_inbox, inbox_client, END_USER)
    assert len(items) == 1
    item = items[0]
    assert item.ReporteeElementType == "Correspondence"
    assert item.Title == "Vedtak om tilskudd"
    assert (item.ExternalServiceCode, item.ServiceEditionVersion) == ("4711", 1)
    assert item.CorrespondenceStatus == "Created"
    assert item.Status == "NotOpenedNoConfirmationReq"
    assert item.ReporteeElementId > 0

    # Listing (twice) is not reading: Altinn 3 records Fetched only when the end-user system reads it.
    assert len(await asyncio.to_thread(_inbox, inbox_client, END_USER)) == 1
    (stored,) = world.fakes.correspondence.correspondences.values()
    assert Status.Fetched not in [event.status for event in stored.history]

    reader = await asyncio.to_thread(
        legacy_client, world.proxy_url + CORRESPONDENCE + "?wsdl", world.proxy_url + CORRESPONDENCE
    )
    read = await asyncio.to_thread(
        reader.GetCorrespondenceForEndUserSystemBasicV2, *END_USER[:2], item.ReporteeElementId, 1044
    )
    assert [event.status for event in stored.history].count(Status.Fetched) == 1
    assert read.Correspondence.CorrespondenceID == item.ReporteeElementId
    assert read.Correspondence.CorrespondenceTitle == "Vedtak om tilskudd"
    assert read.Correspondence.CorrespondenceTxt == "Hele meldingen"
    assert read.Correspondence.ExternalSystemReference == "flow-1"
    inline = {a.FileName: a.AttachmentData for a in read.CorrespondenceAttachments.AttachmentBEV2}
    assert inline == ATTACHMENTS

    await asyncio.to_thread(reader.SaveCorrespondenceConfirmationBasic, *END_USER[:2], item.ReporteeElementId)
    # Confirming again is what a retrying legacy client does; Altinn 3 allows it once, the proxy twice.
    await asyncio.to_thread(reader.SaveCorrespondenceConfirmationBasic, *END_USER[:2], item.ReporteeElementId)

    listed_again = await asyncio.to_thread(_inbox, inbox_client, END_USER)
    assert [(i.CorrespondenceStatus, i.Status) for i in listed_again] == [("Confirmed", "Confirmed")]

    history = [event.status for event in stored.history]
    assert Status.Read in history
    assert history.count(Status.Confirmed) == 1

    # The service owner sees the end user's read and confirmation through the legacy answer.
    assert await asyncio.to_thread(_status_changes, agency, "flow-1") == ["Created", "Read", "Confirmed"]


async def test_another_org_cannot_read_by_guessing_the_id(
    world: World, reference: os.PathLike[str], altinn3_contract: Any
) -> None:
    agency = await asyncio.to_thread(legacy_client, _agency_wsdl(reference), world.proxy_url + AGENCY)
    await asyncio.to_thread(_insert, agency, "guess-1", END_USER[2])
    world.fakes.correspondence.publish_due()
    inbox_client = await asyncio.to_thread(
        legacy_client, world.proxy_url + INBOX + "?wsdl", world.proxy_url + INBOX
    )
    (item,) = await asyncio.to_thread(_inbox, inbox_client, END_USER)
    assert await asyncio.to_thread(_inbox, inbox_client, OTHER_END_USER) == []

    reader = await asyncio.to_thread(
        legacy_client, world.proxy_url + CORRESPONDENCE + "?wsdl", world.proxy_url + CORRESPONDENCE
    )
    (stored,) = world.fakes.correspondence.correspondences.values()
    history_before = list(stored.history)
    observer = altinn3_contract
    calls_before = observer.checked + observer.unchecked
    guessed = await asyncio.to_thread(
        _fault_text,
        lambda: reader.GetCorrespondenceForEndUserSystemBasicV2(
            *OTHER_END_USER[:2], item.ReporteeElementId, 1044
        ),
    )
    unknown = await asyncio.to_thread(
        _fault_text,
        lambda: reader.GetCorrespondenceForEndUserSystemBasicV2(*OTHER_END_USER[:2], 987654321, 1044),
    )
    # The fault names the id asked for, and otherwise does not tell a foreign id from an unknown one.
    assert [re.sub(r"\bid \d+", "id <id>", text) for text in guessed] == [
        re.sub(r"\bid \d+", "id <id>", text) for text in unknown
    ]
    assert observer.checked + observer.unchecked == calls_before, "an Altinn 3 call was made for a foreign id"
    assert stored.history == history_before
