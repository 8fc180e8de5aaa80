"""Maskinporten down for minutes under a steady trickle of calls, through ``altinn-proxy serve``.

The sandbox fakes run in this process, the proxy in its own (SQLite store). A legacy client (zeep,
built from the proxy's own WSDL) calls ``GetAvailableFilesBasic`` of the broker, whose calls use
Maskinporten tokens directly, ``--rate`` times a second: ``--before`` seconds with Maskinporten up,
``--outage-minutes`` with its token endpoint answering ``--status`` (503: an outage; a 4xx: a
broken Maskinporten refusing), then ``--after`` seconds with it back. The fake's tokens live
``--token-lifetime`` seconds (the real one: 120).

One JSON summary: when during the outage the last call succeeded (the cached token carried it),
how the failing calls were answered (fault, ErrorID, latency p50/max: failing fast), how many
grants reached Maskinporten per minute of the outage (no storm), and how long after Maskinporten
came back the first call succeeded, in the same process (recovery without a restart).

    python -m bench.maskinporten_outage [--outage-minutes 10] [--token-lifetime 120] [--status 503]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.soak import BROKER, RECIPIENT, serve_proxy, write_settings
from proxy.sandbox.world import start_fakes


@dataclass
class Call:
    """One call: seconds since the outage began (negative before), outcome, latency."""

    at: float
    ok: bool
    error_id: str | None
    seconds: float


def _client(base: str) -> Any:
    import zeep
    from zeep.transports import Transport

    return zeep.Client(base + BROKER + "?wsdl", transport=Transport(timeout=60, operation_timeout=60)).service


def _available(service: Any) -> str | None:
    """None when the call succeeded, else the fault's ErrorID (or the error's class name)."""
    import zeep.exceptions

    user, password, org = RECIPIENT
    search = {"ExternalServiceCode": "4712", "ExternalServiceEditionCode": 1, "FileStatus": "Uploaded"}
    try:
        service.GetAvailableFilesBasic(user, password, search | {"Reportee": org})
    except zeep.exceptions.Fault as fault:
        found = fault.detail.find(".//{*}ErrorID") if fault.detail is not None else None
        return found.text if found is not None else "fault"
    except Exception as error:  # a broken answer is reported, not fatal
        return type(error).__name__
    return None


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """The scenario; its summary."""
    workdir = Path(tempfile.mkdtemp(prefix="altinn-proxy-mp-outage-"))
    async with start_fakes(workdir) as fakes:
        fakes.maskinporten.token_lifetime = args.token_lifetime
        sections = {"maskinporten": {"refusal_cache_seconds": args.refusal_seconds}}
        config = await write_settings(fakes, workdir, f"sqlite://{workdir / 'state.db'}", sections)
        async with serve_proxy(config) as proxy:
            pid = proxy.process.pid
            service = await asyncio.to_thread(_client, proxy.base)
            calls: list[Call] = []
            #: Grants answered with the outage status so far, at the last call of each outage minute.
            tried_by_minute: dict[int, int] = {}
            outage_start = time.monotonic() + args.before
            outage_end = outage_start + args.outage_minutes * 60
            finish = outage_end + args.after
            down = False
            count = 0
            begin = time.monotonic()
            while (now := time.monotonic()) < finish:
                if not down and outage_start <= now < outage_end:
                    fakes.maskinporten.outage_status, down = args.status, True
                elif down and now >= outage_end:
                    fakes.maskinporten.outage_status, down = None, False
                if down:
                    tried_by_minute[int((now - outage_start) // 60)] = fakes.maskinporten.outage_answers
                started = time.monotonic()
                error_id = await asyncio.to_thread(_available, service)
                calls.append(
                    Call(started - outage_start, error_id is None, error_id, time.monotonic() - started)
                )
                count += 1
                await asyncio.sleep(max(0.0, begin + count / args.rate - time.monotonic()))
            same_process = proxy.process.returncode is None and proxy.process.pid == pid
    cumulative = [tried_by_minute.get(m, 0) for m in range(max(tried_by_minute, default=-1) + 1)]
    tried = [b - a for a, b in zip([0, *cumulative], cumulative, strict=False)]
    return summarise(args, calls, tried, same_process)


def summarise(
    args: argparse.Namespace,
    calls: list[Call],
    tried_per_minute: list[int],
    same_process: bool,
) -> dict[str, Any]:
    """The figures the module docstring lists."""
    outage_seconds = args.outage_minutes * 60
    during = [c for c in calls if 0 <= c.at < outage_seconds]
    after = [c for c in calls if c.at >= outage_seconds]
    failed = [c for c in during if not c.ok]
    carried = [c for c in during if c.ok]
    latencies = sorted(c.seconds for c in failed)
    first_ok_after = next((c for c in after if c.ok), None)
    return {
        "outage_minutes": args.outage_minutes,
        "status": args.status,
        "token_lifetime_s": args.token_lifetime,
        "calls": len(calls),
        "failures_before_outage": sum(1 for c in calls if c.at < 0 and not c.ok),
        "outage": {
            "calls": len(during),
            "carried_by_cached_token": len(carried),
            "last_success_s": round(max((c.at for c in carried), default=-1.0), 1),
            "first_failure_s": round(min((c.at for c in failed), default=-1.0), 1),
            "successes_after_first_failure": sum(1 for c in carried if failed and c.at > failed[0].at),
            "failures": len(failed),
            "error_ids": dict(collections.Counter(c.error_id for c in failed)),
            "failure_latency_p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
            "failure_latency_max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
            "grants_tried_per_minute": tried_per_minute,
        },
        "after": {
            "calls": len(after),
            "failures_before_recovery": sum(1 for c in after if first_ok_after and c.at < first_ok_after.at),
            "recovered_after_s": round(first_ok_after.at - outage_seconds, 1) if first_ok_after else None,
            "failures_after_recovery": sum(
                1 for c in after if first_ok_after and c.at > first_ok_after.at and not c.ok
            ),
            "same_process": same_process,
        },
    }


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage-minutes", type=float, default=10.0)
    parser.add_argument(
        "--token-lifetime", type=int, default=120, help="seconds (the real Maskinporten: 120)"
    )
    parser.add_argument("--status", type=int, default=503, help="what the token endpoint answers meanwhile")
    parser.add_argument("--rate", type=float, default=2.0, help="calls per second")
    parser.add_argument("--before", type=float, default=30.0, help="seconds with Maskinporten up first")
    parser.add_argument("--after", type=float, default=60.0, help="seconds with Maskinporten back")
    parser.add_argument(
        "--refusal-seconds", type=float, default=30.0, help="maskinporten.refusal_cache_seconds"
    )
    summary = asyncio.run(run(parser.parse_args()))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
