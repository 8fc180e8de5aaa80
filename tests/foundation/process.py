"""Running ``altinn-proxy`` as a real child process in tests, and reading its JSON log lines."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STARTUP_SECONDS = 30.0


@dataclass
class ProxyProcess:
    """A started ``altinn-proxy`` child whose stderr log lines are collected as parsed JSON."""

    process: asyncio.subprocess.Process
    lines: list[dict[str, Any]] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    port: int = 0
    metrics_port: int = 0
    _reader: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        """Where the proxy listens."""
        return f"http://127.0.0.1:{self.port}"

    async def _read(self, listening: asyncio.Future[None]) -> None:
        assert self.process.stderr is not None
        async for raw_line in self.process.stderr:
            text = raw_line.decode("utf-8", "replace").rstrip("\n")
            self.raw.append(text)
            try:
                line = json.loads(text)
            except ValueError:
                continue
            self.lines.append(line)
            if line.get("event") == "listening" and not listening.done():
                self.port, self.metrics_port = int(line["port"]), int(line["metrics_port"])
                listening.set_result(None)
        if not listening.done():
            listening.set_exception(RuntimeError("exited before listening:\n" + "\n".join(self.raw[-20:])))

    async def terminate(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum`` and wait for the exit code."""
        self.process.send_signal(signum)
        code = await asyncio.wait_for(self.process.wait(), 60)
        if self._reader is not None:
            await self._reader
        return code


async def start_proxy(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> ProxyProcess:
    """Start ``altinn-proxy ARGS`` with JSON logs and wait until it listens."""
    child_env = {**os.environ, "ALTINN_PROXY_LOGGING__FORMAT": "json", **(env or {})}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "proxy.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env,
        cwd=cwd,
    )
    proxy = ProxyProcess(process)
    listening: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    proxy._reader = asyncio.create_task(proxy._read(listening))
    try:
        await asyncio.wait_for(listening, STARTUP_SECONDS)
    except BaseException:
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    return proxy


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run ``altinn-proxy ARGS`` to completion; ``(exit code, stdout, stderr)``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "proxy.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
