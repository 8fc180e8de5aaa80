"""The vendor's side of Altinn's authentication API: system register, system-user requests and the
system users of our system (ALTINN3-API.md section 4).

Every call carries a plain Maskinporten token of the proxy's own client (no system user, not
exchanged) with the ``altinn:authentication/...`` scope its endpoint's policy demands. Answers are
read with a size cap; an error answer becomes an :class:`~proxy.errors.UpstreamError` whose message
names the call and Altinn's ProblemDetails (``code``, ``detail``, validation errors), never a token.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from proxy.errors import UpstreamError, UpstreamUnavailable
from proxy.maskinporten.request import TokenRequest, TokenSource

SYSTEM_REGISTER_WRITE = "altinn:authentication/systemregister.write"
REQUEST_WRITE = "altinn:authentication/systemuser.request.write"
REQUEST_READ = "altinn:authentication/systemuser.request.read"
#: Every scope the ``system`` commands use (register them on the Maskinporten client).
SCOPES = (SYSTEM_REGISTER_WRITE, REQUEST_WRITE, REQUEST_READ)
MAX_ANSWER_BYTES = 4 * 1024 * 1024
#: Pages followed at most when listing (a guard against a ``next`` link that never ends).
MAX_PAGES = 1000


@dataclass(frozen=True)
class Answer:
    """A decoded JSON answer and its HTTP status."""

    status: int
    body: Any


class AuthenticationApi:
    """The system register and system-user request endpoints under ``{platform}/authentication/api/v1``."""

    def __init__(self, session: aiohttp.ClientSession, tokens: TokenSource, platform_url: str) -> None:
        self._session = session
        self._tokens = tokens
        self._base = platform_url.rstrip("/") + "/authentication/api/v1"

    async def _call(
        self, method: str, path: str, scope: str, *, body: Any = None, missing_ok: bool = False
    ) -> Answer | None:
        url = path if path.startswith("http") else self._base + path
        token = await self._tokens.token(TokenRequest(frozenset({scope}), exchange=False))
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        try:
            async with self._session.request(
                method, url, headers=headers, data=data, allow_redirects=False
            ) as response:
                raw = await response.content.read(MAX_ANSWER_BYTES + 1)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise UpstreamUnavailable(
                f"Altinn's authentication API could not be reached ({method} {path}): {type(error).__name__}"
            ) from None
        if len(raw) > MAX_ANSWER_BYTES:
            raise UpstreamError(
                f"Altinn's authentication API answered too much to {method} {path}", status=status
            )
        if status == 404 and missing_ok:
            return None
        decoded = _json(raw)
        if status >= 400:
            error_type = UpstreamUnavailable if status >= 500 else UpstreamError
            raise error_type(
                f"Altinn refused {method} {path} (HTTP {status}){_problem_text(decoded)}",
                status=status,
                error_code=_problem_code(decoded),
            )
        return Answer(status, decoded)

    # -- system register ---------------------------------------------------------------------------

    async def get_system(self, system_id: str) -> dict[str, Any] | None:
        """Our system's register entry, or None when it is not registered."""
        answer = await self._call(
            "GET",
            f"/systemregister/vendor/{quote(system_id, safe='')}",
            SYSTEM_REGISTER_WRITE,
            missing_ok=True,
        )
        return answer.body if answer is not None and isinstance(answer.body, dict) else None

    async def create_system(self, entry: Mapping[str, Any]) -> None:
        """Register a new system."""
        await self._call("POST", "/systemregister/vendor", SYSTEM_REGISTER_WRITE, body=entry)

    async def replace_system(self, entry: Mapping[str, Any]) -> None:
        """Replace the whole entry (Altinn's PUT is a full replacement)."""
        path = f"/systemregister/vendor/{quote(str(entry['id']), safe='')}"
        await self._call("PUT", path, SYSTEM_REGISTER_WRITE, body=entry)

    async def system_users(self, system_id: str) -> list[dict[str, Any]]:
        """Every system user of ``system_id``, however it was created (all pages)."""
        return [
            user
            async for user in self._pages(
                f"/systemuser/vendor/bysystem/{quote(system_id, safe='')}", SYSTEM_REGISTER_WRITE
            )
        ]

    # -- system-user requests ----------------------------------------------------------------------

    async def create_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Create a standard system-user request (Altinn answers an open one for the same
        (system, org, externalRef) instead of creating a second)."""
        answer = await self._call("POST", "/systemuser/request/vendor", REQUEST_WRITE, body=request)
        assert answer is not None
        return dict(answer.body)

    async def get_request(self, request_id: str) -> dict[str, Any] | None:
        """One request by id, or None when Altinn does not know it."""
        path = f"/systemuser/request/vendor/{quote(request_id, safe='')}"
        answer = await self._call("GET", path, REQUEST_READ, missing_ok=True)
        return answer.body if answer is not None and isinstance(answer.body, dict) else None

    async def requests(self, system_id: str) -> list[dict[str, Any]]:
        """Every standard request of ``system_id`` (all pages)."""
        return [
            item
            async for item in self._pages(
                f"/systemuser/request/vendor/bysystem/{quote(system_id, safe='')}", REQUEST_READ
            )
        ]

    async def _pages(self, path: str, scope: str) -> AsyncIterator[dict[str, Any]]:
        url: str | None = path
        for _ in range(MAX_PAGES):
            if url is None:
                return
            answer = await self._call("GET", url, scope)
            assert answer is not None
            page = answer.body if isinstance(answer.body, dict) else {}
            for item in page.get("data") or ():
                if isinstance(item, dict):
                    yield item
            links = page.get("links")
            following = links.get("next") if isinstance(links, dict) else None
            url = following if isinstance(following, str) and following else None
        raise UpstreamError(f"Altinn's list {path} did not end after {MAX_PAGES} pages")


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        return None


def _problem_code(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    code = body.get("code") or body.get("errorCode")
    return str(code)[:40] if code else None


def _problem_text(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    parts = [str(body[key])[:200] for key in ("code", "title", "detail") if body.get(key)]
    for error in body.get("validationErrors") or ():
        if isinstance(error, dict):
            parts.append(f"{error.get('code', '')} {error.get('detail', '')}".strip()[:200])
    return ": " + "; ".join(parts) if parts else ""
