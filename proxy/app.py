"""Wiring: settings in, a ready aiohttp application out.

Everything with a lifetime (the outbound HTTP session, the store, the credentials, the token
provider, the mapping registry and its watcher) is created in one cleanup context, in dependency
order, and closed in reverse order after in-flight requests have finished. Request handling reaches
these through :data:`SERVICES`; nothing is looked up or compiled per request that could be done here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
import structlog
from aiohttp import web

from proxy.altinn3.breaker import BreakerPolicy, Breakers
from proxy.altinn3.client import Altinn3Client, RetryPolicy
from proxy.altinn3.client import Timeouts as Altinn3Timeouts
from proxy.errors import ProxyError, TokenError
from proxy.identity.authenticator import Authenticator
from proxy.identity.certificates import ClientCertificateAuthenticator, load_ca_bundle, parse_networks
from proxy.identity.credentials import CredentialStore, load_credentials
from proxy.identity.lockout import LockoutPolicy
from proxy.identity.principal import CallerKind, LegacyCredentials, Principal
from proxy.identity.verified import VerifiedPasswords
from proxy.mapping.calls import BaseUrls, LegacyAnswer
from proxy.mapping.engine import CompiledCall, Engine, MappingSet, OperationRequest
from proxy.maskinporten.config import (
    MaskinportenConfig,
    RefreshPolicy,
    SigningMaterial,
    load_pkcs12,
    load_private_key,
)
from proxy.maskinporten.config import Timeouts as TokenTimeouts
from proxy.maskinporten.online import Verdict, subjects, verdict
from proxy.maskinporten.provider import TokenProvider
from proxy.observability.labels import Known, precreate
from proxy.observability.metrics import METRICS_PORT_ROUTES, hide_server_software
from proxy.onboarding.customers import configured_customers
from proxy.onboarding.memory import read_requests
from proxy.onboarding.monitor import ObservedTokens, OnboardingMonitor, watch_call
from proxy.onboarding.rights import routed_resources
from proxy.onboarding.usage import UsageLog
from proxy.pipeline import MappedOperations, MappingRegistry, Pipeline, authorize_reportee, routing_table
from proxy.pipeline.loading import load_mapping_set
from proxy.pipeline.rest import MappedRestOperations
from proxy.settings import Settings
from proxy.soap.catalogue import default_catalogue
from proxy.soap.contracts import ContractRegistry
from proxy.soap.request import SoapCall
from proxy.soap.surface import Surface
from proxy.soap.xmlsafe import XmlLimits
from proxy.store import Store, StoreOptions, open_store
from proxy.web import rest_metrics
from proxy.web.admission import Admission
from proxy.web.board import Board, BoardSource, CallerRow, add_board_routes
from proxy.web.health import Readiness, add_health_routes
from proxy.web.middleware import request_context
from proxy.web.rest import RestIdentity, RestLimits, add_rest_routes
from proxy.web.soap import Authenticator as SoapAuthenticator
from proxy.web.soap import SoapConfig, add_soap_routes

SETTINGS = web.AppKey("settings", Settings)
log = structlog.get_logger("proxy.app")


@dataclass(frozen=True)
class Services:
    """The long-lived parts a request is served with."""

    store: Store
    authenticator: Authenticator
    tokens: TokenProvider
    altinn3: Altinn3Client
    mappings: MappingRegistry
    #: Runs mapped operations (the fronts' way to the engine and the executor).
    pipeline: Pipeline
    #: Enterprise-certificate authentication for the legacy REST front (None: no client CA configured).
    certificates: ClientCertificateAuthenticator | None = None
    #: Each customer organisation's onboarding state, from live traffic.
    onboarding: OnboardingMonitor | None = None
    #: Which legacy operations each caller used recently (the migration board).
    usage: UsageLog | None = None
    #: The legacy credentials file (its callers are the board's rows).
    credentials: CredentialStore | None = None


SERVICES = web.AppKey("services", Services)
#: The count of legacy calls being served, shared by the SOAP and REST fronts.
ADMISSION = web.AppKey("admission", Admission)


def create_app(settings: Settings, readiness: Readiness | None = None) -> web.Application:
    """The proxy's application for ``settings`` (its services start with the app)."""
    readiness = readiness or Readiness()
    app = web.Application(
        middlewares=[request_context],
        client_max_size=settings.limits.max_body_bytes,
        # A connection with no complete request for this long is closed: idle keep-alives, and
        # request headers trickled in (slowloris). aiohttp's server has no other header deadline.
        handler_args={"keepalive_timeout": settings.limits.idle_connection_seconds},
    )
    app[SETTINGS] = settings
    app.on_response_prepare.append(hide_server_software)
    add_health_routes(app, readiness)
    app.cleanup_ctx.append(_services_context(readiness))
    admission = app[ADMISSION] = Admission(settings.limits.max_in_flight)  # one budget for both fronts
    add_soap_routes(
        app,
        handlers=MappedOperations(_pipeline_of(app)),
        config=soap_config(settings),
        authenticate=_authenticate_with(app),
        surface=_surface_of(app),
        on_untranslated=_record_untranslated(app),
        admission=admission,
    )
    add_rest_routes(app, _rest_identity(app), admission)
    app[METRICS_PORT_ROUTES] = [lambda metrics_app: add_board_routes(metrics_app, _board_source(app))]
    return app


