"""The seam the fronts use: authenticate, validate the reportee, authorize, and only then call Altinn 3.

A miniature front over real sockets shows the order: a caller configured for org A asking for reportee
B gets the Altinn 2 authorization fault and the (fake) Altinn 3 API receives nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.errors import ProxyError
from proxy.identity.authenticator import Authenticator
from proxy.identity.credentials import StaticCredentials, parse_credentials
from proxy.identity.principal import LegacyCredentials
from proxy.identity.reportee import authorize, parse_reportee
from tests.identity.conftest import ORG_A, ORG_B, credentials_document

TIMEOUT = aiohttp.ClientTimeout(total=10)
ServerFactory = Callable[..., Awaitable[TestServer]]


async def test_org_a_asking_for_reportee_b_is_refused_before_any_outbound_call(
    aiohttp_server: ServerFactory,
) -> None:
    upstream_calls: list[str] = []

    async def altinn3(request: web.Request) -> web.Response:
        upstream_calls.append(request.path)
        return web.json_response({"ok": True})

    upstream_app = web.Application()
    upstream_app.router.add_get("/correspondence/api/v1/correspondence", altinn3)
    upstream = await aiohttp_server(upstream_app)
    authenticator = Authenticator(StaticCredentials(parse_credentials(credentials_document())))

    async def front(request: web.Request) -> web.Response:
        body = await request.json()
        try:
            principal = await authenticator.authenticate(
                LegacyCredentials(body["systemUserName"], body["systemPassword"]), request.remote or ""
            )
            grant = authorize(principal, parse_reportee(body["reportee"]))
        except ProxyError as error:
            return web.json_response(
                {"ErrorID": error.error_id, "message": error.message}, status=error.http_status
            )
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            url = upstream.make_url("/correspondence/api/v1/correspondence")
            async with session.get(url, params={"party": grant.org}) as response:
                return web.json_response(await response.json())

    front_app = web.Application()
    front_app.router.add_post("/legacy", front)
    proxy = await aiohttp_server(front_app)

    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        legacy = {"systemUserName": "eus", "systemPassword": "correct horse"}
        async with session.post(proxy.make_url("/legacy"), json={**legacy, "reportee": ORG_B}) as response:
            assert response.status == 403
            assert (await response.json())["ErrorID"] == 5
        assert upstream_calls == []
        async with session.post(proxy.make_url("/legacy"), json={**legacy, "reportee": "12345"}) as response:
            assert response.status == 400
        assert upstream_calls == []
        async with session.post(proxy.make_url("/legacy"), json={**legacy, "reportee": ORG_A}) as response:
            assert (response.status, await response.json()) == (200, {"ok": True})
        assert upstream_calls == ["/correspondence/api/v1/correspondence"]
