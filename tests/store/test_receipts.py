"""Receipts for the legacy receipt operations, on both backends."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from proxy.errors import InvalidField, NotFound
from proxy.store import RECEIPT_KIND, Receipt, ReceiptReference, ReceiptStatus, Store
from tests.store.conftest import FakeClock

ORG_A = "310000019"
ORG_B = "310000027"
CHANGED = datetime(2026, 7, 1, 13, 29, 28, 123456, tzinfo=UTC)
SHIPMENT = ReceiptReference("ExternalShipmentReference", "ESR-2026-0001")


async def new_receipt_id(store: Store, org: str = ORG_A) -> int:
    return await store.allocate_id(RECEIPT_KIND, str(uuid.uuid4()), org)


async def submission_receipt(store: Store) -> Receipt:
    return Receipt(
        receipt_id=await new_receipt_id(store),
        owner_org=ORG_A,
        status=ReceiptStatus.OK,
        text="Shipment received",
        type_name="FormTask",
        last_changed=CHANGED,
        references=(SHIPMENT, ReceiptReference("ArchiveReference", "AR1234567")),
        history="created",
    )


async def test_a_receipt_round_trips_with_its_sub_receipts(store: Store) -> None:
    receipt = await submission_receipt(store)
    subs = tuple(
        [
            Receipt(
                receipt_id=await new_receipt_id(store),
                owner_org=ORG_A,
                status=status,
                text=f"form {n}",
                type_name="FormTask",
                last_changed=CHANGED,
            )
            for n, status in enumerate([ReceiptStatus.OK, ReceiptStatus.VALIDATION_FAILED])
        ]
    )
    await store.save_receipt(replace(receipt, sub_receipts=subs))

    stored = await store.get_receipt(receipt.receipt_id, ORG_A)
    assert replace(stored, created_at=None, sub_receipts=()) == receipt
    assert stored.created_at == datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert [sub.text for sub in stored.sub_receipts] == ["form 0", "form 1"]
    assert {sub.parent_receipt_id for sub in stored.sub_receipts} == {receipt.receipt_id}
    assert stored.sub_receipts[1].status is ReceiptStatus.VALIDATION_FAILED
    assert (await store.get_receipt(subs[0].receipt_id, ORG_A)).parent_receipt_id == receipt.receipt_id


async def test_an_update_keeps_the_creation_time(store: Store, clock: FakeClock) -> None:
    receipt = await submission_receipt(store)
    await store.save_receipt(receipt)
    clock.advance(timedelta(hours=1))
    updated = replace(
        receipt,
        status=ReceiptStatus.REJECTED,
        text="Receipt updated by EndUserSystem: 42",
        last_changed=CHANGED + timedelta(hours=1),
        references=(SHIPMENT,),
    )
    await store.save_receipt(updated)
    stored = await store.get_receipt(receipt.receipt_id, ORG_A)
    assert stored.status is ReceiptStatus.REJECTED
    assert stored.text == "Receipt updated by EndUserSystem: 42"
    assert stored.references == (SHIPMENT,)
    assert stored.last_changed == CHANGED + timedelta(hours=1)
    assert stored.created_at == datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


async def test_another_org_cannot_read_a_receipt(store: Store) -> None:
    receipt = await submission_receipt(store)
    await store.save_receipt(receipt)
    with pytest.raises(NotFound) as foreign:
        await store.get_receipt(receipt.receipt_id, ORG_B)
    assert str(foreign.value) == f"no receipt with id {receipt.receipt_id}"
    with pytest.raises(NotFound):
        await store.get_receipt(await new_receipt_id(store), ORG_A)  # allocated but never saved


async def test_a_receipt_cannot_be_saved_under_another_orgs_id(store: Store) -> None:
    receipt = await submission_receipt(store)
    with pytest.raises(NotFound):
        await store.save_receipt(replace(receipt, receipt_id=await new_receipt_id(store, ORG_B)))
    with pytest.raises(NotFound):
        await store.save_receipt(replace(receipt, receipt_id=receipt.receipt_id + 10_000))
    foreign_sub = replace(receipt, receipt_id=await new_receipt_id(store, ORG_B), references=())
    with pytest.raises(NotFound):
        await store.save_receipt(replace(receipt, sub_receipts=(foreign_sub,)))
    with pytest.raises(NotFound):
        await store.get_receipt(receipt.receipt_id, ORG_A)  # nothing of the refused tree was written


async def test_receipts_are_found_by_reference_within_the_org(store: Store) -> None:
    first = await submission_receipt(store)
    second = replace(await submission_receipt(store), references=(SHIPMENT,))
    other = replace(await submission_receipt(store), references=())
    for receipt in (first, second, other):
        await store.save_receipt(receipt)
    found = await store.find_receipts(ORG_A, SHIPMENT)
    assert [receipt.receipt_id for receipt in found] == sorted([first.receipt_id, second.receipt_id])
    assert await store.find_receipts(ORG_B, SHIPMENT) == []
    assert await store.find_receipts(ORG_A, ReceiptReference("ArchiveReference", "nope")) == []


async def test_invalid_receipts_are_refused(store: Store) -> None:
    receipt = await submission_receipt(store)
    with pytest.raises(InvalidField):
        await store.save_receipt(replace(receipt, last_changed=datetime(2026, 1, 1)))
    with pytest.raises(InvalidField, match="Bogus"):
        await store.save_receipt(replace(receipt, status="Bogus"))  # type: ignore[arg-type]
    with pytest.raises(InvalidField):
        await store.save_receipt(replace(receipt, sub_receipts=(receipt,)))
