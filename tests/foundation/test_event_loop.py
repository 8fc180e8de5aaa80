"""The serving processes' event loop: uvloop when installed, asyncio when asked for."""

from __future__ import annotations

import asyncio
import sys

import pytest

from proxy.errors import ConfigurationError
from proxy.web import loop


async def _loop_type() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_asyncio_is_asyncio() -> None:
    assert loop.loop_name("asyncio") == "asyncio"
    assert loop.run(_loop_type(), "asyncio").startswith("asyncio")


def test_auto_and_uvloop_run_on_uvloop_when_it_is_installed() -> None:
    pytest.importorskip("uvloop", reason="altinn-proxy[speed] is not installed")
    assert loop.loop_name("auto") == "uvloop"
    assert loop.run(_loop_type(), "uvloop").startswith("uvloop")


def test_uvloop_asked_for_but_missing_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now fails
    assert loop.loop_name("auto") == "asyncio"
    with pytest.raises(ConfigurationError, match="uvloop is not installed"):
        loop.loop_name("uvloop")
