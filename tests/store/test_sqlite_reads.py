"""SQLite reads on the event loop's thread: consistent with the writer, and handed over when they fail."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from proxy.errors import InProgress
from proxy.store import RECEIPT_KIND, IdempotencyKey, StoreOptions, open_store
from proxy.store.sqlite import SqliteStore

ORG = "310000019"


async def test_a_read_sees_what_another_connection_just_committed(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'state.db'}"
    writer, reader = await open_store(url, StoreOptions()), await open_store(url, StoreOptions())
    try:
        guid = str(uuid.uuid4())
        legacy_id = await writer.allocate_id(RECEIPT_KIND, guid, ORG)
        assert await reader.resolve_id(RECEIPT_KIND, legacy_id, ORG) == guid
        assert await reader.allocate_id(RECEIPT_KIND, guid, ORG) == legacy_id  # known: a read only
    finally:
        await writer.close()
        await reader.close()


async def test_a_read_the_loop_side_connection_cannot_answer_goes_to_the_worker_thread(
    tmp_path: Path,
) -> None:
    store = await open_store(f"sqlite://{tmp_path / 'state.db'}", StoreOptions())
    assert isinstance(store, SqliteStore)
    try:
        guid = str(uuid.uuid4())
        legacy_id = await store.allocate_id(RECEIPT_KIND, guid, ORG)
        store._reader._db.close()  # every read on it now raises sqlite3.ProgrammingError
        with pytest.raises(sqlite3.ProgrammingError):
            store._reader._db.execute("SELECT 1")
        assert await store.resolve_id(RECEIPT_KIND, legacy_id, ORG) == guid
        assert await store.allocate_id(RECEIPT_KIND, guid, ORG) == legacy_id
    finally:
        await store.close()


async def test_an_idempotency_claim_is_committed_without_waiting_for_the_disk(tmp_path: Path) -> None:
    """The claim is visible to another connection at once; an answer's commit is durable (FULL)."""
    url = f"sqlite://{tmp_path / 'state.db'}"
    first = await open_store(url, StoreOptions())
    second = await open_store(url, StoreOptions(in_flight_wait=timedelta(0)))
    assert isinstance(first, SqliteStore)
    try:
        key = IdempotencyKey("demo-so", "InsertCorrespondenceBasicV2", "ESR-claim")
        claim = await first.begin(key)
        assert claim.is_new
        assert not first._worker._durable, "the claim's group committed with synchronous=NORMAL"
        with pytest.raises(InProgress):
            await second.begin(key)
        await first.complete(key, b"<answer/>")
        assert first._worker._durable, "the answer's group committed with synchronous=FULL"
        assert (await second.begin(key)).outcome == b"<answer/>"
    finally:
        await first.close()
        await second.close()
