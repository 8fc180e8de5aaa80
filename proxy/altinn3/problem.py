"""ProblemDetails (RFC 7807) answers of Altinn 3, as :mod:`proxy.errors` errors.

Altinn 3 puts a numeric ``errorCode`` extension next to ``title``/``status``/``detail``/``traceId``.
The fault tables of the mappings key on status and ``errorCode``; the trace id goes to the extended
message so support can find the upstream log line. Nothing from a request is echoed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from proxy.errors import UpstreamError, UpstreamUnavailable

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
