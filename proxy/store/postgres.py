"""The PostgreSQL backend: what several replicas share, through one asyncpg pool.

Legacy ids come from one sequence (``integer``, 1 .. 2^31-1, no cycle), so they are unique across
replicas without coordination; ``(kind, guid, owner_org)`` is unique, and an allocation that loses a
race (``ON CONFLICT DO NOTHING``) reads the winner's id. Batches insert in sorted GUID order so two
overlapping batches cannot wait on each other in a cycle. Statements outside an explicit transaction
autocommit, so every acknowledged write is durable when the call returns. Migrations run under a
transaction-scoped advisory lock, so replicas starting together apply each step exactly once.

The id floor (``first_legacy_id``) is applied under that same lock, see :func:`_raise_id_floor`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

import asyncpg

from proxy.errors import ProxyError, StoreUnavailable
from proxy.store.base import Store
from proxy.store.migrations import Migration, check_sequence, latest_version, pending
from proxy.store.model import (
    InFlightRecord,
    Receipt,
    ReceiptReference,
    ReceiptStatus,
    StoreOptions,
    decode_outcome,
    references_from_json,
)
from proxy.store.url import redact

#: Arbitrary constant naming "altinn-proxy schema migration" among advisory locks.
_MIGRATION_LOCK = 0x416C_7450_726F_7879 & 0x7FFF_FFFF_FFFF_FFFF
_COMMAND_TIMEOUT_SECONDS = 30.0
_RACE_RETRIES = 3

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "id registry, idempotency, receipts",
        (
            "CREATE SEQUENCE legacy_id_seq AS integer START WITH 1 MINVALUE 1 MAXVALUE 2147483647 NO CYCLE",
            """CREATE TABLE id_registry (
                legacy_id integer PRIMARY KEY DEFAULT nextval('legacy_id_seq'),
                kind text NOT NULL,
                guid text NOT NULL,
                owner_org text NOT NULL,
                created_at timestamptz NOT NULL,
                UNIQUE (kind, guid, owner_org))""",
            "ALTER SEQUENCE legacy_id_seq OWNED BY id_registry.legacy_id",
            """CREATE TABLE idempotency (
                digest text PRIMARY KEY,
                caller text NOT NULL,
                operation text NOT NULL,
                state text NOT NULL CHECK (state IN ('in_flight', 'completed')),
                token text NOT NULL,
                lease_until timestamptz NOT NULL,
                outcome_format text,
                outcome bytea,
                created_at timestamptz NOT NULL,
                completed_at timestamptz)""",
            "CREATE INDEX idempotency_age ON idempotency (created_at)",
            """CREATE TABLE receipts (
                receipt_id integer PRIMARY KEY REFERENCES id_registry (legacy_id),
                owner_org text NOT NULL,
                parent_receipt_id integer,
                status text NOT NULL,
                text text NOT NULL,
                type_name text NOT NULL,
                history text NOT NULL,
                references_json text NOT NULL,
                created_at timestamptz NOT NULL,
                last_changed timestamptz NOT NULL)""",
            "CREATE INDEX receipts_parent ON receipts (parent_receipt_id)",
            """CREATE TABLE receipt_references (
                receipt_id integer NOT NULL REFERENCES receipts (receipt_id) ON DELETE CASCADE,
                type_name text NOT NULL,
                value text NOT NULL,
                PRIMARY KEY (receipt_id, type_name, value))""",
            "CREATE INDEX receipt_references_lookup ON receipt_references (type_name, value)",
        ),
    ),
    Migration(
        2,
        "memos: what an unfinished submission already created upstream",
        (
            """CREATE TABLE memos (
                digest text PRIMARY KEY,
                value text NOT NULL,
                created_at timestamptz NOT NULL)""",
            "CREATE INDEX memos_age ON memos (created_at)",
        ),
    ),
    Migration(
        3,
        "id registry: the parent an id belongs to (a data element's instance)",
        ("ALTER TABLE id_registry ADD COLUMN parent text",),
    ),
    Migration(
        4,
        "durable memos: references that outlive a submission (never purged)",
        ("ALTER TABLE memos ADD COLUMN durable boolean NOT NULL DEFAULT false",),
    ),
)
check_sequence(MIGRATIONS)

_RECEIPT_COLUMNS = (
    "receipt_id, owner_org, parent_receipt_id, status, text, type_name, history, references_json, "
    "created_at, last_changed"
)

#: What the driver raises when the server goes away; a connection cut mid-query by a server restart
#: can surface as an InternalClientError ("cannot switch to state ...") from asyncpg's protocol.
_DRIVER_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


class PostgresStore(Store):
    """:class:`Store` on PostgreSQL. Open with :meth:`open` (or :func:`proxy.store.open_store`)."""

    def __init__(self, dsn: str, pool: asyncpg.Pool, options: StoreOptions) -> None:
        super().__init__(options)
        self._where = redact(dsn)
        self._pool = pool

    @classmethod
    async def open(cls, dsn: str, options: StoreOptions) -> PostgresStore:
        """Create the connection pool; ``StoreUnavailable`` (password never shown) if it cannot connect."""
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=options.pool_min_size,
                max_size=options.pool_max_size,
                timeout=options.connect_timeout,
                command_timeout=_COMMAND_TIMEOUT_SECONDS,
            )
        except _DRIVER_ERRORS as error:
            raise StoreUnavailable(
                f"cannot connect to PostgreSQL at {redact(dsn)}: {_describe(error)}; "
                "check the host, port, database name and credentials of the store URL"
            ) from error
        return cls(dsn, pool, options)

    @property
    def description(self) -> str:
        """The DSN with its password redacted."""
        return self._where

    @property
    def expected_schema_version(self) -> int:
        """The last migration of this backend."""
        return latest_version(MIGRATIONS)

    async def close(self) -> None:
        """Close the pool, waiting briefly for connections in use."""
        try:
            async with asyncio.timeout(10):
                await self._pool.close()
        except TimeoutError:
            self._pool.terminate()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy]:
        """A pooled connection; driver errors become ``StoreUnavailable``."""
        try:
            async with self._pool.acquire(timeout=self.options.connect_timeout) as connection:
                yield connection
        except ProxyError:
            raise
        except _DRIVER_ERRORS as error:
            raise StoreUnavailable(
                f"the PostgreSQL store at {self._where} failed: {_describe(error)}"
            ) from error

    # -- schema ----------------------------------------------------------------------------------

    async def migrate(self) -> int:
        """Apply pending migrations under an advisory lock, each in the transaction that records it."""
        async with self._connection() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)"
            )
            applied = await connection.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")
            for migration in pending(MIGRATIONS, int(applied), where=self._where):
                for statement in migration.statements:
                    await connection.execute(statement)
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    self._now(),
                )
            await _raise_id_floor(connection, self.options.first_legacy_id)
        return latest_version(MIGRATIONS)

    async def schema_version(self) -> int:
        """The highest applied migration, 0 for an empty database."""
        async with self._connection() as connection:
            if await connection.fetchval("SELECT to_regclass('schema_migrations')") is None:
                return 0
            return int(await connection.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))

    async def ping(self) -> None:
        """Run ``SELECT 1``."""
        async with self._connection() as connection:
            await connection.fetchval("SELECT 1")

    # -- id registry -----------------------------------------------------------------------------

    async def _allocate(
        self, kind: str, owner_org: str, guids: list[str], now: datetime
    ) -> Mapping[str, int]:
        select = "SELECT guid, legacy_id FROM id_registry WHERE kind = $1 AND owner_org = $2 AND guid = ANY($3::text[])"
        async with self._connection() as connection:
            # One round trip for the usual case: the known ids and the new ones inserted together.
            ids = {
                row["guid"]: row["legacy_id"]
                for row in await connection.fetch(_ALLOCATE, kind, owner_org, guids, now)
            }
            missing = [guid for guid in guids if guid not in ids]
            for attempt in range(_RACE_RETRIES):
                if not missing:
                    break
                try:
                    inserted = await connection.fetch(
                        "INSERT INTO id_registry (kind, guid, owner_org, created_at) "
                        "SELECT $1, g, $2, $4 FROM unnest($3::text[]) WITH ORDINALITY AS t(g, n) ORDER BY n "
                        "ON CONFLICT (kind, guid, owner_org) DO NOTHING RETURNING guid, legacy_id",
                        kind,
                        owner_org,
                        missing,
                        now,
                    )
                except asyncpg.DeadlockDetectedError:
                    if attempt + 1 == _RACE_RETRIES:
                        raise
                    inserted = []
                ids.update({row["guid"]: row["legacy_id"] for row in inserted})
                missing = [guid for guid in missing if guid not in ids]
                if missing:
                    # Lost races: the winners have committed (ON CONFLICT waited for them).
                    rows = await connection.fetch(select, kind, owner_org, missing)
                    ids.update({row["guid"]: row["legacy_id"] for row in rows})
                    missing = [guid for guid in missing if guid not in ids]
            if missing:
                raise StoreUnavailable(f"could not allocate legacy ids for {len(missing)} GUID(s); retry")
            return ids

    async def _adopt(self, kind: str, owner_org: str, guids: list[str], parent: str) -> None:
        async with self._connection() as connection:
            await connection.execute(
                "UPDATE id_registry SET parent = $4 "
                "WHERE kind = $1 AND owner_org = $2 AND guid = ANY($3::text[]) AND parent IS NULL",
                kind,
                owner_org,
                guids,
                parent,
            )

    async def _resolve(self, kind: str, legacy_id: int, owner_org: str) -> tuple[str, str | None] | None:
        async with self._connection() as connection:
            row = await connection.fetchrow(
                "SELECT guid, parent FROM id_registry WHERE legacy_id = $1 AND kind = $2 AND owner_org = $3",
                legacy_id,
                kind,
                owner_org,
            )
            return None if row is None else (str(row["guid"]), row["parent"])

    async def _resolve_among(
        self, kind: str, legacy_id: int, owner_orgs: list[str]
    ) -> tuple[str, str] | None:
        async with self._connection() as connection:
            row = await connection.fetchrow(
                "SELECT guid, owner_org FROM id_registry "
                "WHERE legacy_id = $1 AND kind = $2 AND owner_org = ANY($3::text[])",
                legacy_id,
                kind,
                owner_orgs,
            )
            return None if row is None else (str(row["guid"]), str(row["owner_org"]))

    # -- idempotency -----------------------------------------------------------------------------

    async def _insert_in_flight(
        self, digest: str, caller: str, operation: str, token: str, now: datetime, lease_until: datetime
    ) -> bool:
        async with self._connection() as connection:
            inserted = await connection.fetchval(
                "INSERT INTO idempotency (digest, caller, operation, state, token, lease_until, created_at) "
                "VALUES ($1, $2, $3, 'in_flight', $4, $5, $6) ON CONFLICT (digest) DO NOTHING RETURNING 1",
                digest,
                caller,
                operation,
                token,
                lease_until,
                now,
            )
            return inserted is not None

    async def _read_idempotency(self, digest: str) -> InFlightRecord | None:
        async with self._connection() as connection:
            row = await connection.fetchrow(
                "SELECT state, token, lease_until, outcome_format, outcome FROM idempotency WHERE digest = $1",
                digest,
            )
        if row is None:
            return None
        fmt = row["outcome_format"]
        return InFlightRecord(
            state=row["state"],
            token=row["token"],
            lease_until=row["lease_until"],
            outcome=None if fmt is None else decode_outcome(fmt, row["outcome"]),
        )

    async def _take_over(
        self, digest: str, old_token: str, new_token: str, now: datetime, lease_until: datetime
    ) -> bool:
        async with self._connection() as connection:
            updated = await connection.fetchval(
                "UPDATE idempotency SET token = $3, lease_until = $5, created_at = $4 "
                "WHERE digest = $1 AND state = 'in_flight' AND token = $2 AND lease_until <= $4 RETURNING 1",
                digest,
                old_token,
                new_token,
                now,
                lease_until,
            )
            return updated is not None

    async def _complete(
        self, digest: str, caller: str, operation: str, fmt: str, payload: bytes, now: datetime
    ) -> None:
        async with self._connection() as connection:
            await _complete_on(connection, (digest, caller, operation, fmt, payload), now)

    async def _release(self, digest: str, token: str) -> None:
        async with self._connection() as connection:
            await connection.execute(
                "DELETE FROM idempotency WHERE digest = $1 AND state = 'in_flight' AND token = $2",
                digest,
                token,
            )

    async def _purge(self, cutoff: datetime, now: datetime) -> int:
        async with self._connection() as connection:
            status = await connection.execute(
                "DELETE FROM idempotency WHERE coalesce(completed_at, created_at) < $1 "
                "AND (state = 'completed' OR lease_until <= $2)",
                cutoff,
                now,
            )
        return int(status.rsplit(" ", 1)[-1])

    # -- memos -----------------------------------------------------------------------------------

    async def _remember(self, digest: str, value: str, now: datetime, durable: bool) -> str:
        async with self._connection() as connection:
            stored = await connection.fetchval(
                "WITH inserted AS (INSERT INTO memos (digest, value, created_at, durable) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (digest) DO NOTHING RETURNING value) "
                "SELECT value FROM inserted UNION ALL SELECT value FROM memos WHERE digest = $1 LIMIT 1",
                digest,
                value,
                now,
                durable,
            )
            if stored is None:
                # A concurrent writer inserted the digest and committed after this statement's snapshot
                # was taken: the insert did nothing and the select could not see that row. A new
                # statement (a new snapshot) sees it.
                stored = await connection.fetchval("SELECT value FROM memos WHERE digest = $1", digest)
        return str(stored)

    async def _recall(self, digest: str) -> str | None:
        async with self._connection() as connection:
            value = await connection.fetchval("SELECT value FROM memos WHERE digest = $1", digest)
        return None if value is None else str(value)

    async def _purge_memos(self, cutoff: datetime) -> None:
        async with self._connection() as connection:
            await connection.execute("DELETE FROM memos WHERE created_at < $1 AND NOT durable", cutoff)

    # -- receipts --------------------------------------------------------------------------------

    async def _save_receipt(self, receipt: Receipt, now: datetime) -> bool:
        async with self._connection() as connection, connection.transaction():
            return await _save_receipt_on(connection, receipt, now)

    async def _finish(
        self,
        receipts: list[Receipt],
        completion: tuple[str, str, str, str, bytes] | None,
        now: datetime,
    ) -> int | None:
        if len(receipts) == 1 and _one_statement_finish(receipts[0]):
            async with self._connection() as connection:
                owned = await connection.fetchval(_FINISH, *_finish_arguments(receipts[0], completion, now))
            return None if owned else receipts[0].receipt_id
        try:
            async with self._connection() as connection, connection.transaction():
                for receipt in receipts:
                    if not await _save_receipt_on(connection, receipt, now):
                        raise _Refused(receipt.receipt_id)  # rolls back the receipts saved so far
                if completion is not None:
                    await _complete_on(connection, completion, now)
        except _Refused as refused:
            return refused.receipt_id
        return None

    async def _load_receipt(self, receipt_id: int, owner_org: str) -> Receipt | None:
        async with self._connection() as connection:
            row = await connection.fetchrow(
                f"SELECT {_RECEIPT_COLUMNS} FROM receipts WHERE receipt_id = $1 AND owner_org = $2",  # noqa: S608
                receipt_id,
                owner_org,
            )
            if row is None:
                return None
            children = await connection.fetch(
                f"SELECT {_RECEIPT_COLUMNS} FROM receipts "  # noqa: S608
                "WHERE parent_receipt_id = $1 AND owner_org = $2 ORDER BY receipt_id",
                receipt_id,
                owner_org,
            )
        return _receipt_from_record(row, tuple(_receipt_from_record(child, ()) for child in children))

    async def _find_receipt_ids(self, owner_org: str, reference: ReceiptReference) -> list[int]:
        async with self._connection() as connection:
            rows = await connection.fetch(
                "SELECT DISTINCT r.receipt_id FROM receipt_references AS rr "
                "JOIN receipts AS r ON r.receipt_id = rr.receipt_id "
                "WHERE rr.type_name = $1 AND rr.value = $2 AND r.owner_org = $3 ORDER BY r.receipt_id",
                reference.type_name,
                reference.value,
                owner_org,
            )
        return [int(row["receipt_id"]) for row in rows]


async def _raise_id_floor(connection: asyncpg.pool.PoolConnectionProxy, first: int) -> None:
    """Make the sequence hand out nothing below ``first``; never move it down.

    Runs inside :meth:`PostgresStore.migrate`'s transaction, so one replica at a time. Sequences are
    not transactional, and other replicas keep allocating meanwhile: a plain "read, then ``setval``"
    could set the sequence below a value taken in between, and that id would be handed out twice.
    Every ``nextval`` comes from an INSERT into ``id_registry``, which holds ROW EXCLUSIVE on the
    table, so SHARE ROW EXCLUSIVE keeps allocations out between our read and our ``setval``. A
    sequence already at or above the floor stays so (it only grows), hence no lock in that case.
    """
    if await _next_legacy_id(connection) >= first:
        return
    await connection.execute("LOCK TABLE id_registry IN SHARE ROW EXCLUSIVE MODE")
    if await _next_legacy_id(connection) < first:
        await connection.execute("SELECT setval('legacy_id_seq', $1, false)", first)


async def _next_legacy_id(connection: asyncpg.pool.PoolConnectionProxy) -> int:
    """The id the next ``nextval('legacy_id_seq')`` returns (without taking it)."""
    next_id = await connection.fetchval(
        "SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM legacy_id_seq"
    )
    return int(next_id)


def _describe(error: BaseException) -> str:
    """Error text for messages: asyncpg's texts name hosts and users, never the password."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _receipt_from_record(row: asyncpg.Record, sub_receipts: tuple[Receipt, ...]) -> Receipt:
    return Receipt(
        receipt_id=row["receipt_id"],
        owner_org=row["owner_org"],
        status=ReceiptStatus(row["status"]),
        text=row["text"],
        type_name=row["type_name"],
        last_changed=row["last_changed"],
        references=references_from_json(row["references_json"]),
        history=row["history"],
        parent_receipt_id=row["parent_receipt_id"],
        created_at=row["created_at"],
        sub_receipts=sub_receipts,
    )


