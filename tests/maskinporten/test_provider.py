"""The real token provider against the fake Maskinporten and token exchange over loopback."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import jwt
import pytest
from prometheus_client import REGISTRY

from proxy.errors import TokenRefused, TokenUnavailable
from proxy.maskinporten.client import MaskinportenClient
from proxy.maskinporten.config import SigningMaterial, Timeouts
from proxy.maskinporten.request import TokenRequest
from tests.contract import ContractObserver
from tests.maskinporten.conftest import Keys
from tests.maskinporten.helpers import (
    CLIENT_ID,
    CUSTOMER,
    SERVICE_OWNER_ORG,
    SO_CLIENT_ID,
    SYSTEM_ID,
    VENDOR_ORG,
    SkewedClock,
    World,
    system_user_request,
)


def claims_of(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})


async def settle(world: World, provider_drain: object) -> None:
    """Let woken background tasks run, then wait for their fetches."""
    for _ in range(20):
        await asyncio.sleep(0)
    await provider_drain()  # type: ignore[operator]


async def test_system_user_token_carries_the_documented_claims(world: World) -> None:
    provider = world.provider()
    token = await provider.token(system_user_request())
    claims = claims_of(token)
    assert claims["iss"] == world.fake.issuer
    assert claims["consumer"] == {"authority": "iso6523-actorid-upis", "ID": f"0192:{VENDOR_ORG}"}
    details: dict[str, Any]
    [details] = claims["authorization_details"]
    assert details["systemuser_org"]["ID"] == f"0192:{CUSTOMER}"
    assert details["system_id"] == SYSTEM_ID
    assert world.fake.grant_count(CLIENT_ID, CUSTOMER) == 1
    await provider.close()


async def test_exchange_returns_an_altinn_token_for_thirty_minutes(
    world: World, altinn3_contract: ContractObserver
) -> None:
    provider = world.provider()
    token = await provider.token(system_user_request(exchange=True))
    assert altinn3_contract.checked == 1  # the exchange call was judged by Altinn's published contract
    claims = claims_of(token)
    assert claims["iss"] == world.altinn_issuer
    assert claims["urn:altinn:orgNumber"] == VENDOR_ORG
    assert claims["exp"] - claims["iat"] == 1800  # type: ignore[operator]
    assert "client_amr" not in claims
    assert "aud" not in claims
    # The exchanged token's 30 minutes, not Maskinporten's 120 s, govern the cache.
    world.clock.advance(600)
    assert await provider.token(system_user_request(exchange=True)) == token
    assert world.fake.grant_count(CLIENT_ID, CUSTOMER) == 1
    await provider.close()


async def test_service_owner_token_has_no_system_user_and_gets_its_org_code(world: World) -> None:
    provider = world.provider(world.config(client_id=SO_CLIENT_ID))
    request = TokenRequest(
        scopes=frozenset({"altinn:serviceowner", "altinn:correspondence.write"}), exchange=True
    )
    claims = claims_of(await provider.token(request))
    assert "authorization_details" not in claims
    assert claims["urn:altinn:org"] == "digdir"
    assert claims["urn:altinn:orgNumber"] == SERVICE_OWNER_ORG
    assert world.fake.grant_count(SO_CLIENT_ID, None) == 1
    await provider.close()


async def test_grant_signed_with_a_wrong_key_is_refused_with_mp_124(world: World, keys: Keys) -> None:
    wrong = SigningMaterial(private_key=keys.wrong.private_key, kid=keys.client.kid)
    provider = world.provider(world.config(signing=wrong))
    with pytest.raises(TokenRefused) as caught:
        await provider.token(system_user_request())
    assert caught.value.code == "MP-124"
    assert caught.value.error_id == 5
    assert str(caught.value).startswith("Maskinporten could not verify the grant's signature")
    await provider.close()


async def test_grant_from_a_host_with_a_wrong_clock_is_refused_with_mp_130(world: World) -> None:
    provider = world.provider(clock=SkewedClock(world.clock, skew=-300))
    with pytest.raises(TokenRefused) as caught:
        await provider.token(system_user_request())
    assert caught.value.code == "MP-130"
    assert "check that this host's clock is correct" in str(caught.value)
    await provider.close()


async def test_reused_grant_is_refused_with_mp_012(world: World) -> None:
    config = world.config()
    client = MaskinportenClient(config, world.session, world.clock, jti_factory=lambda: "the-same-jti")
    provider = world.provider(config, client=client)
    request = system_user_request()
    first = await provider.token(request)
    provider.invalidate(request, first)
    with pytest.raises(TokenRefused) as caught:
        await provider.token(request)
    assert caught.value.code == "MP-012"
    assert "jti reused" in str(caught.value)
    await provider.close()


async def test_missing_system_user_is_refused_with_an_operator_message(world: World) -> None:
    provider = world.provider()
    with pytest.raises(TokenRefused) as caught:
        await provider.token(system_user_request("310000027", external_ref="erp-7"))
    assert caught.value.code == "MP-303"
    assert str(caught.value) == (
        f"no system user for organisation 310000027 and system {SYSTEM_ID} (externalRef erp-7): "
        "ask the customer to approve a system user request"
    )
    assert world.fake.refusals["MP-303"] == 1
    await provider.close()


async def test_a_thousand_concurrent_callers_cause_one_grant(world: World) -> None:
    provider = world.provider()
    release = world.fake.hold(CUSTOMER)
    callers: list[asyncio.Task[str]] = []
    for _ in range(10):  # in batches: a thousand debug-mode task creations in one step would hold the loop
        callers += [asyncio.create_task(provider.token(system_user_request())) for _ in range(100)]
        await asyncio.sleep(0)
    for _ in range(50):
        await asyncio.sleep(0)
    assert not any(caller.done() for caller in callers)
    release.set()
    tokens = await asyncio.gather(*callers)
    assert len(set(tokens)) == 1
    assert world.fake.grant_count(CLIENT_ID, CUSTOMER) == 1
    assert provider.stats.fetches == 1
    await provider.close()


async def test_fifty_orgs_get_fifty_grants_and_a_hanging_org_delays_none(world: World) -> None:
    orgs = [f"3100{index:05d}" for index in range(50)]
    for org in orgs:
        world.fake.add_system_user(SYSTEM_ID, org)
    provider = world.provider()
    release = world.fake.hold(orgs[0])
    hanging = asyncio.create_task(provider.token(system_user_request(orgs[0])))
    others = await asyncio.gather(*(provider.token(system_user_request(org)) for org in orgs[1:]))
    assert not hanging.done()
    assert len(set(others)) == 49
    assert all(world.fake.grant_count(CLIENT_ID, org) == 1 for org in orgs[1:])
    release.set()
    await hanging
    assert sum(world.fake.grants.values()) == 50
    await provider.close()


async def test_steady_traffic_over_ten_minutes_never_waits_for_a_fetch(world: World) -> None:
    assert world.fake.token_lifetime == 120
    provider = world.provider()
    await provider.start()
    request = system_user_request()
    await provider.token(request)  # the one cold fetch
    for _ in range(600):
        world.clock.advance(1)
        tokens = await asyncio.gather(*(provider.token(request) for _ in range(3)))
        assert all(claims_of(token)["exp"] > world.clock.wall() for token in tokens)  # type: ignore[operator]
        await settle(world, provider.drain)
    assert provider.stats.waits == 1
    assert provider.stats.hits == 1800
    # refreshed at about half the lifetime: once a minute
    assert world.fake.grant_count(CLIENT_ID, CUSTOMER) == 11
    await provider.close()


async def test_background_refresher_renews_used_keys_and_lets_idle_ones_lapse(world: World) -> None:
    provider = world.provider()
    await provider.start()
    request = system_user_request()
    first = await provider.token(request)
    world.clock.advance(61)
    await settle(world, provider.drain)
    assert provider.stats.background_refreshes == 1
    second = await provider.token(request)
    assert second != first
    assert provider.stats.waits == 1
    world.clock.advance(61)
    await settle(world, provider.drain)
    world.clock.advance(61)
    await settle(world, provider.drain)
    # used once since the refresh: renewed once more, then idle, so not renewed again
    assert world.fake.grant_count(CLIENT_ID, CUSTOMER) == 3
    await provider.close()


async def test_invalidate_after_a_401_yields_a_fresh_token(world: World) -> None:
    provider = world.provider()
    request = system_user_request()
    first = await provider.token(request)
    provider.invalidate(request, first)
    second = await provider.token(request)
    assert second != first
    provider.invalidate(request, first)  # a late 401 for the old token keeps the new one
    assert await provider.token(request) == second
    assert world.fake.grant_count(CLIENT_ID, CUSTOMER) == 2
    await provider.close()


async def test_every_difference_in_the_request_is_its_own_cache_key(world: World) -> None:
    world.fake.add_system_user(SYSTEM_ID, CUSTOMER, external_ref="erp-1")
    provider = world.provider()
    requests = [
        system_user_request(),
        system_user_request(exchange=True),
        system_user_request(external_ref="erp-1"),
        TokenRequest(scopes=frozenset({"altinn:broker.read"}), system_user_org=CUSTOMER, exchange=False),
    ]
    tokens = [await provider.token(request) for request in requests]
    assert len(set(tokens)) == 4
    assert [await provider.token(request) for request in requests] == tokens
    assert world.fake.grant_count(CLIENT_ID, CUSTOMER) == 4
    await provider.close()


async def test_failed_refresh_keeps_serving_the_valid_token_then_reports_the_refusal(world: World) -> None:
    provider = world.provider()
    request = system_user_request()
    token = await provider.token(request)
    world.fake.system_users.clear()  # the customer deleted the system user
    world.clock.advance(61)
    assert await provider.token(request) == token
    await provider.drain()
    assert provider.stats.failures == 1
    world.clock.advance(30)  # inside the safety margin: no longer handed out
    with pytest.raises(TokenRefused) as caught:
        await provider.token(request)
    assert caught.value.code == "MP-303"
    await provider.close()


async def test_timeout_is_unavailable_not_refused(world: World) -> None:
    provider = world.provider(world.config(timeouts=Timeouts(connect=1.0, total=1.0)))
    await provider.token(
        TokenRequest(scopes=frozenset({"altinn:broker.read"}), system_user_org=CUSTOMER, exchange=False)
    )
    release = world.fake.hold(CUSTOMER)
    try:
        with pytest.raises(TokenUnavailable, match="timed out"):
            await provider.token(system_user_request())
    finally:
        release.set()
    await provider.close()


async def test_unreachable_maskinporten_is_unavailable(world: World) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = world.config(well_known_url=f"http://127.0.0.1:{port}/.well-known/oauth-authorization-server")
    provider = world.provider(config)
    with pytest.raises(TokenUnavailable, match="cannot read Maskinporten's metadata"):
        await provider.token(system_user_request())
    await provider.close()


async def test_metrics_count_fetches_hits_and_expiry(world: World) -> None:
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before_ok = sample("altinn_proxy_token_fetches_total", kind="system_user", outcome="ok")
    before_refused = sample("altinn_proxy_token_fetches_total", kind="system_user", outcome="refused")
    before_hits = sample("altinn_proxy_token_cache_hits_total", kind="system_user")
    provider = world.provider()
    await provider.token(system_user_request())
    await provider.token(system_user_request())
    with pytest.raises(TokenRefused):
        await provider.token(system_user_request("310000035"))
    assert sample("altinn_proxy_token_fetches_total", kind="system_user", outcome="ok") == before_ok + 1
    assert (
        sample("altinn_proxy_token_fetches_total", kind="system_user", outcome="refused")
        == before_refused + 1
    )
    assert sample("altinn_proxy_token_cache_hits_total", kind="system_user") == before_hits + 1
    assert sample("altinn_proxy_token_fetch_seconds_count", kind="system_user") >= 2
    assert 0 < sample("altinn_proxy_token_seconds_until_expiry", kind="system_user") <= 120
    await provider.close()
