"""The outbound Altinn 3 client: tokens, timeouts, retries, the 401 replay, circuit breaking.

It sends and returns what came back; what a status *means* (an answer, an accepted error, a
refusal the fault table translates) is decided by the plan (:func:`proxy.mapping.problem.judge`),
so live traffic, ``explain`` and the load-time examples share one judgement.

Invariants:
* Every request carries an explicit ``aiohttp.ClientTimeout``; streamed transfers have no total
  deadline but a per-read one, so a stalled peer is still cut off.
* A 401 invalidates that exact token and replays the call once with a fresh one.
* Only replayable bodies are sent twice (a stream from the legacy request is read once). A call is
  retried on 502/503/504 and connection failures (also an answer that breaks off or stalls after its
  headers) only when it is idempotent, except that a refused connection (the request never left) is
  retried for any replayable call.
* An error status (4xx, or 5xx once retries are spent) is returned with its body read (bounded).
  Only the absence of an answer raises: :class:`UpstreamUnavailable` for a connection failure, a
  timeout or an open circuit, :class:`UpstreamError` for an answer too large or not JSON. Tokens
  never reach a message, a log line or a metric.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from proxy.altinn3 import metrics
from proxy.altinn3.breaker import Breakers
from proxy.errors import ClientError as LegacyClientError
from proxy.errors import UpstreamError, UpstreamUnavailable
from proxy.mapping.calls import (
    Altinn3Call,
    Altinn3Response,
    BaseUrls,
    BytesBody,
    JsonBody,
    MultipartBody,
    ResponseKind,
    StreamBody,
)
from proxy.maskinporten.request import TokenRequest, TokenSource
from proxy.observability.metrics import bound

Sleep = Callable[[float], Awaitable[None]]
MAX_JSON_BYTES = 16 * 1024 * 1024
#: Largest document read whole (Altinn 2 inlined attachments of at most 30 MB in base64 answers).
MAX_INLINE_BYTES = 64 * 1024 * 1024
_MAX_ERROR_BYTES = 64 * 1024
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Timeouts:
    """Deadlines for one Altinn 3 request, in seconds."""

    total: float = 30.0
    connect: float = 5.0
    #: Per read of a streamed request or response (these have no total deadline).
    stream_read: float = 60.0

    def for_call(self, call: Altinn3Call) -> aiohttp.ClientTimeout:
        """The ClientTimeout for ``call``."""
        if call.response is ResponseKind.STREAM or isinstance(call.body, StreamBody):
            return aiohttp.ClientTimeout(total=None, sock_connect=self.connect, sock_read=self.stream_read)
        return aiohttp.ClientTimeout(total=self.total, sock_connect=self.connect)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failed call is tried again."""

    attempts: int = 3
    base_delay: float = 0.2
    max_delay: float = 2.0
    statuses: frozenset[int] = frozenset({502, 503, 504})

    def delay(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (1-based): exponential, capped."""
        return float(min(self.max_delay, self.base_delay * 2 ** (retry - 1)))


AnswerObserver = Callable[[TokenRequest, str, int], None]
"""``observe(token_request, api, status)``: told every Altinn 3 answer status (e.g. onboarding state)."""


class Altinn3Client:
    """Sends :class:`Altinn3Call` values to Altinn 3 and returns :class:`Altinn3Response` values."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        token_source: TokenSource,
        base_urls: BaseUrls,
        *,
        timeouts: Timeouts = Timeouts(),
        retry: RetryPolicy = RetryPolicy(),
        breakers: Breakers | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        observe: AnswerObserver | None = None,
    ) -> None:
        self._session = session
        self._observe = observe
        self._tokens = token_source
        self._urls = base_urls
        self._timeouts = timeouts
        self._retry = retry
        self._breakers = breakers or Breakers(clock=clock)
        self._clock = clock
        self._sleep = sleep

    async def send(self, call: Altinn3Call) -> Altinn3Response:
        """Send ``call``; the response, whatever its status (see the module invariants)."""
        # Sent as built: yarl would otherwise decode what a path parameter encoded (%3B to ;).
        url = URL(self._urls.resolve(call), encoded=True)
        breaker = self._breakers.for_host(url.raw_authority)
        replayable = not isinstance(call.body, StreamBody)
        timeout = self._timeouts.for_call(call)
        retries = 0
        replayed_401 = False
        while True:
            token = await self._tokens.token(call.token)
            try:
                breaker.before_call()
            except UpstreamUnavailable:
                metrics.REJECTED_BY_BREAKER.labels(call.api).inc()
                raise
            started = self._clock()
            try:
                response = await self._session.request(
                    call.method,
                    url,
                    headers=self._headers(call, token),
                    data=_payload(call),
                    timeout=timeout,
                    allow_redirects=False,
                )
            except (aiohttp.ClientError, TimeoutError) as error:
                refused = _legacy_body_error(error)
                if refused is not None:
                    # The legacy client's upload failed (stalled, too large, shorter than announced):
                    # its fault, not Altinn 3's, so neither the breaker nor a retry applies.
                    raise refused from None
                breaker.record_failure()
                metrics.REQUESTS.labels(call.api, call.method, "error").inc()
                never_sent = isinstance(error, aiohttp.ClientConnectorError)
                if replayable and (call.idempotent or never_sent) and retries + 1 < self._retry.attempts:
                    retries += 1
                    metrics.RETRIES.labels(call.api, "connection").inc()
                    await self._sleep(self._retry.delay(retries))
                    continue
                raise _unavailable(call, error) from None
            bound(metrics.LATENCY, call.api, call.method).observe(max(0.0, self._clock() - started))
            status = response.status
            bound(metrics.REQUESTS, call.api, call.method, metrics.status_class(status)).inc()
            if self._observe is not None:
                self._observe(call.token, call.api, status)

            if status == 401 and replayable and not replayed_401:
                response.release()
                self._tokens.invalidate(call.token, token)
                replayed_401 = True
                continue
            if status >= 500:
                body = await _read_quietly(response)
                breaker.record_failure()
                if (
                    status in self._retry.statuses
                    and call.idempotent
                    and replayable
                    and retries + 1 < self._retry.attempts
                ):
                    retries += 1
                    metrics.RETRIES.labels(call.api, str(status)).inc()
                    await self._sleep(self._retry.delay(retries))
                    continue
                return Altinn3Response(status, dict(response.headers), content=body)
            breaker.record_success()
            if status >= 400:
                headers = dict(response.headers)
                return Altinn3Response(status, headers, content=await _read_quietly(response))
            try:
                return await _answer(call, response)
            except UpstreamUnavailable:  # the answer broke off or stalled after its headers
                breaker.record_failure()
                if replayable and call.idempotent and retries + 1 < self._retry.attempts:
                    retries += 1
                    metrics.RETRIES.labels(call.api, "connection").inc()
                    await self._sleep(self._retry.delay(retries))
                    continue
                raise

    @staticmethod
    def _headers(call: Altinn3Call, token: str) -> dict[str, str]:
        headers = dict(call.headers)
        headers["Authorization"] = f"Bearer {token}"
        if call.response is ResponseKind.JSON:
            headers.setdefault("Accept", "application/json")
        body = call.body
        if isinstance(body, JsonBody):
            headers["Content-Type"] = "application/json"
        elif isinstance(body, BytesBody | StreamBody):
            headers["Content-Type"] = body.content_type
            if isinstance(body, StreamBody) and body.length is not None:
                headers["Content-Length"] = str(body.length)
        return headers