#: The id registry's known ids for ``$3`` and new ones for the rest, in one statement. A GUID that a
#: concurrent allocation inserted first is in neither set (its row is not in this statement's
#: snapshot, and ``ON CONFLICT DO NOTHING`` skips it): :meth:`PostgresStore._allocate` reads it next.
_ALLOCATE = (
    "WITH known AS (SELECT guid, legacy_id FROM id_registry "
    "WHERE kind = $1 AND owner_org = $2 AND guid = ANY($3::text[])), "
    "added AS (INSERT INTO id_registry (kind, guid, owner_org, created_at) "
    "SELECT $1, g, $2, $4 FROM unnest($3::text[]) WITH ORDINALITY AS t(g, n) "
    "WHERE g NOT IN (SELECT guid FROM known) ORDER BY n "
    "ON CONFLICT (kind, guid, owner_org) DO NOTHING RETURNING guid, legacy_id) "
    "SELECT guid, legacy_id FROM known UNION ALL SELECT guid, legacy_id FROM added"
)

#: :meth:`PostgresStore._finish` for one receipt tree and the completion, as one statement (one round
#: trip, atomic without an explicit transaction). Every write is guarded by ``owned.ok``: a tree with
#: an id the org does not own writes nothing, and the statement answers false. References are
#: replaced by deleting those not listed again and inserting the listed ones (the sub-statements
#: of one statement see the same snapshot, so a delete-then-insert of the same row would lose it).
#: Foreign keys are checked at the end of the statement, after the receipts are in.
# Only the constant column list is interpolated; every value is a bound parameter.
_FINISH = (
    "WITH owned AS (SELECT count(*) = cardinality($2::integer[]) AS ok FROM id_registry "  # noqa: S608
    "WHERE owner_org = $1 AND legacy_id = ANY($2::integer[])), "
    f"saved AS (INSERT INTO receipts ({_RECEIPT_COLUMNS}) "
    "SELECT * FROM unnest($3::integer[], $4::text[], $5::integer[], $6::text[], $7::text[], $8::text[], "
    "$9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[]) WHERE (SELECT ok FROM owned) "
    "ON CONFLICT (receipt_id) DO UPDATE SET parent_receipt_id = excluded.parent_receipt_id, "
    "status = excluded.status, text = excluded.text, type_name = excluded.type_name, "
    "history = excluded.history, references_json = excluded.references_json, "
    "last_changed = excluded.last_changed RETURNING receipt_id), "
    "listed AS (SELECT * FROM unnest($13::integer[], $14::text[], $15::text[]) AS l(receipt_id, type_name, value)), "
    "dropped AS (DELETE FROM receipt_references AS r WHERE r.receipt_id = ANY($3::integer[]) "
    "AND (SELECT ok FROM owned) AND NOT EXISTS (SELECT 1 FROM listed AS l WHERE l.receipt_id = r.receipt_id "
    "AND l.type_name = r.type_name AND l.value = r.value)), "
    "added AS (INSERT INTO receipt_references (receipt_id, type_name, value) "
    "SELECT receipt_id, type_name, value FROM listed WHERE (SELECT ok FROM owned) ON CONFLICT DO NOTHING), "
    "completed AS (INSERT INTO idempotency (digest, caller, operation, state, token, lease_until, "
    "outcome_format, outcome, created_at, completed_at) "
    "SELECT $16, $17, $18, 'completed', '', $21, $19, $20, $21, $21 "
    "WHERE $16::text IS NOT NULL AND (SELECT ok FROM owned) "
    "ON CONFLICT (digest) DO UPDATE SET state = 'completed', "
    "outcome_format = excluded.outcome_format, outcome = excluded.outcome, "
    "completed_at = excluded.completed_at WHERE idempotency.state = 'in_flight') "
    "SELECT ok FROM owned"
)


