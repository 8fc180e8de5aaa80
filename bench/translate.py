"""Benchmark: the translated hot path against a bare reverse proxy, in one run, on loopback.

Measures, with the same SOAP POST (an ``InsertCorrespondenceBasicV2`` without attachments, built
here, with a distinct ExternalShipmentReference per request so nothing is short-circuited):

(a) ``bench.bare_proxy`` forwarding the POST to ``bench.upstream`` (a canned Correspondence answer);
(b) ``altinn-proxy serve`` translating it against the sandbox fakes (``bench.fakes``).

Every server runs in its own process, and the load comes from ``wrk`` in another, so the CPU time
read from ``/proc/<pid>/stat`` (utime + stime, all threads) before and after a run is the proxy's
own. Each side gets a warm-up first. Printed per side: requests/s, proxy CPU µs per request (and its
event-loop thread's share), p50/p99 latency, errors; then the ratios b/a against the targets
(throughput ≥ 0.6, CPU ≤ 1.5).

    python -m bench.translate [--duration 15] [--connections 16] [--rounds 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

CORRESPONDENCE_NS = "http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10"
CONTENT_NS = "http://schemas.altinn.no/services/ServiceEngine/Correspondence/2010/10"
SOAP_ACTION = f"{CORRESPONDENCE_NS}/ICorrespondenceAgencyExternalBasic/InsertCorrespondenceBasicV2"
ENDPOINT = "/ServiceEngineExternal/CorrespondenceAgencyExternalBasic.svc"
#: Where the reference goes in the request: wrk fills in a fresh one per request.
REFERENCE_SLOT = "@REFERENCE@"
STARTUP_TIMEOUT = 60.0
TARGET_THROUGHPUT = 0.6
TARGET_CPU = 1.5
_TICK = os.sysconf("SC_CLK_TCK")


def soap_request(reference: str = REFERENCE_SLOT) -> str:
    """The benchmark's request: a small correspondence from the sandbox's service owner."""
    return f"""<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
  <s:Body>
    <InsertCorrespondenceBasicV2 xmlns="{CORRESPONDENCE_NS}" xmlns:c="{CONTENT_NS}">
      <systemUserName>demo-so</systemUserName>
      <systemPassword>demo-so-password</systemPassword>
      <SystemUserCode>BENCH</SystemUserCode>
      <ExternalShipmentReference>{reference}</ExternalShipmentReference>
      <Correspondence>
        <c:ServiceCode>4711</c:ServiceCode>
        <c:ServiceEdition>1</c:ServiceEdition>
        <c:Reportee>310000019</c:Reportee>
        <c:Content>
          <c:LanguageCode>1044</c:LanguageCode>
          <c:MessageTitle>Benchmark &amp; friends</c:MessageTitle>
          <c:MessageSummary>A short summary of the benchmark message</c:MessageSummary>
          <c:MessageBody>The body of the benchmark message, a few words long.</c:MessageBody>
        </c:Content>
        <c:VisibleDateTime>2024-05-01T10:00:00</c:VisibleDateTime>
        <c:AllowSystemDeleteDateTime>2030-05-01T10:00:00</c:AllowSystemDeleteDateTime>
        <c:MessageSender>Benchmark AS</c:MessageSender>
      </Correspondence>
    </InsertCorrespondenceBasicV2>
  </s:Body>
