"""The fake Maskinporten and token exchange refuse what the real ones refuse, with their codes."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from proxy.sandbox.maskinporten import GRANT_TYPE
from tests.maskinporten.conftest import Keys
from tests.maskinporten.helpers import CLIENT_ID, CUSTOMER, START_WALL, SYSTEM_ID, VENDOR_ORG, World

CERT_CLIENT = "0e4f7f0c-5a55-4b8e-9a11-9c0a3b1e2d33"
_DROP = object()


def assertion(world: World, keys: Keys, *, header: dict[str, Any] | None = None, **overrides: object) -> str:
    now = int(START_WALL)
    claims: dict[str, Any] = {
        "aud": world.fake.issuer,
        "iss": CLIENT_ID,
        "scope": "altinn:broker.read",
        "iat": now,
        "exp": now + 120,
        "jti": str(uuid.uuid4()),
    }
    claims.update(overrides)
    claims = {name: value for name, value in claims.items() if value is not _DROP}
    return jwt.encode(
        claims, keys.client.private_key, algorithm="RS256", headers=header or {"kid": keys.client.kid}
    )


def system_user(org: str = CUSTOMER, **extra: object) -> list[dict[str, Any]]:
    return [
        {
            "type": "urn:altinn:systemuser",
            "systemuser_org": {"authority": "iso6523-actorid-upis", "ID": f"0192:{org}"},
            **extra,
        }
    ]


async def post_grant(world: World, grant: str) -> tuple[int, dict[str, Any]]:
    form = {"grant_type": GRANT_TYPE, "assertion": grant}
    async with world.session.post(world.maskinporten_url + "/token", data=form) as response:
        return response.status, await response.json()


async def refusal_code(world: World, grant: str) -> str:
    status, body = await post_grant(world, grant)
    assert status == 400, body
    assert set(body) == {"error", "error_description"}
    return str(body["error_description"]).rsplit("(", 1)[-1].rstrip(")")


def x5c(*certificates: Any) -> list[str]:
    return [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in certificates]


async def test_a_valid_system_user_grant_gets_a_documented_access_token(world: World, keys: Keys) -> None:
    status, body = await post_grant(world, assertion(world, keys, authorization_details=system_user()))
    assert status == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 120
    async with world.session.get(world.maskinporten_url + "/jwks") as response:
        jwks = await response.json()
    key = jwt.PyJWK(jwks["keys"][0]).key
    claims = jwt.decode(body["access_token"], key, algorithms=["RS256"], options={"verify_exp": False})
    assert claims["consumer"]["ID"] == f"0192:{VENDOR_ORG}"
    assert claims["client_amr"] == "private_key_jwt"
    [details] = claims["authorization_details"]
    assert details["system_id"] == SYSTEM_ID
    assert details["systemuser_id"] == [
        world.fake.find_system_user(SYSTEM_ID, CUSTOMER, CUSTOMER).systemuser_id
    ]  # type: ignore[union-attr]
    assert details["systemuser_org"]["ID"] == f"0192:{CUSTOMER}"


async def test_well_known_names_issuer_and_token_endpoint(world: World) -> None:
    async with world.session.get(
        world.maskinporten_url + "/.well-known/oauth-authorization-server"
    ) as response:
        metadata = await response.json()
    assert metadata["issuer"] == world.fake.issuer
    assert metadata["token_endpoint"] == f"{world.fake.issuer}token"


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"foo": "bar"}, "MP-011"),
        ({"exp": int(START_WALL) + 121}, "MP-130"),
        ({"iat": int(START_WALL) + 11, "exp": int(START_WALL) + 100}, "MP-130"),
        ({"iat": int(START_WALL) - 11, "exp": int(START_WALL) + 100}, "MP-130"),
        ({"iat": int(START_WALL) - 9, "exp": int(START_WALL) - 1}, "MP-130"),
        ({"aud": "https://maskinporten.no/token"}, "MP-110"),
        ({"iss": "unknown-client"}, "MP-100"),
        ({"scope": "altinn:broker.read altinn:instances.write"}, "MP-200"),
        ({"scope": _DROP}, "MP-011"),
        ({"authorization_details": system_user(extra="x")}, "MP-302"),
        ({"authorization_details": [{"type": "urn:altinn:other"}]}, "MP-301"),
        ({"authorization_details": system_user("310000027")}, "MP-303"),
        ({"authorization_details": system_user(externalRef="not-approved")}, "MP-303"),
        ({"authorization_details": system_user() + system_user()}, "MP-011"),
    ],
    ids=[
        "unknown-claim",
        "lifetime-over-120",
        "iat-in-future",
        "iat-too-old",
        "expired",
        "aud-token-endpoint",
        "unknown-client",
        "unregistered-scope",
        "missing-scope",
        "unknown-details-field",
        "unknown-details-type",
        "no-system-user-for-org",
        "wrong-external-ref",
        "two-parties",
    ],
)
async def test_the_fake_refuses_what_maskinporten_refuses(
    world: World, keys: Keys, overrides: dict[str, object], code: str
) -> None:
    assert await refusal_code(world, assertion(world, keys, **overrides)) == code
    assert world.fake.grants.total() == 0


async def test_within_ten_seconds_of_clock_skew_is_accepted(world: World, keys: Keys) -> None:
    status, _ = await post_grant(
        world, assertion(world, keys, iat=int(START_WALL) + 9, exp=int(START_WALL) + 120)
    )
    assert status == 200


async def test_wrong_key_and_unknown_kid_are_mp_124(world: World, keys: Keys) -> None:
    forged = jwt.encode(
        jwt.decode(assertion(world, keys), options={"verify_signature": False}),
        keys.wrong.private_key,
        algorithm="RS256",
        headers={"kid": keys.client.kid},
    )
    assert await refusal_code(world, forged) == "MP-124"
    assert await refusal_code(world, assertion(world, keys, header={"kid": "other"})) == "MP-124"


async def test_a_reused_jti_is_mp_012(world: World, keys: Keys) -> None:
    grant = assertion(world, keys, jti="once")
    status, _ = await post_grant(world, grant)
    assert status == 200
    assert await refusal_code(world, grant) == "MP-012"
    assert await refusal_code(world, assertion(world, keys, jti="once")) == "MP-012"


async def test_x5c_must_be_an_array_of_a_trusted_chain_of_the_owner(world: World, keys: Keys) -> None:
    world.fake.register_client(
        CERT_CLIENT, owner_org=VENDOR_ORG, scopes={"altinn:broker.read"}, trusted_cas=[keys.ca_certificate]
    )
    chain = x5c(keys.leaf_certificate, keys.ca_certificate)
    as_string = assertion(world, keys, iss=CERT_CLIENT, header={"x5c": chain[0]})
    assert await refusal_code(world, as_string) == "MP-123"
    status, body = await post_grant(world, assertion(world, keys, iss=CERT_CLIENT, header={"x5c": chain}))
    assert status == 200
    assert (
        jwt.decode(body["access_token"], options={"verify_signature": False})["client_amr"]
        == "virksomhetssertifikat"
    )
    both = assertion(world, keys, iss=CERT_CLIENT, header={"x5c": chain, "kid": "k"})
    assert await refusal_code(world, both) == "MP-011"
    world.fake.register_client(
        "other-org", owner_org="310000999", scopes={"altinn:broker.read"}, trusted_cas=[keys.ca_certificate]
    )
    assert (
        await refusal_code(world, assertion(world, keys, iss="other-org", header={"x5c": chain})) == "MP-122"
    )
    world.fake.register_client("untrusting", owner_org=VENDOR_ORG, scopes={"altinn:broker.read"})
    assert (
        await refusal_code(world, assertion(world, keys, iss="untrusting", header={"x5c": chain})) == "MP-120"
    )


async def test_the_fake_answers_oauth_errors_for_a_malformed_request(world: World) -> None:
    async with world.session.post(
        world.maskinporten_url + "/token", data={"grant_type": "client_credentials"}
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"] == "unsupported_grant_type"
    async with world.session.post(
        world.maskinporten_url + "/token", data={"grant_type": GRANT_TYPE}
    ) as response:
        assert (await response.json())["error"] == "invalid_request"


async def exchange(
    world: World, authorization: str | None, provider: str = "maskinporten", **headers: str
) -> tuple[int, str]:
    if authorization is not None:
        headers["Authorization"] = authorization
    url = f"{world.platform_url}/authentication/api/v1/exchange/{provider}"
    async with world.session.get(url, headers=headers) as response:
        return response.status, await response.text()


async def test_exchange_copies_claims_and_adds_altinn_claims(world: World, keys: Keys) -> None:
    _, body = await post_grant(world, assertion(world, keys, authorization_details=system_user()))
    mp_claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    status, token = await exchange(world, f"Bearer {body['access_token']}")
    assert status == 200
    claims = jwt.decode(
        token, keys.altinn.private_key.public_key(), algorithms=["RS256"], options={"verify_exp": False}
    )
    for copied in ("scope", "client_id", "consumer", "authorization_details", "jti"):
        assert claims[copied] == mp_claims[copied]
    assert claims["iss"] == world.altinn_issuer
    assert claims["urn:altinn:authenticatemethod"] == "maskinporten"
    assert claims["urn:altinn:authlevel"] == 3
    assert claims["exp"] - claims["iat"] == 1800
    assert "client_amr" not in claims
    assert "urn:altinn:org" not in claims  # the vendor is no service owner
    status, _ = await exchange(world, f"Bearer {token}")
    assert status == 401  # only Maskinporten tokens are exchanged


async def test_exchange_refuses_missing_expired_and_unknown_providers(world: World, keys: Keys) -> None:
    _, body = await post_grant(world, assertion(world, keys))
    assert (await exchange(world, None))[0] == 401
    assert (await exchange(world, f"Bearer {body['access_token']}", provider="idporten-x"))[0] == 400
    gone = await exchange(
        world, f"Bearer {body['access_token']}", **{"X-Altinn-EnterpriseUser-Authentication": "x"}
    )
    assert gone[0] == 410
    world.clock.advance(131)
    assert (await exchange(world, f"Bearer {body['access_token']}"))[0] == 401
