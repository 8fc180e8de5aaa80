"""The sandbox fakes in a process of their own, for the benchmark.

Starts :func:`proxy.sandbox.world.start_fakes` on loopback, writes the proxy's key, the demo
credentials and a settings file into ``--workdir``, prints one JSON line (``{"settings": PATH}``)
and serves until SIGTERM. Running the fakes apart keeps their CPU out of the proxy's figures.

    python -m bench.fakes --workdir /tmp/bench
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import yaml

from proxy.sandbox.world import sandbox_settings_document, start_fakes, write_sandbox_files


async def run_fakes(workdir: Path, store_url: str | None) -> None:
    """Serve the fakes and write the proxy's settings; return on SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with start_fakes(workdir) as fakes:
        await asyncio.to_thread(write_sandbox_files, workdir, fakes.keys)
        document: dict[str, Any] = sandbox_settings_document(fakes, workdir, port=0)
        document["logging"] = {"format": "json", "level": "info"}
        if store_url is not None:
            document["store"] = {"url": store_url}
        settings = workdir / "settings.yaml"
        settings.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        print(json.dumps({"settings": str(settings), "platform": fakes.platform_url}), flush=True)
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--store-url", help="store URL for the proxy (default: SQLite in the workdir)")
    args = parser.parse_args()
    asyncio.run(run_fakes(args.workdir, args.store_url))
