"""Suite-wide guards and shared fixtures.

* Every asyncio test runs on a debug loop, and a test fails when any callback held the loop longer
  than ``SLOW_CALLBACK_SECONDS``, not counting time the loop thread waited for a CPU
  (``tests/loopguard.py``): no test may block the event loop, and a busy machine fails none.
* ``altinn3_contract`` judges every request a fake Altinn 3 API receives by Altinn's published
  OpenAPI specifications (skipped with a reason where ``../shared`` is absent).
* ``postgres_dsn`` points at the PostgreSQL server of this machine; under ``CI=true`` its absence is
  a failure, not a skip.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from tests import loopguard
from tests.contract import REFERENCE, ContractObserver, load_contract_module

SLOW_CALLBACK_SECONDS = float(os.environ.get("ALTINN_PROXY_TEST_SLOW_CALLBACK", "0.5"))
IN_CI = os.environ.get("CI", "").lower() == "true"


loopguard.install()
_blocking = loopguard.BlockingGuard(limit_seconds=SLOW_CALLBACK_SECONDS)


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Run every asyncio test on a debug loop whose callbacks the blocking guard judges."""
    return {"loop": functools.partial(loopguard.guarded_loop, _blocking)}


@pytest.fixture(autouse=True)
def _no_blocked_event_loop() -> Iterator[None]:
    before = len(_blocking.records)
    yield
    blocked = _blocking.records[before:]
    if blocked:
        pytest.fail("the event loop was blocked:\n" + "\n".join(blocked[:5]), pytrace=False)


@functools.cache
def _warm_contract() -> Any:
    """Altinn's contract checker with every specification parsed, or None where ``../shared`` is absent."""
    module = load_contract_module()
    if module is None:
        return None
    contract = module.Contract.load(REFERENCE / "altinn3")
    for spec in {spec for _, spec, _ in module.ROUTES} | {module.APP_SPEC}:
        contract._api(spec)
    return contract


@pytest.fixture(scope="session", autouse=True)
def _parse_contracts_before_any_loop() -> None:
    # Parsed lazily, the first request a fake judges would hold its test's event loop for as long as
    # a large specification takes to load; parsed here, it happens once, outside every loop.
    _warm_contract()
    # The parsed specifications are millions of long-lived objects: left in the collector's care,
    # every full collection walks them (0.15 s on a quiet machine, several times that on a busy one),
    # inside whichever callback happens to allocate. Frozen, they are never walked again.
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def _contract_module() -> Any:
    contract = _warm_contract()
    if contract is None:
        pytest.skip("../shared/tools/altinn3_contract.py is absent: Altinn 3 contract checks need ../shared")
    return contract


@pytest.fixture
def altinn3_contract(_contract_module) -> Iterator[ContractObserver]:  # type: ignore[no-untyped-def]
    """An observer for fakes; the test fails if any request broke Altinn's published contract."""
    observer = ContractObserver(_contract_module)
    yield observer
    assert not observer.problems, "requests that break Altinn's published contract:\n" + "\n".join(
        observer.problems
    )


def reference_dir() -> os.PathLike[str]:
    """The shared reference folder, or skip the calling test with a clear reason."""
    if not REFERENCE.is_dir():
        pytest.skip("../shared/reference is absent: this test reads the original Altinn contracts from it")
    return REFERENCE


@pytest.fixture
def reference() -> os.PathLike[str]:
    """``../shared/reference`` (skips with a reason where absent)."""
    return reference_dir()


POSTGRES_ADMIN_DSN = os.environ.get(
    "ALTINN_PROXY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
async def postgres_dsn() -> AsyncIterator[str]:
    """A DSN for a fresh, empty database on the local server, dropped after the test."""
    asyncpg = pytest.importorskip("asyncpg")
    try:
        admin = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI=true but unreachable: {error}")
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_DSN}: {error}")
    name = f"altinn_proxy_test_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
