"""The two HTTP calls behind a token: the grant at Maskinporten and the Altinn token exchange.

Invariants:
* Every request carries an explicit :class:`aiohttp.ClientTimeout`, and bodies are read with a size cap
  inside that deadline.
* Refusals (a well-formed 4xx answer) become :class:`TokenRefused`; everything else that stops us from
  getting an answer (connection, timeout, 5xx, garbage) becomes :class:`TokenUnavailable`.
* The assertion and the tokens are passed around as values and never formatted into a message.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt

from proxy.errors import TokenUnavailable
from proxy.maskinporten.clock import Clock
from proxy.maskinporten.config import MaskinportenConfig
from proxy.maskinporten.grant import GRANT_TYPE, grant_claims, sign_grant
from proxy.maskinporten.refusals import exchange_refusal, maskinporten_refusal
from proxy.maskinporten.request import TokenRequest

MAX_BODY = 256 * 1024


@dataclass(frozen=True)
class IssuedToken:
    """A bearer token and how many seconds it lives from when it was asked for."""

    value: str = field(repr=False)
    expires_in: float


@dataclass(frozen=True)
class ServerMetadata:
    """What the client needs from Maskinporten's well-known metadata."""

    issuer: str
    token_endpoint: str


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    if response.content_length is not None and response.content_length > MAX_BODY:
        raise TokenUnavailable(f"{response.url.host} answered a body larger than {MAX_BODY} bytes")
    body = bytearray()
    async for chunk in response.content.iter_chunked(16 * 1024):
        body += chunk
        if len(body) > MAX_BODY:
            raise TokenUnavailable(f"{response.url.host} answered a body larger than {MAX_BODY} bytes")
    return bytes(body)


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


class MaskinportenClient:
    """Builds, signs and sends grants; reads the issuer and token endpoint once from well-known.

    ``jti_factory`` makes each grant's ``jti`` (a fresh UUID by default; tests inject a fixed one).
    """

    def __init__(
        self,
        config: MaskinportenConfig,
        session: aiohttp.ClientSession,
        clock: Clock,
        *,
        jti_factory: Callable[[], str] | None = None,
    ) -> None:
        self._config = config
        self._new_jti = jti_factory or (lambda: str(uuid.uuid4()))
        self._session = session
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=config.timeouts.total, connect=config.timeouts.connect)
        self._metadata: ServerMetadata | None = None
        if config.issuer is not None and config.token_endpoint is not None:
            self._metadata = ServerMetadata(config.issuer, config.token_endpoint)
        self._metadata_fetch: asyncio.Task[ServerMetadata] | None = None

    async def metadata(self) -> ServerMetadata:
        """Issuer and token endpoint (fetched once, shared by concurrent first callers)."""
        if self._metadata is not None:
            return self._metadata
        if self._metadata_fetch is None or self._metadata_fetch.done():
            self._metadata_fetch = asyncio.create_task(self._fetch_metadata(), name="maskinporten-metadata")
        return await asyncio.shield(self._metadata_fetch)

    async def _fetch_metadata(self) -> ServerMetadata:
        url = self._config.well_known_url
        assert url is not None  # guaranteed by MaskinportenConfig
        try:
            async with self._session.get(url, timeout=self._timeout) as response:
                raw = await _read_capped(response)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise TokenUnavailable(
                f"cannot read Maskinporten's metadata at {url}: {_describe(error)}"
            ) from None
        document = _json_object(raw)
        if status != 200 or document is None:
            raise TokenUnavailable(f"Maskinporten's metadata at {url} answered HTTP {status} without JSON")
        issuer, endpoint = document.get("issuer"), document.get("token_endpoint")
        if not isinstance(issuer, str) or not isinstance(endpoint, str):
            raise TokenUnavailable(f"Maskinporten's metadata at {url} lacks issuer or token_endpoint")
        self._metadata = ServerMetadata(issuer, endpoint)
        return self._metadata

    async def fetch(self, request: TokenRequest) -> IssuedToken:
        """A Maskinporten access token for ``request`` (one new grant, no caching)."""
        metadata = await self.metadata()
        claims = grant_claims(
            request,
            client_id=self._config.client_id,
            audience=metadata.issuer,
            now=self._clock.wall(),
            lifetime=self._config.grant_lifetime,
            jti=self._new_jti(),
        )
        form = {"grant_type": GRANT_TYPE, "assertion": sign_grant(claims, self._config.signing)}
        try:
            async with self._session.post(
                metadata.token_endpoint,
                data=form,
                timeout=self._timeout,
                headers={"Accept": "application/json"},
            ) as response:
                raw = await _read_capped(response)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise TokenUnavailable(
                f"cannot reach Maskinporten at {metadata.token_endpoint}: {_describe(error)}"
            ) from None
        body = _json_object(raw)
        if status == 200 and body is not None:
            return _issued_from(body, metadata.token_endpoint)
        if 400 <= status < 500 and status != 429:
            raise maskinporten_refusal(
                body,
                status=status,
                request=request,
                client_id=self._config.client_id,
                system_id=self._config.system_id,
            )
        raise TokenUnavailable(f"Maskinporten at {metadata.token_endpoint} answered HTTP {status}")

    async def exchange(self, maskinporten_token: str) -> IssuedToken:
        """Trade a Maskinporten token for an Altinn token at the platform's exchange endpoint."""
        url = self._config.exchange_url
        headers = {"Authorization": f"Bearer {maskinporten_token}", "Accept": "text/plain"}
        try:
            async with self._session.get(url, headers=headers, timeout=self._timeout) as response:
                raw = await _read_capped(response)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise TokenUnavailable(
                f"cannot reach the Altinn token exchange at {url}: {_describe(error)}"
            ) from None
        text = raw.decode("utf-8", "replace").strip()
        if status == 200:
            token = text.strip('"')  # the endpoint may answer the string as JSON
            return IssuedToken(token, _lifetime_of(token, self._config.exchanged_lifetime))
        if 400 <= status < 500 and status != 429:
            raise exchange_refusal(status, text)
        raise TokenUnavailable(f"the Altinn token exchange at {url} answered HTTP {status}")


def _issued_from(body: dict[str, Any], endpoint: str) -> IssuedToken:
    token, expires_in = body.get("access_token"), body.get("expires_in")
    if not isinstance(token, str) or not token:
        raise TokenUnavailable(f"Maskinporten at {endpoint} answered 200 without an access_token")
    if not isinstance(expires_in, int | float) or isinstance(expires_in, bool) or expires_in <= 0:
        raise TokenUnavailable(f"Maskinporten at {endpoint} answered 200 without a valid expires_in")
    return IssuedToken(token, float(expires_in))


def _lifetime_of(token: str, default: int) -> float:
    """``exp - iat`` of a token we received over TLS from its issuer; only the lifetime is read."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        lifetime = float(claims["exp"]) - float(claims["iat"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return float(default)
    return lifetime if lifetime > 0 else float(default)


def _describe(error: BaseException) -> str:
    """A short cause for a network failure; aiohttp's texts name host and port, never our payload."""
    if isinstance(error, TimeoutError | aiohttp.ServerTimeoutError):
        return "timed out"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
