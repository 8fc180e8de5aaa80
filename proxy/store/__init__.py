"""Durable state: legacy integer ids <-> Altinn 3 GUIDs, idempotency records and receipts.

``await open_store(url)`` gives a :class:`Store` on SQLite (``sqlite:///path/state.db``, the default)
or PostgreSQL (``postgresql://...``, shared by replicas), with its schema migrated.
"""

from __future__ import annotations

from proxy.errors import ConfigurationError
from proxy.store.base import RECEIPT_KIND, Store
from proxy.store.model import (
    MAX_LEGACY_ID,
    BeginState,
    Begun,
    IdempotencyKey,
    Outcome,
    Receipt,
    ReceiptReference,
    ReceiptStatus,
    StoreOptions,
)
from proxy.store.url import Backend, StoreUrl, parse_store_url, redact

__all__ = [
    "MAX_LEGACY_ID",
    "RECEIPT_KIND",
    "Backend",
    "BeginState",
    "Begun",
    "IdempotencyKey",
    "Outcome",
    "Receipt",
    "ReceiptReference",
    "ReceiptStatus",
    "Store",
    "StoreOptions",
    "StoreUrl",
    "open_store",
    "parse_store_url",
    "redact",
]


async def open_store(url: str, options: StoreOptions | None = None, *, migrate: bool = True) -> Store:
    """Open the store at ``url`` and (unless ``migrate`` is False) bring its schema up to date.

    Raises ``ConfigurationError`` for a malformed URL or a database newer than this code, and
    ``StoreUnavailable`` when the database cannot be reached. Close the store with ``await
    store.close()`` (or use it as an async context manager).
    """
    parsed = parse_store_url(url)
    options = options or StoreOptions()
    store: Store
    if parsed.backend is Backend.SQLITE:
        from proxy.store.sqlite import SqliteStore

        assert parsed.path is not None
        store = await SqliteStore.open(parsed.path, options)
    elif parsed.backend is Backend.POSTGRESQL:
        from proxy.store.postgres import PostgresStore

        store = await PostgresStore.open(parsed.url, options)
    else:  # pragma: no cover - parse_store_url only returns the two
        raise ConfigurationError(f"unsupported store backend {parsed.backend}")
    if migrate:
        try:
            await store.migrate()
        except BaseException:
            await store.close()
            raise
    return store