def soap_config(settings: Settings) -> SoapConfig:
    """The SOAP front's settings."""
    limits = settings.limits
    return SoapConfig(
        external_base_url=settings.listen.external_url,
        limits=XmlLimits(
            max_bytes=limits.max_body_bytes,
            max_depth=limits.max_xml_depth,
            max_elements=limits.max_xml_elements,
            max_text_length=limits.max_xml_text_bytes,
        ),
        max_attachment_bytes=limits.max_streamed_bytes,
        body_read_timeout=limits.body_read_timeout_seconds,
        send_idle_timeout=limits.send_idle_timeout_seconds,
        attachment_deadline=settings.timeouts.streamed_total,
        original_wsdl_dir=settings.wsdl_dir,
    )


def _pipeline_of(app: web.Application) -> Callable[[], Pipeline | None]:
    def pipeline() -> Pipeline | None:
        services = app.get(SERVICES)
        return services.pipeline if services is not None else None

    return pipeline


def mapped_apis(mapping_set: MappingSet) -> frozenset[str]:
    """The Altinn 3 API names (metric labels) that ``mapping_set``'s operations call."""
    return frozenset(
        step.action.api
        for operation in mapping_set.operations.values()
        for step in operation.steps
        if isinstance(step.action, CompiledCall)
    )


def _surface_of(app: web.Application) -> Callable[[], Surface]:
    """The active mapping set's services (before start-up: the bare catalogue)."""
    unmapped = Surface.of(default_catalogue(), ContractRegistry())

    def surface() -> Surface:
        services = app.get(SERVICES)
        return services.mappings.current().surface if services is not None else unmapped

    return surface


@dataclass(frozen=True)
class OnboardedPipeline(Pipeline):
    """The pipeline, telling each customer organisation's state to the legacy caller and noting usage.

    A call refused because its organisation is not onboarded (no system user, a right withdrawn)
    ends in a fault whose message says what to do; every call is counted for the migration board.
    """

    onboarding: OnboardingMonitor | None = None
    usage: UsageLog | None = None

    async def run(self, request: OperationRequest) -> LegacyAnswer:
        """The legacy answer, or the error, explained where an organisation's state is the cause."""
        touched = watch_call()
        outcome = "ok"
        try:
            return await super().run(request)
        except ProxyError as error:
            outcome = error.kind
            if touched.orgs and self.onboarding is not None:
                await self.onboarding.refresh()
                explanation = self.onboarding.explain(touched.orgs[0])
                if explanation is not None:
                    error.message = explanation
            raise
        finally:
            if self.usage is not None:
                self.usage.record(
                    request.principal.caller_id,
                    request.service,
                    request.operation,
                    translated=True,
                    outcome=outcome,
                )


