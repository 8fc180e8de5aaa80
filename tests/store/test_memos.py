"""Memos: what an unfinished submission created upstream, found again by a resend."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from proxy.store import Store
from proxy.store.model import IdempotencyKey


def _key(reference: str, caller: str = "caller-a") -> IdempotencyKey:
    return IdempotencyKey(caller, "InsertCorrespondenceBasicV2", reference)


async def test_the_first_value_remembered_stays(store: Store) -> None:
    assert await store.recall(_key("ref-1 attachment 0")) is None
    assert await store.remember(_key("ref-1 attachment 0"), "guid-1") == "guid-1"
    assert await store.remember(_key("ref-1 attachment 0"), "guid-2") == "guid-1"
    assert await store.recall(_key("ref-1 attachment 0")) == "guid-1"


async def test_memos_are_per_caller_and_key(store: Store) -> None:
    await store.remember(_key("ref-1 attachment 0"), "guid-1")
    assert await store.recall(_key("ref-1 attachment 0", caller="caller-b")) is None
    assert await store.recall(_key("ref-1 attachment 1")) is None


async def test_concurrent_writers_agree_on_one_value(store: Store) -> None:
    values = await asyncio.gather(*(store.remember(_key("race"), f"guid-{n}") for n in range(8)))
    assert len(set(values)) == 1
    assert await store.recall(_key("race")) == values[0]


async def test_memos_are_purged_with_old_idempotency_records(store: Store) -> None:
    await store.remember(_key("old"), "guid-1")
    later = store.options.clock() + store.options.idempotency_retention + timedelta(seconds=1)
    await store.purge_expired(later)
    assert await store.recall(_key("old")) is None


async def test_durable_memos_outlive_the_retention(store: Store) -> None:
    await store.remember(_key("broker transfer ref-1"), "guid-1", durable=True)
    await store.remember(_key("old"), "guid-2")
    later = store.options.clock() + store.options.idempotency_retention * 10
    await store.purge_expired(later)
    assert await store.recall(_key("broker transfer ref-1")) == "guid-1"
    assert await store.recall(_key("old")) is None