def _payload(call: Altinn3Call) -> Any:
    body = call.body
    if body is None:
        return None
    if isinstance(body, JsonBody):
        return json.dumps(body.value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if isinstance(body, BytesBody):
        return body.data
    if isinstance(body, MultipartBody):
        form = aiohttp.FormData()
        for part in body.parts:
            form.add_field(part.name, part.value, filename=part.filename, content_type=part.content_type)
        return form
    return body.source


def _legacy_body_error(error: BaseException) -> LegacyClientError | None:
    """The legacy client's own error that aborted a streamed body (aiohttp wraps it), if that was the cause."""
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, LegacyClientError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _unavailable(call: Altinn3Call, error: BaseException) -> UpstreamUnavailable:
    reason = "timed out" if isinstance(error, TimeoutError) else type(error).__name__
    return UpstreamUnavailable(
        f"Altinn 3 ({call.api}) is not available right now",
        extended=f"Altinn 3 {call.api} {call.method}: {reason}",
    )


async def _read_quietly(response: aiohttp.ClientResponse) -> bytes:
    """An error body (bounded), or b'' when it cannot be read; the response is released."""
    try:
        return await _read_at_most(response.content, _MAX_ERROR_BYTES)
    except (aiohttp.ClientError, TimeoutError):
        return b""
    finally:
        response.release()


async def _read_at_most(content: aiohttp.StreamReader, limit: int) -> bytes:
    """The body up to ``limit`` bytes: all of it when shorter (one ``read`` may return less)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _too_large(call: Altinn3Call, status: int) -> UpstreamError:
    return UpstreamError(f"Altinn 3 ({call.api}) answered more than expected", status=status)


async def _answer(call: Altinn3Call, response: aiohttp.ClientResponse) -> Altinn3Response:
    headers = dict(response.headers)
    if call.response is ResponseKind.STREAM:
        return Altinn3Response(response.status, headers, stream=_stream(call, response))
    # Every answer read whole is bounded, also when it comes chunked without a Content-Length: a
    # whole-bytes download (an attachment inlined into a legacy answer) by MAX_INLINE_BYTES, anything
    # else by MAX_JSON_BYTES. Larger documents must be mapped as streams.
    limit = MAX_INLINE_BYTES if call.response is ResponseKind.BYTES else MAX_JSON_BYTES
    try:
        length = response.content_length
        if length is not None and length > limit:
            raise _too_large(call, response.status)
        body = await _read_at_most(response.content, limit + 1)
        if len(body) > limit:
            raise _too_large(call, response.status)
    except (aiohttp.ClientError, TimeoutError) as error:
        raise _unavailable(call, error) from None
    finally:
        response.release()
    if call.response is ResponseKind.JSON:
        try:
            value = json.loads(body) if body else None
        except ValueError:
            raise UpstreamError(
                f"Altinn 3 ({call.api}) answered something that is not JSON", status=response.status
            ) from None
        return Altinn3Response(response.status, headers, json=value)
    return Altinn3Response(response.status, headers, content=body)


async def _stream(call: Altinn3Call, response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The response body chunk by chunk, released when done or abandoned."""
    try:
        async for chunk in response.content.iter_chunked(_CHUNK):
            yield chunk
    except (aiohttp.ClientError, TimeoutError) as error:
        raise _unavailable(call, error) from None
    finally:
        response.release()
