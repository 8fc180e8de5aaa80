"""Fixtures: keys generated once per session (off the event loop), and the fakes on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from proxy.maskinporten.config import SigningMaterial
from proxy.sandbox.maskinporten import FakeMaskinporten, create_maskinporten_app, install_token_exchange
from proxy.sandbox.observe import observing_middleware
from proxy.sandbox.tokens import SigningKey, TokenVerifier
from tests.contract import load_contract_module
from tests.maskinporten.helpers import (
    CLIENT_ID,
    CUSTOMER,
    SCOPES,
    SERVICE_OWNER_ORG,
    SO_CLIENT_ID,
    SYSTEM_ID,
    VENDOR_ORG,
    FakeClock,
    World,
    make_ca_and_leaf,
)

#: The Altinn issuer need not be the platform's own URL: verifiers only compare it.
ALTINN_ISSUER = "http://platform.altinn.invalid/authentication/api/v1/openid/"


@dataclass(frozen=True)
class Keys:
    maskinporten: SigningKey
    altinn: SigningKey
    client: SigningKey
    wrong: SigningKey
    ca: rsa.RSAPrivateKey
    ca_certificate: x509.Certificate
    leaf_certificate: x509.Certificate


@pytest.fixture(scope="session")
def keys() -> Keys:
    """RSA keys made once per session in a sync fixture, so no test's event loop pays for them."""
    client = SigningKey.generate("client-kid")
    ca = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_certificate, leaf = make_ca_and_leaf(VENDOR_ORG, client.private_key, ca)
    return Keys(
        maskinporten=SigningKey.generate("mp"),
        altinn=SigningKey.generate("altinn"),
        client=client,
        wrong=SigningKey.generate("client-kid"),
        ca=ca,
        ca_certificate=ca_certificate,
        leaf_certificate=leaf,
    )


@pytest.fixture
async def world(request: pytest.FixtureRequest, keys: Keys, aiohttp_server) -> AsyncIterator[World]:  # type: ignore[no-untyped-def]
    """Fake Maskinporten and a platform app with the fake exchange (judged by Altinn's contract)."""
    clock = FakeClock()
    fake = FakeMaskinporten(signing_key=keys.maskinporten, clock=clock.wall)
    fake.register_client(
        CLIENT_ID,
        owner_org=VENDOR_ORG,
        scopes=SCOPES | {"altinn:correspondence.read"},
        keys={keys.client.kid: keys.client.private_key.public_key()},
        system_id=SYSTEM_ID,
    )
    fake.register_client(
        SO_CLIENT_ID,
        owner_org=SERVICE_OWNER_ORG,
        scopes={"altinn:serviceowner", "altinn:correspondence.write"},
        keys={keys.client.kid: keys.client.private_key.public_key()},
    )
    fake.add_system_user(SYSTEM_ID, CUSTOMER)
    mp_server = await aiohttp_server(create_maskinporten_app(fake))
    fake.issuer = str(mp_server.make_url("/"))

    observer = request.getfixturevalue("altinn3_contract") if load_contract_module() else None
    platform = web.Application(middlewares=[observing_middleware(observer)])
    install_token_exchange(
        platform,
        verifier=TokenVerifier(
            maskinporten_issuer=fake.issuer,
            maskinporten_key=keys.maskinporten,
            altinn_issuer=ALTINN_ISSUER,
            altinn_key=keys.altinn,
            clock=clock.wall,
        ),
        altinn_key=keys.altinn,
        altinn_issuer=ALTINN_ISSUER,
        service_owners={SERVICE_OWNER_ORG: "digdir"},
        clock=clock.wall,
    )
    platform_server = await aiohttp_server(platform)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield World(
            clock=clock,
            fake=fake,
            maskinporten_url=str(mp_server.make_url("")).rstrip("/"),
            platform_url=str(platform_server.make_url("")).rstrip("/"),
            altinn_issuer=ALTINN_ISSUER,
            session=session,
            signing=SigningMaterial(private_key=keys.client.private_key, kid=keys.client.kid),
        )
