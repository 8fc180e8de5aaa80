"""The whole world for end-to-end tests: the sandbox fakes, the proxy in front of them, both on loopback.

Legacy clients in these tests are zeep clients built from the ORIGINAL Altinn 2 WSDLs under
``../shared/reference/altinn2`` (the ``reference`` fixture skips where that folder is absent), with
the service address overridden to the proxy. zeep is synchronous: build and call it in
``asyncio.to_thread`` (see :func:`legacy_client`), because the servers run on the test's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from proxy.app import create_app
from proxy.sandbox.world import (
    Fakes,
    SandboxKeys,
    default_mappings_dir,
    sandbox_settings,
    start_fakes,
    write_sandbox_files,
)
from proxy.settings import Settings


@dataclass(frozen=True)
class World:
    """The running fakes and the proxy serving legacy SOAP on ``proxy_url``."""

    fakes: Fakes
    settings: Settings
    app: web.Application
    proxy_url: str
    workdir: Path


@pytest.fixture(scope="session")
def sandbox_keys() -> SandboxKeys:
    """The run's RSA keys, generated once (slow) outside any event loop."""
    return SandboxKeys.generate()


@pytest.fixture
def mappings_dir() -> Path:
    """The mapping directory the proxy serves (override in a module to test one family alone)."""
    return default_mappings_dir()


@contextlib.asynccontextmanager
async def run_world(
    workdir: Path,
    contract: Any,
    keys: SandboxKeys,
    mappings_dir: Path,
    adjust: Callable[[Settings], Settings] = lambda settings: settings,
    prepare: Callable[[Path], None] = lambda workdir: None,
) -> AsyncIterator[World]:
    """Start the fakes (judged by ``contract``) and the proxy in front of them.

    ``prepare`` runs (in a thread) on the work directory once the sandbox files are written, e.g. to
    add a caller to the credentials file; ``adjust`` edits the settings.
    """
    async with start_fakes(workdir, observer=contract, keys=keys) as fakes:
        await asyncio.to_thread(write_sandbox_files, workdir, fakes.keys)
        await asyncio.to_thread(prepare, workdir)
        settings = adjust(sandbox_settings(fakes, workdir, port=0, mappings_dir=mappings_dir))
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            yield World(fakes, settings, app, f"http://127.0.0.1:{port}", workdir)
        finally:
            await runner.cleanup()


def broker_mappings(workdir: Path) -> Path:
    """A mapping directory holding only the broker family (the world then serves broker alone)."""
    mappings = workdir / "mappings"
    mappings.mkdir()
    shutil.copy(default_mappings_dir() / "broker.yaml", mappings / "broker.yaml")
    return mappings


def with_broker_routes(**update: Any) -> Callable[[Settings], Settings]:
    """A settings adjustment that sets ``update`` on every broker routing entry."""

    def adjust(settings: Settings) -> Settings:
        routes = tuple(route.model_copy(update=update) for route in settings.routing.broker)
        return settings.model_copy(update={"routing": settings.routing.model_copy(update={"broker": routes})})

    return adjust


class RecordingObserver:
    """Judges every request the fakes receive by Altinn's contract, and remembers what was asked."""

    def __init__(self, contract: Any) -> None:
        self._contract = contract
        self.requests: list[tuple[str, str]] = []

    def __call__(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> None:
        self.requests.append((method, url))
        self._contract(method, url, headers, body)

    def uploads(self) -> list[str]:
        """The URLs of every upload the fakes received."""
        return [url for method, url in self.requests if method == "POST" and "/upload" in url]


@pytest.fixture
def observer(altinn3_contract: Any) -> RecordingObserver:
    """What the fakes of the test's world received, each request judged by Altinn's contract."""
    return RecordingObserver(altinn3_contract)


@pytest.fixture
async def world(
    tmp_path: Path, observer: RecordingObserver, sandbox_keys: SandboxKeys, mappings_dir: Path
) -> AsyncIterator[World]:
    """Fakes judged by Altinn's published contract, and the proxy in front of them."""
    async with run_world(tmp_path, observer, sandbox_keys, mappings_dir) as running:
        yield running


FAULT_NS = "http://www.altinn.no/services/common/fault/2009/10"


def fault_fields(fault: Any) -> dict[str, str]:
    """The children of a zeep fault's ``AltinnFault`` detail, by local name."""
    from lxml import etree

    detail = fault.detail.find(f".//{{{FAULT_NS}}}AltinnFault")
    assert detail is not None, etree.tostring(fault.detail)
    return {etree.QName(child).localname: child.text or "" for child in detail}


def legacy_client(wsdl: Path, address: str) -> Any:
    """A zeep service proxy for the WSDL's first binding, bound to ``address`` (call in a thread)."""
    import zeep
    from zeep.transports import Transport

    client = zeep.Client(str(wsdl), transport=Transport(timeout=30, operation_timeout=30))
    binding = next(iter(next(iter(client.wsdl.services.values())).ports.values())).binding
    return client.create_service(binding.name, address)
