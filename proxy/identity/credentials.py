"""The legacy credentials file, its validation, and a store that reloads it when it changes.

The file (YAML, mounted as a Kubernetes secret, referenced by path from the settings)::

    version: 1
    callers:
      "12345":                          # systemUserName (Altinn 2 "datasystem-ID")
        password_hash: "scrypt$16384$8$1$<salt>$<digest>"   # `altinn-proxy credentials add`
        kind: end_user_system
        orgs:
          - org: "310000019"
            externalRef: "customer-42"  # optional: the system user's external reference
      "ttd-agency":
        password_hash: "scrypt$..."
        kind: service_owner
        service_owner: ttd
        org: "991825827"
        scopes: [altinn:serviceowner, altinn:correspondence.write]
    api_keys:                           # legacy REST ApiKey values, hashed
      - name: vendor-app
        key_hash: "sha256$<hex>"
    certificates:                       # enterprise certificates -> caller
      - caller: "12345"
        org: "310000019"                # organisation number in the certificate, and/or
        fingerprint: "AB:CD:..."        # SHA-256 of the certificate (DER)

A caller without ``password_hash`` can only authenticate with a certificate.

Invariants: a :class:`CredentialBook` is immutable and fully validated; :class:`CredentialStore`
swaps the whole book at once, and a new file that fails validation is refused (logged, counted)
while the previous book keeps serving.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from proxy.errors import ConfigurationError
from proxy.identity import metrics
from proxy.identity.passwords import PasswordHash, api_key_digest, decoy_hash, parse_api_key_hash
from proxy.identity.principal import CallerKind, OrgGrant, Principal
from proxy.identity.reportee import is_valid_org_number

Clock = Callable[[], float]

_SERVICE_OWNER_CODE = re.compile(r"^[a-z][a-z0-9-]{1,19}$")
_SCOPE = re.compile(r"^[\x21-\x7e]{1,200}$")
_FINGERPRINT = re.compile(r"^[0-9a-fA-F]{64}$")

_log = structlog.get_logger("proxy.identity")


def _org_number(value: str) -> str:
    if not is_valid_org_number(value):
        raise ValueError("must be a 9-digit organisation number with a valid check digit")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True, populate_by_name=True)


class _OrgEntry(_Model):
    org: str
    external_ref: str | None = Field(default=None, alias="externalRef", min_length=1, max_length=200)

    @field_validator("org")
    @classmethod
    def _check_org(cls, value: str) -> str:
        return _org_number(value)


class _CallerEntry(_Model):
    password_hash: str | None = None
    kind: CallerKind
    orgs: list[_OrgEntry] = []
    service_owner: str | None = None
    org: str | None = None
    scopes: list[str] = []

    @field_validator("password_hash")
    @classmethod
    def _parse_hash(cls, value: str | None) -> str | None:
        if value is not None:
            PasswordHash.parse(value)
        return value

    @field_validator("org")
    @classmethod
    def _check_org(cls, value: str | None) -> str | None:
        return None if value is None else _org_number(value)

    @field_validator("scopes")
    @classmethod
    def _check_scopes(cls, value: list[str]) -> list[str]:
        if not all(_SCOPE.match(scope) for scope in value):
            raise ValueError("scopes must be non-empty strings without spaces")
        return value

    @model_validator(mode="after")
    def _fits_kind(self) -> _CallerEntry:
        if self.kind is CallerKind.END_USER_SYSTEM:
            if not self.orgs:
                raise ValueError("an end_user_system needs at least one entry in 'orgs'")
            if self.service_owner or self.org or self.scopes:
                raise ValueError("'service_owner', 'org' and 'scopes' belong to kind service_owner")
            if len({entry.org for entry in self.orgs}) != len(self.orgs):
                raise ValueError("an organisation is listed twice in 'orgs'")
        else:
            if self.orgs:
                raise ValueError("'orgs' belongs to kind end_user_system")
            if not self.service_owner or not _SERVICE_OWNER_CODE.match(self.service_owner):
                raise ValueError("a service_owner needs 'service_owner', its lower-case code (e.g. ttd)")
            if not self.org:
                raise ValueError("a service_owner needs 'org', its own organisation number")
            if not self.scopes:
                raise ValueError("a service_owner needs 'scopes'")
        return self


class _ApiKeyEntry(_Model):
    name: str = Field(min_length=1, max_length=100)
    key_hash: str

    @field_validator("key_hash")
    @classmethod
    def _parse_hash(cls, value: str) -> str:
        parse_api_key_hash(value)
        return value


class _CertificateEntry(_Model):
    caller: str
    org: str | None = None
    fingerprint: str | None = None

    @field_validator("org")
    @classmethod
    def _check_org(cls, value: str | None) -> str | None:
        return None if value is None else _org_number(value)

    @field_validator("fingerprint")
    @classmethod
    def _check_fingerprint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        compact = value.replace(":", "")
        if not _FINGERPRINT.match(compact):
            raise ValueError("must be a SHA-256 fingerprint: 64 hex digits, optionally colon-separated")
        return compact.lower()

    @model_validator(mode="after")
    def _has_selector(self) -> _CertificateEntry:
        if self.org is None and self.fingerprint is None:
            raise ValueError("a certificate entry needs 'org', 'fingerprint' or both")
        return self


class _CredentialsFile(_Model):
    version: Literal[1] = 1
    callers: dict[str, _CallerEntry] = {}
    api_keys: list[_ApiKeyEntry] = []
    certificates: list[_CertificateEntry] = []

    @model_validator(mode="after")
    def _references_resolve(self) -> _CredentialsFile:
        for index, entry in enumerate(self.certificates):
            if entry.caller not in self.callers:
                raise ValueError(f"certificates[{index}].caller names no entry in 'callers'")
        names = [entry.name for entry in self.api_keys]
        if len(set(names)) != len(names):
            raise ValueError("two api_keys entries have the same name")
        return self


@dataclass(frozen=True)
class CallerEntry:
    """One configured caller: who it is once verified, and its password hash (None: certificate only)."""

    principal: Principal
    password_hash: PasswordHash | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CertificateBinding:
    """Maps an enterprise certificate to a caller by organisation number and/or SHA-256 fingerprint."""

    caller_id: str
    org: str | None = None
    fingerprint: bytes | None = None

    def matches(self, org: str | None, fingerprint: bytes) -> bool:
        """True when every selector this binding sets matches the certificate."""
        if self.fingerprint is not None and self.fingerprint != fingerprint:
            return False
        return self.org is None or self.org == org


@dataclass(frozen=True)
class CredentialBook:
    """A validated, immutable credentials file."""

    callers: Mapping[str, CallerEntry]
    api_keys: Mapping[bytes, str] = field(default_factory=dict, repr=False)
    certificates: tuple[CertificateBinding, ...] = ()
    source: str = "<memory>"
    #: Checked when a user name is unknown, so that it costs as much as a known one.
    decoy: PasswordHash = field(default_factory=decoy_hash, repr=False)

    def caller(self, username: str) -> CallerEntry | None:
        """The caller configured under ``username``, if any."""
        return self.callers.get(username)

    def api_key_name(self, api_key: str) -> str | None:
        """The configured name of ``api_key``, or None when it is not configured.

        Looked up by SHA-256 digest: a dictionary probe on a hash of a random key leaks nothing useful.
        """
        return self.api_keys.get(api_key_digest(api_key))

    def principal_for_certificate(self, org: str | None, fingerprint: bytes) -> Principal | None:
        """The caller an enterprise certificate authenticates as; fingerprint bindings win over org ones."""
        ordered = sorted(self.certificates, key=lambda binding: binding.fingerprint is None)
        for binding in ordered:
            if binding.matches(org, fingerprint):
                return self.callers[binding.caller_id].principal
        return None


def _principal(caller_id: str, entry: _CallerEntry) -> Principal:
    if entry.kind is CallerKind.END_USER_SYSTEM:
        grants = {item.org: OrgGrant(item.org, item.external_ref) for item in entry.orgs}
        return Principal(caller_id=caller_id, kind=entry.kind, orgs=grants)
    return Principal(
        caller_id=caller_id,
        kind=entry.kind,
        service_owner=entry.service_owner,
        org=entry.org,
        scopes=tuple(entry.scopes),
    )


def _location(source: str, loc: tuple[int | str, ...]) -> str:
    path = ".".join(str(part) for part in loc)
    return f"{source}: {path}" if path else source


def parse_credentials(data: Any, *, source: str = "<memory>") -> CredentialBook:
    """Validate an already-parsed credentials document (a mapping) into a :class:`CredentialBook`.

    Raises :class:`~proxy.errors.ConfigurationError` naming ``source`` and the key at fault. Messages
    never include the offending value, which may be a hash.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigurationError("the credentials file must be a mapping", location=source)
    try:
        model = _CredentialsFile.model_validate(data)
    except ValidationError as error:
        first = error.errors(include_input=False, include_url=False)[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigurationError(message, location=_location(source, tuple(first["loc"]))) from None
    callers = {
        caller_id: CallerEntry(
            _principal(caller_id, entry),
            PasswordHash.parse(entry.password_hash) if entry.password_hash else None,
        )
        for caller_id, entry in model.callers.items()
    }
    first_hash = next((entry.password_hash for entry in callers.values() if entry.password_hash), None)
    return CredentialBook(
        callers=callers,
        api_keys={parse_api_key_hash(entry.key_hash): entry.name for entry in model.api_keys},
        certificates=tuple(
            CertificateBinding(
                entry.caller, entry.org, bytes.fromhex(entry.fingerprint) if entry.fingerprint else None
            )
            for entry in model.certificates
        ),
        source=source,
        decoy=decoy_hash(first_hash),
    )


def read_credentials_document(path: Path) -> Any:
    """The parsed YAML of ``path``; unreadable or invalid YAML is a ConfigurationError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigurationError(
            f"cannot read the credentials file ({error.strerror})", location=str(path)
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigurationError("not valid YAML", location=where) from None


def load_credentials(path: Path) -> CredentialBook:
    """Read and validate the credentials file at ``path`` (blocking file I/O)."""
    return parse_credentials(read_credentials_document(path), source=str(path))


class CredentialProvider(Protocol):
    """What authenticators need: the credentials in force right now."""

    async def current(self) -> CredentialBook:
        """The current credential book (possibly after a reload)."""
        ...


@dataclass(frozen=True)
class StaticCredentials:
    """A fixed credential book (sandbox, tests)."""

    book: CredentialBook

    async def current(self) -> CredentialBook:
        """The book given at construction."""
        return self.book


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()  # follows the symlink Kubernetes swaps when it updates a secret
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


class CredentialStore:
    """The credentials file, reloaded when it changes.

    The file's mtime/size/inode is checked at most every ``check_interval`` seconds of ``clock``;
    a changed file is loaded in a worker thread and swapped in whole. A file that fails validation is
    refused once (logged with its location, counted) and the previous book keeps serving until the file
    changes again. Construction loads the file synchronously and raises ConfigurationError if it is
    invalid, so start-up fails loudly.
    """

    def __init__(self, path: Path, *, clock: Clock = time.monotonic, check_interval: float = 5.0) -> None:
        self._path = path
        self._clock = clock
        self._check_interval = check_interval
        self._seen = _signature(path)
        self._book = load_credentials(path)
        self._checked_at = clock()
        self._reloading = False

    @property
    def path(self) -> Path:
        """The credentials file this store serves."""
        return self._path

    @property
    def book(self) -> CredentialBook:
        """The book in force, without checking the file."""
        return self._book

    async def current(self) -> CredentialBook:
        """The book in force, after reloading the file if it changed and the check interval has passed."""
        now = self._clock()
        if not self._reloading and now - self._checked_at >= self._check_interval:
            self._checked_at = now
            self._reloading = True  # one reload at a time; concurrent callers keep the current book
            try:
                await asyncio.to_thread(self.reload_if_changed)
            finally:
                self._reloading = False
        return self._book

    def reload_if_changed(self) -> bool:
        """Reload now if the file changed since the last attempt (blocking); True when a new book is in force."""
        signature = _signature(self._path)
        if signature is None or signature == self._seen:
            return False
        self._seen = signature
        try:
            book = load_credentials(self._path)
        except ConfigurationError as error:
            metrics.CREDENTIAL_RELOADS.labels(outcome="refused").inc()
            _log.error(
                "credentials_reload_refused", path=str(self._path), error=str(error), outcome="refused"
            )
            return False
        self._book = book
        metrics.CREDENTIAL_RELOADS.labels(outcome="loaded").inc()
        _log.info("credentials_reloaded", path=str(self._path), callers=len(book.callers), outcome="loaded")
        return True
