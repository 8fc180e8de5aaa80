"""The service-owner half of issue 8 over loopback, with zeep clients built from the ORIGINAL WSDLs.

Send with two attachments, resend (same receipt, one correspondence in Altinn 3), read the status
details, and read the receipt back from ``ReceiptAgencyExternalBasic``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import zeep.exceptions

from proxy.app import SERVICES
from proxy.errors import StoreUnavailable
from proxy.store.model import IdempotencyKey, ReceiptReference
from tests.e2e.conftest import World, legacy_client

SERVICE_OWNER = ("demo-so", "demo-so-password")
END_USER = ("demo-eus", "demo-eus-password")
REPORTEE = "310000019"
AGENCY = "/ServiceEngineExternal/CorrespondenceAgencyExternalBasic.svc"
RECEIPTS = "/IntermediaryExternal/ReceiptAgencyExternalBasic.svc"
ATTACHMENTS = {"vedtak.pdf": b"%PDF-1.4 vedtak", "vedlegg.txt": b"vedlegg\n"}


def _wsdl(reference: Path, family: str, name: str) -> Path:
    return reference / "altinn2" / family / "Basic" / name


def _correspondence() -> dict[str, Any]:
    return {
        "ServiceCode": "4711",
        "ServiceEdition": "1",
        "Reportee": REPORTEE,
        "Content": {
            "LanguageCode": "1044",
            "MessageTitle": "Vedtak",
            "MessageSummary": "Sammendrag",
            "MessageBody": "Melding",
            "Attachments": {
                "BinaryAttachments": {
                    "BinaryAttachmentV2": [
                        {"FileName": name, "Name": name, "Encrypted": False, "Data": data}
                        for name, data in ATTACHMENTS.items()
                    ]
                }
            },
        },
        "VisibleDateTime": "2026-01-01T00:00:00",
    }


def _send_twice_and_read(reference: Path, address: str, shipment: str) -> tuple[Any, Any, Any]:
    agency = legacy_client(
        _wsdl(reference, "CorrespondenceAgencyExternal", "CorrespondenceAgencyExternalBasic.wsdl"), address
    )
    first = agency.InsertCorrespondenceBasicV2(*SERVICE_OWNER, "TTD_DEMO", shipment, _correspondence())
    again = agency.InsertCorrespondenceBasicV2(*SERVICE_OWNER, "TTD_DEMO", shipment, _correspondence())
    criteria = {
        "Reportee": REPORTEE,
        "SendersReference": shipment,
        "ServiceCode": "4711",
        "ServiceEditionCode": 1,
    }
    status = agency.GetCorrespondenceStatusDetailsBasicV3(*SERVICE_OWNER, criteria)
    return first, again, status


async def test_a_resend_returns_the_same_receipt_and_creates_one_correspondence(
    world: World, reference: Path
) -> None:
    first, again, status = await asyncio.to_thread(
        _send_twice_and_read, reference, world.proxy_url + AGENCY, "shipment-e2e-1"
    )

    assert first.ReceiptStatusCode == "OK"
    assert first.ReceiptId > 0
    assert again.ReceiptId == first.ReceiptId
    assert [(r.ReferenceTypeName, r.ReferenceValue) for r in first.References.Reference] == [
        ("ExternalShipmentReference", "shipment-e2e-1")
    ]
    created = [
        c
        for c in world.fakes.correspondence.correspondences.values()
        if c.request["sendersReference"] == "shipment-e2e-1"
    ]
    assert len(created) == 1
    assert sorted(str(a.file_name) for a in created[0].attachments) == sorted(ATTACHMENTS)

    information = status.CorrespondenceStatusInformation
    [details] = information.CorrespondenceStatusDetailsList.StatusV2
    assert details.Reportee == REPORTEE
    assert details.SendersReference == "shipment-e2e-1"
    assert details.CorrespondenceID > 0
    assert [change.StatusType for change in details.StatusChanges.StatusChangeV2] == ["Created"]
    assert information.LimitReached is False
    assert status.ServiceCode == "4711"


def _receipt_calls(reference: Path, proxy_url: str, shipment: str) -> tuple[Any, Any, list[Any]]:
    agency = legacy_client(
        _wsdl(reference, "CorrespondenceAgencyExternal", "CorrespondenceAgencyExternalBasic.wsdl"),
        proxy_url + AGENCY,
    )
    sent = agency.InsertCorrespondenceBasicV2(*SERVICE_OWNER, "TTD_DEMO", shipment, _correspondence())
    receipts = legacy_client(
        _wsdl(reference, "ReceiptAgencyExternal", "ReceiptAgencyExternalBasic.wsdl"), proxy_url + RECEIPTS
    )
    by_id = receipts.GetReceiptBasicV2(*SERVICE_OWNER, {"ReceiptId": sent.ReceiptId})
    faults = []
    for credentials, search in (
        (SERVICE_OWNER, {"ReceiptId": sent.ReceiptId + 1000}),
        (END_USER, {"ReceiptId": sent.ReceiptId}),
    ):
        with pytest.raises(zeep.exceptions.Fault) as raised:
            receipts.GetReceiptBasicV2(*credentials, search)
        faults.append(raised.value)
    return sent, by_id, faults


async def test_the_receipt_of_a_correspondence_is_readable_by_its_owner_only(
    world: World, reference: Path
) -> None:
    sent, by_id, (unknown, not_owner) = await asyncio.to_thread(
        _receipt_calls, reference, world.proxy_url, "shipment-e2e-2"
    )

    assert by_id.ReceiptId == sent.ReceiptId
    assert by_id.ReceiptStatus == "OK"
    assert by_id.ReceiptType == "Correspondence"
    assert by_id.ReceiptText == "Correspondence created"
    assert [(r.ReferenceType, r.ReferenceValue) for r in by_id.References.Reference] == [
        ("ExternalShipmentReference", "shipment-e2e-2")
    ]
    assert unknown.detail.findtext(".//{*}ErrorID") == "30008"
    assert not_owner.detail.findtext(".//{*}ErrorID") == "5"


def _served_client(url: str, username: str | None = None, password: str | None = None) -> Any:
    """A zeep client built from the proxy's own ``?wsdl`` (WS-Security UsernameToken when given)."""
    import zeep
    from zeep.transports import Transport
    from zeep.wsse.username import UsernameToken

    wsse = UsernameToken(username, password) if username is not None else None
    return zeep.Client(url + "?wsdl", transport=Transport(timeout=30, operation_timeout=30), wsse=wsse)