</s:Envelope>
"""


def wrk_script() -> str:
    """wrk's Lua: POST the request with a reference unique to (run tag, thread, request)."""
    head, tail = soap_request().split(REFERENCE_SLOT)
    return f"""
local head = [==[{head}]==]
local tail = [==[{tail}]==]
local threads = {{}}
local counter = 0
local prefix = "bench"

wrk.method = "POST"
wrk.headers["Content-Type"] = "text/xml; charset=utf-8"
wrk.headers["SOAPAction"] = '"{SOAP_ACTION}"'

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  prefix = (args[1] or "bench") .. "-" .. id .. "-"
end

function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, head .. prefix .. counter .. tail)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"errors": {{"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass(frozen=True)
class Result:
    """One measured run against one server."""

    name: str
    requests: int
    seconds: float
    cpu_seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    #: CPU per request of the upstream's process (canned upstream, or the sandbox fakes).
    upstream_cpu_us: float = 0.0
    #: The server's main (event-loop) thread's share of ``cpu_seconds``.
    loop_cpu_seconds: float = 0.0

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds

    @property
    def cpu_us(self) -> float:
        """The server process's CPU time per request, in microseconds."""
        return self.cpu_seconds * 1e6 / max(1, self.requests)

    @property
    def loop_cpu_us(self) -> float:
        """The event-loop thread's CPU time per request, in microseconds."""
        return self.loop_cpu_seconds * 1e6 / max(1, self.requests)


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """utime + stime of a process (all its threads), or of its thread ``tid``, from ``/proc``."""
    stat = Path(f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def run_wrk(
    url: str, script: Path, *, seconds: float, connections: int, threads: int, tag: str
) -> dict[str, object]:
    """Run wrk once; its ``done()`` summary as a dict."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
        "--",
        tag,
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    for line in completed.stdout.splitlines():
        if line.startswith("BENCH "):
            summary: dict[str, object] = json.loads(line.removeprefix("BENCH "))
            return summary
    raise RuntimeError(f"wrk printed no summary:\n{completed.stdout}\n{completed.stderr}")


def measure(
    name: str,
    url: str,
    pid: int,
    script: Path,
    *,
    upstream_pid: int,
    seconds: float,
    connections: int,
    threads: int,
    tag: str,
) -> Result:
    """Load ``url`` with wrk and read the server's (and its upstream's) CPU time around the run."""
    before, upstream_before = cpu_seconds(pid), cpu_seconds(upstream_pid)
    loop_before = cpu_seconds(pid, pid)
    summary = run_wrk(url, script, seconds=seconds, connections=connections, threads=threads, tag=tag)
    used = cpu_seconds(pid) - before
    loop_used = cpu_seconds(pid, pid) - loop_before
    upstream_used = cpu_seconds(upstream_pid) - upstream_before
    errors = summary["errors"]
    assert isinstance(errors, dict)
    return Result(
        name=name,
        requests=int(str(summary["requests"])),
        seconds=int(str(summary["duration_us"])) / 1e6,
        cpu_seconds=used,
        p50_ms=int(str(summary["p50_us"])) / 1000,
        p99_ms=int(str(summary["p99_us"])) / 1000,
        errors=sum(int(value) for value in errors.values()),
        upstream_cpu_us=upstream_used * 1e6 / max(1, int(str(summary["requests"]))),
        loop_cpu_seconds=loop_used,
    )


# -- child processes ---------------------------------------------------------------------------


@contextlib.contextmanager
def child(
    command: Sequence[str], *, log: Path, stdout_pipe: bool = True
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process (stderr to ``log``), terminated and reaped on exit."""
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE if stdout_pipe else subprocess.DEVNULL, stderr=log_file
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


@contextlib.contextmanager
def profiling(pid: int, output: Path, seconds: float) -> Iterator[None]:
    """Sample ``pid`` with py-spy (``pip install py-spy``) while the measured load runs."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [
        spy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(round(seconds)),
        "--rate",
        "250",
        "--nonblocking",
        # Only samples holding the GIL: CPU spent in Python and C, not time queued for the GIL.
        "--gil",
    ]
    process = subprocess.Popen(
        [*command, "--format", "raw", "--output", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.wait(timeout=seconds + 30)


def first_line(process: subprocess.Popen[bytes], what: str) -> str:
    """The first line a child prints on stdout (its address), or an error after a deadline."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT)
    line = process.stdout.readline().decode() if ready else ""
    if not line:
        raise RuntimeError(f"{what} did not start (exit code {process.poll()}); see its log")
    return line.strip()


