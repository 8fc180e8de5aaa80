"""The fake Altinn 3 authorized parties (end user and resource owner), over real sockets.

Every request goes to the ``altinn3_contract`` observer (the published access-management specs); the
refusals below are the ones Altinn's code makes (ALTINN3-API.md 5.1, 5.2).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from proxy.sandbox import fixtures
from proxy.sandbox.authorized_parties import install_authorized_parties
from proxy.sandbox.observe import observing_middleware
from proxy.sandbox.tokens import SigningKey, TokenVerifier, mint_access_token

MASKINPORTEN = "https://test.maskinporten.no/"
ALTINN = "https://platform.tt02.altinn.no/authentication/api/v1/openid/"
ENDUSER = "/accessmanagement/api/v1/enduser/authorizedparties"
RESOURCE_OWNER = "/accessmanagement/api/v1/resourceowner/authorizedparties"
NOW = 1_780_000_000.0


@pytest.fixture(scope="session")
def keys() -> tuple[SigningKey, SigningKey]:
    """Maskinporten's and Altinn's signing keys, made once outside any loop."""
    return SigningKey.generate("mp"), SigningKey.generate("altinn")


@pytest.fixture
async def client(
    keys: tuple[SigningKey, SigningKey], altinn3_contract: Any
) -> AsyncIterator[TestClient[Any, Any]]:
    """The fake on a loopback port, judged by the published contract."""
    maskinporten, altinn = keys
    app = web.Application(middlewares=[observing_middleware(altinn3_contract)])
    install_authorized_parties(
        app,
        verifier=TokenVerifier(MASKINPORTEN, maskinporten, ALTINN, altinn, clock=lambda: NOW),
        parties=fixtures.DEMO_PARTIES,
        person_orgs={fixtures.DEMO_PERSON: fixtures.DEMO_PERSON_ORGS},
        resources=(fixtures.CORRESPONDENCE_RESOURCE,),
    )
    async with TestClient(TestServer(app, host="127.0.0.1")) as running:
        yield running


def _token(keys: tuple[SigningKey, SigningKey], scopes: str, **options: Any) -> dict[str, str]:
    token = mint_access_token(keys[1], issuer=ALTINN, scopes=scopes, now=NOW, **options)
    return {"Authorization": f"Bearer {token}"}


def _system_user(
    keys: tuple[SigningKey, SigningKey], org: str, scopes: str = fixtures.AUTHORIZED_PARTIES_SCOPE
) -> dict[str, str]:
    return _token(keys, scopes, consumer_org=fixtures.VENDOR_ORG, system_user_org=org)


async def test_a_system_user_sees_its_own_organisation_as_a_flat_unpaged_list(
    client: TestClient[Any, Any], keys: tuple[SigningKey, SigningKey]
) -> None:
    response = await client.get(ENDUSER, headers=_system_user(keys, "310000019"))
    assert response.status == 200
    body = await response.json()
    assert body["links"] == {"next": None}
    [party] = body["data"]
    assert (party["organizationNumber"], party["type"], party["partyId"]) == (
        "310000019",
        "Organization",
        50100019,
    )
    narrowed = await client.get(
        ENDUSER,
        params={"partyFilter": "0e9b2c4a-1f3d-4c55-8a6e-310000027000"},
        headers=_system_user(keys, "310000019"),
    )
    assert (await narrowed.json())["data"] == []
    unknown_resource = await client.get(
        ENDUSER, params={"anyOfResourceIds": "ttd-nothing"}, headers=_system_user(keys, "310000019")
    )
    assert (await unknown_resource.json())["data"] == []


async def test_enduser_refusals(client: TestClient[Any, Any], keys: tuple[SigningKey, SigningKey]) -> None:
    assert (await client.get(ENDUSER)).status == 401
    assert (
        await client.get(ENDUSER, headers=_system_user(keys, "310000019", "altinn:broker.read"))
    ).status == 403
    # A plain enterprise token names no user and no system user.
    plain = _token(keys, fixtures.AUTHORIZED_PARTIES_SCOPE, consumer_org=fixtures.VENDOR_ORG)
    refused = await client.get(ENDUSER, headers=plain)
    assert refused.status == 401
    assert await refused.json() == "Unknown user type"


async def test_a_resource_owner_asks_for_a_persons_parties(
    client: TestClient[Any, Any], keys: tuple[SigningKey, SigningKey]
) -> None:
    owner = _token(
        keys,
        fixtures.AUTHORIZED_PARTIES_RESOURCE_OWNER_SCOPE,
        consumer_org=fixtures.SERVICE_OWNER_ORG,
        extra={"urn:altinn:org": fixtures.SERVICE_OWNER_CODE},
    )
    body = {"type": "urn:altinn:person:identifier-no", "value": fixtures.DEMO_PERSON}
    response = await client.post(RESOURCE_OWNER, json=body, headers=owner)
    assert response.status == 200
    found = await response.json()
    assert isinstance(found, list)
    assert sorted(p.get("organizationNumber") or p["personId"] for p in found) == sorted(
        [fixtures.DEMO_PERSON, *fixtures.DEMO_PERSON_ORGS]
    )
    filtered = await client.post(
        RESOURCE_OWNER,
        json={
            **body,
            "partyFilter": [{"type": "urn:altinn:organization:identifier-no", "value": "310000027"}],
        },
        headers=owner,
    )
    assert [p["organizationNumber"] for p in await filtered.json()] == ["310000027"]
    unknown = await client.post(
        RESOURCE_OWNER, json={"type": "urn:altinn:colour", "value": "red"}, headers=owner
    )
    assert unknown.status == 400
    assert (await unknown.json())["title"] == "Unknown attribute type"
    foreign = await client.post(RESOURCE_OWNER, params={"orgCode": "skd"}, json=body, headers=owner)
    assert foreign.status == 400
    without_scope = _token(keys, "altinn:serviceowner", consumer_org=fixtures.SERVICE_OWNER_ORG)
    assert (await client.post(RESOURCE_OWNER, json=body, headers=without_scope)).status == 403
    as_system_user = _token(
        keys,
        fixtures.AUTHORIZED_PARTIES_RESOURCE_OWNER_SCOPE,
        consumer_org=fixtures.VENDOR_ORG,
        system_user_org="310000019",
    )
    assert (await client.post(RESOURCE_OWNER, json=body, headers=as_system_user)).status == 403
