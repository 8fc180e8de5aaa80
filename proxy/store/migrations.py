"""Versioned schema migrations: the bookkeeping both backends share (the SQL lives per backend).

A migration is applied once, in order, inside the same transaction that records its version, so a
crash leaves the database at a whole version. Backends serialize concurrent runs (PostgreSQL: an
advisory lock; SQLite: ``BEGIN IMMEDIATE``), so replicas starting together apply each step once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from proxy.errors import ConfigurationError


@dataclass(frozen=True)
class Migration:
    """One schema step: its version (1, 2, ...), a short name, and the statements to run."""

    version: int
    name: str
    statements: tuple[str, ...]


def latest_version(migrations: Sequence[Migration]) -> int:
    """The version the code expects the schema to reach."""
    return migrations[-1].version if migrations else 0


def pending(migrations: Sequence[Migration], applied_version: int, *, where: str) -> list[Migration]:
    """The migrations still to apply after ``applied_version``.

    A database newer than the code (a rollback to an older proxy) is refused instead of being used
    with a schema this code does not understand.
    """
    known = latest_version(migrations)
    if applied_version > known:
        raise ConfigurationError(
            f"the database is at schema version {applied_version} but this proxy knows only up to {known}: "
            "upgrade the proxy, or point it at another database",
            location=where,
        )
    return [migration for migration in migrations if migration.version > applied_version]


def check_sequence(migrations: Sequence[Migration]) -> None:
    """Guard against editing mistakes: versions must be 1, 2, 3, ... with no gap or repeat."""
    versions = [migration.version for migration in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ConfigurationError(f"migration versions must be 1..n in order, got {versions}")
