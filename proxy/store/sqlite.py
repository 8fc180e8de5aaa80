"""The SQLite backend: one file in the data directory, WAL mode, the zero-configuration default.

One connection per store, owned by one worker thread (:class:`_Worker`), so waiting for the file lock
or an fsync never blocks the event loop. Every store operation is one plain function run whole on that
thread: one thread hop per operation, not one per statement.

Group commit: write operations that are queued together run in one ``BEGIN IMMEDIATE`` ... ``COMMIT``
(each inside its own ``SAVEPOINT``, so a failing operation undoes only its own statements), and their
callers are answered only after that ``COMMIT`` returned. With ``synchronous=FULL`` (set for every
group with a durable write, see below) every acknowledged write is therefore on disk, exactly as with
one transaction per operation; concurrent submissions share the fsync instead of queueing for one
each. ``BEGIN IMMEDIATE`` takes SQLite's single write lock up front: two processes on the same file
are serialized by SQLite itself, never by Python state. Reads run outside any write transaction and
never see uncommitted data.

Only commits that something acknowledged depends on wait for the disk. An idempotency claim (taken,
taken over or released) is committed with ``synchronous=NORMAL``: it is visible to every process at
once and survives ``kill -9`` (it is in the WAL file), but it is flushed by the next durable commit,
which is always the same submission's own answer or id before anything is sent. Losing a claim to a
power cut before that costs nothing a lapsed lease would not: the resend runs again, and Altinn 3's
idempotency key keeps it from creating a second correspondence. This spares one of the three fsyncs
on a submission's path, the one most often alone in its group.

Reads that can be answered at once skip the thread hop: a second, query-only connection answers them
on the event loop's own thread (:class:`_Reader`: a lookup by key on a WAL database takes
microseconds and never waits for a writer). It never waits at all: with no busy timeout, anything
that would (a lock during WAL recovery, an error) is handed to the worker thread as before. An
allocation whose ids all exist already is such a read; only new ids take the write path.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

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
#: Most write operations committed together; bounds how long one group holds the write lock.
_MAX_GROUP = 64

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]

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
    Migration(
        2,
        "memos: what an unfinished submission already created upstream",
        (
            """CREATE TABLE memos (
                digest TEXT PRIMARY KEY,
                value TEXT NOT NULL,
                created_at TEXT NOT NULL)""",
            "CREATE INDEX memos_age ON memos (created_at)",
        ),
    ),
    Migration(
        3,
        "id registry: the parent an id belongs to (a data element's instance)",
        ("ALTER TABLE id_registry ADD COLUMN parent TEXT",),
    ),
    Migration(
        4,
        "durable memos: references that outlive a submission (never purged)",
        ("ALTER TABLE memos ADD COLUMN durable INTEGER NOT NULL DEFAULT 0",),
    ),
)
check_sequence(MIGRATIONS)

_RECEIPT_COLUMNS = (
    "receipt_id, owner_org, parent_receipt_id, status, text, type_name, history, references_json, "
    "created_at, last_changed"
)


@dataclass(eq=False)
class _Job:
    work: Work[Any]
    write: bool
    future: asyncio.Future[Any]
    #: False for a write nothing acknowledged depends on (an idempotency claim): see the module doc.
    durable: bool = True
    outcome: tuple[bool, Any] = field(default=(False, None))


_STOP = object()


class _Worker:
    """The thread that owns the connection and runs every operation, grouping queued writes.

    Callers are answered with one ``call_soon_threadsafe`` per group, after its ``COMMIT``.
    """

    def __init__(self, connection: sqlite3.Connection, where: str) -> None:
        self._db = connection
        self._where = where
        self._durable = True  # the connection starts with synchronous = FULL
        self._jobs: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=f"store {where}", daemon=True)
        self._thread.start()

    async def run(self, work: Work[T], *, write: bool, durable: bool = True) -> T:
        """Run ``work(connection)`` on the worker; with ``write``, inside a committed transaction.

        ``durable=False``: the commit is not flushed to disk by itself (it survives ``kill -9``, and
        the next durable commit flushes it), unless a durable write shares its group.
        """
        if self._closed:
            raise StoreUnavailable(f"the SQLite store at {self._where} is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put(_Job(work, write, future, durable))
        return await future

    async def close(self) -> None:
        """Finish the queued operations, then close the connection and end the thread (idempotent)."""
        if not self._closed:
            self._closed = True
            self._jobs.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    def _serve(self) -> None:
        try:
            while True:
                jobs: list[_Job] = []
                item = self._jobs.get()
                stop = item is _STOP
                while not stop:
                    assert isinstance(item, _Job)
                    jobs.append(item)
                    if len(jobs) >= _MAX_GROUP:
                        break
                    try:
                        item = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    stop = item is _STOP
                self._run_all(jobs)
                if stop:
                    return
        finally:
            self._db.close()

    def _run_all(self, jobs: list[_Job]) -> None:
        writes = [job for job in jobs if job.write]
        for job in jobs:
            if not job.write:
                job.outcome = self._attempt(job.work)
        if writes:
            self._commit_group(writes)
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in jobs:
            by_loop.setdefault(job.future.get_loop(), []).append(job)
        for loop, answered in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                loop.call_soon_threadsafe(_deliver, answered)

    def _commit_group(self, writes: list[_Job]) -> None:
        db = self._db
        try:
            durable = any(job.durable for job in writes)
            if durable is not self._durable:
                db.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
                self._durable = durable
            db.execute("BEGIN IMMEDIATE")
            for job in writes:
                db.execute("SAVEPOINT job")
                job.outcome = self._attempt(job.work)
                if not job.outcome[0]:
                    db.execute("ROLLBACK TO job")
                db.execute("RELEASE job")
            db.execute("COMMIT")
        except sqlite3.Error as error:
            # Nothing of the group is committed: every caller learns it, none is told otherwise.
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            failure = self._unavailable(error)
            for job in writes:
                job.outcome = (False, failure)

    def _attempt(self, work: Work[Any]) -> tuple[bool, Any]:
        try:
            return True, work(self._db)
        except ProxyError as error:
            return False, error
        except (sqlite3.Error, ValueError) as error:
            return False, self._unavailable(error)
        except Exception as error:  # handed to the caller: the worker thread must live on
            return False, error

    def _unavailable(self, error: Exception) -> StoreUnavailable:
        return StoreUnavailable(f"the SQLite store at {self._where} failed: {error}")


def _deliver(jobs: list[_Job]) -> None:
    for job in jobs:
        if job.future.done():
            continue  # the caller was cancelled; a write it asked for is committed all the same
        ok, value = job.outcome
        if ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    connection = sqlite3.connect(
        path, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000, check_same_thread=False
    )
    try:
        connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        _enable_wal(connection)
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error:
        connection.close()
        raise
    return connection


def _enable_wal(connection: sqlite3.Connection) -> None:
    """Switch to WAL. Replicas opening a new file at once can find it locked while another switches
    it, and SQLite answers that at once rather than through the busy handler: retry for a while.
    (Runs in a worker thread, so sleeping here blocks no event loop.)"""
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


class _Reader:
    """A query-only connection used on the event loop's thread for reads that need not wait."""

    def __init__(self, connection: sqlite3.Connection, worker: _Worker) -> None:
        self._db = connection
        self._worker = worker

    async def run(self, work: Work[T]) -> T:
        """``work(connection)`` here and now, or on the worker thread when SQLite would make it wait."""
        try:
            return work(self._db)
        except sqlite3.Error:
            pass  # busy, locked, closed or failing: the worker thread waits for it or reports it
        return await self._worker.run(work, write=False)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._db.close()


