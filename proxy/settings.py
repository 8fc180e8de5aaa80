"""Typed settings: one YAML file plus ``ALTINN_PROXY_...`` environment overrides, validated once.

Every problem is reported as one line that names the file, the line (where the key is in the file),
the dotted key and what is wrong, e.g.::

    proxy.yaml:7: listen.prot: unknown key (did you mean 'port'?)

Secrets are never inlined: the settings hold *paths* to files (Kubernetes mounts secrets as files),
and a missing or unreadable file is a settings error. Nothing here logs a secret's content.

Precedence, highest first: an ``ALTINN_PROXY_...`` environment variable, the settings file, the
default here. Environment overrides use ``__`` between levels: ``ALTINN_PROXY_LISTEN__PORT=9000``
sets ``listen.port``; values are read as YAML scalars (``true``, ``12``, ``a string``). The image
and the chart set no setting by environment, and ``altinn-proxy check`` names every value the
environment overrides (:func:`environment_overrides`), so a file is never silently overruled.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from proxy import SHIPPED_MAPPINGS_DIR
from proxy.errors import ConfigurationError
from proxy.store.model import MAX_FIRST_LEGACY_ID

ENV_PREFIX = "ALTINN_PROXY_"
#: The most worker processes ``listen.workers`` / ``serve --workers`` accepts.
MAX_WORKERS = 64


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _readable_file(value: Path | None) -> Path | None:
    if value is None:
        return None
    if not value.is_file():
        raise ValueError(f"file {str(value)!r} does not exist or is not a file")
    if not os.access(value, os.R_OK):
        raise ValueError(f"file {str(value)!r} is not readable")
    return value


class ListenTls(_Section):
    """TLS terminated by the proxy itself, for deployments without an ingress in front of it.

    Client certificates are requested (or, with ``require_client_certificate``, required) and their
    chain is checked against ``client_ca_file`` (default: ``identity.client_ca_file``); the legacy
    REST front then judges them again, dates included.
    """

    certificate_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    require_client_certificate: bool = False

    @field_validator("certificate_file", "key_file", "client_ca_file")
    @classmethod
    def _files_exist(cls, value: Path | None) -> Path | None:
        return _readable_file(value)


class Listen(_Section):
    """Where the proxy and its metrics listen."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    metrics_host: str = "127.0.0.1"
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9464
    #: Worker processes serving the one port (``serve --workers`` overrides it): about one per core.
    #: With more than one, ``metrics_port`` serves every worker's metrics with a ``worker`` label.
    workers: Annotated[int, Field(ge=1, le=MAX_WORKERS)] = 1
    #: ``auto``: uvloop when installed (``altinn-proxy[speed]``), else asyncio's own loop.
    event_loop: Literal["auto", "asyncio", "uvloop"] = "auto"
    #: The URL legacy clients use to reach the proxy (for WSDL addresses); default: from the request.
    external_url: str | None = None
    #: Serve HTTPS (and accept client certificates) instead of plain HTTP.
    tls: ListenTls | None = None


ENVIRONMENTS: dict[str, dict[str, str]] = {
    "tt02": {
        "platform_url": "https://platform.tt02.altinn.no",
        "apps_url": "https://{org}.apps.tt02.altinn.no",
        "maskinporten_well_known": "https://test.maskinporten.no/.well-known/oauth-authorization-server",
    },
    "production": {
        "platform_url": "https://platform.altinn.no",
        "apps_url": "https://{org}.apps.altinn.no",
        "maskinporten_well_known": "https://maskinporten.no/.well-known/oauth-authorization-server",
    },
}