def _authenticate_with(app: web.Application) -> SoapAuthenticator:
    async def authenticate(credentials: LegacyCredentials, call: SoapCall, peer: str | None) -> Principal:
        return await app[SERVICES].authenticator.authenticate(credentials, peer or "unknown")

    return authenticate


def _record_untranslated(app: web.Application) -> Callable[[SoapCall, str | None], Awaitable[None]]:
    async def record(call: SoapCall, peer: str | None) -> None:
        """Note who called an untranslated operation: the caller once its credentials check out."""
        services = app[SERVICES]
        if services.usage is None:
            return
        caller = None
        if call.credentials is not None:
            with contextlib.suppress(ProxyError):
                caller = (
                    await services.authenticator.authenticate(call.credentials, peer or "unknown")
                ).caller_id
        services.usage.record(
            caller, call.service.name, call.operation.name, translated=False, outcome="untranslated"
        )

    return record


def _board_source(app: web.Application) -> BoardSource:
    async def snapshot() -> Board | None:
        """The migration board's rows: every configured caller with each organisation it acts for."""
        services = app.get(SERVICES)
        if (
            services is None
            or services.onboarding is None
            or services.usage is None
            or services.credentials is None
        ):
            return None
        monitor, settings = services.onboarding, app[SETTINGS]
        await monitor.refresh()
        resources = routed_resources(settings)
        uses = services.usage.recent()
        rows = []
        for caller_id, entry in sorted(services.credentials.book.callers.items()):
            operations = tuple(use for use in uses if use.caller == caller_id)
            orgs = sorted(entry.principal.orgs) if entry.principal.kind is CallerKind.END_USER_SYSTEM else []
            if not orgs:
                rows.append(CallerRow(caller_id, None, None, operations=operations))
            for org in orgs:
                state = monitor.state_of(org)
                missing = tuple(sorted(r for table in state.refused_tables for r in resources.get(table, ())))
                rows.append(CallerRow(caller_id, org, state, missing, operations))
        strangers = [use for use in uses if use.caller is None]
        return Board(settings.system_id, rows, strangers)

    return snapshot


def _rest_identity(app: web.Application) -> Callable[[], RestIdentity]:
    backend = MappedRestOperations(_pipeline_of(app))
    limits = rest_limits(app[SETTINGS])

    def identity() -> RestIdentity:
        services = app[SERVICES]
        return RestIdentity(
            services.authenticator.check_api_key,
            services.certificates,
            backend,
            limits,
            external_base_url=app[SETTINGS].listen.external_url,
        )

    return identity


def rest_limits(settings: Settings) -> RestLimits:
    """The REST front's body limits and deadlines."""
    limits = settings.limits
    return RestLimits(
        max_json_bytes=limits.max_body_bytes,
        max_stream_bytes=limits.max_streamed_bytes,
        body_read_timeout=limits.body_read_timeout_seconds,
        body_idle_timeout=min(RestLimits.body_idle_timeout, limits.body_read_timeout_seconds),
        stream_deadline=settings.timeouts.streamed_total,
    )


def certificate_authenticator(
    settings: Settings, credentials: CredentialStore
) -> ClientCertificateAuthenticator | None:
    """The REST front's client-certificate authenticator, when a client CA is configured (reads a file)."""
    identity = settings.identity
    tls = settings.listen.tls
    ca_file = identity.client_ca_file or (tls.client_ca_file if tls is not None else None)
    if ca_file is None:
        return None
    return ClientCertificateAuthenticator(
        ca_bundle=load_ca_bundle(ca_file),
        credentials=credentials,
        trusted_proxies=parse_networks(identity.trusted_proxies),
        header_name=identity.client_certificate_header or None,
    )


def signing_material(settings: Settings) -> SigningMaterial:
    """The Maskinporten signing key (or certificate chain) the settings point at."""
    config = settings.maskinporten
    if config.key_file is not None:
        return load_private_key(config.key_file, kid=config.kid)
    assert config.certificate_file is not None
    assert config.certificate_password_file is not None
    return load_pkcs12(config.certificate_file, password_file=config.certificate_password_file)


