"""The sandbox world served over HTTPS with client certificates, and a legacy REST client for it.

The TLS material is the sandbox's own (:func:`proxy.sandbox.tls.write_sandbox_tls`), written to the
test's folder: the CA, the proxy's server certificate and the demo enterprise certificates.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from proxy.app import create_app
from proxy.sandbox import fixtures
from proxy.sandbox.runner import TLS_CLIENTS
from proxy.sandbox.tls import SandboxTls, write_sandbox_tls
from proxy.sandbox.world import (
    Fakes,
    SandboxKeys,
    default_mappings_dir,
    sandbox_settings,
    start_fakes,
    write_sandbox_files,
)
from proxy.settings import Settings
from proxy.web.server import tls_context

TIMEOUT = aiohttp.ClientTimeout(total=60)
EUS = ("eus", "310000019")
EUS2 = ("eus", "310000027")
SO = ("so", fixtures.SERVICE_OWNER_ORG)


@dataclass(frozen=True)
class RestWorld:
    """The fakes and the proxy serving HTTPS on ``url`` (and SOAP on ``http_url``), TLS files in ``tls``."""

    fakes: Fakes
    settings: Settings
    url: str
    http_url: str
    tls: SandboxTls
    workdir: Path
    app: web.Application

    def client(self, who: tuple[str, str] = EUS) -> RestClient:
        """A legacy REST client presenting the enterprise certificate of ``who``."""
        context = ssl.create_default_context(cafile=str(self.tls.ca))
        certificate, key = self.tls.client_certificate(*who)
        context.load_cert_chain(certificate, key)
        return RestClient(self.url, context)


class RestClient:
    """An aiohttp session that sends the sandbox ApiKey and ``ForceEIAuthentication`` on every call."""

    def __init__(self, base_url: str, context: ssl.SSLContext) -> None:
        self.base_url = base_url
        self._session = aiohttp.ClientSession(
            timeout=TIMEOUT,
            connector=aiohttp.TCPConnector(ssl=context),
            headers={"ApiKey": fixtures.REST_API_KEY},
        )

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._session.close()

    def request(self, method: str, path: str, **options: Any) -> Any:
        """``method path`` (or a whole URL, e.g. a HAL link) with ``ForceEIAuthentication`` in the query."""
        url = path if path.startswith("https://") else f"{self.base_url}{path}"
        if "forceeiauthentication" not in url.lower():
            url += ("&" if "?" in url else "?") + "ForceEIAuthentication"
        return self._session.request(method, url, **options)

    async def json(self, method: str, path: str, status: int = 200, **options: Any) -> Any:
        """The JSON answer of ``method path``, asserting its status."""
        async with self.request(method, path, **options) as response:
            body = await response.read()
            assert response.status == status, (response.status, response.reason, body[:500])
            return await response.json(content_type=None)


@contextlib.asynccontextmanager
async def rest_world(
    workdir: Path,
    contract: Any,
    keys: SandboxKeys,
    mappings_dir: Path | None = None,
    adjust: Callable[[Settings], Settings] = lambda settings: settings,
) -> AsyncIterator[RestWorld]:
    """Start the fakes (judged by ``contract``) and the proxy on HTTPS with the sandbox TLS files."""
    tls = await asyncio.to_thread(write_sandbox_tls, workdir / ".sandbox" / "tls", TLS_CLIENTS)
    async with start_fakes(workdir, observer=contract, keys=keys) as fakes:
        await asyncio.to_thread(write_sandbox_files, workdir, fakes.keys)
        settings = adjust(
            sandbox_settings(
                fakes,
                workdir,
                port=0,
                mappings_dir=mappings_dir or default_mappings_dir(),
                client_ca_file=tls.ca,
            )
        )
        context = await asyncio.to_thread(
            tls_context, tls.server_certificate, tls.server_key, client_ca_file=tls.ca
        )
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            port, http_port = runner.addresses[0][1], runner.addresses[1][1]
            yield RestWorld(
                fakes,
                settings,
                f"https://127.0.0.1:{port}",
                f"http://127.0.0.1:{http_port}",
                tls,
                workdir,
                app,
            )
        finally:
            await runner.cleanup()
