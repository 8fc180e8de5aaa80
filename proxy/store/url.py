"""Store URLs: which backend, where, and how to name it in a log without leaking the password.

``sqlite:///var/lib/altinn-proxy/state.db`` (everything after ``sqlite://`` is the file path, so
three slashes give an absolute path) or ``postgresql://user:password@host:5432/dbname`` (also
``postgres://``; any libpq parameters asyncpg accepts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from proxy.errors import ConfigurationError

_REDACTED = "***"
_SECRET_QUERY_KEYS = frozenset({"password", "sslpassword", "passfile"})


class Backend(StrEnum):
    """The two supported backends."""

    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


@dataclass(frozen=True)
class StoreUrl:
    """A parsed store URL. ``url`` (which may hold a password) is kept out of the repr."""

    backend: Backend
    url: str = field(repr=False)
    path: Path | None = None

    @property
    def redacted(self) -> str:
        """The URL with any password replaced by ``***``: the only form that may be logged."""
        return redact(self.url)


def parse_store_url(url: str) -> StoreUrl:
    """Recognise the backend of ``url``; ``ConfigurationError`` says what a valid URL looks like."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError("the store URL is empty: use sqlite:///path/to/state.db or postgresql://...")
    url = url.strip()
    scheme = url.partition(":")[0].lower()
    if scheme == "sqlite":
        if not url.startswith("sqlite://") or not url.removeprefix("sqlite://"):
            raise ConfigurationError(f"{url!r} has no file path: use sqlite:///path/to/state.db")
        raw_path = url.removeprefix("sqlite://")
        if raw_path == ":memory:":
            raise ConfigurationError("an in-memory SQLite store would lose all state: give a file path")
        return StoreUrl(Backend.SQLITE, url, Path(raw_path))
    if scheme in {"postgresql", "postgres"}:
        if not urlsplit(url).hostname and "host=" not in url:
            raise ConfigurationError(f"{redact(url)!r} names no host: use postgresql://user@host:5432/dbname")
        return StoreUrl(Backend.POSTGRESQL, url)
    raise ConfigurationError(
        f"unsupported store URL scheme {scheme!r}: use sqlite:///path/to/state.db or postgresql://user@host/db"
    )


def redact(url: str) -> str:
    """``url`` with the password in the authority and in the query string replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable store URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{_REDACTED}@{hostinfo}" if has_password else netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(key, _REDACTED if key.lower() in _SECRET_QUERY_KEYS else value) for key, value in pairs],
            safe="*",
        )
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # nothing secret; urlunsplit would also drop an empty authority ("sqlite:///x")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