def maskinporten_config(settings: Settings, signing: SigningMaterial) -> MaskinportenConfig:
    """The token provider's configuration from the settings."""
    altinn = settings.altinn
    return MaskinportenConfig(
        client_id=settings.maskinporten.client_id,
        signing=signing,
        platform_url=altinn.platform,
        well_known_url=altinn.maskinporten_well_known
        if not (altinn.maskinporten_issuer and altinn.maskinporten_token_endpoint)
        else None,
        issuer=altinn.maskinporten_issuer,
        token_endpoint=altinn.maskinporten_token_endpoint,
        environment=altinn.environment,
        system_id=settings.system_id,
        timeouts=TokenTimeouts(connect=settings.timeouts.connect, total=settings.timeouts.token),
        refresh=RefreshPolicy(
            safety_margin=settings.maskinporten.refresh_margin_seconds,
            refusal_cache_seconds=settings.maskinporten.refusal_cache_seconds,
        ),
    )


def check_wiring(settings: Settings) -> None:
    """Everything ``serve`` builds from the settings before it opens a connection, built and dropped.

    Raises the ConfigurationError ``serve`` would (keys, credentials, token and routing configuration);
    ``altinn-proxy check`` calls this so both refuse the same settings with the same message.
    """
    maskinporten_config(settings, signing_material(settings))
    certificate_authenticator(settings, CredentialStore(settings.identity.credentials_file))
    routing_table(settings)
    store_options(settings)
    soap_config(settings)


async def online_check(settings: Settings) -> list[Verdict]:
    """Ask Maskinporten for every kind of token the mappings need; one verdict per subject.

    The service owner's token (when a service owner is configured) and one system-user token per
    organisation of the credentials file, with the scopes the mapping operations of that kind use.
    """
    mappings = await asyncio.to_thread(load_mapping_set, settings.mappings_dir)
    book = await asyncio.to_thread(load_credentials, settings.identity.credentials_file)
    owner_scopes: set[str] = set()
    user_scopes: set[str] = set()
    for operation in mappings.operations.values():
        scopes = owner_scopes if operation.identity.acts_as == "service_owner" else user_scopes
        scopes.update(operation.identity.scopes)
    principals = [entry.principal for entry in book.callers.values()]
    if not any(principal.is_service_owner for principal in principals):
        owner_scopes.clear()
    organisations = [(grant.org, grant.external_ref) for p in principals for grant in p.orgs.values()]
    signing = await asyncio.to_thread(signing_material, settings)
    timeouts = settings.timeouts
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeouts.token, sock_connect=timeouts.connect)
    ) as session:
        tokens = TokenProvider(maskinporten_config(settings, signing), session)
        try:
            found = []
            for subject in subjects(frozenset(owner_scopes), frozenset(user_scopes), organisations):
                try:
                    await tokens.token(subject.request)
                except TokenError as error:
                    found.append(verdict(subject, error, kid=settings.maskinporten.kid))
                else:
                    found.append(verdict(subject, None, kid=settings.maskinporten.kid))
            return found
        finally:
            await tokens.close()


def store_url(settings: Settings) -> str:
    """The store URL, with the PostgreSQL password from its file (never logged)."""
    url = settings.store_url
    if settings.store.password_file is None:
        return url
    password = settings.store.password_file.read_text(encoding="utf-8").strip()
    parts = urlsplit(url)
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # urlsplit drops an IPv6 literal's brackets; the netloc needs them back
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def store_options(settings: Settings) -> StoreOptions:
    """The store's behaviour as the ``store`` settings section configures it."""
    return StoreOptions(
        idempotency_retention=timedelta(hours=settings.store.idempotency_retention_hours),
        idempotency_lease=timedelta(seconds=settings.store.idempotency_lease_seconds),
        first_legacy_id=settings.store.first_legacy_id,
    )