def listening_port(process: subprocess.Popen[bytes], log: Path) -> int:
    """The port ``altinn-proxy serve`` logged in its ``listening`` line."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"altinn-proxy exited with {process.returncode}; see {log}")
        for line in log.read_text(errors="replace").splitlines():
            if '"listening"' in line:
                return int(json.loads(line)["port"])
        time.sleep(0.1)
    raise RuntimeError(f"altinn-proxy did not start listening; see {log}")


def check_once(url: str, *, expect: bytes) -> None:
    """One request before the load, so a broken set-up fails loudly instead of measuring faults."""
    request = urllib.request.Request(  # noqa: S310 (a loopback http URL built here)
        url,
        data=soap_request(f"bench-check-{time.time_ns()}").encode(),
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{SOAP_ACTION}"'},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        body = response.read()
    if expect not in body:
        raise RuntimeError(f"unexpected answer from {url}:\n{body[:2000].decode(errors='replace')}")


def engine_microseconds(iterations: int = 2000) -> float:
    """The mapping engine alone on the benchmark's request (parse, plan, canned answers), µs per call."""
    from lxml import etree

    from proxy.identity.principal import CallerKind, Principal
    from proxy.mapping.calls import Altinn3Response
    from proxy.mapping.dryrun import DryRun, drive
    from proxy.mapping.engine import Engine, OperationRequest
    from proxy.mapping.routing import Route, RoutingTable
    from proxy.pipeline.loading import load_mapping_set
    from proxy.sandbox import fixtures
    from proxy.sandbox.world import default_mappings_dir

    mappings = load_mapping_set(default_mappings_dir())
    code, edition = fixtures.CORRESPONDENCE_SERVICE
    engine = Engine(
        lambda: mappings,
        RoutingTable.of([Route(code, edition, resource_id=fixtures.CORRESPONDENCE_RESOURCE)]),
    )
    principal = Principal(
        caller_id="demo-so",
        kind=CallerKind.SERVICE_OWNER,
        org=fixtures.SERVICE_OWNER_ORG,
        service_owner=fixtures.SERVICE_OWNER_CODE,
        scopes=fixtures.SERVICE_OWNER_SCOPES,
    )
    created = {"correspondences": [{"correspondenceId": "0f4e2c1a-5b6d-4e7f-8a9b-0c1d2e3f4a5b"}]}
    dry = DryRun({"create": Altinn3Response(200, {}, json=created)})
    body = etree.fromstring(soap_request("engine-1").encode())[0][0]
    request = OperationRequest(
        "CorrespondenceAgencyExternalBasic", "InsertCorrespondenceBasicV2", body, principal
    )
    drive(engine.start(request), dry.answer)
    started = time.perf_counter()
    for _ in range(iterations):
        dry.seen.clear()
        drive(engine.start(request), dry.answer)
    return (time.perf_counter() - started) * 1e6 / iterations


# -- report ------------------------------------------------------------------------------------


def report(results: Sequence[tuple[Result, Result]], store: str) -> str:
    """The table and the ratios, as printed (and pasted into bench/README.md)."""
    lines = [
        f"store: {store}",
        f"{'run':<28}{'req/s':>10}{'CPU µs/req':>12}{'(loop)':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'upstream CPU µs/req':>21}",
    ]
    for bare, translated in results:
        for result in (bare, translated):
            lines.append(
                f"{result.name:<28}{result.rps:>10.0f}{result.cpu_us:>12.0f}{result.loop_cpu_us:>8.0f}"
                f"{result.p50_ms:>9.2f}{result.p99_ms:>9.2f}{result.errors:>8}{result.upstream_cpu_us:>21.0f}"
            )
    bare_rps = sum(b.rps for b, _ in results) / len(results)
    translated_rps = sum(t.rps for _, t in results) / len(results)
    bare_cpu = sum(b.cpu_us for b, _ in results) / len(results)
    translated_cpu = sum(t.cpu_us for _, t in results) / len(results)
    throughput = translated_rps / bare_rps
    cpu = translated_cpu / bare_cpu
    lines += [
        f"throughput b/a: {throughput:.2f} (target >= {TARGET_THROUGHPUT}) "
        f"{'ok' if throughput >= TARGET_THROUGHPUT else 'MISSED'}",
        f"CPU/request b/a: {cpu:.2f} (target <= {TARGET_CPU}) {'ok' if cpu <= TARGET_CPU else 'MISSED'}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; exit 0 when both targets are met, 1 when not, 2 when it could not run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of measured load per side")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load first")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=1, help="alternate a/b this many times")
    parser.add_argument("--store-url", help="the proxy's store (default: SQLite in the work directory)")
    parser.add_argument("--workdir", type=Path, help="keep files (logs, database) here")
    parser.add_argument(
        "--profile", type=Path, help="write py-spy's collapsed stacks of the translating proxy here"
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "bench: wrk is not installed; install it with `sudo apt-get install wrk` (Debian/Ubuntu)",
            file=sys.stderr,
        )
        return 2
    with contextlib.ExitStack() as stack:
        if args.workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="altinn-proxy-bench-")))
        else:
            workdir = args.workdir
            workdir.mkdir(parents=True, exist_ok=True)
        results = run(args, workdir, stack)
        store = args.store_url or f"SQLite (WAL, synchronous=FULL) in {workdir}"
        print(report(results, store))
        print(f"mapping engine alone (same request, canned answers): {engine_microseconds():.0f} µs/request")
        met = all(
            t.rps / b.rps >= TARGET_THROUGHPUT and t.cpu_us / b.cpu_us <= TARGET_CPU for b, t in results
        )
    return 0 if met else 1