def _tree(receipt: Receipt) -> list[Receipt]:
    """The receipt and its sub-receipts, each sub-receipt pointing at its parent."""
    return [receipt, *(replace(sub, parent_receipt_id=receipt.receipt_id) for sub in receipt.sub_receipts)]


def _one_statement_finish(receipt: Receipt) -> bool:
    """True when ``_FINISH`` can write the tree: every receipt id in it once (an upsert touches a row once)."""
    ids = [item.receipt_id for item in _tree(receipt)]
    return len(ids) == len(set(ids))


def _finish_arguments(
    receipt: Receipt, completion: tuple[str, str, str, str, bytes] | None, now: datetime
) -> list[Any]:
    tree = _tree(receipt)
    references = [(item.receipt_id, ref.type_name, ref.value) for item in tree for ref in item.references]
    digest, caller, operation, fmt, payload = completion if completion is not None else (None,) * 5
    return [
        receipt.owner_org,
        sorted({item.receipt_id for item in tree}),
        [item.receipt_id for item in tree],
        [item.owner_org for item in tree],
        [item.parent_receipt_id for item in tree],
        [str(item.status) for item in tree],
        [item.text for item in tree],
        [item.type_name for item in tree],
        [item.history for item in tree],
        [item.references_json() for item in tree],
        [item.created_at or now for item in tree],
        [item.last_changed for item in tree],
        [ref[0] for ref in references],
        [ref[1] for ref in references],
        [ref[2] for ref in references],
        digest,
        caller,
        operation,
        fmt,
        payload,
        now,
    ]


