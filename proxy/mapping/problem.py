"""What an Altinn 3 status means: the plan's judgement of a response (pure).

The client only sends and returns what came back; the plan decides here whether a status is an
answer (2xx/3xx, or an error status the step ``accept``s) or a refusal, which becomes an
:class:`UpstreamError` (4xx) or :class:`UpstreamUnavailable` (5xx) for the operation's fault table.
Live traffic, ``explain`` and the load-time examples all run this one judgement, so a canned 404 in
``explain`` gives exactly the fault a real 404 gives.

Altinn 3 answers errors as ProblemDetails (RFC 7807) with a numeric ``errorCode`` extension next to
``title``/``status``/``detail``/``traceId``. The fault tables key on status and ``errorCode``; the
trace id goes to the extended message so support can find the upstream log line. Nothing from a
request is echoed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from proxy.errors import UpstreamError, UpstreamUnavailable
from proxy.mapping.calls import Altinn3Call, Altinn3Response

_MAX_TEXT = 300


@dataclass(frozen=True)
class Problem:
    """The fields of a ProblemDetails body the proxy uses."""

    status: int
    title: str | None = None
    detail: str | None = None
    error_code: str | None = None
    trace_id: str | None = None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)[:_MAX_TEXT]


def parse_problem(status: int, body: bytes) -> Problem:
    """The ProblemDetails in ``body``, or a bare :class:`Problem` when it is not one."""
    try:
        data = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        return Problem(status)
    return Problem(
        status=status,
        title=_text(data.get("title")),
        detail=_text(data.get("detail")),
        error_code=_text(data.get("errorCode", data.get("code"))),
        trace_id=_text(data.get("traceId")),
    )


def problem_error(api: str, method: str, problem: Problem) -> UpstreamError:
    """``UpstreamUnavailable`` for 5xx, else ``UpstreamError``, carrying status and error code."""
    parts = [f"{problem.status}"]
    if problem.error_code:
        parts.append(f"errorCode {problem.error_code}")
    if problem.title:
        parts.append(problem.title)
    if problem.detail:
        parts.append(problem.detail)
    if problem.trace_id:
        parts.append(f"traceId {problem.trace_id}")
    extended = f"Altinn 3 {api} {method}: " + "; ".join(parts)
    kind = UpstreamUnavailable if problem.status >= 500 else UpstreamError
    message = (
        f"Altinn 3 ({api}) is not available right now"
        if problem.status >= 500
        else f"Altinn 3 ({api}) refused the request"
    )
    return kind(message, status=problem.status, error_code=problem.error_code, extended=extended)


def judge(call: Altinn3Call, response: Altinn3Response) -> Altinn3Response:
    """``response`` when it answers ``call``; the refusal it stands for (raised) when it does not."""
    if response.status < 400 or response.status in call.accept_status:
        return response
    if response.content is not None:
        body = response.content
    elif response.json is not None:
        body = json.dumps(response.json).encode("utf-8")
    else:
        body = b""
    raise problem_error(call.api, call.method, parse_problem(response.status, body))