def _connect_reader(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, timeout=0, check_same_thread=False)
    try:
        connection.execute("PRAGMA busy_timeout = 0")
        connection.execute("PRAGMA query_only = ON")
    except sqlite3.Error:
        connection.close()
        raise
    return connection


class SqliteStore(Store):
    """:class:`Store` on one SQLite file. Open with :meth:`open` (or :func:`proxy.store.open_store`)."""

    def __init__(
        self, path: Path, worker: _Worker, reader: sqlite3.Connection, options: StoreOptions
    ) -> None:
        super().__init__(options)
        self._path = path
        self._worker = worker
        self._reader = _Reader(reader, worker)

    @classmethod
    async def open(cls, path: Path, options: StoreOptions) -> SqliteStore:
        """Open (creating the file and its directory on first start) with WAL and durable commits."""
        try:
            connection = await asyncio.to_thread(_connect, path)
        except (OSError, sqlite3.Error) as error:
            raise StoreUnavailable(f"cannot open the SQLite store at {path}: {error}") from error
        try:
            reader = await asyncio.to_thread(_connect_reader, path)
        except (OSError, sqlite3.Error) as error:
            connection.close()
            raise StoreUnavailable(f"cannot open the SQLite store at {path}: {error}") from error
        return cls(path, _Worker(connection, str(path)), reader, options)

    @property
    def description(self) -> str:
        """``sqlite:`` and the file path."""
        return f"sqlite:{self._path}"

    @property
    def expected_schema_version(self) -> int:
        """The last migration of this backend."""
        return latest_version(MIGRATIONS)

    async def close(self) -> None:
        """Close the connections after the operations already queued (idempotent)."""
        await self._worker.close()
        self._reader.close()

    # -- schema ----------------------------------------------------------------------------------

    async def migrate(self) -> int:
        """Apply pending migrations inside one write transaction."""
        stamp = encode_timestamp(self._now())

        def work(db: sqlite3.Connection) -> int:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            for migration in pending(MIGRATIONS, _applied_version(db), where=self.description):
                for statement in migration.statements:
                    db.execute(statement)
                db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, stamp),
                )
            _raise_id_floor(db, self.options.first_legacy_id)
            return latest_version(MIGRATIONS)

        return await self._worker.run(work, write=True)

    async def schema_version(self) -> int:
        """The highest applied migration, 0 for a new file."""

        def work(db: sqlite3.Connection) -> int:
            row = db.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            ).fetchone()
            if row is None or row[0] == 0:
                return 0
            return _applied_version(db)

        return await self._worker.run(work, write=False)

    async def ping(self) -> None:
        """Run ``SELECT 1``."""
        await self._worker.run(lambda db: db.execute("SELECT 1").fetchone(), write=False)

    # -- id registry -----------------------------------------------------------------------------

    async def _allocate(
        self, kind: str, owner_org: str, guids: list[str], now: datetime
    ) -> Mapping[str, int]:
        created = encode_timestamp(now)
        known = await self._reader.run(lambda db: _select_ids(db, kind, owner_org, guids))
        if len(known) == len(guids):
            return known

        def work(db: sqlite3.Connection) -> dict[str, int]:
            ids = _select_ids(db, kind, owner_org, guids)
            for guid in guids:
                if guid in ids:
                    continue
                cursor = db.execute(
                    "INSERT INTO id_registry (kind, guid, owner_org, created_at) VALUES (?, ?, ?, ?)",
                    (kind, guid, owner_org, created),
                )
                legacy_id = cursor.lastrowid
                if legacy_id is None or legacy_id > MAX_LEGACY_ID:
                    raise StoreUnavailable("the legacy id space (32-bit) of the SQLite store is exhausted")
                ids[guid] = legacy_id
            return ids

        return await self._worker.run(work, write=True)

    async def _adopt(self, kind: str, owner_org: str, guids: list[str], parent: str) -> None:
        def orphans(db: sqlite3.Connection) -> list[str]:
            found: list[str] = []
            for start in range(0, len(guids), _IN_CHUNK):
                chunk = guids[start : start + _IN_CHUNK]
                marks = ", ".join("?" * len(chunk))
                rows = db.execute(
                    "SELECT guid FROM id_registry "  # noqa: S608
                    f"WHERE kind = ? AND owner_org = ? AND guid IN ({marks}) AND parent IS NULL",
                    (kind, owner_org, *chunk),
                ).fetchall()
                found += [str(row[0]) for row in rows]
            return found

        # The usual case (listed before, parent known) is a read on the loop's connection, no write.
        if not await self._reader.run(orphans):
            return

        def work(db: sqlite3.Connection) -> None:
            for guid in orphans(db):
                db.execute(
                    "UPDATE id_registry SET parent = ? "
                    "WHERE kind = ? AND owner_org = ? AND guid = ? AND parent IS NULL",
                    (parent, kind, owner_org, guid),
                )

        await self._worker.run(work, write=True)

    async def _resolve(self, kind: str, legacy_id: int, owner_org: str) -> tuple[str, str | None] | None:
        def work(db: sqlite3.Connection) -> tuple[str, str | None] | None:
            row = db.execute(
                "SELECT guid, parent FROM id_registry WHERE legacy_id = ? AND kind = ? AND owner_org = ?",
                (legacy_id, kind, owner_org),
            ).fetchone()
            return None if row is None else (str(row[0]), None if row[1] is None else str(row[1]))

        return await self._reader.run(work)

    async def _resolve_among(
        self, kind: str, legacy_id: int, owner_orgs: list[str]
    ) -> tuple[str, str] | None:
        # Only "?" placeholders are interpolated; every value is bound as a parameter.
        placeholders = ", ".join("?" for _ in owner_orgs)

        def work(db: sqlite3.Connection) -> tuple[str, str] | None:
            row = db.execute(
                "SELECT guid, owner_org FROM id_registry "  # noqa: S608
                f"WHERE legacy_id = ? AND kind = ? AND owner_org IN ({placeholders})",
                (legacy_id, kind, *owner_orgs),
            ).fetchone()
            return None if row is None else (str(row[0]), str(row[1]))

        return await self._reader.run(work)

    # -- idempotency -----------------------------------------------------------------------------

    async def _insert_in_flight(
        self, digest: str, caller: str, operation: str, token: str, now: datetime, lease_until: datetime
    ) -> bool:
        values = (digest, caller, operation, token, encode_timestamp(lease_until), encode_timestamp(now))

        def work(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "INSERT INTO idempotency (digest, caller, operation, state, token, lease_until, created_at) "
                "VALUES (?, ?, ?, 'in_flight', ?, ?, ?) ON CONFLICT (digest) DO NOTHING",
                values,
            )
            return cursor.rowcount == 1

        return await self._worker.run(work, write=True, durable=False)

    async def _read_idempotency(self, digest: str) -> InFlightRecord | None:
        def work(db: sqlite3.Connection) -> Any:
            return db.execute(
                "SELECT state, token, lease_until, outcome_format, outcome FROM idempotency WHERE digest = ?",
                (digest,),
            ).fetchone()

        row = await self._reader.run(work)
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
        stamp = encode_timestamp(now)
        values = (new_token, encode_timestamp(lease_until), stamp, digest, old_token, stamp)

        def work(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE idempotency SET token = ?, lease_until = ?, created_at = ? "
                "WHERE digest = ? AND state = 'in_flight' AND token = ? AND lease_until <= ?",
                values,
            )
            return cursor.rowcount == 1

        return await self._worker.run(work, write=True, durable=False)

    async def _complete(
        self, digest: str, caller: str, operation: str, fmt: str, payload: bytes, now: datetime
    ) -> None:
        stamp = encode_timestamp(now)
        await self._worker.run(
            lambda db: _complete(db, (digest, caller, operation, fmt, payload), stamp), write=True
        )

    async def _release(self, digest: str, token: str) -> None:
        await self._worker.run(
            lambda db: db.execute(
                "DELETE FROM idempotency WHERE digest = ? AND state = 'in_flight' AND token = ?",
                (digest, token),
            ),
            write=True,
            durable=False,
        )

    async def _purge(self, cutoff: datetime, now: datetime) -> int:
        values = (encode_timestamp(cutoff), encode_timestamp(now))

        def work(db: sqlite3.Connection) -> int:
            cursor = db.execute(
                "DELETE FROM idempotency WHERE coalesce(completed_at, created_at) < ? "
                "AND (state = 'completed' OR lease_until <= ?)",
                values,
            )
            return cursor.rowcount

        return await self._worker.run(work, write=True)

    # -- memos -----------------------------------------------------------------------------------

    async def _remember(self, digest: str, value: str, now: datetime, durable: bool) -> str:
        def work(db: sqlite3.Connection) -> str:
            db.execute(
                "INSERT INTO memos (digest, value, created_at, durable) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (digest) DO NOTHING",
                (digest, value, encode_timestamp(now), int(durable)),
            )
            return str(db.execute("SELECT value FROM memos WHERE digest = ?", (digest,)).fetchone()[0])

        return await self._worker.run(work, write=True)

    async def _recall(self, digest: str) -> str | None:
        def work(db: sqlite3.Connection) -> str | None:
            row = db.execute("SELECT value FROM memos WHERE digest = ?", (digest,)).fetchone()
            return None if row is None else str(row[0])

        return await self._worker.run(work, write=False)

    async def _purge_memos(self, cutoff: datetime) -> None:
        await self._worker.run(
            lambda db: db.execute(
                "DELETE FROM memos WHERE created_at < ? AND durable = 0", (encode_timestamp(cutoff),)
            ),
            write=True,
        )

    # -- receipts --------------------------------------------------------------------------------

    async def _save_receipt(self, receipt: Receipt, now: datetime) -> bool:
        stamp = encode_timestamp(now)
        return await self._worker.run(lambda db: _save_receipt(db, receipt, stamp), write=True)

    async def _finish(
        self,
        receipts: list[Receipt],
        completion: tuple[str, str, str, str, bytes] | None,
        now: datetime,
    ) -> int | None:
        stamp = encode_timestamp(now)

        def work(db: sqlite3.Connection) -> int | None:
            for receipt in receipts:
                if not _save_receipt(db, receipt, stamp):
                    # Undo the receipts saved so far: this operation's SAVEPOINT is rolled back.
                    raise _Refused(receipt.receipt_id)
            if completion is not None:
                _complete(db, completion, stamp)
            return None

        try:
            return await self._worker.run(work, write=True)
        except _Refused as refused:
            return refused.receipt_id

    async def _load_receipt(self, receipt_id: int, owner_org: str) -> Receipt | None:
        def work(db: sqlite3.Connection) -> Receipt | None:
            row = db.execute(
                f"SELECT {_RECEIPT_COLUMNS} FROM receipts WHERE receipt_id = ? AND owner_org = ?",  # noqa: S608
                (receipt_id, owner_org),
            ).fetchone()
            if row is None:
                return None
            children = db.execute(
                f"SELECT {_RECEIPT_COLUMNS} FROM receipts "  # noqa: S608
                "WHERE parent_receipt_id = ? AND owner_org = ? ORDER BY receipt_id",
                (receipt_id, owner_org),
            ).fetchall()
            return _receipt_from_row(row, tuple(_receipt_from_row(child, ()) for child in children))

        return await self._reader.run(work)

    async def _find_receipt_ids(self, owner_org: str, reference: ReceiptReference) -> list[int]:
        def work(db: sqlite3.Connection) -> list[int]:
            rows = db.execute(
                "SELECT DISTINCT r.receipt_id FROM receipt_references AS rr "
                "JOIN receipts AS r ON r.receipt_id = rr.receipt_id "
                "WHERE rr.type_name = ? AND rr.value = ? AND r.owner_org = ? ORDER BY r.receipt_id",
                (reference.type_name, reference.value, owner_org),
            ).fetchall()
            return [int(row[0]) for row in rows]

        return await self._reader.run(work)


