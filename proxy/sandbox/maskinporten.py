"""A strict fake of Maskinporten: well-known metadata, the JWT-bearer token endpoint and its JWKS.

It checks grants as the real service does (see :mod:`proxy.sandbox.maskinporten_grants`), answers
refusals with the documented ``MP-nnn`` codes, and issues access tokens with the documented claims
(``consumer``, and for system users ``authorization_details`` with ``systemuser_id``, ``system_id``
and ``systemuser_org``), signed by its own :class:`SigningKey`. The fake token exchange lives in
:mod:`proxy.sandbox.maskinporten_exchange` and is re-exported here.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from proxy.sandbox.maskinporten_exchange import install_token_exchange
from proxy.sandbox.maskinporten_grants import (
    CLOCK_SKEW,
    FakeSystemUser,
    GrantRejected,
    RegisteredClient,
    VerifiedGrant,
    verify_grant,
)
from proxy.sandbox.tokens import Clock, SigningKey, mint_access_token

__all__ = [
    "FakeMaskinporten",
    "FakeSystemUser",
    "GrantRejected",
    "RegisteredClient",
    "create_maskinporten_app",
    "install_token_exchange",
]

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
BODY_DEADLINE_SECONDS = 10.0

FAKE_MASKINPORTEN: web.AppKey[FakeMaskinporten] = web.AppKey("fake_maskinporten")


@dataclass
class FakeMaskinporten:
    """The fake's state: clients, system users, used ``jti`` values and counters for tests.

    ``issuer`` (with trailing slash) may be set once the server is bound; left ``None``, it is taken
    from the first request's host.
    """

    signing_key: SigningKey
    issuer: str | None = None
    clock: Clock = time.time
    #: ``expires_in`` of the access tokens (the real one uses the scopes' ``at_max_age``).
    token_lifetime: int = 120
    clients: dict[str, RegisteredClient] = field(default_factory=dict)
    system_users: dict[tuple[str, str, str], FakeSystemUser] = field(default_factory=dict)
    #: Grants answered with a token, per (client_id, system-user org or None).
    grants: Counter[tuple[str, str | None]] = field(default_factory=Counter)
    #: Refusals answered, per MP code (or OAuth error when there is none).
    refusals: Counter[str] = field(default_factory=Counter)
    #: The last assertions received (tests scan logs for them); never logged by the fake.
    assertions_seen: deque[str] = field(default_factory=lambda: deque(maxlen=2000), repr=False)
    #: The last access tokens issued, likewise for tests.
    tokens_issued: deque[str] = field(default_factory=lambda: deque(maxlen=2000), repr=False)
    #: While set, the token endpoint answers this HTTP status (an outage, e.g. 503) to every grant.
    outage_status: int | None = None
    #: Grants answered with ``outage_status``.
    outage_answers: int = 0
    _used_jti: dict[str, float] = field(default_factory=dict, repr=False)
    _holds: dict[str | None, asyncio.Event] = field(default_factory=dict, repr=False)

    def register_client(
        self,
        client_id: str,
        *,
        owner_org: str,
        scopes: Iterable[str],
        keys: Mapping[str, rsa.RSAPublicKey] | None = None,
        trusted_cas: Iterable[x509.Certificate] = (),
        system_id: str | None = None,
    ) -> RegisteredClient:
        """Register a client with its keys (by kid) or trusted CAs (for x5c), scopes and system."""
        client = RegisteredClient(
            client_id=client_id,
            owner_org=owner_org,
            scopes=frozenset(scopes),
            keys=dict(keys or {}),
            trusted_cas=tuple(trusted_cas),
            system_id=system_id,
        )
        self.clients[client_id] = client
        return client

    def add_system_user(self, system_id: str, org: str, *, external_ref: str | None = None) -> FakeSystemUser:
        """Create (approve) a system user of ``org`` for ``system_id``; externalRef defaults to the org."""
        user = FakeSystemUser(system_id, org, external_ref or org, str(uuid.uuid4()))
        self.system_users[(user.system_id, user.org, user.external_ref)] = user
        return user

    def find_system_user(self, system_id: str, org: str, external_ref: str) -> FakeSystemUser | None:
        """The system user for (system, org, externalRef), if one was approved."""
        return self.system_users.get((system_id, org, external_ref))

    def grant_count(self, client_id: str, org: str | None = None) -> int:
        """How many grants for ``client_id`` (and system-user ``org``, None = own org) got a token."""
        return self.grants[(client_id, org)]

    def hold(self, org: str | None) -> asyncio.Event:
        """Make token requests for ``org`` wait (after all checks) until the returned event is set."""
        return self._holds.setdefault(org, asyncio.Event())

    def issue(self, grant: VerifiedGrant, now: float) -> dict[str, object]:
        """Burn the grant's ``jti`` and answer it with an access token."""
        self._forget_expired_jti(now)
        if grant.jti is not None:
            if grant.jti in self._used_jti:
                raise GrantRejected(
                    "invalid_grant", "MP-012", "Invalid assertion. Grant is used before (jti)"
                )
            self._used_jti[grant.jti] = grant.exp + CLOCK_SKEW
        user = grant.system_user
        client = grant.client
        token = mint_access_token(
            self.signing_key,
            issuer=self._issuer(),
            consumer_org=client.owner_org,
            scopes=grant.scope,
            client_id=client.client_id,
            system_user_org=user.org if user else None,
            system_user_id=user.systemuser_id if user else None,
            system_id=user.system_id if user else None,
            lifetime=self.token_lifetime,
            now=now,
            extra={"client_amr": "virksomhetssertifikat" if grant.via_certificate else "private_key_jwt"},
        )
        self.tokens_issued.append(token)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "scope": grant.scope,
        }

    def _forget_expired_jti(self, now: float) -> None:
        for jti in [j for j, until in self._used_jti.items() if until < now]:
            del self._used_jti[jti]

    def _issuer(self) -> str:
        assert self.issuer is not None, "the fake Maskinporten's issuer is set on the first request"
        return self.issuer

    def metadata(self) -> dict[str, object]:
        """The well-known document."""
        issuer = self._issuer()
        return {
            "issuer": issuer,
            "token_endpoint": issuer + "token",
            "jwks_uri": issuer + "jwks",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "grant_types_supported": [GRANT_TYPE],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256", "RS384", "RS512"],
            "authorization_details_types_supported": ["urn:altinn:systemuser"],
        }


