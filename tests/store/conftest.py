"""Fixtures for the store suite: every test that takes ``store_url`` runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from proxy.store import Store, StoreOptions, open_store

START = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    """A clock that only moves when told; its ``sleep`` advances it instead of waiting.

    ``on_sleep`` lets a test act (e.g. complete another submission) while a waiter is polling.
    """

    now: datetime = START
    sleeps: list[float] = field(default_factory=list)
    on_sleep: Callable[[], Awaitable[None]] | None = None

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)
        if self.on_sleep is not None:
            await self.on_sleep()


@pytest.fixture
def clock() -> FakeClock:
    """The injected clock of the stores opened by ``open_store_for_test``."""
    return FakeClock()


@pytest.fixture
def options(clock: FakeClock) -> StoreOptions:
    """Store options on the fake clock; waiting for an in-flight twin is off unless a test turns it on."""
    return StoreOptions(
        clock=clock,
        sleep=clock.sleep,
        in_flight_wait=timedelta(0),
        idempotency_lease=timedelta(minutes=5),
        idempotency_retention=timedelta(days=7),
        pool_max_size=4,
    )


def sqlite_url(directory: Path) -> str:
    """A store URL for a (not yet existing) file in a not yet existing data directory."""
    return f"sqlite://{directory / 'data' / 'state.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store on each backend."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    dsn: str = request.getfixturevalue("postgres_dsn")
    return dsn


@pytest.fixture
async def open_test_store(
    store_url: str, options: StoreOptions
) -> AsyncIterator[Callable[..., Awaitable[Store]]]:
    """Open any number of stores (separate connections) on the one test database; all closed after."""
    opened: list[Store] = []

    async def opener(custom: StoreOptions | None = None) -> Store:
        store = await open_store(store_url, custom or options)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_test_store: Callable[..., Awaitable[Store]]) -> Store:
    """A migrated store on the test database."""
    return await open_test_store()
