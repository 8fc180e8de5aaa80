"""Migrations, `store migrate` / `store check`, store URLs and connection failures."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from proxy.errors import ConfigurationError, StoreUnavailable
from proxy.store import StoreOptions, open_store, parse_store_url, redact
from proxy.store.cli import check, migrate
from tests.store.conftest import sqlite_url


async def test_a_new_database_is_migrated_once_and_then_left_alone(
    store_url: str, options: StoreOptions
) -> None:
    store = await open_store(store_url, options, migrate=False)
    try:
        assert await store.schema_version() == 0
        assert await store.migrate() == store.expected_schema_version == 4
        assert await store.migrate() == 4
        assert await store.schema_version() == 4
    finally:
        await store.close()


async def test_replicas_starting_together_apply_each_migration_once(
    store_url: str, options: StoreOptions
) -> None:
    stores = await asyncio.gather(*(open_store(store_url, options) for _ in range(4)))
    try:
        assert {await store.schema_version() for store in stores} == {4}
        assert await stores[0].allocate_id("receipt", "7c8a3a5e-5f3c-4a57-9a5a-0d1f2b0e6a11", "310000019") > 0
    finally:
        for store in stores:
            await store.close()


async def test_cli_migrate_then_check(store_url: str, options: StoreOptions) -> None:
    with pytest.raises(ConfigurationError, match="run `altinn-proxy store migrate`"):
        await check(store_url, options)
    assert (await migrate(store_url, options)).endswith("schema at version 4 (was 0)")
    assert (await migrate(store_url, options)).endswith("schema at version 4 (already current)")
    assert (await check(store_url, options)).endswith("reachable, schema at version 4 (current)")


async def test_a_database_newer_than_the_code_is_refused(store_url: str, options: StoreOptions) -> None:
    await migrate(store_url, options)
    store = await open_store(store_url, options, migrate=False)
    try:
        await _record_future_migration(store_url)
        with pytest.raises(ConfigurationError, match="schema version 99"):
            await store.migrate()
    finally:
        await store.close()
    with pytest.raises(ConfigurationError, match="newer than this proxy"):
        await check(store_url, options)
    with pytest.raises(ConfigurationError, match="upgrade the proxy"):
        await open_store(store_url, options)


async def _record_future_migration(store_url: str) -> None:
    statement = (
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', '2099-01-01')"
    )
    if store_url.startswith("sqlite://"):

        def insert() -> None:
            with sqlite3.connect(store_url.removeprefix("sqlite://")) as connection:
                connection.execute(statement)

        await asyncio.to_thread(insert)
        return
    import asyncpg

    connection = await asyncpg.connect(store_url, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def test_sqlite_creates_its_data_directory_and_uses_wal(tmp_path: Path, options: StoreOptions) -> None:
    url = sqlite_url(tmp_path / "not" / "yet")
    store = await open_store(url, options)
    await store.close()
    path = Path(url.removeprefix("sqlite://"))

    def journal_mode() -> str:
        with sqlite3.connect(path) as connection:
            return str(connection.execute("PRAGMA journal_mode").fetchone()[0])

    assert await asyncio.to_thread(journal_mode) == "wal"
    assert (path.parent.stat().st_mode & 0o777) == 0o700


async def test_an_unusable_sqlite_path_is_store_unavailable(tmp_path: Path, options: StoreOptions) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnavailable, match="cannot open the SQLite store"):
        await open_store(f"sqlite://{blocker}/state.db", options)


async def test_an_unreachable_postgres_never_shows_the_password(options: StoreOptions) -> None:
    # Port 9 (discard) is closed on the test machine: the connection is refused at once.
    url = "postgresql://proxy:hunter2-secret@127.0.0.1:9/state?sslmode=disable"
    with pytest.raises(StoreUnavailable) as raised:
        await open_store(url, options)
    assert "hunter2" not in str(raised.value)
    assert "postgresql://proxy:***@127.0.0.1:9/state" in str(raised.value)
    with pytest.raises(StoreUnavailable) as from_check:
        await check(url, options)
    assert "hunter2" not in str(from_check.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://proxy:s3cret@db:5432/state", "postgresql://proxy:***@db:5432/state"),
        ("postgres://proxy@db/state", "postgres://proxy@db/state"),
        ("postgresql://db/state?user=proxy&password=s3cret", "postgresql://db/state?user=proxy&password=***"),
        ("sqlite:///var/lib/altinn-proxy/state.db", "sqlite:///var/lib/altinn-proxy/state.db"),
    ],
)
def test_redaction(url: str, expected: str) -> None:
    assert redact(url) == expected
    assert "s3cret" not in repr(parse_store_url(url))


def test_sqlite_urls_name_the_file_after_the_scheme() -> None:
    assert parse_store_url("sqlite:///var/lib/altinn-proxy/state.db").path == Path(
        "/var/lib/altinn-proxy/state.db"
    )
    assert parse_store_url("sqlite://data/state.db").path == Path("data/state.db")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("mysql://db/state", "unsupported store URL scheme 'mysql'"),
        ("sqlite://", "no file path"),
        ("sqlite://:memory:", "in-memory"),
        ("postgresql:///state", "names no host"),
    ],
)
async def test_bad_urls_say_what_to_fix(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        await open_store(url)
