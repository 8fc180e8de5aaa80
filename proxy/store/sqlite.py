"""The SQLite backend: one file in the data directory, WAL mode, the zero-configuration default.

One connection per store, used by one task at a time (an ``asyncio.Lock``); aiosqlite runs every call
on its own thread, so waiting for the file lock never blocks the event loop. Every write runs in
``BEGIN IMMEDIATE``, which takes SQLite's single write lock up front: two processes on the same file
are serialized by SQLite itself, never by Python state. ``synchronous=FULL`` makes each commit durable
before the call returns.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

from proxy.errors import ProxyError, StoreUnavailable
from proxy.store.base import Store
from proxy.store.migrations import Migration, check_sequence, latest_version, pending
from proxy.store.model import (
    MAX_LEGACY_ID,
    InFlightRecord,
    Receipt,
    ReceiptReference,
    ReceiptStatus,
    StoreOptions,
    decode_outcome,
    decode_timestamp,
    encode_timestamp,
    references_from_json,
)

_BUSY_TIMEOUT_MS = 15_000
_IN_CHUNK = 500

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "id registry, idempotency, receipts",
        (
            """CREATE TABLE id_registry (
                legacy_id INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL,
                guid TEXT NOT NULL,
                owner_org TEXT NOT NULL,
                created_at TEXT NOT NULL,
                UNIQUE (kind, guid, owner_org))""",
            """CREATE TABLE idempotency (
                digest TEXT PRIMARY KEY,
                caller TEXT NOT NULL,
                operation TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('in_flight', 'completed')),
                token TEXT NOT NULL,
                lease_until TEXT NOT NULL,
                outcome_format TEXT,
                outcome BLOB,
                created_at TEXT NOT NULL,
                completed_at TEXT)""",
            "CREATE INDEX idempotency_age ON idempotency (created_at)",
            """CREATE TABLE receipts (
                receipt_id INTEGER PRIMARY KEY REFERENCES id_registry (legacy_id),
                owner_org TEXT NOT NULL,
                parent_receipt_id INTEGER,
                status TEXT NOT NULL,
                text TEXT NOT NULL,
                type_name TEXT NOT NULL,
                history TEXT NOT NULL,
                references_json TEXT NOT NULL,
                created_at TEXT NOT NULL,
                last_changed TEXT NOT NULL)""",
            "CREATE INDEX receipts_parent ON receipts (parent_receipt_id)",
            """CREATE TABLE receipt_references (
                receipt_id INTEGER NOT NULL REFERENCES receipts (receipt_id) ON DELETE CASCADE,
                type_name TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (receipt_id, type_name, value))""",
            "CREATE INDEX receipt_references_lookup ON receipt_references (type_name, value)",
        ),
    ),
)
check_sequence(MIGRATIONS)

_RECEIPT_COLUMNS = (
    "receipt_id, owner_org, parent_receipt_id, status, text, type_name, history, references_json, "
    "created_at, last_changed"
)


class SqliteStore(Store):
    """:class:`Store` on one SQLite file. Open with :meth:`open` (or :func:`proxy.store.open_store`)."""

    def __init__(self, path: Path, connection: aiosqlite.Connection, options: StoreOptions) -> None:
        super().__init__(options)
        self._path = path
        self._db = connection
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path, options: StoreOptions) -> SqliteStore:
        """Open (creating the file and its directory on first start) with WAL and durable commits."""
        try:
            await asyncio.to_thread(path.parent.mkdir, mode=0o700, parents=True, exist_ok=True)
            connection = await aiosqlite.connect(path, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000)
        except (OSError, sqlite3.Error) as error:
            raise StoreUnavailable(f"cannot open the SQLite store at {path}: {error}") from error
        try:
            await connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            await connection.execute("PRAGMA journal_mode = WAL")
            await connection.execute("PRAGMA synchronous = FULL")
            await connection.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as error:
            await connection.close()
            raise StoreUnavailable(f"cannot use the SQLite store at {path}: {error}") from error
        return cls(path, connection, options)

    @property
    def description(self) -> str:
        """``sqlite:`` and the file path."""
        return f"sqlite:{self._path}"

    @property
    def expected_schema_version(self) -> int:
        """The last migration of this backend."""
        return latest_version(MIGRATIONS)

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        async with self._lock:
            await self._db.close()

    @asynccontextmanager
    async def _session(self, *, write: bool) -> AsyncIterator[aiosqlite.Connection]:
        """Exclusive use of the connection; with ``write``, inside ``BEGIN IMMEDIATE`` ... ``COMMIT``."""
        async with self._lock:
            try:
                if not write:
                    yield self._db
                    return
                await self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    await self._db.rollback()
                    raise
                await self._db.commit()
            except ProxyError:
                raise
            except (sqlite3.Error, ValueError) as error:
                # aiosqlite raises ValueError once the connection is closed.
                raise StoreUnavailable(f"the SQLite store at {self._path} failed: {error}") from error

    # -- schema ----------------------------------------------------------------------------------

    async def migrate(self) -> int:
        """Apply pending migrations inside one write transaction."""
        async with self._session(write=True) as db:
            await db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            applied = await _applied_version(db)
            for migration in pending(MIGRATIONS, applied, where=self.description):
                for statement in migration.statements:
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, encode_timestamp(self._now())),
                )
        return latest_version(MIGRATIONS)

    async def schema_version(self) -> int:
        """The highest applied migration, 0 for a new file."""
        async with self._session(write=False) as db:
            cursor = await db.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            )
            row = await cursor.fetchone()
            if row is None or row[0] == 0:
                return 0
            return await _applied_version(db)

    async def ping(self) -> None:
        """Run ``SELECT 1``."""
        async with self._session(write=False) as db:
            await db.execute("SELECT 1")

    # -- id registry -----------------------------------------------------------------------------

    async def _allocate(
        self, kind: str, owner_org: str, guids: list[str], now: datetime
    ) -> Mapping[str, int]:
        async with self._session(write=True) as db:
            ids = await _select_ids(db, kind, owner_org, guids)
            created = encode_timestamp(now)
            for guid in guids:
                if guid in ids:
                    continue
                cursor = await db.execute(
                    "INSERT INTO id_registry (kind, guid, owner_org, created_at) VALUES (?, ?, ?, ?)",
                    (kind, guid, owner_org, created),
                )
                legacy_id = cursor.lastrowid
                if legacy_id is None or legacy_id > MAX_LEGACY_ID:
                    raise StoreUnavailable("the legacy id space (32-bit) of the SQLite store is exhausted")
                ids[guid] = legacy_id
            return ids

    async def _resolve(self, kind: str, legacy_id: int, owner_org: str) -> str | None:
        async with self._session(write=False) as db:
            cursor = await db.execute(
                "SELECT guid FROM id_registry WHERE legacy_id = ? AND kind = ? AND owner_org = ?",
                (legacy_id, kind, owner_org),
            )
            row = await cursor.fetchone()
            return None if row is None else str(row[0])

    async def _resolve_among(
        self, kind: str, legacy_id: int, owner_orgs: list[str]
    ) -> tuple[str, str] | None:
        # Only "?" placeholders are interpolated; every value is bound as a parameter.
        placeholders = ", ".join("?" for _ in owner_orgs)
        async with self._session(write=False) as db:
            cursor = await db.execute(
                "SELECT guid, owner_org FROM id_registry "  # noqa: S608
                f"WHERE legacy_id = ? AND kind = ? AND owner_org IN ({placeholders})",
                (legacy_id, kind, *owner_orgs),
            )
            row = await cursor.fetchone()
            return None if row is None else (str(row[0]), str(row[1]))

    # -- idempotency -----------------------------------------------------------------------------

    async def _insert_in_flight(
        self, digest: str, caller: str, operation: str, token: str, now: datetime, lease_until: datetime
    ) -> bool:
        async with self._session(write=True) as db:
            cursor = await db.execute(
                "INSERT INTO idempotency (digest, caller, operation, state, token, lease_until, created_at) "
                "VALUES (?, ?, ?, 'in_flight', ?, ?, ?) ON CONFLICT (digest) DO NOTHING",
                (digest, caller, operation, token, encode_timestamp(lease_until), encode_timestamp(now)),
            )
            return cursor.rowcount == 1

    async def _read_idempotency(self, digest: str) -> InFlightRecord | None:
        async with self._session(write=False) as db:
            cursor = await db.execute(
                "SELECT state, token, lease_until, outcome_format, outcome FROM idempotency WHERE digest = ?",
                (digest,),
            )
            row = await cursor.fetchone()
        if row is None:
            return None
        state, token, lease_until, fmt, outcome = row
        return InFlightRecord(
            state=state,
            token=token,
            lease_until=decode_timestamp(lease_until),
            outcome=None if fmt is None else decode_outcome(fmt, outcome),
        )

    async def _take_over(
        self, digest: str, old_token: str, new_token: str, now: datetime, lease_until: datetime
    ) -> bool:
        async with self._session(write=True) as db:
            cursor = await db.execute(
                "UPDATE idempotency SET token = ?, lease_until = ?, created_at = ? "
                "WHERE digest = ? AND state = 'in_flight' AND token = ? AND lease_until <= ?",
                (
                    new_token,
                    encode_timestamp(lease_until),
                    encode_timestamp(now),
                    digest,
                    old_token,
                    encode_timestamp(now),
                ),
            )
            return cursor.rowcount == 1

    async def _complete(
        self, digest: str, caller: str, operation: str, fmt: str, payload: bytes, now: datetime
    ) -> None:
        stamp = encode_timestamp(now)
        async with self._session(write=True) as db:
            await db.execute(
                "INSERT INTO idempotency (digest, caller, operation, state, token, lease_until, "
                "outcome_format, outcome, created_at, completed_at) "
                "VALUES (?, ?, ?, 'completed', '', ?, ?, ?, ?, ?) "
                "ON CONFLICT (digest) DO UPDATE SET state = 'completed', "
                "outcome_format = excluded.outcome_format, outcome = excluded.outcome, "
                "completed_at = excluded.completed_at WHERE idempotency.state = 'in_flight'",
                (digest, caller, operation, stamp, fmt, payload, stamp, stamp),
            )

    async def _release(self, digest: str) -> None:
        async with self._session(write=True) as db:
            await db.execute("DELETE FROM idempotency WHERE digest = ? AND state = 'in_flight'", (digest,))

    async def _purge(self, cutoff: datetime, now: datetime) -> int:
        async with self._session(write=True) as db:
            cursor = await db.execute(
                "DELETE FROM idempotency WHERE coalesce(completed_at, created_at) < ? "
                "AND (state = 'completed' OR lease_until <= ?)",
                (encode_timestamp(cutoff), encode_timestamp(now)),
            )
            return cursor.rowcount

    # -- receipts --------------------------------------------------------------------------------

    async def _save_receipt(self, receipt: Receipt, now: datetime) -> bool:
        tree = [
            receipt,
            *(replace(sub, parent_receipt_id=receipt.receipt_id) for sub in receipt.sub_receipts),
        ]
        wanted = sorted({item.receipt_id for item in tree})
        async with self._session(write=True) as db:
            marks = ", ".join("?" * len(wanted))
            cursor = await db.execute(
                f"SELECT count(*) FROM id_registry WHERE owner_org = ? AND legacy_id IN ({marks})",  # noqa: S608
                (receipt.owner_org, *wanted),
            )
            row = await cursor.fetchone()
            if row is None or row[0] != len(wanted):
                return False
            for item in tree:
                await _upsert_receipt(db, item, encode_timestamp(now))
            return True

    async def _load_receipt(self, receipt_id: int, owner_org: str) -> Receipt | None:
        async with self._session(write=False) as db:
            cursor = await db.execute(
                f"SELECT {_RECEIPT_COLUMNS} FROM receipts WHERE receipt_id = ? AND owner_org = ?",  # noqa: S608
                (receipt_id, owner_org),
            )
            row = await cursor.fetchone()
            if row is None:
                return None
            cursor = await db.execute(
                f"SELECT {_RECEIPT_COLUMNS} FROM receipts "  # noqa: S608
                "WHERE parent_receipt_id = ? AND owner_org = ? ORDER BY receipt_id",
                (receipt_id, owner_org),
            )
            children = await cursor.fetchall()
        return _receipt_from_row(row, tuple(_receipt_from_row(child, ()) for child in children))

    async def _find_receipt_ids(self, owner_org: str, reference: ReceiptReference) -> list[int]:
        async with self._session(write=False) as db:
            cursor = await db.execute(
                "SELECT DISTINCT r.receipt_id FROM receipt_references AS rr "
                "JOIN receipts AS r ON r.receipt_id = rr.receipt_id "
                "WHERE rr.type_name = ? AND rr.value = ? AND r.owner_org = ? ORDER BY r.receipt_id",
                (reference.type_name, reference.value, owner_org),
            )
            return [int(row[0]) for row in await cursor.fetchall()]


async def _applied_version(db: aiosqlite.Connection) -> int:
    cursor = await db.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
    row = await cursor.fetchone()
    return 0 if row is None else int(row[0])


async def _select_ids(
    db: aiosqlite.Connection, kind: str, owner_org: str, guids: list[str]
) -> dict[str, int]:
    ids: dict[str, int] = {}
    for start in range(0, len(guids), _IN_CHUNK):
        chunk = guids[start : start + _IN_CHUNK]
        marks = ", ".join("?" * len(chunk))
        cursor = await db.execute(
            f"SELECT guid, legacy_id FROM id_registry "  # noqa: S608
            f"WHERE kind = ? AND owner_org = ? AND guid IN ({marks})",
            (kind, owner_org, *chunk),
        )
        ids.update({str(guid): int(legacy_id) for guid, legacy_id in await cursor.fetchall()})
    return ids


async def _upsert_receipt(db: aiosqlite.Connection, receipt: Receipt, now: str) -> None:
    created = encode_timestamp(receipt.created_at) if receipt.created_at is not None else now
    await db.execute(
        f"INSERT INTO receipts ({_RECEIPT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "  # noqa: S608
        "ON CONFLICT (receipt_id) DO UPDATE SET parent_receipt_id = excluded.parent_receipt_id, "
        "status = excluded.status, text = excluded.text, type_name = excluded.type_name, "
        "history = excluded.history, references_json = excluded.references_json, "
        "last_changed = excluded.last_changed",
        (
            receipt.receipt_id,
            receipt.owner_org,
            receipt.parent_receipt_id,
            str(receipt.status),
            receipt.text,
            receipt.type_name,
            receipt.history,
            receipt.references_json(),
            created,
            encode_timestamp(receipt.last_changed),
        ),
    )
    await db.execute("DELETE FROM receipt_references WHERE receipt_id = ?", (receipt.receipt_id,))
    await db.executemany(
        "INSERT INTO receipt_references (receipt_id, type_name, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        [(receipt.receipt_id, ref.type_name, ref.value) for ref in receipt.references],
    )


def _receipt_from_row(row: Sequence[Any], sub_receipts: tuple[Receipt, ...]) -> Receipt:
    (receipt_id, owner_org, parent, status, text, type_name, history, refs, created, changed) = row
    return Receipt(
        receipt_id=int(receipt_id),
        owner_org=str(owner_org),
        status=ReceiptStatus(status),
        text=str(text),
        type_name=str(type_name),
        last_changed=decode_timestamp(changed),
        references=references_from_json(refs),
        history=str(history),
        parent_receipt_id=None if parent is None else int(parent),
        created_at=decode_timestamp(created),
        sub_receipts=sub_receipts,
    )
