"""The event loop a serving process runs on: uvloop when installed (``altinn-proxy[speed]``), else asyncio.

uvloop (libuv) does the same work as asyncio's own loop with less Python per event: socket reads
and writes, timers and callbacks. Everything the proxy does runs on either; ``listen.event_loop``
chooses, and ``auto`` takes uvloop when it can be imported. The benchmark's bare proxy uses the same
choice, so that ratios against it measure the proxy, not the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

from proxy.errors import ConfigurationError

T = TypeVar("T")
EventLoopChoice = Literal["auto", "asyncio", "uvloop"]


def loop_name(choice: EventLoopChoice) -> str:
    """``"uvloop"`` or ``"asyncio"``: what ``choice`` resolves to on this installation."""
    if choice == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if choice == "uvloop":
            raise ConfigurationError(
                "uvloop is not installed; install altinn-proxy[speed] or set event_loop: auto",
                location="listen.event_loop",
            ) from None
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T], choice: EventLoopChoice = "auto") -> T:
    """``asyncio.run(main)`` on the event loop ``choice`` resolves to."""
    if loop_name(choice) == "uvloop":
        import uvloop

        runner: Callable[[Coroutine[Any, Any, T]], T] = uvloop.run
        return runner(main)
    return asyncio.run(main)