class _Refused(Exception):
    """A receipt of :meth:`SqliteStore._finish` is on an id the org does not own."""

    def __init__(self, receipt_id: int) -> None:
        super().__init__(receipt_id)
        self.receipt_id = receipt_id


# -- statements, run on the worker thread ----------------------------------------------------------


def _applied_version(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return 0 if row is None else int(row[0])


def _raise_id_floor(db: sqlite3.Connection, first: int) -> None:
    """Make ``AUTOINCREMENT`` hand out nothing below ``first``; never move it down.

    SQLite gives a new row ``max(sqlite_sequence.seq, max(rowid)) + 1``, and ``seq`` never decreases
    on its own; raising ``seq`` to ``first - 1`` is therefore the whole mechanism. It runs inside the
    migration's write transaction, which holds SQLite's single write lock, so no allocation of any
    process can interleave. The row exists once the table has had an insert: create it before that.
    """
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'id_registry'").fetchone()
    if row is None:
        db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('id_registry', ?)", (first - 1,))
    elif int(row[0]) < first - 1:
        db.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'id_registry'", (first - 1,))


def _select_ids(db: sqlite3.Connection, kind: str, owner_org: str, guids: list[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for start in range(0, len(guids), _IN_CHUNK):
        chunk = guids[start : start + _IN_CHUNK]
        marks = ", ".join("?" * len(chunk))
        rows = db.execute(
            f"SELECT guid, legacy_id FROM id_registry "  # noqa: S608
            f"WHERE kind = ? AND owner_org = ? AND guid IN ({marks})",
            (kind, owner_org, *chunk),
        ).fetchall()
        ids.update({str(guid): int(legacy_id) for guid, legacy_id in rows})
    return ids


def _complete(db: sqlite3.Connection, completion: tuple[str, str, str, str, bytes], stamp: str) -> None:
    digest, caller, operation, fmt, payload = completion
    db.execute(
        "INSERT INTO idempotency (digest, caller, operation, state, token, lease_until, "
        "outcome_format, outcome, created_at, completed_at) "
        "VALUES (?, ?, ?, 'completed', '', ?, ?, ?, ?, ?) "
        "ON CONFLICT (digest) DO UPDATE SET state = 'completed', "
        "outcome_format = excluded.outcome_format, outcome = excluded.outcome, "
        "completed_at = excluded.completed_at WHERE idempotency.state = 'in_flight'",
        (digest, caller, operation, stamp, fmt, payload, stamp, stamp),
    )


def _save_receipt(db: sqlite3.Connection, receipt: Receipt, stamp: str) -> bool:
    """Write the receipt tree; False (nothing written) when an id is not the owner's."""
    tree = [
        receipt,
        *(replace(sub, parent_receipt_id=receipt.receipt_id) for sub in receipt.sub_receipts),
    ]
    wanted = sorted({item.receipt_id for item in tree})
    marks = ", ".join("?" * len(wanted))
    row = db.execute(
        f"SELECT count(*) FROM id_registry WHERE owner_org = ? AND legacy_id IN ({marks})",  # noqa: S608
        (receipt.owner_org, *wanted),
    ).fetchone()
    if row is None or row[0] != len(wanted):
        return False
    for item in tree:
        _upsert_receipt(db, item, stamp)
    return True


def _upsert_receipt(db: sqlite3.Connection, receipt: Receipt, now: str) -> None:
    created = encode_timestamp(receipt.created_at) if receipt.created_at is not None else now
    db.execute(
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
    db.execute("DELETE FROM receipt_references WHERE receipt_id = ?", (receipt.receipt_id,))
    db.executemany(
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