def _served_calls(proxy_url: str) -> dict[str, Any]:
    agency = _served_client(proxy_url + AGENCY).service
    basic = agency.InsertCorrespondenceBasicV2(*SERVICE_OWNER, "TTD_DEMO", "served-basic", _correspondence())
    ws = _served_client(proxy_url + "/ServiceEngineExternal/CorrespondenceAgencyExternal.svc", *SERVICE_OWNER)
    ws_receipt = ws.service.InsertCorrespondenceV2("TTD_DEMO", "served-ws", _correspondence())
    criteria = {"ServiceCode": "4711", "ServiceEditionCode": 1, "Reportee": REPORTEE}
    status = agency.GetCorrespondenceStatusDetailsBasicV3(*SERVICE_OWNER, criteria)
    ws_status = ws.service.GetCorrespondenceStatusDetailsV3(criteria)
    receipt = _served_client(proxy_url + RECEIPTS).service.GetReceiptBasicV2(
        *SERVICE_OWNER, {"ReceiptId": ws_receipt.ReceiptId}
    )
    return {"basic": basic, "ws": ws_receipt, "status": status, "ws_status": ws_status, "receipt": receipt}


async def test_clients_built_from_the_proxys_own_wsdls_call_every_mapped_operation(world: World) -> None:
    answers = await asyncio.to_thread(_served_calls, world.proxy_url)

    assert answers["basic"].ReceiptStatusCode == "OK"
    assert answers["ws"].ReceiptStatusCode == "OK"
    assert answers["ws"].ReceiptId != answers["basic"].ReceiptId
    for status in (answers["status"], answers["ws_status"]):
        listed = status.CorrespondenceStatusInformation.CorrespondenceStatusDetailsList.StatusV2
        assert sorted(item.SendersReference for item in listed) == ["served-basic", "served-ws"]
        assert {change.StatusType for item in listed for change in item.StatusChanges.StatusChangeV2} == {
            "Created"
        }
    assert answers["receipt"].ReceiptId == answers["ws"].ReceiptId
    assert [r.ReferenceValue for r in answers["receipt"].References.Reference] == ["served-ws"]


