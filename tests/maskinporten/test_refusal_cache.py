"""Refused grants are remembered for a short while, so a retrying legacy client cannot flood Maskinporten."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from proxy.errors import ConfigurationError, TokenRefused, TokenUnavailable
from proxy.maskinporten.config import RefreshPolicy, Timeouts
from proxy.maskinporten.provider import TokenProvider
from proxy.maskinporten.request import TokenRequest
from tests.maskinporten.helpers import CLIENT_ID, CUSTOMER, SYSTEM_ID, World, system_user_request

#: An organisation whose customer has not approved a system user (yet).
UNAPPROVED = "310000027"


def replayed(kind: str = "system_user") -> float:
    return REGISTRY.get_sample_value("altinn_proxy_token_refusals_replayed_total", {"kind": kind}) or 0.0


async def refusal_of(provider: TokenProvider, request: TokenRequest) -> TokenRefused:
    with pytest.raises(TokenRefused) as caught:
        await provider.token(request)
    return caught.value


async def settle(provider: TokenProvider) -> None:
    """Let woken background tasks run, then wait for their fetches."""
    for _ in range(20):
        await asyncio.sleep(0)
    await provider.drain()


async def test_missing_system_user_costs_one_grant_per_period_then_succeeds_once_approved(
    world: World,
) -> None:
    provider = world.provider()
    request = system_user_request(UNAPPROVED, external_ref="erp-7")
    before = replayed()
    first = await refusal_of(provider, request)
    assert first.code == "MP-303"
    for _ in range(29):
        world.clock.advance(1)
        again = await refusal_of(provider, request)
        assert (again.code, str(again), again.extended) == (first.code, str(first), first.extended)
        assert again is not first
    assert world.fake.refusals["MP-303"] == 1
    assert provider.stats.fetches == 1
    assert provider.stats.refusals_replayed == 29
    assert replayed() == before + 29

    world.clock.advance(1)  # the period (30 s by default) has passed: Maskinporten is asked again
    assert (await refusal_of(provider, request)).code == "MP-303"
    assert world.fake.refusals["MP-303"] == 2

    world.fake.add_system_user(SYSTEM_ID, UNAPPROVED, external_ref="erp-7")
    assert (await refusal_of(provider, request)).code == "MP-303"  # still remembered
    world.clock.advance(30)
    token = await provider.token(request)
    assert await provider.token(request) == token
    assert world.fake.grant_count(CLIENT_ID, UNAPPROVED) == 1
    assert world.fake.refusals["MP-303"] == 2
    await provider.close()


async def test_concurrent_callers_share_one_refused_grant(world: World) -> None:
    provider = world.provider()
    outcomes = await asyncio.gather(
        *(provider.token(system_user_request(UNAPPROVED)) for _ in range(50)), return_exceptions=True
    )
    assert all(isinstance(outcome, TokenRefused) and outcome.code == "MP-303" for outcome in outcomes)
    assert world.fake.refusals["MP-303"] == 1
    assert provider.stats.fetches == 1
    await provider.close()


async def test_refusals_are_remembered_per_key(world: World) -> None:
    provider = world.provider()
    await refusal_of(provider, system_user_request(UNAPPROVED))
    await refusal_of(provider, system_user_request(UNAPPROVED, external_ref="erp-9"))
    assert await provider.token(system_user_request(CUSTOMER))  # an approved org is not affected
    assert world.fake.refusals["MP-303"] == 2
    await provider.close()


async def test_a_network_failure_is_not_remembered(world: World) -> None:
    provider = world.provider(world.config(timeouts=Timeouts(connect=1.0, total=1.0)))
    # Another key of the same org first, so Maskinporten's metadata is already read.
    await provider.token(
        TokenRequest(scopes=frozenset({"altinn:broker.read"}), system_user_org=CUSTOMER, exchange=False)
    )
    release = world.fake.hold(CUSTOMER)
    try:
        with pytest.raises(TokenUnavailable):
            await provider.token(system_user_request())
    finally:
        release.set()
    assert await provider.token(system_user_request())  # at once, with no time passed
    assert provider.stats.refusals_replayed == 0
    assert provider.stats.fetches == 3
    await provider.close()


async def test_invalidate_forgets_the_refusal(world: World) -> None:
    provider = world.provider()
    request = system_user_request(UNAPPROVED)
    await refusal_of(provider, request)
    world.fake.add_system_user(SYSTEM_ID, UNAPPROVED)
    provider.invalidate(request, "no token was ever issued")
    assert await provider.token(request)
    assert world.fake.grant_count(CLIENT_ID, UNAPPROVED) == 1
    await provider.close()


async def test_a_refused_background_refresh_waits_for_the_period_too(world: World) -> None:
    provider = world.provider()
    await provider.start()
    request = system_user_request()
    first = await provider.token(request)
    world.fake.system_users.clear()  # the customer deleted the system user
    world.clock.advance(61)  # past half the lifetime: the refresher asks and is refused
    await settle(provider)
    assert world.fake.refusals["MP-303"] == 1
    for _ in range(28):  # the still-valid token keeps being handed out, without a grant every retry_delay
        world.clock.advance(1)
        assert await provider.token(request) == first
        await settle(provider)
    assert world.fake.refusals["MP-303"] == 1
    world.clock.advance(1)  # inside the safety margin: the token is not handed out, the refusal is
    assert (await refusal_of(provider, request)).code == "MP-303"
    assert world.fake.refusals["MP-303"] == 1

    world.fake.add_system_user(SYSTEM_ID, CUSTOMER)
    world.clock.advance(2)
    await settle(provider)
    assert await provider.token(request) != first
    assert world.fake.refusals["MP-303"] == 1
    await provider.close()


async def test_a_failed_refresh_of_a_token_past_its_margin_is_not_retried_in_a_loop(world: World) -> None:
    provider = world.provider(world.config(refresh=RefreshPolicy(refusal_cache_seconds=0)))
    await provider.start()
    request = system_user_request()
    await provider.token(request)
    world.fake.system_users.clear()
    world.clock.advance(95)  # inside the safety margin, before expiry: the token may not be handed out
    await settle(provider)
    assert world.fake.refusals["MP-303"] == 1
    assert list(provider.seconds_until_expiry()) == []
    await provider.close()


async def test_the_refusal_cache_is_bounded(world: World) -> None:
    provider = world.provider(world.config(refresh=RefreshPolicy(max_entries=2)))
    orgs = ["310000027", "310000035", "310000043"]
    for org in orgs:
        await refusal_of(provider, system_user_request(org))
    for org in orgs[1:]:
        await refusal_of(provider, system_user_request(org))
    assert world.fake.refusals["MP-303"] == 3
    await refusal_of(provider, system_user_request(orgs[0]))  # the oldest was dropped
    assert world.fake.refusals["MP-303"] == 4
    await provider.close()


async def test_the_refusal_cache_can_be_turned_off(world: World) -> None:
    provider = world.provider(world.config(refresh=RefreshPolicy(refusal_cache_seconds=0)))
    for _ in range(3):
        await refusal_of(provider, system_user_request(UNAPPROVED))
    assert world.fake.refusals["MP-303"] == 3
    assert provider.stats.refusals_replayed == 0
    await provider.close()


def test_a_negative_period_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="refusal_cache_seconds"):
        RefreshPolicy(refusal_cache_seconds=-1)
