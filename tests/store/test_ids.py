"""The legacy id registry, on both backends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest

from proxy.errors import InvalidField, NotFound
from proxy.store import MAX_LEGACY_ID, Store

ORG_A = "310000019"
ORG_B = "310000027"


def guid() -> str:
    return str(uuid.uuid4())


async def test_allocation_is_a_stable_positive_32_bit_integer(store: Store) -> None:
    item = guid()
    first = await store.allocate_id("correspondence", item, ORG_A)
    assert 0 < first <= MAX_LEGACY_ID
    assert await store.allocate_id("correspondence", item, ORG_A) == first
    assert await store.allocate_id("correspondence", "{" + item.upper() + "}", ORG_A) == first
    assert await store.resolve_id("correspondence", first, ORG_A) == item


async def test_each_guid_kind_and_owner_gets_its_own_id(store: Store) -> None:
    item = guid()
    ids = {
        await store.allocate_id("correspondence", item, ORG_A),
        await store.allocate_id("receipt", item, ORG_A),
        await store.allocate_id("correspondence", item, ORG_B),
        await store.allocate_id("correspondence", guid(), ORG_A),
    }
    assert len(ids) == 4


async def test_another_org_gets_exactly_the_not_found_of_a_missing_id(store: Store) -> None:
    legacy_id = await store.allocate_id("receipt", guid(), ORG_A)
    with pytest.raises(NotFound) as foreign:
        await store.resolve_id("receipt", legacy_id, ORG_B)
    unused = legacy_id + 1000
    with pytest.raises(NotFound) as missing:
        await store.resolve_id("receipt", unused, ORG_B)
    assert str(foreign.value) == str(missing.value).replace(str(unused), str(legacy_id))
    assert ORG_A not in str(foreign.value)
    with pytest.raises(NotFound):
        await store.resolve_id("correspondence", legacy_id, ORG_A)  # right org, wrong kind


@pytest.mark.parametrize("legacy_id", [0, -1, MAX_LEGACY_ID + 1, 2**63])
async def test_ids_outside_the_range_are_simply_not_found(store: Store, legacy_id: int) -> None:
    with pytest.raises(NotFound, match=f"no receipt with id {legacy_id}"):
        await store.resolve_id("receipt", legacy_id, ORG_A)


async def test_batch_allocation_agrees_with_single_allocation(store: Store) -> None:
    known = guid()
    known_id = await store.allocate_id("reportee-element", known, ORG_A)
    fresh = [guid() for _ in range(30)]
    given = [known, *fresh, fresh[0].upper()]
    ids = await store.allocate_ids("reportee-element", given, ORG_A)
    assert set(ids) == set(given)
    assert ids[known] == known_id
    assert ids[fresh[0]] == ids[fresh[0].upper()]
    assert len(set(ids.values())) == 31
    assert await store.allocate_ids("reportee-element", list(reversed(given)), ORG_A) == ids
    assert await store.allocate_ids("reportee-element", [], ORG_A) == {}
    for item in fresh:
        assert await store.resolve_id("reportee-element", ids[item], ORG_A) == item


async def test_ids_survive_reopening(open_test_store: Callable[..., Awaitable[Store]]) -> None:
    first = await open_test_store()
    item = guid()
    legacy_id = await first.allocate_id("receipt", item, ORG_A)
    await first.close()
    second = await open_test_store()
    assert await second.resolve_id("receipt", legacy_id, ORG_A) == item
    assert await second.allocate_id("receipt", item, ORG_A) == legacy_id


async def test_concurrent_connections_agree_on_every_id(
    open_test_store: Callable[..., Awaitable[Store]],
) -> None:
    stores = [await open_test_store() for _ in range(3)]
    guids = [guid() for _ in range(300)]

    async def allocate(store: Store, offset: int) -> dict[str, int]:
        mine = guids[offset:] + guids[:offset]
        found: dict[str, int] = {}
        for start in range(0, len(mine), 25):
            found.update(await store.allocate_ids("receipt", mine[start : start + 25], ORG_A))
        return found

    results = await asyncio.gather(
        *(allocate(store, offset) for store, offset in zip(stores, (0, 100, 200), strict=True))
    )
    assert results[0] == results[1] == results[2]
    assert len(set(results[0].values())) == len(guids)


@pytest.mark.parametrize(
    ("kind", "item", "org"),
    [
        ("Receipt", str(uuid.uuid4()), ORG_A),
        ("receipt", "not-a-guid", ORG_A),
        ("receipt", str(uuid.uuid4()), " "),
    ],
)
async def test_invalid_input_is_refused_before_touching_the_database(
    store: Store, kind: str, item: str, org: str
) -> None:
    with pytest.raises(InvalidField):
        await store.allocate_id(kind, item, org)


async def test_an_id_with_a_parent_resolves_to_both_and_the_first_parent_stays(store: Store) -> None:
    item, instance = guid(), guid()
    legacy_id = await store.allocate_id("archive_attachment", item, ORG_A, parent=instance.upper())
    assert await store.allocate_id("archive_attachment", item, ORG_A, parent=guid()) == legacy_id
    assert await store.resolve_id_with_parent("archive_attachment", legacy_id, ORG_A) == (item, instance)
    assert await store.resolve_id("archive_attachment", legacy_id, ORG_A) == item
    with pytest.raises(NotFound):
        await store.resolve_id_with_parent("archive_attachment", legacy_id, ORG_B)


async def test_an_id_allocated_without_a_parent_gets_one_later(store: Store) -> None:
    item, instance = guid(), guid()
    legacy_id = await store.allocate_id("archive_attachment", item, ORG_A)
    assert await store.resolve_id_with_parent("archive_attachment", legacy_id, ORG_A) == (item, None)
    assert await store.allocate_ids("archive_attachment", [item], ORG_A, instance) == {item: legacy_id}
    assert await store.resolve_id_with_parent("archive_attachment", legacy_id, ORG_A) == (item, instance)
    with pytest.raises(InvalidField):
        await store.allocate_id("archive_attachment", guid(), ORG_A, parent="not-a-guid")
