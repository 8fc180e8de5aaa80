"""structlog set-up: one JSON object per line (or readable lines on a terminal), every line with
``timestamp``, ``level``, ``event`` and ``request_id``.

The request id lives in a context variable bound by the request-id middleware, so every line logged
while serving a request carries it without being passed around. Standard-library loggers (aiohttp,
asyncio) go through the same processors.

Secrets must never be logged; :func:`redact_secrets` is a last line of defence that blanks values of
keys that look like secrets, not a licence to log them.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import structlog

NO_REQUEST = "-"
_SECRET_WORDS = ("password", "secret", "token", "assertion", "authorization", "private_key", "apikey")


@functools.lru_cache(maxsize=4096)
def _names_a_secret(key: str) -> bool:
    normalised = key.lower().replace("-", "_")
    return key != "event" and any(word in normalised for word in _SECRET_WORDS)


def redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace the value of any key that names a secret with ``[redacted]``."""
    for key in [key for key in event_dict if _names_a_secret(key)]:
        event_dict[key] = "[redacted]"
    return event_dict


def _ensure_request_id(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event_dict.setdefault("request_id", NO_REQUEST)
    return event_dict


def configure_logging(
    format: Literal["auto", "json", "console"] = "auto",
    level: str = "info",
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and the standard library logging once for the process."""
    stream = stream or sys.stderr
    use_json = format == "json" or (format == "auto" and not stream.isatty())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _ensure_request_id,
        redact_secrets,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        # One write per line (message and newline together): the workers of ``serve --workers``
        # share one stderr, and their lines must not interleave.
        logger_factory=structlog.WriteLoggerFactory(stream),
        # A module's logger is built once, on its first line, instead of on every line; so this
        # configuration is final for the process (tests that capture logs never call this).
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log is replaced by our own access line (it carries the request id).
    logging.getLogger("aiohttp.access").disabled = True
