"""The end of a submission in one transaction (``Store.finish``), and SQLite's group commit."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

from proxy.errors import InProgress, NotFound
from proxy.store import (
    RECEIPT_KIND,
    BeginState,
    IdempotencyKey,
    Receipt,
    ReceiptReference,
    ReceiptStatus,
    Store,
)

ORG_A = "310000019"
ORG_B = "310000027"
CHANGED = datetime(2026, 7, 1, 13, 29, 28, tzinfo=UTC)


def receipt(receipt_id: int, org: str = ORG_A, reference: str = "ESR-1") -> Receipt:
    return Receipt(
        receipt_id=receipt_id,
        owner_org=org,
        status=ReceiptStatus.OK,
        text="Correspondence created",
        type_name="Correspondence",
        last_changed=CHANGED,
        references=(ReceiptReference("ExternalShipmentReference", reference),),
    )


async def test_finish_saves_the_receipts_and_records_the_answer(store: Store) -> None:
    key = IdempotencyKey("demo-so", "InsertCorrespondenceBasicV2", "ESR-1")
    assert (await store.begin(key)).is_new
    receipt_id = await store.allocate_id(RECEIPT_KIND, str(uuid.uuid4()), ORG_A)

    await store.finish([receipt(receipt_id)], (key, b"<answer/>"))

    assert (await store.get_receipt(receipt_id, ORG_A)).text == "Correspondence created"
    again = await store.begin(key)
    assert again.state is BeginState.COMPLETED
    assert again.outcome == b"<answer/>"


async def test_finish_with_another_orgs_receipt_writes_nothing(store: Store) -> None:
    key = IdempotencyKey("demo-so", "InsertCorrespondenceBasicV2", "ESR-2")
    assert (await store.begin(key)).is_new
    own = await store.allocate_id(RECEIPT_KIND, str(uuid.uuid4()), ORG_A)
    foreign = await store.allocate_id(RECEIPT_KIND, str(uuid.uuid4()), ORG_B)

    with pytest.raises(NotFound):
        await store.finish([receipt(own), receipt(foreign)], (key, b"<answer/>"))

    with pytest.raises(NotFound):
        await store.get_receipt(own, ORG_A)  # the first receipt was rolled back with the rest
    with pytest.raises(InProgress):
        await store.begin(key)  # still the first attempt's claim: no answer was recorded


async def test_finish_without_a_completion_saves_the_receipts(store: Store) -> None:
    receipt_id = await store.allocate_id(RECEIPT_KIND, str(uuid.uuid4()), ORG_A)

    await store.finish([receipt(receipt_id, reference="ESR-3")])
    await store.finish()  # nothing to write is no error

    found = await store.find_receipts(ORG_A, ReceiptReference("ExternalShipmentReference", "ESR-3"))
    assert [r.receipt_id for r in found] == [receipt_id]


async def test_concurrent_writes_are_each_committed_and_a_failing_one_undoes_only_itself(
    store: Store, open_test_store: Callable[..., Awaitable[Store]]
) -> None:
    # Queued together, these share commits on SQLite (group commit); each must still stand alone.
    guids = [str(uuid.uuid4()) for _ in range(40)]
    foreign = await store.allocate_id(RECEIPT_KIND, str(uuid.uuid4()), ORG_B)
    results = await asyncio.gather(
        *(store.allocate_id(RECEIPT_KIND, guid, ORG_A) for guid in guids[:20]),
        store.save_receipt(receipt(foreign, org=ORG_A)),
        *(store.allocate_id(RECEIPT_KIND, guid, ORG_A) for guid in guids[20:]),
        return_exceptions=True,
    )

    assert isinstance(results[20], NotFound)
    ids = [result for result in results if not isinstance(result, BaseException)]
    assert len(set(ids)) == 40
    await store.close()
    reopened = await open_test_store()
    for guid, legacy_id in zip(guids, ids, strict=True):
        assert await reopened.resolve_id(RECEIPT_KIND, legacy_id, ORG_A) == guid


async def test_finish_of_one_tree_replaces_its_references_and_saves_its_sub_receipts(store: Store) -> None:
    parent_id, child_id = await asyncio.gather(
        *(store.allocate_id(RECEIPT_KIND, str(uuid.uuid4()), ORG_A) for _ in range(2))
    )
    first = receipt(parent_id, reference="ESR-old")
    await store.finish([first])
    key = IdempotencyKey("demo-so", "InsertCorrespondenceBasicV2", "ESR-tree")
    assert (await store.begin(key)).is_new
    kept = ReceiptReference("ExternalShipmentReference", "ESR-old")
    added = ReceiptReference("SendersReference", "SR-1")
    child = receipt(child_id, reference="ESR-child")
    updated = Receipt(
        receipt_id=parent_id,
        owner_org=ORG_A,
        status=ReceiptStatus.OK,
        text="Updated",
        type_name="Correspondence",
        last_changed=CHANGED,
        references=(kept, added),
        sub_receipts=(child,),
    )

    await store.finish([updated], (key, b"<tree/>"))

    loaded = await store.get_receipt(parent_id, ORG_A)
    assert loaded.text == "Updated"
    assert set(loaded.references) == {kept, added}
    assert [(sub.receipt_id, sub.parent_receipt_id) for sub in loaded.sub_receipts] == [(child_id, parent_id)]
    assert [r.receipt_id for r in await store.find_receipts(ORG_A, added)] == [parent_id]

    replaced = dataclasses.replace(updated, references=(added,), sub_receipts=())
    await store.finish([replaced])
    assert (await store.find_receipts(ORG_A, kept)) == [], "a reference not listed again is gone"
    assert [r.receipt_id for r in await store.find_receipts(ORG_A, added)] == [parent_id]
    assert [sub.receipt_id for sub in (await store.get_receipt(parent_id, ORG_A)).sub_receipts] == [child_id]
    assert (await store.begin(key)).outcome == b"<tree/>"
