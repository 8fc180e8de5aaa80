"""Idempotent submissions, on both backends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta

import pytest

from proxy.errors import InProgress, InvalidField
from proxy.store import BeginState, IdempotencyKey, Store, StoreOptions
from tests.store.conftest import FakeClock

OpenStore = Callable[..., Awaitable[Store]]


def key(reference: str | None = None) -> IdempotencyKey:
    return IdempotencyKey("vendor-system-1", "SubmitFormTaskBasic", reference or f"ESR-{uuid.uuid4()}")


async def test_a_resend_gets_the_original_outcome(store: Store) -> None:
    submission = key()
    assert (await store.begin(submission)).is_new
    await store.complete(submission, {"receipt_id": 42, "status": "OK"})
    resend = await store.begin(submission)
    assert resend.state is BeginState.COMPLETED
    assert resend.outcome == {"receipt_id": 42, "status": "OK"}


async def test_bytes_outcomes_come_back_byte_for_byte(store: Store) -> None:
    submission = key()
    await store.begin(submission)
    await store.complete(submission, b"<ReceiptExternal>\x00\xff</ReceiptExternal>")
    assert (await store.begin(submission)).outcome == b"<ReceiptExternal>\x00\xff</ReceiptExternal>"


async def test_the_key_is_caller_operation_and_reference_together(store: Store) -> None:
    first = IdempotencyKey("a:b", "op", "ref")
    await store.begin(first)
    await store.complete(first, {"n": 1})
    for other in (
        IdempotencyKey("a", "b:op", "ref"),
        IdempotencyKey("other", "op", "ref"),
        IdempotencyKey("a:b", "other", "ref"),
        IdempotencyKey("a:b", "op", "ref2"),
    ):
        assert (await store.begin(other)).is_new


async def test_a_resend_while_in_flight_is_told_it_is_in_progress(store: Store) -> None:
    submission = key()
    await store.begin(submission)
    with pytest.raises(InProgress, match="still being processed"):
        await store.begin(submission)


async def test_a_waiting_resend_gets_the_outcome_once_the_first_completes(
    open_test_store: OpenStore, options: StoreOptions, clock: FakeClock
) -> None:
    waiting_options = replace(options, in_flight_wait=timedelta(seconds=30))
    first, second = await open_test_store(), await open_test_store(waiting_options)
    submission = key()
    await first.begin(submission)

    async def first_finishes_during_the_third_poll() -> None:
        if len(clock.sleeps) == 3:
            await first.complete(submission, {"receipt_id": 7})

    clock.on_sleep = first_finishes_during_the_third_poll
    resend = await second.begin(submission)
    assert resend.state is BeginState.COMPLETED
    assert resend.outcome == {"receipt_id": 7}
    assert clock.sleeps == [0.2, 0.2, 0.2]


async def test_waiting_is_bounded(
    open_test_store: OpenStore, options: StoreOptions, clock: FakeClock
) -> None:
    store = await open_test_store(replace(options, in_flight_wait=timedelta(seconds=2)))
    submission = key()
    await store.begin(submission)
    with pytest.raises(InProgress):
        await store.begin(submission)
    assert len(clock.sleeps) == 10


async def test_fail_lets_a_retry_proceed(store: Store) -> None:
    submission = key()
    await store.fail(await store.begin(submission))
    assert (await store.begin(submission)).is_new


async def test_a_late_failure_does_not_erase_a_delivered_outcome(store: Store) -> None:
    submission = key()
    claim = await store.begin(submission)
    await store.complete(submission, {"receipt_id": 1})
    await store.fail(claim)
    await store.complete(submission, {"receipt_id": 2})
    assert (await store.begin(submission)).outcome == {"receipt_id": 1}


async def test_a_dead_holder_is_replaced_after_its_lease(store: Store, clock: FakeClock) -> None:
    submission = key()
    await store.begin(submission)
    clock.advance(timedelta(minutes=4))
    with pytest.raises(InProgress):
        await store.begin(submission)
    clock.advance(timedelta(minutes=1))
    assert (await store.begin(submission)).is_new
    with pytest.raises(InProgress):
        await store.begin(submission)  # the new holder has a fresh lease


async def test_a_stale_holders_failure_leaves_the_newcomers_claim(store: Store, clock: FakeClock) -> None:
    submission = key()
    stale = await store.begin(submission)
    clock.advance(timedelta(minutes=6))
    newcomer = await store.begin(submission)
    assert newcomer.is_new
    await store.fail(stale)  # the slow first holder gives up after its lease was taken over
    with pytest.raises(InProgress):
        await store.begin(submission)  # the newcomer still holds the key
    await store.fail(newcomer)
    assert (await store.begin(submission)).is_new


async def test_concurrent_begins_yield_exactly_one_new(open_test_store: OpenStore) -> None:
    stores = [await open_test_store() for _ in range(2)]
    for _ in range(10):
        submission = key()
        outcomes = await asyncio.gather(
            *(store.begin(submission) for store in stores * 3), return_exceptions=True
        )
        assert (
            sum(1 for outcome in outcomes if not isinstance(outcome, BaseException) and outcome.is_new) == 1
        )
        assert sum(1 for outcome in outcomes if isinstance(outcome, InProgress)) == 5


async def test_concurrent_takeovers_of_an_expired_lease_yield_exactly_one_new(
    open_test_store: OpenStore, clock: FakeClock
) -> None:
    stores = [await open_test_store() for _ in range(2)]
    submission = key()
    await stores[0].begin(submission)
    clock.advance(timedelta(hours=1))
    outcomes = await asyncio.gather(
        *(store.begin(submission) for store in stores * 3), return_exceptions=True
    )
    assert sum(1 for outcome in outcomes if not isinstance(outcome, BaseException) and outcome.is_new) == 1


async def test_purge_removes_only_records_past_retention(store: Store, clock: FakeClock) -> None:
    old_done, old_running, recent = key(), key(), key()
    await store.begin(old_done)
    await store.complete(old_done, {"n": 1})
    await store.begin(old_running)
    legacy_id = await store.allocate_id("receipt", str(uuid.uuid4()), "310000019")
    clock.advance(timedelta(days=6))
    await store.begin(recent)
    await store.complete(recent, {"n": 3})
    clock.advance(timedelta(days=2))

    assert await store.purge_expired() == 2
    assert (await store.begin(old_done)).is_new
    assert (await store.begin(recent)).outcome == {"n": 3}
    assert await store.resolve_id("receipt", legacy_id, "310000019")


async def test_an_in_flight_record_with_a_live_lease_is_never_purged(
    open_test_store: OpenStore, options: StoreOptions, clock: FakeClock
) -> None:
    store = await open_test_store(replace(options, idempotency_lease=timedelta(days=30)))
    submission = key()
    await store.begin(submission)
    clock.advance(timedelta(days=8))
    assert await store.purge_expired() == 0
    with pytest.raises(InProgress):
        await store.begin(submission)


@pytest.mark.parametrize("part", ["", "x" * 1001])
def test_keys_refuse_empty_or_huge_parts(part: str) -> None:
    with pytest.raises(InvalidField):
        IdempotencyKey("caller", "operation", part)


async def test_outcomes_must_be_mappings_or_bytes(store: Store) -> None:
    submission = key()
    await store.begin(submission)
    with pytest.raises(InvalidField):
        await store.complete(submission, "text")  # type: ignore[arg-type]
