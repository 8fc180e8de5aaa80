"""The one step both fronts take before a failure reaches a legacy caller.

The operator's detail of an Altinn 3, token or store failure (status, errorCode, ProblemDetails,
Maskinporten's answer, the database's error) goes to the log at warning level under the request id;
the caller gets :func:`proxy.errors.for_legacy_caller`'s redacted restatement.
"""

from __future__ import annotations

from typing import Any

import structlog

from proxy.errors import ProxyError, StoreUnavailable, for_legacy_caller, upstream_cause

_log = structlog.get_logger("proxy.refusals")


def as_legacy_caller_sees_it(error: ProxyError, request_id: str, **context: Any) -> ProxyError:
    """Log the operator's detail of ``error`` (if it has any) and return what the caller may read."""
    cause = upstream_cause(error)
    if cause is not None:
        _log.warning(
            "upstream.refused",
            request_id=request_id,
            kind=cause.kind,
            status=getattr(cause, "status", None),
            error_code=getattr(cause, "error_code", None) or getattr(cause, "code", None),
            detail=cause.extended,
            reason=cause.message,
            **context,
        )
    elif isinstance(error, StoreUnavailable):
        _log.warning("store.unavailable", request_id=request_id, reason=error.message, **context)
    return for_legacy_caller(error, request_id)
