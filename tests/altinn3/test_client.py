"""Altinn3Client and the executor against small aiohttp servers on loopback.

The client sends and returns whatever status came back; what a status means is the plan's
judgement (:func:`proxy.mapping.problem.judge`), which these tests apply where they check it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.altinn3 import Altinn3Client, BreakerPolicy, Breakers, RetryPolicy, Timeouts, execute
from proxy.errors import InvalidField, UpstreamError, UpstreamUnavailable
from proxy.mapping import Engine, OperationRequest, Route, RoutingTable
from proxy.mapping.calls import Altinn3Call, BaseUrls, JsonBody, ResponseKind, StreamBody
from proxy.mapping.problem import judge
from proxy.maskinporten.request import TokenRequest
from proxy.pipeline.loading import load_mapping_set
from proxy.sandbox.observe import observing_middleware
from proxy.store import open_store
from tests.mapping.helpers import MAPPINGS
from tests.mapping.test_correspondence_agency import SERVICE_OWNER

TOKEN_REQUEST = TokenRequest(scopes=frozenset({"altinn:correspondence.write"}))


class Tokens:
    """A token source that hands out t1, t2... and records invalidations."""

    def __init__(self) -> None:
        self.issued = 0
        self.current: str | None = None
        self.invalidated: list[str] = []

    async def token(self, request: TokenRequest) -> str:
        if self.current is None:
            self.issued += 1
            self.current = f"secret-token-{self.issued}"
        return self.current

    def invalidate(self, request: TokenRequest, token: str) -> None:
        self.invalidated.append(token)
        if self.current == token:
            self.current = None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def _serve(aiohttp_server: Any, routes: web.RouteTableDef, *middlewares: Any) -> TestServer:
    app = web.Application(middlewares=list(middlewares))
    app.add_routes(routes)
    server: TestServer = await aiohttp_server(app)
    return server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client_session:
        yield client_session


def _client(
    session: aiohttp.ClientSession, server: TestServer, tokens: Tokens, **options: Any
) -> Altinn3Client:
    base = BaseUrls(platform=str(server.make_url("")).rstrip("/"))
    options.setdefault("sleep", Sleeps())
    return Altinn3Client(session, tokens, base, **options)


def _call(method: str = "GET", path: str = "/thing", **options: Any) -> Altinn3Call:
    options.setdefault("idempotent", method == "GET")
    return Altinn3Call(api="correspondence", method=method, path=path, token=TOKEN_REQUEST, **options)


async def test_a_401_invalidates_the_token_and_replays_once(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    routes = web.RouteTableDef()
    seen: list[str] = []

    @routes.get("/thing")
    async def thing(request: web.Request) -> web.Response:
        seen.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "Bearer secret-token-1":
            return web.json_response({"title": "expired"}, status=401)
        return web.json_response({"ok": True})

    tokens = Tokens()
    client = _client(session, await _serve(aiohttp_server, routes), tokens)

    response = await client.send(_call())

    assert response.json == {"ok": True}
    assert tokens.invalidated == ["secret-token-1"]
    assert seen == ["Bearer secret-token-1", "Bearer secret-token-2"]


async def test_a_second_401_is_returned_and_judged_an_upstream_error_without_the_token(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    routes = web.RouteTableDef()

    @routes.get("/thing")
    async def thing(request: web.Request) -> web.Response:
        return web.json_response({"title": "no", "status": 401, "errorCode": 4001}, status=401)

    tokens = Tokens()
    client = _client(session, await _serve(aiohttp_server, routes), tokens)
    call = _call()
    response = await client.send(call)
    assert response.status == 401
    with pytest.raises(UpstreamError) as raised:
        judge(call, response)
    assert raised.value.status == 401
    assert raised.value.error_code == "4001"
    assert "secret-token" not in f"{raised.value} {raised.value.extended}"
    assert len(tokens.invalidated) == 1


async def test_idempotent_calls_are_retried_on_503_with_bounded_backoff(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    routes = web.RouteTableDef()
    attempts = 0

    @routes.get("/thing")
    async def thing(request: web.Request) -> web.Response:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            return web.Response(status=503)
        return web.json_response(["done"])

    sleeps = Sleeps()
    retry = RetryPolicy(attempts=3, base_delay=0.5, max_delay=0.75)
    client = _client(session, await _serve(aiohttp_server, routes), Tokens(), sleep=sleeps, retry=retry)

    assert (await client.send(_call())).json == ["done"]
    assert attempts == 3
    assert sleeps.delays == [0.5, 0.75]


async def test_a_post_is_not_retried_after_a_503(aiohttp_server: Any, session: aiohttp.ClientSession) -> None:
    routes = web.RouteTableDef()
    attempts = 0

    @routes.post("/thing")
    async def thing(request: web.Request) -> web.Response:
        nonlocal attempts
        attempts += 1
        return web.json_response({"title": "busy", "traceId": "00-abc"}, status=503)

    client = _client(session, await _serve(aiohttp_server, routes), Tokens())
    call = _call("POST", body=JsonBody({"a": 1}))
    response = await client.send(call)
    assert (response.status, attempts) == (503, 1)
    with pytest.raises(UpstreamUnavailable) as raised:
        judge(call, response)
    assert raised.value.status == 503
    assert "00-abc" in (raised.value.extended or "")


async def test_problem_details_become_upstream_errors(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    routes = web.RouteTableDef()
    received: list[Any] = []

    @routes.post("/thing")
    async def thing(request: web.Request) -> web.Response:
        received.append(await request.json())
        problem = {
            "title": "Bad",
            "status": 400,
            "detail": "DueDateTime cannot be prior to today",
            "errorCode": 1008,
        }
        return web.json_response(problem, status=400, content_type="application/problem+json")

    client = _client(session, await _serve(aiohttp_server, routes), Tokens())
    call = _call("POST", body=JsonBody({"æ": "ø"}))
    response = await client.send(call)
    with pytest.raises(UpstreamError) as raised:
        judge(call, response)
    assert type(raised.value) is UpstreamError
    assert (raised.value.status, raised.value.error_code) == (400, "1008")
    assert "DueDateTime" in (raised.value.extended or "")
    assert received == [{"æ": "ø"}]


async def test_an_accepted_status_is_an_answer_for_the_plan(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    routes = web.RouteTableDef()

    @routes.get("/thing")
    async def thing(request: web.Request) -> web.Response:
        return web.json_response({"title": "gone"}, status=404)

    client = _client(session, await _serve(aiohttp_server, routes), Tokens())
    call = _call(accept_status=frozenset({404}))
    response = await client.send(call)
    assert response.status == 404
    assert judge(call, response) is response


async def test_the_circuit_opens_after_failures_and_half_opens_later(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    routes = web.RouteTableDef()
    attempts = 0
    healthy = False

    @routes.get("/thing")
    async def thing(request: web.Request) -> web.Response:
        nonlocal attempts
        attempts += 1
        return web.json_response({}) if healthy else web.Response(status=500)

    clock = Clock()
    breakers = Breakers(BreakerPolicy(failure_threshold=2, reset_after=30), clock=clock)
    client = _client(session, await _serve(aiohttp_server, routes), Tokens(), breakers=breakers, clock=clock)

    for _ in range(2):
        assert (await client.send(_call())).status == 500
    with pytest.raises(UpstreamUnavailable, match="not available") as raised:
        await client.send(_call())
    assert "circuit open" in (raised.value.extended or "")
    assert attempts == 2

    clock.now += 30
    healthy = True
    assert (await client.send(_call())).status == 200
    assert attempts == 3


async def test_a_slow_upstream_times_out_as_unavailable(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    routes = web.RouteTableDef()
    release = asyncio.Event()

    @routes.get("/thing")
    async def thing(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    client = _client(
        session,
        await _serve(aiohttp_server, routes),
        Tokens(),
        timeouts=Timeouts(total=0.05),
        retry=RetryPolicy(attempts=1),
    )
    try:
        with pytest.raises(UpstreamUnavailable) as raised:
            await client.send(_call())
        assert "timed out" in (raised.value.extended or "")
    finally:
        release.set()


async def test_a_refused_connection_is_unavailable(
    session: aiohttp.ClientSession, unused_tcp_port: int
) -> None:
    base = BaseUrls(platform=f"http://127.0.0.1:{unused_tcp_port}")
    sleeps = Sleeps()
    client = Altinn3Client(session, Tokens(), base, sleep=sleeps, retry=RetryPolicy(attempts=2))
    with pytest.raises(UpstreamUnavailable):
        await client.send(_call("POST", body=JsonBody({})))
    assert len(sleeps.delays) == 1  # never sent, so even a POST is tried again once


async def test_streams_flow_both_ways_without_buffering(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    routes = web.RouteTableDef()

    @routes.post("/upload")
    async def upload(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        async for chunk in request.content.iter_chunked(1024):
            await response.write(chunk.upper())
        await response.write_eof()
        return response

    async def source() -> AsyncIterator[bytes]:
        for part in (b"abc", b"def"):
            yield part

    client = _client(session, await _serve(aiohttp_server, routes), Tokens())
    call = _call("POST", "/upload", body=StreamBody(source()), response=ResponseKind.STREAM)
    response = await client.send(call)
    assert response.stream is not None
    assert b"".join([chunk async for chunk in response.stream]) == b"ABCDEF"


def _insert_request(reference: Path, code: str = "4711") -> OperationRequest:
    from tests.mapping.test_correspondence_agency import _request

    return OperationRequest(
        "CorrespondenceAgencyExternalBasic",
        "InsertCorrespondenceBasicV2",
        _request(reference, attachments=[("a.pdf", b"%PDF")]),
        SERVICE_OWNER,
    )


async def test_execute_runs_a_translated_operation_through_the_client(
    aiohttp_server: Any,
    session: aiohttp.ClientSession,
    reference: Path,
    altinn3_contract: Any,
    tmp_path: Path,
) -> None:
    routes = web.RouteTableDef()
    uploaded: list[bytes] = []

    @routes.post("/correspondence/api/v1/attachment")
    async def init(request: web.Request) -> web.Response:
        return web.json_response("0b7c3f0e-0000-4000-8000-000000000001")

    @routes.post("/correspondence/api/v1/attachment/{id}/upload")
    async def upload(request: web.Request) -> web.Response:
        uploaded.append(await request.read())
        return web.json_response({"status": "UploadProcessing"})

    @routes.get("/correspondence/api/v1/attachment/{id}")
    async def overview(request: web.Request) -> web.Response:
        # The malware scan reports after the executor's first pause.
        return web.json_response({"status": "Published" if paused else "UploadProcessing"})

    @routes.post("/correspondence/api/v1/correspondence")
    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        assert body["existingAttachments"] == ["0b7c3f0e-0000-4000-8000-000000000001"]
        return web.json_response(
            {"correspondences": [{"correspondenceId": "c0ffee00-0000-4000-8000-000000000002"}]}
        )

    paused: list[float] = []

    async def pause(seconds: float) -> None:
        paused.append(seconds)

    server = await _serve(aiohttp_server, routes, observing_middleware(altinn3_contract))
    client = _client(session, server, Tokens())
    mapping_set = await asyncio.to_thread(load_mapping_set, MAPPINGS)
    engine = Engine(lambda: mapping_set, RoutingTable.of([Route("4711", "1", resource_id="ttd-res")]))

    async with await open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        answer = await execute(engine.start(_insert_request(reference)), client, store, sleep=pause)
        receipt_id = int(answer.element().xpath("//*[local-name()='ReceiptId']/text()")[0])
        assert (
            await store.resolve_id("receipt", receipt_id, SERVICE_OWNER.org or "")
            == "c0ffee00-0000-4000-8000-000000000002"
        )

    assert uploaded == [b"%PDF"]
    assert paused == [0.5]  # on the injected clock: no test waits for real time
    assert altinn3_contract.checked == 5


async def test_execute_translates_upstream_refusals_through_the_fault_table(
    aiohttp_server: Any, session: aiohttp.ClientSession, reference: Path, tmp_path: Path
) -> None:
    routes = web.RouteTableDef()

    @routes.post("/correspondence/api/v1/attachment")
    async def init(request: web.Request) -> web.Response:
        body = json.dumps({"title": "Bad", "status": 400, "errorCode": 2013})
        return web.Response(text=body, status=400, content_type="application/problem+json")

    client = _client(session, await _serve(aiohttp_server, routes), Tokens())
    mapping_set = await asyncio.to_thread(load_mapping_set, MAPPINGS)
    engine = Engine(lambda: mapping_set, RoutingTable.of([Route("4711", "1", resource_id="ttd-res")]))

    async with await open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        with pytest.raises(InvalidField) as raised:
            await execute(engine.start(_insert_request(reference)), client, store)
    assert raised.value.error_id == 30001
    assert "2013" in (raised.value.extended or "")


async def _chunked(request: web.Request, parts: list[bytes], status: int = 200) -> web.StreamResponse:
    response = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for part in parts:
        await response.write(part)
        await asyncio.sleep(0)
    await response.write_eof()
    return response


async def test_an_oversized_chunked_json_answer_is_refused(
    aiohttp_server: Any, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("proxy.altinn3.client.MAX_JSON_BYTES", 1024)
    routes = web.RouteTableDef()

    @routes.get("/thing")
    async def thing(request: web.Request) -> web.StreamResponse:
        return await _chunked(request, [b'{"padding": "', b"x" * 4096, b'"}'])

    client = _client(session, await _serve(aiohttp_server, routes), Tokens())
    with pytest.raises(UpstreamError, match="answered more than expected"):
        await client.send(_call())


async def test_a_problem_split_across_chunks_keeps_its_error_code(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    routes = web.RouteTableDef()
    problem = json.dumps(
        {"title": "Bad", "status": 400, "errorCode": "CORR-1", "detail": "x" * 3000}
    ).encode()

    @routes.post("/thing")
    async def thing(request: web.Request) -> web.StreamResponse:
        return await _chunked(request, [problem[:10], problem[10:2000], problem[2000:]], status=400)

    client = _client(session, await _serve(aiohttp_server, routes), Tokens())
    call = _call("POST", body=JsonBody({"a": 1}))
    with pytest.raises(UpstreamError) as raised:
        judge(call, await client.send(call))
    assert raised.value.error_code == "CORR-1"