class _Refused(Exception):
    """A receipt of :meth:`PostgresStore._finish` is on an id the org does not own."""

    def __init__(self, receipt_id: int) -> None:
        super().__init__(receipt_id)
        self.receipt_id = receipt_id


async def _complete_on(
    connection: asyncpg.pool.PoolConnectionProxy,
    completion: tuple[str, str, str, str, bytes],
    now: datetime,
) -> None:
    digest, caller, operation, fmt, payload = completion
    await connection.execute(
        "INSERT INTO idempotency (digest, caller, operation, state, token, lease_until, "
        "outcome_format, outcome, created_at, completed_at) "
        "VALUES ($1, $2, $3, 'completed', '', $6, $4, $5, $6, $6) "
        "ON CONFLICT (digest) DO UPDATE SET state = 'completed', "
        "outcome_format = excluded.outcome_format, outcome = excluded.outcome, "
        "completed_at = excluded.completed_at WHERE idempotency.state = 'in_flight'",
        digest,
        caller,
        operation,
        fmt,
        payload,
        now,
    )


async def _save_receipt_on(
    connection: asyncpg.pool.PoolConnectionProxy, receipt: Receipt, now: datetime
) -> bool:
    """Write the receipt tree inside the caller's transaction; False when an id is not the owner's."""
    tree = _tree(receipt)
    wanted = sorted({item.receipt_id for item in tree})
    owned = await connection.fetchval(
        "SELECT count(*) FROM id_registry WHERE owner_org = $1 AND legacy_id = ANY($2::integer[])",
        receipt.owner_org,
        wanted,
    )
    if owned != len(wanted):
        return False
    for item in tree:
        await connection.execute(
            f"INSERT INTO receipts ({_RECEIPT_COLUMNS}) "  # noqa: S608
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
            "ON CONFLICT (receipt_id) DO UPDATE SET parent_receipt_id = excluded.parent_receipt_id, "
            "status = excluded.status, text = excluded.text, type_name = excluded.type_name, "
            "history = excluded.history, references_json = excluded.references_json, "
            "last_changed = excluded.last_changed",
            item.receipt_id,
            item.owner_org,
            item.parent_receipt_id,
            str(item.status),
            item.text,
            item.type_name,
            item.history,
            item.references_json(),
            item.created_at or now,
            item.last_changed,
        )
        await connection.execute("DELETE FROM receipt_references WHERE receipt_id = $1", item.receipt_id)
        await connection.executemany(
            "INSERT INTO receipt_references (receipt_id, type_name, value) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING",
            [(item.receipt_id, ref.type_name, ref.value) for ref in item.references],
        )
    return True
