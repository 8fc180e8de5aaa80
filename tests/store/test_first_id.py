"""``store.first_legacy_id``: the proxy's ids start above the ones clients still hold from Altinn 2."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from proxy.app import store_options
from proxy.errors import ConfigurationError, StoreUnavailable
from proxy.settings import Settings, validate_settings
from proxy.store import MAX_LEGACY_ID, Store, StoreOptions
from proxy.store.model import MAX_FIRST_LEGACY_ID

ORG = "310000019"
FLOOR = 1_000_000

Opener = Callable[..., Awaitable[Store]]


def guids(count: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(count)]


async def test_a_fresh_store_allocates_from_the_first_id(
    open_test_store: Opener, options: StoreOptions
) -> None:
    store = await open_test_store(replace(options, first_legacy_id=FLOOR))
    single, *batch = guids(11)
    assert await store.allocate_id("receipt", single, ORG) == FLOOR
    ids = await store.allocate_ids("correspondence", batch, ORG)
    assert sorted(ids.values()) == list(range(FLOOR + 1, FLOOR + 11))
    assert await store.allocate_id("receipt", single, ORG) == FLOOR
    assert await store.resolve_id("receipt", FLOOR, ORG) == single


async def test_raising_it_on_an_existing_store_keeps_old_ids(
    open_test_store: Opener, options: StoreOptions
) -> None:
    before = await open_test_store()
    old = guids(3)
    old_ids = await before.allocate_ids("receipt", old, ORG)
    assert max(old_ids.values()) < FLOOR
    await before.close()

    after = await open_test_store(replace(options, first_legacy_id=FLOOR))
    assert await after.allocate_id("receipt", (new := guids(1)[0]), ORG) == FLOOR
    assert await after.allocate_ids("receipt", old, ORG) == old_ids
    for item, legacy_id in old_ids.items():
        assert await after.resolve_id("receipt", legacy_id, ORG) == item
    assert await after.resolve_id("receipt", FLOOR, ORG) == new


async def test_lowering_it_never_goes_back(open_test_store: Opener, options: StoreOptions) -> None:
    high = await open_test_store(replace(options, first_legacy_id=FLOOR))
    taken = await high.allocate_ids("receipt", guids(5), ORG)
    await high.close()

    low = await open_test_store(replace(options, first_legacy_id=1))
    fresh = await low.allocate_ids("receipt", guids(5), ORG)
    assert min(fresh.values()) > max(taken.values())
    assert await low.allocate_ids("receipt", list(taken), ORG) == taken


async def test_reopening_with_the_same_first_id_changes_nothing(
    open_test_store: Opener, options: StoreOptions
) -> None:
    custom = replace(options, first_legacy_id=FLOOR)
    first = await open_test_store(custom)
    taken = await first.allocate_ids("receipt", guids(3), ORG)
    await first.close()
    again = await open_test_store(custom)
    assert await again.allocate_id("receipt", guids(1)[0], ORG) == max(taken.values()) + 1


async def test_replicas_raising_it_while_others_allocate_keep_ids_unique(
    open_test_store: Opener, options: StoreOptions
) -> None:
    running = [await open_test_store() for _ in range(2)]
    items = guids(200)
    raised = asyncio.Event()

    async def allocate(store: Store, offset: int) -> dict[str, int]:
        mine = items[offset:] + items[:offset]
        found: dict[str, int] = {}
        for start in range(0, len(mine), 10):
            found.update(await store.allocate_ids("receipt", mine[start : start + 10], ORG))
            await asyncio.sleep(0)
        return found

    async def start_replicas() -> list[Store]:
        started = await asyncio.gather(
            *(open_test_store(replace(options, first_legacy_id=FLOOR)) for _ in range(3))
        )
        raised.set()
        return list(started)

    replicas, *results = await asyncio.gather(
        start_replicas(), allocate(running[0], 0), allocate(running[1], 100)
    )
    assert raised.is_set()
    assert results[0] == results[1]
    assert len(set(results[0].values())) == len(items)

    later = guids(30)
    later_ids = await asyncio.gather(
        *(store.allocate_ids("receipt", later, ORG) for store in [*running, *replicas])
    )
    assert all(ids == later_ids[0] for ids in later_ids)
    assert min(later_ids[0].values()) >= FLOOR
    assert set(later_ids[0].values()).isdisjoint(results[0].values())


async def test_a_floor_at_the_top_still_ends_at_the_32_bit_maximum(
    open_test_store: Opener, options: StoreOptions
) -> None:
    store = await open_test_store(replace(options, first_legacy_id=MAX_FIRST_LEGACY_ID))
    assert await store.allocate_id("receipt", guids(1)[0], ORG) == MAX_LEGACY_ID - 1
    assert await store.allocate_id("receipt", guids(1)[0], ORG) == MAX_LEGACY_ID
    with pytest.raises(StoreUnavailable):
        await store.allocate_id("receipt", guids(1)[0], ORG)


@pytest.mark.parametrize("first", [0, -5, MAX_LEGACY_ID, 2**40, True])
def test_store_options_refuse_a_first_id_outside_the_range(first: int) -> None:
    with pytest.raises(ConfigurationError, match="first legacy id"):
        StoreOptions(first_legacy_id=first)


def settings_with(tmp_path: Path, store: dict[str, Any]) -> Settings:
    """Minimal valid settings (the files only need to exist) with the given ``store`` section."""
    for name in ("key.pem", "credentials.yaml"):
        (tmp_path / name).write_text("placeholder", encoding="utf-8")
    required = {
        "maskinporten": {"client_id": "client", "key_file": str(tmp_path / "key.pem"), "kid": "kid"},
        "identity": {"credentials_file": str(tmp_path / "credentials.yaml")},
    }
    return validate_settings({**required, "store": store})


def test_the_setting_reaches_the_store_options(tmp_path: Path) -> None:
    assert store_options(settings_with(tmp_path, {})).first_legacy_id == 1
    assert store_options(settings_with(tmp_path, {"first_legacy_id": FLOOR})).first_legacy_id == FLOOR


@pytest.mark.parametrize("first", [0, MAX_LEGACY_ID, "many"])
def test_the_setting_refuses_values_outside_the_range(tmp_path: Path, first: object) -> None:
    with pytest.raises(ConfigurationError, match=r"store\.first_legacy_id"):
        settings_with(tmp_path, {"first_legacy_id": first})
