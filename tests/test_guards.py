"""The suite's own guards work: a blocked loop is caught."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.conftest import SLOW_CALLBACK_SECONDS, _slow_callbacks


async def test_blocking_call_is_recorded() -> None:
    before = len(_slow_callbacks.records)
    time.sleep(SLOW_CALLBACK_SECONDS + 0.1)  # noqa: ASYNC251  (blocks the loop on purpose)
    await asyncio.sleep(0)
    blocked = _slow_callbacks.records[before:]
    assert blocked, "a callback that blocks the loop must be reported"
    del _slow_callbacks.records[before:]  # the guard itself must not fail this test


@pytest.mark.postgres
async def test_postgres_fixture_gives_an_empty_database(postgres_dsn: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(postgres_dsn, timeout=5)
    try:
        assert await connection.fetchval("select count(*) from pg_tables where schemaname = 'public'") == 0
    finally:
        await connection.close()
