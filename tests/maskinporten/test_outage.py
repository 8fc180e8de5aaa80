"""Maskinporten down for ten minutes (on the injected clock): cached tokens carry the calls until
they expire, then every call fails at once with a clear fault, and the first call after the outage
succeeds without a restart and without waiting (an outage is never remembered as a refusal)."""

from __future__ import annotations

import pytest

from proxy.errors import TokenRefused, TokenUnavailable
from proxy.maskinporten.config import RefreshPolicy
from tests.maskinporten.helpers import World, system_user_request
from tests.maskinporten.test_refusal_cache import settle

OUTAGE_SECONDS = 600


async def test_a_ten_minute_outage_is_bridged_then_fails_fast_then_recovers(world: World) -> None:
    provider = world.provider()
    request = system_user_request()
    token = await provider.token(request)  # 120 s lifetime at the fake, refreshed from 60 s on
    world.fake.outage_status = 503
    outage_started = world.clock.monotonic()

    # Until the safety margin the cached token is handed out; background refreshes fail meanwhile.
    for _ in range(8):
        world.clock.advance(10)
        assert await provider.token(request) == token
        await settle(provider)
    assert provider.stats.failures >= 1

    # Past it, each call tries Maskinporten once and fails at once with what an operator needs.
    failures = 0
    while world.clock.monotonic() - outage_started < OUTAGE_SECONDS:
        world.clock.advance(30)
        with pytest.raises(TokenUnavailable, match="answered HTTP 503") as caught:
            await provider.token(request)
        assert not isinstance(caught.value, TokenRefused)
        failures += 1
    assert failures >= 15
    assert provider.stats.refusals_replayed == 0, "an outage was remembered as a refusal"

    # Maskinporten is back: the very next call gets a token, with no time passing.
    world.fake.outage_status = None
    fresh = await provider.token(request)
    assert fresh != token
    assert await provider.token(request) == fresh  # and it is cached again
    await provider.close()


async def test_a_refusal_during_an_outage_delays_recovery_by_at_most_the_refusal_period(world: World) -> None:
    policy = RefreshPolicy(refusal_cache_seconds=30.0)
    provider = world.provider(world.config(refresh=policy))
    request = system_user_request()
    world.fake.outage_status = 400  # a broken Maskinporten answering client errors
    with pytest.raises(TokenRefused):
        await provider.token(request)
    world.fake.outage_status = None
    with pytest.raises(TokenRefused):  # remembered, so Maskinporten is not flooded...
        await provider.token(request)
    world.clock.advance(policy.refusal_cache_seconds)
    assert await provider.token(request)  # ...but only for the refusal period
    await provider.close()
