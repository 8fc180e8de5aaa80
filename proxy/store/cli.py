"""``altinn-proxy store migrate`` and ``altinn-proxy store check``: one-line answers for operators.

The integrator wires these to the command line; both raise ``ConfigurationError`` (bad URL, database
newer than the code) or ``StoreUnavailable`` (cannot connect) with a message naming what to fix, and
never print the URL's password.
"""

from __future__ import annotations

from proxy.errors import ConfigurationError
from proxy.store import StoreOptions, open_store


async def migrate(url: str, options: StoreOptions | None = None) -> str:
    """Bring the schema at ``url`` up to date; e.g. ``"sqlite:/data/state.db: schema at version 1 (was 0)"``."""
    store = await open_store(url, options, migrate=False)
    try:
        before = await store.schema_version()
        after = await store.migrate()
        change = f"(was {before})" if before != after else "(already current)"
        return f"{store.description}: schema at version {after} {change}"
    finally:
        await store.close()


async def check(url: str, options: StoreOptions | None = None) -> str:
    """Connect, and report the schema version; ``ConfigurationError`` if migrations are pending."""
    store = await open_store(url, options, migrate=False)
    try:
        await store.ping()
        version = await store.schema_version()
        expected = store.expected_schema_version
        if version < expected:
            raise ConfigurationError(
                f"schema at version {version}, this proxy needs {expected}: run `altinn-proxy store migrate`",
                location=store.description,
            )
        if version > expected:
            raise ConfigurationError(
                f"schema at version {version} is newer than this proxy ({expected}): upgrade the proxy",
                location=store.description,
            )
        return f"{store.description}: reachable, schema at version {version} (current)"
    finally:
        await store.close()
