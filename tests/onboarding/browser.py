"""A real headless Chromium driven over the DevTools protocol: load a page, read what a person sees,
take a screenshot. One browser launch per use; started with a fresh profile and nothing that phones
home, on loopback only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
#: Generous bounds for a busy shared machine; the browser normally starts in about a second.
START_DEADLINE = 90.0
CALL_DEADLINE = 60.0


def chromium_or_skip() -> str:
    """The Chromium executable; skipped (failed under ``CI=true``) where it is not installed."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    reason = "Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI=true the browser test must run")
    pytest.skip(reason)


class Page:
    """One DevTools page session."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a DevTools command and wait for its answer (events seen meanwhile are kept)."""
        ident = next(self._ids)
        await self._socket.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        async with asyncio.timeout(CALL_DEADLINE):
            while True:
                message = json.loads((await self._socket.receive()).data)
                if message.get("id") == ident:
                    if "error" in message:
                        raise AssertionError(f"{method}: {message['error']}")
                    return dict(message.get("result") or {})
                self.events.append(message)

    async def wait_for(self, event: str) -> None:
        """Wait for a DevTools event (one seen already counts)."""
        async with asyncio.timeout(CALL_DEADLINE):
            while not any(e.get("method") == event for e in self.events):
                self.events.append(json.loads((await self._socket.receive()).data))

    async def load(self, url: str) -> None:
        """Navigate and wait for the load event."""
        await self.call("Page.enable")
        self.events.clear()
        await self.call("Page.navigate", url=url)
        await self.wait_for("Page.loadEventFired")

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression evaluated in the page."""
        answer = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return answer["result"].get("value")

    async def screenshot(self, path: Path) -> Path:
        """Save a full-page PNG."""
        shot = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


@contextlib.asynccontextmanager
async def headless_page(profile: Path, *, width: int = 1400, height: int = 900) -> AsyncIterator[Page]:
    """Start Chromium with a fresh profile and yield its first page."""
    executable = chromium_or_skip()
    profile.mkdir(parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        executable,
        *FLAGS,
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        port = await _devtools_port(profile / "DevToolsActivePort", process)
        timeout = aiohttp.ClientTimeout(total=CALL_DEADLINE)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            page = next(t for t in targets if t.get("type") == "page")
            async with session.ws_connect(
                page["webSocketDebuggerUrl"], max_msg_size=64 * 1024 * 1024
            ) as socket:
                yield Page(socket)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            async with asyncio.timeout(20):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


async def _devtools_port(marker: Path, process: asyncio.subprocess.Process) -> int:
    async with asyncio.timeout(START_DEADLINE):
        while True:
            if process.returncode is not None:
                raise AssertionError(f"chromium exited with {process.returncode} before it listened")
            text = await asyncio.to_thread(_read, marker)
            if text and text.split("\n", 1)[0].strip().isdigit():
                return int(text.split("\n", 1)[0])
            await asyncio.sleep(0.1)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