def _bind_issuer(fake: FakeMaskinporten, request: web.Request) -> None:
    if fake.issuer is None:
        fake.issuer = f"{request.scheme}://{request.host}/"


async def _well_known(request: web.Request) -> web.Response:
    fake = request.app[FAKE_MASKINPORTEN]
    _bind_issuer(fake, request)
    return web.json_response(fake.metadata())


async def _jwks(request: web.Request) -> web.Response:
    fake = request.app[FAKE_MASKINPORTEN]
    return web.json_response({"keys": [fake.signing_key.public_jwk()]})


def _refuse(fake: FakeMaskinporten, rejection: GrantRejected) -> web.Response:
    fake.refusals[rejection.code or rejection.error] += 1
    return web.json_response(rejection.body(), status=rejection.status)


async def _token(request: web.Request) -> web.Response:
    fake = request.app[FAKE_MASKINPORTEN]
    _bind_issuer(fake, request)
    if fake.outage_status is not None:
        await request.read()
        fake.outage_answers += 1
        return web.json_response({"error": "server_error"}, status=fake.outage_status)
    if request.content_type != "application/x-www-form-urlencoded":
        return _refuse(fake, GrantRejected("invalid_request", None, "Content-Type must be form-encoded"))
    async with asyncio.timeout(BODY_DEADLINE_SECONDS):
        form = await request.post()
    if form.get("grant_type") != GRANT_TYPE:
        return _refuse(fake, GrantRejected("unsupported_grant_type", None, "grant_type must be jwt-bearer"))
    assertion = form.get("assertion")
    if not isinstance(assertion, str) or not assertion:
        return _refuse(fake, GrantRejected("invalid_request", None, "Missing assertion"))
    fake.assertions_seen.append(assertion)
    now = fake.clock()
    try:
        grant = verify_grant(
            assertion,
            issuer=fake._issuer(),
            now=now,
            clients=fake.clients,
            find_system_user=fake.find_system_user,
        )
        answer = fake.issue(grant, now)
    except GrantRejected as rejection:
        return _refuse(fake, rejection)
    org = grant.system_user.org if grant.system_user else None
    hold = fake._holds.get(org)
    if hold is not None:
        await hold.wait()
    fake.grants[(grant.client.client_id, org)] += 1
    return web.json_response(answer)


def create_maskinporten_app(fake: FakeMaskinporten) -> web.Application:
    """An aiohttp application serving the fake at ``/.well-known/oauth-authorization-server``,
    ``/token`` and ``/jwks``."""
    app = web.Application(client_max_size=64 * 1024)
    app[FAKE_MASKINPORTEN] = fake
    app.router.add_get("/.well-known/oauth-authorization-server", _well_known)
    app.router.add_post("/token", _token)
    app.router.add_get("/jwks", _jwks)
    return app
