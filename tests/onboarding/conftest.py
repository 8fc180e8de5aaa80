"""The end-to-end world (fakes and proxy on loopback) for the onboarding tests.

Maskinporten refusals are not remembered here (``refusal_cache_seconds: 0``), so a call right after a
customer approves is served: in production the proxy replays a refusal for at most that long.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from proxy.sandbox.world import SandboxKeys
from proxy.settings import Settings
from tests.e2e.conftest import World, mappings_dir, run_world, sandbox_keys

__all__ = ["mappings_dir", "sandbox_keys", "world"]


@pytest.fixture(autouse=True)
def _captured_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """The commands configure logging for the whole process (as a command should), which would stay
    configured for the rest of the suite: here they log into a list instead."""
    monkeypatch.setattr("proxy.onboarding.cli.configure_logging", lambda *args, **kwargs: None)
    with structlog.testing.capture_logs() as logs:
        yield logs


def _no_refusal_memory(settings: Settings) -> Settings:
    maskinporten = settings.maskinporten.model_copy(update={"refusal_cache_seconds": 0.0})
    return settings.model_copy(update={"maskinporten": maskinporten})


@pytest.fixture
async def world(
    tmp_path: Path, altinn3_contract: Any, sandbox_keys: SandboxKeys, mappings_dir: Path
) -> AsyncIterator[World]:
    """Fakes judged by Altinn's published contract, and the proxy in front of them."""
    async with run_world(
        tmp_path, altinn3_contract, sandbox_keys, mappings_dir, adjust=_no_refusal_memory
    ) as running:
        yield running