def _send_until_answered(reference: Path, address: str, shipment: str) -> tuple[str, Any]:
    agency = legacy_client(
        _wsdl(reference, "CorrespondenceAgencyExternal", "CorrespondenceAgencyExternalBasic.wsdl"), address
    )
    with pytest.raises(zeep.exceptions.Fault) as lost:
        agency.InsertCorrespondenceBasicV2(*SERVICE_OWNER, "TTD_DEMO", shipment, _correspondence())
    resent = agency.InsertCorrespondenceBasicV2(*SERVICE_OWNER, "TTD_DEMO", shipment, _correspondence())
    return str(lost.value.detail.findtext(".//{*}ErrorID")), resent


async def test_a_crash_between_create_and_recording_the_answer_reuses_the_altinn3_correspondence(
    world: World, reference: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = world.app[SERVICES].store
    finish = store.finish  # records the answer (with the receipt) once the plan has ended
    failures: list[IdempotencyKey] = []

    async def finish_fails_once(receipts: Any = (), completion: Any = None) -> None:
        if completion is not None and not failures:
            failures.append(completion[0])
            raise StoreUnavailable("the state store went away")
        await finish(receipts, completion)

    monkeypatch.setattr(store, "finish", finish_fails_once)

    lost_error_id, resent = await asyncio.to_thread(
        _send_until_answered, reference, world.proxy_url + AGENCY, "shipment-crash-1"
    )

    assert lost_error_id == str(StoreUnavailable.error_id)
    created = [
        c
        for c in world.fakes.correspondence.correspondences.values()
        if c.request["sendersReference"] == "shipment-crash-1"
    ]
    assert len(created) == 1, "the resend created a second correspondence in Altinn 3"
    assert created[0].idempotent_key is not None
    assert resent.ReceiptStatusCode == "OK"
    assert resent.ReceiptId == await store.allocate_id("receipt", str(created[0].id), "310000035")
    receipts = await store.find_receipts(
        "310000035", ReceiptReference("ExternalShipmentReference", "shipment-crash-1")
    )
    assert [r.receipt_id for r in receipts] == [resent.ReceiptId]


async def test_a_refused_attachment_orphans_none_of_its_siblings(world: World, reference: Path) -> None:
    """One attachment refused (2012), its sibling created: the corrected resend reuses the sibling."""
    agency_wsdl = _wsdl(reference, "CorrespondenceAgencyExternal", "CorrespondenceAgencyExternalBasic.wsdl")

    def send(second_name: str) -> Any:
        agency = legacy_client(agency_wsdl, world.proxy_url + AGENCY)
        correspondence = _correspondence()
        attachments = correspondence["Content"]["Attachments"]["BinaryAttachments"]["BinaryAttachmentV2"]
        attachments[1]["FileName"] = second_name
        try:
            return agency.InsertCorrespondenceBasicV2(
                *SERVICE_OWNER, "TTD_DEMO", "siblings-1", correspondence
            )
        except zeep.exceptions.Fault as fault:
            return fault

    refused = await asyncio.to_thread(send, "vedlegg:1.txt")
    assert isinstance(refused, zeep.exceptions.Fault)
    fake = world.fakes.correspondence
    created = [a for a in fake.attachments.values() if a.senders_reference == "siblings-1"]
    assert [a.file_name for a in created] == ["vedtak.pdf"]

    receipt = await asyncio.to_thread(send, "vedlegg.txt")

    assert receipt.ReceiptStatusCode == "OK"
    sent = [a for a in fake.attachments.values() if a.senders_reference == "siblings-1"]
    assert sorted(str(a.file_name) for a in sent) == ["vedlegg.txt", "vedtak.pdf"]
    assert created[0] in sent  # reused, not uploaded again
    assert [a for a in sent if not a.correspondence_ids] == []