def http_url(value: str) -> str:
    """``value`` if it is an absolute http(s) URL with a host, else a ValueError saying so."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL with a host, not {value[:80]!r}")
    return value.strip()


class Altinn(_Section):
    """Which Altinn 3 environment to talk to: a named one, or explicit URLs (``custom``)."""

    environment: Literal["tt02", "production", "custom"] = "tt02"
    platform_url: str | None = None
    #: Pattern of an app's base URL, with ``{org}`` for the app owner.
    apps_url: str | None = None
    maskinporten_well_known: str | None = None
    #: Explicit issuer and token endpoint instead of reading the well-known metadata.
    maskinporten_issuer: str | None = None
    maskinporten_token_endpoint: str | None = None

    @field_validator(
        "platform_url",
        "apps_url",
        "maskinporten_well_known",
        "maskinporten_issuer",
        "maskinporten_token_endpoint",
    )
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    @model_validator(mode="after")
    def _fill_from_environment(self) -> Altinn:
        defaults = ENVIRONMENTS.get(self.environment, {})
        for name in ("platform_url", "apps_url", "maskinporten_well_known"):
            if getattr(self, name) is None and name in defaults:
                object.__setattr__(self, name, defaults[name])
        if self.platform_url is None:
            raise ValueError("environment 'custom' needs platform_url")
        if self.maskinporten_well_known is None and not (
            self.maskinporten_issuer and self.maskinporten_token_endpoint
        ):
            raise ValueError(
                "environment 'custom' needs maskinporten_well_known, "
                "or maskinporten_issuer and maskinporten_token_endpoint"
            )
        if self.apps_url is not None and "{org}" not in self.apps_url:
            raise ValueError("apps_url must contain '{org}'")
        return self

    @property
    def platform(self) -> str:
        """The platform base URL without a trailing slash."""
        assert self.platform_url is not None  # set by the validator
        return self.platform_url.rstrip("/")


class Maskinporten(_Section):
    """The proxy's one Maskinporten client (the vendor's). Key material is read from files."""

    client_id: str
    #: The vendor's system id in Altinn's system register (makes MP-303 messages name it).
    system_id: str | None = None
    #: A private key registered on the client (PEM or JWK), used with ``kid``.
    key_file: Path | None = None
    kid: str | None = None
    #: Or a business certificate (PKCS#12) whose chain goes into ``x5c``.
    certificate_file: Path | None = None
    certificate_password_file: Path | None = None
    #: Seconds before expiry at which a token is refreshed at the latest.
    refresh_margin_seconds: Annotated[float, Field(ge=0)] = 20.0
    #: Seconds a refused grant (e.g. MP-303, no system user) is answered from memory; 0 = never.
    refusal_cache_seconds: Annotated[float, Field(ge=0)] = 30.0

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        if not value or value != value.strip() or " " in value:
            raise ValueError("must be the client id Maskinporten issued for the proxy's integration")
        return value

    @field_validator("key_file", "certificate_file", "certificate_password_file")
    @classmethod
    def _files_exist(cls, value: Path | None) -> Path | None:
        return _readable_file(value)

    @model_validator(mode="after")
    def _one_kind_of_key(self) -> Maskinporten:
        if (self.key_file is None) == (self.certificate_file is None):
            raise ValueError("set exactly one of key_file (with kid) or certificate_file")
        if self.key_file is not None and not self.kid:
            raise ValueError("key_file needs kid (the key id registered on the Maskinporten client)")
        if self.certificate_file is not None and self.certificate_password_file is None:
            raise ValueError("certificate_file needs certificate_password_file")
        return self


class Store(_Section):
    """Durable state: SQLite in the data directory by default, or one PostgreSQL DSN."""

    #: ``sqlite:///path.db`` or ``postgresql://user@host/db``; default: SQLite in ``data_dir``.
    url: str | None = None
    #: File holding the PostgreSQL password (kept out of the URL).
    password_file: Path | None = None
    idempotency_retention_hours: Annotated[float, Field(gt=0)] = 72.0
    #: How long an in-flight submission holds its idempotency claim. After a crash, a resend of a
    #: submission that was in flight answers "in progress" until the claim's lease has run out.
    idempotency_lease_seconds: Annotated[float, Field(gt=0)] = 300.0
    #: The lowest legacy id (ReceiptId, CorrespondenceID, ...) the proxy allocates: set it above the
    #: ids your clients still hold from Altinn 2 so the two can never be confused. Raising it takes
    #: effect at the next start; lowering it never reuses or renumbers an id.
    first_legacy_id: Annotated[int, Field(ge=1, le=MAX_FIRST_LEGACY_ID)] = 1

    @field_validator("password_file")
    @classmethod
    def _files_exist(cls, value: Path | None) -> Path | None:
        return _readable_file(value)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:// or postgresql://")
        return value


class Limits(_Section):
    """Bounds on what a caller may send."""

    max_body_bytes: Annotated[int, Field(gt=0)] = 50 * 1024 * 1024
    max_streamed_bytes: Annotated[int, Field(gt=0)] = 1024 * 1024 * 1024 + 64 * 1024 * 1024
    max_xml_depth: Annotated[int, Field(gt=0)] = 64
    max_xml_elements: Annotated[int, Field(gt=0)] = 100_000
    max_xml_text_bytes: Annotated[int, Field(gt=0)] = 50 * 1024 * 1024
    body_read_timeout_seconds: Annotated[float, Field(gt=0)] = 60.0
    #: Longest wait for a client to take the next part of a streamed answer before it is cut off.
    send_idle_timeout_seconds: Annotated[float, Field(gt=0)] = 60.0
    #: A connection with no complete request for this long is closed: idle keep-alive connections,
    #: and request headers trickled in slowly (slowloris).
    idle_connection_seconds: Annotated[float, Field(gt=0)] = 75.0
    #: Legacy calls served at once; the next is refused at once with a retryable Server fault (503)
    #: rather than queued, so a backlog cannot grow memory without bound.
    max_in_flight: Annotated[int, Field(gt=0)] = 256


class Timeouts(_Section):
    """Outbound timeouts (seconds). Every outbound call has all of them set."""

    connect: Annotated[float, Field(gt=0)] = 5.0
    read: Annotated[float, Field(gt=0)] = 30.0
    total: Annotated[float, Field(gt=0)] = 60.0
    streamed_total: Annotated[float, Field(gt=0)] = 3600.0
    token: Annotated[float, Field(gt=0)] = 10.0
    #: How long in-flight requests may run after SIGTERM before the process exits.
    drain: Annotated[float, Field(ge=0)] = 25.0
    #: How long /readyz reports 503 while still serving, so the load balancer stops sending first.
    drain_delay: Annotated[float, Field(ge=0)] = 0.0


class Upstream(_Section):
    """How failed Altinn 3 calls are tried again, and when a host's circuit breaker opens.

    Only idempotent calls are retried on 502/503/504 or a broken connection (a refused connection is
    retried for any call whose body can be sent again); delays grow exponentially up to the maximum.
    """

    attempts: Annotated[int, Field(gt=0)] = 3
    retry_base_delay: Annotated[float, Field(ge=0)] = 0.2
    retry_max_delay: Annotated[float, Field(ge=0)] = 2.0
    #: Consecutive failures (no answer, or 5xx) of one host that open its circuit.
    breaker_failures: Annotated[int, Field(gt=0)] = 5
    #: How long an open circuit fails calls at once before one trial call may pass.
    breaker_reset_seconds: Annotated[float, Field(gt=0)] = 30.0


class CorrespondenceRoute(_Section):
    """A legacy correspondence service routed to an Altinn 3 resource."""

    service_code: str
    service_edition: str
    resource_id: str


class BrokerRoute(_Section):
    """A legacy broker service routed to an Altinn 3 broker resource."""

    service_code: str
    service_edition: str
    resource_id: str
    #: Inject manifest.xml into downloads, as Altinn 3's manifest shim did.
    manifest_shim: bool = False
    #: Refuse an upload that is not a ZIP archive at once (Altinn 2's ErrorID 40206), before any of it
    #: reaches Altinn 3 (which would only reject it later, asynchronously).
    require_zip: bool = False


class SubFormRoute(_Section):
    """A sub-form (DataFormatId/DataFormatVersion) of a legacy form service and its app data type."""

    data_format_id: str
    data_format_version: str
    data_type: str


class AppRoute(_Section):
    """A legacy form service routed to an Altinn 3 app.

    ``data_type`` takes the main form, which must carry ``data_format_id``/``data_format_version``
    when they are set; ``sub_forms`` names the data type of each other form the service accepts;
    ``attachment_types`` maps an AttachmentTypeName to a data type, and ``default_attachment_type``
    takes attachments without a type name; an unlisted name, or no name without a default, is refused.
    """

    service_code: str
    service_edition: str
    org: str
    app: str
    data_type: str
    data_format_id: str | None = None
    data_format_version: str | None = None
    sub_forms: tuple[SubFormRoute, ...] = ()
    attachment_types: dict[str, str] = Field(default_factory=dict)
    default_attachment_type: str | None = None


class Routing(_Section):
    """The deployment's routing tables: ServiceCode/ServiceEdition to Altinn 3."""

    correspondence: tuple[CorrespondenceRoute, ...] = ()
    broker: tuple[BrokerRoute, ...] = ()
    apps: tuple[AppRoute, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> Routing:
        for table in ("correspondence", "broker", "apps"):
            seen: set[tuple[str, str]] = set()
            for route in getattr(self, table):
                key = (route.service_code, route.service_edition)
                if key in seen:
                    raise ValueError(f"{table}: ServiceCode {key[0]} edition {key[1]} is routed twice")
                seen.add(key)
        return self


_SYSTEM_NAME = r"^[a-z0-9_]+$"
_ORG_NUMBER = r"^[0-9]{9}$"


class SystemRegistration(_Section):
    """The vendor's entry in Altinn's system register (``altinn-proxy system ...``).

    The system id is ``{vendor_org}_{name}``. The rights are not listed here: they are derived from
    the routing tables and the mappings (see :mod:`proxy.onboarding.rights`); access packages are
    named here because no mapping can imply one.
    """

    vendor_org: Annotated[str, Field(pattern=_ORG_NUMBER)]
    name: Annotated[str, Field(pattern=_SYSTEM_NAME, min_length=1, max_length=80)] = "altinn_proxy"
    #: Display names and descriptions by language (``nb``, ``nn``, ``en``); ``nb`` is required.
    title: dict[str, str] = Field(default_factory=lambda: {"nb": "Altinn 2-proxy", "en": "Altinn 2 proxy"})
    description: dict[str, str] = Field(
        default_factory=lambda: {
            "nb": "Lar eldre Altinn 2-integrasjoner bruke Altinn 3",
            "en": "Lets legacy Altinn 2 integrations use Altinn 3",
        }
    )
    #: Access packages (``urn:altinn:accesspackage:...``) the system asks for besides single rights.
    access_packages: tuple[str, ...] = ()
    #: Where Altinn may send the customer after approving a request (https URLs).
    allowed_redirect_urls: tuple[str, ...] = ()
    #: Whether customers can pick the system in the Altinn portal (end-user driven system users).
    visible: bool = True

    @property
    def system_id(self) -> str:
        """``{vendor_org}_{name}``, as Altinn's system register requires."""
        return f"{self.vendor_org}_{self.name}"

    @field_validator("title", "description")
    @classmethod
    def _has_bokmal(cls, value: dict[str, str]) -> dict[str, str]:
        if not value.get("nb", "").strip():
            raise ValueError("needs at least a non-empty 'nb' (bokmål) text")
        return value

    @field_validator("access_packages")
    @classmethod
    def _access_package_urns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for urn in value:
            if not urn.startswith("urn:altinn:accesspackage:") or len(urn) <= len(
                "urn:altinn:accesspackage:"
            ):
                raise ValueError(f"{urn!r} is not an access package (urn:altinn:accesspackage:<name>)")
        return value

    @field_validator("allowed_redirect_urls")
    @classmethod
    def _https_urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not url.startswith("https://"):
                raise ValueError(f"{url!r}: Altinn accepts only https:// redirect URLs")
        return value


class Identity(_Section):
    """Where legacy credentials live and which peers may forward client certificates."""

    credentials_file: Path
    #: CA bundle that issues accepted enterprise certificates.
    client_ca_file: Path | None = None
    #: Header in which a trusted ingress forwards the client certificate (ingress-nginx: URL-encoded PEM).
    client_certificate_header: str = "ssl-client-cert"
    trusted_proxies: tuple[str, ...] = ()
    lockout_failures: Annotated[int, Field(gt=0)] = 5
    lockout_seconds: Annotated[float, Field(gt=0)] = 300.0
    #: How long a successful password check is remembered (as an HMAC under a per-process key,
    #: never the password), so that legacy clients, which send their password on every call, do not
    #: cost an scrypt run per call. 0 runs scrypt every time.
    remember_password_seconds: Annotated[float, Field(ge=0)] = 300.0

    @field_validator("credentials_file", "client_ca_file")
    @classmethod
    def _files_exist(cls, value: Path | None) -> Path | None:
        return _readable_file(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not an IP network (e.g. 10.0.0.0/8)") from None
        return value


class Logging(_Section):
    """Log format and level. ``auto`` is JSON unless attached to a terminal."""

    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class Settings(_Section):
    """Everything altinn-proxy needs to serve, validated once at start."""

    listen: Listen = Listen()
    altinn: Altinn = Altinn()
    maskinporten: Maskinporten
    identity: Identity
    store: Store = Store()
    data_dir: Path = Path("data")
    #: Left out: the mapping files shipped with the package.
    mappings_dir: Path = SHIPPED_MAPPINGS_DIR
    #: Operator-supplied original WSDL files, served with rewritten addresses.
    wsdl_dir: Path | None = None
    limits: Limits = Limits()
    timeouts: Timeouts = Timeouts()
    upstream: Upstream = Upstream()
    routing: Routing = Routing()
    logging: Logging = Logging()
    #: The system register entry and system-user requests (``altinn-proxy system ...``).
    system: SystemRegistration | None = None

    @model_validator(mode="after")
    def _tls_client_ca(self) -> Settings:
        tls = self.listen.tls
        if tls is None or tls.client_ca_file is not None:
            return self
        if self.identity.client_ca_file is not None:
            object.__setattr__(tls, "client_ca_file", self.identity.client_ca_file)
        elif tls.require_client_certificate:
            raise ValueError(
                "listen.tls.require_client_certificate needs listen.tls.client_ca_file "
                "or identity.client_ca_file (the CA that issues accepted client certificates)"
            )
        return self

    @model_validator(mode="after")
    def _one_system_id(self) -> Settings:
        if self.system is None:
            return self
        declared = self.maskinporten.system_id
        if declared is not None and declared != self.system.system_id:
            raise ValueError(
                f"maskinporten.system_id {declared!r} differs from system.vendor_org + system.name "
                f"({self.system.system_id!r}): set one of them"
            )
        return self

    @property
    def system_id(self) -> str | None:
        """The vendor's system id in Altinn's system register, if configured."""
        return self.system.system_id if self.system is not None else self.maskinporten.system_id

    @property
    def store_url(self) -> str:
        """The store URL, defaulting to SQLite in the data directory."""
        return self.store.url or f"sqlite:///{self.data_dir / 'altinn-proxy.db'}"


# --------------------------------------------------------------------------------------------
# Loading


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, override from the environment, and validate; raise ConfigurationError on any problem.

    Relative paths in the file are resolved against the file's folder.
    """
    environ = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigurationError(f"cannot read settings file: {error.strerror}", location=str(path)) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text) if node is not None else {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise ConfigurationError(f"not valid YAML: {problem}", location=where) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigurationError("the settings file must be a mapping of keys", location=str(path))
    lines = _line_numbers(node) if node is not None else {}
    lines.update(_environment_locations(environ))
    data = apply_environment(data, environ)
    return validate_settings(data, source=path, lines=lines, base_dir=path.resolve().parent)


def validate_settings(
    data: Mapping[str, Any],
    *,
    source: Path | str = "<settings>",
    lines: Mapping[tuple[str, ...], int | str] | None = None,
    base_dir: Path | None = None,
) -> Settings:
    """Validate a settings mapping; the first problem becomes a located ConfigurationError."""
    if base_dir is not None:
        data = _resolve_paths(data, base_dir)
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        raise _located(error, data, str(source), lines or {}) from None


def environment_overrides(path: Path, environ: Mapping[str, str] | None = None) -> list[str]:
    """One line per setting that an environment variable sets, naming the file line it overrules."""
    environ = os.environ if environ is None else environ
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError):
        node = None
    lines = _line_numbers(node) if node is not None else {}
    overrides = []
    for name in sorted(environ):
        keys = _environment_key_path(name) if _is_setting_variable(name) else ()
        if keys:
            line = lines.get(keys)
            instead = f"overrides {path}:{line}" if line else "not in the file"
            overrides.append(f"{'.'.join(keys)}: from environment {name} ({instead})")
    return overrides


def _is_setting_variable(name: str) -> bool:
    return name.startswith(ENV_PREFIX) and not name.startswith(ENV_PREFIX + "TEST_")


def apply_environment(data: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Overlay ``ALTINN_PROXY_A__B=value`` variables onto the settings mapping."""
    merged: dict[str, Any] = _deep_copy(data)
    for name, raw in sorted(environ.items()):
        if not _is_setting_variable(name):
            continue
        keys = _environment_key_path(name)
        if not keys:
            continue
        target = merged
        for key in keys[:-1]:
            child = target.get(key)
            if not isinstance(child, dict):
                child = {}
                target[key] = child
            target = child
        try:
            target[keys[-1]] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            target[keys[-1]] = raw
    return merged


_PATH_KEYS = {
    ("data_dir",),
    ("mappings_dir",),
    ("wsdl_dir",),
    ("listen", "tls", "certificate_file"),
    ("listen", "tls", "key_file"),
    ("listen", "tls", "client_ca_file"),
    ("maskinporten", "key_file"),
    ("maskinporten", "certificate_file"),
    ("maskinporten", "certificate_password_file"),
    ("store", "password_file"),
    ("identity", "credentials_file"),
    ("identity", "client_ca_file"),
}


def _resolve_paths(data: Mapping[str, Any], base_dir: Path) -> dict[str, Any]:
    resolved = _deep_copy(data)
    for keys in _PATH_KEYS:
        parent: Any = resolved
        for key in keys[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and isinstance(parent.get(keys[-1]), str):
            value = Path(parent[keys[-1]]).expanduser()
            parent[keys[-1]] = value if value.is_absolute() else base_dir / value
    return resolved


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _deep_copy(value) if isinstance(value, Mapping) else value for key, value in data.items()}


def _environment_key_path(name: str) -> tuple[str, ...]:
    """The settings key path an ``ALTINN_PROXY_A__B`` variable sets: ``("a", "b")``."""
    return tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part)


def _environment_locations(environ: Mapping[str, str]) -> dict[tuple[str, ...], int | str]:
    """Key paths set by the environment, located as the variable that set them."""
    return {
        _environment_key_path(name): f"environment {name}" for name in environ if name.startswith(ENV_PREFIX)
    }


def _line_numbers(node: yaml.Node, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], int | str]:
    """Map each dotted key path (and list index) of a composed YAML document to its line."""
    lines: dict[tuple[str, ...], int | str] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, str(key_node.value))
            lines[path] = key_node.start_mark.line + 1
            lines.update(_line_numbers(value_node, path))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = (*prefix, str(index))
            lines[path] = item.start_mark.line + 1
            lines.update(_line_numbers(item, path))
    return lines


def _located(
    error: ValidationError, data: Mapping[str, Any], source: str, lines: Mapping[tuple[str, ...], int | str]
) -> ConfigurationError:
    first = error.errors(include_url=False)[0]
    loc = tuple(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key" + _suggestion(loc, data)
    elif first["type"] == "missing":
        message = "required key is missing"
    line = _nearest_line(loc, lines)
    where = line if isinstance(line, str) else f"{source}:{line}" if line else source
    key = ".".join(loc) or "(top level)"
    return ConfigurationError(f"{key}: {message}", location=where)


def _nearest_line(loc: tuple[str, ...], lines: Mapping[tuple[str, ...], int | str]) -> int | str | None:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _suggestion(loc: tuple[str, ...], data: Mapping[str, Any]) -> str:
    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        # An optional section (``listen.tls``) is annotated ``Section | None``.
        annotation = next(iter(getattr(annotation, "__args__", ())), annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return ""
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