PURGE_INTERVAL_SECONDS = 3600.0


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def purge_idempotency_records(store: Store, interval: float = PURGE_INTERVAL_SECONDS) -> None:
    """Forget expired idempotency records once an hour (the id registry and receipts are kept)."""
    while True:
        try:
            purged = await store.purge_expired()
        except ProxyError as error:
            log.warning("store.purge_failed", error=str(error))
        else:
            log.info("store.purged", idempotency_records=purged)
        await asyncio.sleep(interval)


def _services_context(readiness: Readiness) -> Any:
    async def services(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        timeouts = settings.timeouts
        upstream = settings.upstream
        async with contextlib.AsyncExitStack() as stack:
            session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=timeouts.total, sock_connect=timeouts.connect, sock_read=timeouts.read
                ),
                connector=aiohttp.TCPConnector(limit=256, limit_per_host=128),
                raise_for_status=False,
            )
            stack.push_async_callback(session.close)
            store = await open_store(
                await asyncio.to_thread(store_url, settings),
                store_options(settings),
            )
            stack.push_async_callback(store.close)
            credentials = await asyncio.to_thread(CredentialStore, settings.identity.credentials_file)
            authenticator = Authenticator(
                credentials,
                policy=LockoutPolicy(
                    lock_after_failures=settings.identity.lockout_failures,
                    lock_seconds=settings.identity.lockout_seconds,
                ),
                verified=VerifiedPasswords(ttl=settings.identity.remember_password_seconds),
            )
            signing = await asyncio.to_thread(signing_material, settings)
            tokens = TokenProvider(maskinporten_config(settings, signing), session)
            await tokens.start()
            stack.push_async_callback(tokens.close)
            onboarding = OnboardingMonitor(
                (customer.org for customer in configured_customers(credentials.book)),
                system_id=settings.system_id,
                resources=routed_resources(settings),
                load_requests=partial(asyncio.to_thread, read_requests, settings.data_dir),
            )
            await onboarding.refresh()
            altinn3 = Altinn3Client(
                session,
                ObservedTokens(tokens, onboarding),
                BaseUrls(platform=settings.altinn.platform, apps=settings.altinn.apps_url or BaseUrls.apps),
                retry=RetryPolicy(
                    attempts=upstream.attempts,
                    base_delay=upstream.retry_base_delay,
                    max_delay=upstream.retry_max_delay,
                ),
                breakers=Breakers(BreakerPolicy(upstream.breaker_failures, upstream.breaker_reset_seconds)),
                timeouts=Altinn3Timeouts(
                    total=timeouts.total, connect=timeouts.connect, stream_read=timeouts.read
                ),
                observe=onboarding.observe_answer,
            )
            purger = asyncio.create_task(purge_idempotency_records(store), name="idempotency-purger")
            stack.push_async_callback(_stop, purger)
            mappings = await MappingRegistry.open(settings.mappings_dir)
            rest_metrics.precreate(
                (op.legacy.rest.method, op.legacy.rest.route)
                for op in mappings.current().rest.values()
                if op.legacy.rest is not None
            )
            watcher = asyncio.create_task(mappings.watch(), name="mapping-watcher")
            stack.push_async_callback(_stop, watcher)
            engine = Engine(mappings.current, routing_table(settings), authorize=authorize_reportee)
            usage = UsageLog()
            pipeline = OnboardedPipeline(mappings, engine, altinn3, store, onboarding, usage)
            certificates = await asyncio.to_thread(certificate_authenticator, settings, credentials)
            app[SERVICES] = Services(
                store,
                authenticator,
                tokens,
                altinn3,
                mappings,
                pipeline,
                certificates,
                onboarding,
                usage,
                credentials,
            )

            async def store_check() -> dict[str, Any]:
                await store.ping()
                return {"ok": True}

            async def mappings_check() -> dict[str, Any]:
                return mappings.readiness()

            readiness.checks.update(store=store_check, mappings=mappings_check)
            precreate(Known(apis=mapped_apis(mappings.current())))
            stack.callback(readiness.stopped)
            await readiness.report()
            checker = asyncio.create_task(readiness.watch(), name="readiness-watcher")
            stack.push_async_callback(_stop, checker)
            yield

    return services