def run(args: argparse.Namespace, workdir: Path, stack: contextlib.ExitStack) -> list[tuple[Result, Result]]:
    """Start every process, check each path once, then warm up and measure a, b (``rounds`` times)."""
    python = sys.executable
    script = workdir / "insert-correspondence.lua"
    script.write_text(wrk_script(), encoding="utf-8")

    upstream = stack.enter_context(child([python, "-m", "bench.upstream"], log=workdir / "upstream.log"))
    upstream_port = int(first_line(upstream, "bench.upstream").split()[1])
    bare = stack.enter_context(
        child(
            [
                python,
                "-m",
                "bench.bare_proxy",
                "--upstream",
                f"http://127.0.0.1:{upstream_port}/correspondence",
            ],
            log=workdir / "bare.log",
        )
    )
    bare_url = f"http://127.0.0.1:{first_line(bare, 'bench.bare_proxy').split()[1]}{ENDPOINT}"

    fakes_command = [python, "-m", "bench.fakes", "--workdir", str(workdir)]
    if args.store_url:
        fakes_command += ["--store-url", args.store_url]
    fakes = stack.enter_context(child(fakes_command, log=workdir / "fakes.log"))
    settings = json.loads(first_line(fakes, "bench.fakes"))["settings"]
    proxy_log = workdir / "proxy.log"
    proxy = stack.enter_context(
        child([python, "-m", "proxy.cli", "serve", "--config", settings], log=proxy_log, stdout_pipe=False)
    )
    proxy_url = f"http://127.0.0.1:{listening_port(proxy, proxy_log)}{ENDPOINT}"

    check_once(bare_url, expect=b"correspondenceId")
    check_once(proxy_url, expect=b"ReceiptId>")
    print(
        f"bench: wrk -t{args.threads} -c{args.connections}, {args.duration:.0f} s per side after "
        f"{args.warmup:.0f} s warm-up; logs in {workdir}",
        file=sys.stderr,
    )

    load = {"connections": args.connections, "threads": args.threads}
    run_id = f"{time.time_ns():x}"  # references stay unique even when --workdir keeps the database
    results = []
    for round_ in range(1, args.rounds + 1):
        measured = []
        for name, url, process, behind in (
            ("(a) bare reverse proxy", bare_url, bare, upstream),
            ("(b) altinn-proxy translating", proxy_url, proxy, fakes),
        ):
            if args.warmup > 0:
                run_wrk(url, script, seconds=args.warmup, tag=f"{run_id}-warm{round_}", **load)
            profile = args.profile is not None and process is proxy
            with profiling(process.pid, args.profile, args.duration) if profile else contextlib.nullcontext():
                measured.append(
                    measure(
                        name,
                        url,
                        process.pid,
                        script,
                        upstream_pid=behind.pid,
                        seconds=args.duration,
                        tag=f"{run_id}-run{round_}",
                        **load,
                    )
                )
        results.append((measured[0], measured[1]))
    return results


if __name__ == "__main__":
    sys.exit(main())
