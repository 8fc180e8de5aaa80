"""Benchmark: translated calls against a bare reverse proxy, in one run, on loopback.

Each scenario measures, with the same SOAP POST, side by side:

(a) ``bench.bare_proxy`` forwarding the POST to ``bench.upstream`` (a canned Correspondence answer);
(b) ``altinn-proxy serve`` translating it against the sandbox fakes (``bench.fakes``).

Scenarios (``--scenarios``, default all):

* ``insert``: ``InsertCorrespondenceBasicV2`` without attachments, durable and idempotent (a distinct
  ExternalShipmentReference per request, from wrk's Lua), on SQLite (WAL, ``synchronous=FULL``);
* ``read``: ``GetCorrespondenceStatusDetailsBasicV3`` for one reference (list + details + id);
* ``test``: the ``Test`` operation (no credentials, no upstream call);
* ``workers``: ``insert`` again with ``serve --workers 2``, compared with the 1-worker run;
* ``postgres``: ``insert`` with 1 and 2 workers on a fresh PostgreSQL database (``--postgres``).

Every server runs in its own process (a proxy with workers: its process tree), and the load comes
from ``wrk`` in another, so the CPU time read from ``/proc/<pid>/stat`` (utime + stime, all threads)
before and after a run is the proxy's own. Each side gets a warm-up first. Printed per run:
requests/s, CPU µs per request (and the event-loop threads' share), p50/p99 latency, errors; then
every ratio against its target (issue 20) and the load average. Exit code 0 only when every target
of the scenarios run is met, 1 when one is missed, 2 when the benchmark could not run.

    python -m bench.translate [--duration 15] [--connections 16] [--scenarios insert,read]
"""

from __future__ import annotations

import argparse
import asyncio
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
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from proxy.web.loop import loop_name

CORRESPONDENCE_NS = "http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10"
CONTENT_NS = "http://schemas.altinn.no/services/ServiceEngine/Correspondence/2010/10"
FILTER_NS = "http://schemas.altinn.no/services/ServiceEngine/Correspondence/2016/02"
CONTRACT_BASE_NS = "http://www.altinn.no/services/2009/10"
AGENCY_ACTIONS = f"{CORRESPONDENCE_NS}/ICorrespondenceAgencyExternalBasic"
SOAP_ACTION = f"{AGENCY_ACTIONS}/InsertCorrespondenceBasicV2"
ENDPOINT = "/ServiceEngineExternal/CorrespondenceAgencyExternalBasic.svc"
#: Where the reference goes in the request: wrk fills in a fresh one per request.
REFERENCE_SLOT = "@REFERENCE@"
#: The reference of the one correspondence the read scenario asks about.
READ_REFERENCE = "bench-read-target"
STARTUP_TIMEOUT = 60.0
POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
#: Issue 20's targets: the mapping engine alone, and 2 workers' throughput against 1 worker's.
TARGET_ENGINE_US = 50.0
TARGET_WORKERS = 1.7
#: Most added p99 latency (translated minus bare), in ms, at half the translating proxy's capacity.
TARGET_ADDED_P99_MS = 5.0
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


def read_request(reference: str = READ_REFERENCE) -> str:
    """The read scenario's request: status details of the correspondences sent with ``reference``."""
    return f"""<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
  <s:Body>
    <GetCorrespondenceStatusDetailsBasicV3 xmlns="{CORRESPONDENCE_NS}" xmlns:f="{FILTER_NS}">
      <systemUserName>demo-so</systemUserName>
      <systemPassword>demo-so-password</systemPassword>
      <filterCriteria>
        <f:Reportee>310000019</f:Reportee>
        <f:SendersReference>{reference}</f:SendersReference>
        <f:ServiceCode>4711</f:ServiceCode>
        <f:ServiceEditionCode>1</f:ServiceEditionCode>
      </filterCriteria>
    </GetCorrespondenceStatusDetailsBasicV3>
  </s:Body>
</s:Envelope>
"""


TEST_REQUEST = f"""<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
  <s:Body><Test xmlns="{CONTRACT_BASE_NS}"/></s:Body>
</s:Envelope>
"""


@dataclass(frozen=True)
class Operation:
    """One legacy operation the benchmark sends, with issue 20's targets for it."""

    name: str
    soap_action: str
    #: The request; a ``REFERENCE_SLOT`` in it becomes a fresh reference per request.
    body: str
    #: Bytes the proxy's answer must contain (checked once before the load).
    expect: bytes
    #: Most CPU per request, as a multiple of the bare proxy's.
    cpu_target: float
    #: Least throughput, as a fraction of the bare proxy's (None: no target).
    throughput_target: float | None = None


INSERT = Operation(
    "InsertCorrespondenceBasicV2", SOAP_ACTION, soap_request(), b"ReceiptId>", 3.0, throughput_target=0.3
)
READ = Operation(
    "GetCorrespondenceStatusDetailsBasicV3",
    f"{AGENCY_ACTIONS}/GetCorrespondenceStatusDetailsBasicV3",
    read_request(),
    READ_REFERENCE.encode(),
    2.0,
)
TEST = Operation("Test", f"{CONTRACT_BASE_NS}/IAltinnContractBase/Test", TEST_REQUEST, b"TestResponse", 1.3)


def wrk_script(operation: Operation = INSERT, pause_ms: int = 0) -> str:
    """wrk's Lua: POST the operation's request, a reference unique to (run tag, thread, request) in it.

    With ``pause_ms`` each connection waits that long before each request (wrk's ``delay()``): a
    lighter, roughly constant load for the latency target.
    """
    head, _, tail = operation.body.partition(REFERENCE_SLOT)
    fill = "head .. prefix .. counter .. tail" if REFERENCE_SLOT in operation.body else "head"
    pause = f"\nfunction delay()\n  return {pause_ms}\nend\n" if pause_ms > 0 else ""
    return f"""
local head = [==[{head}]==]
local tail = [==[{tail}]==]
local threads = {{}}
local counter = 0
local prefix = "bench"

wrk.method = "POST"
wrk.headers["Content-Type"] = "text/xml; charset=utf-8"
wrk.headers["SOAPAction"] = '"{operation.soap_action}"'

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  prefix = (args[1] or "bench") .. "-" .. id .. "-"
end

function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, {fill})
end

{pause}
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
    #: The event-loop (main) threads' share of ``cpu_seconds``, over every process of the server.
    loop_cpu_seconds: float = 0.0

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds

    @property
    def cpu_us(self) -> float:
        """The server's CPU time per request, in microseconds."""
        return self.cpu_seconds * 1e6 / max(1, self.requests)

    @property
    def loop_cpu_us(self) -> float:
        """The event-loop threads' CPU time per request, in microseconds."""
        return self.loop_cpu_seconds * 1e6 / max(1, self.requests)


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """utime + stime of a process (all its threads), or of its thread ``tid``, from ``/proc``."""
    try:
        stat = Path(f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat").read_text()
    except FileNotFoundError:
        return 0.0  # exited meanwhile (a worker restarting): its CPU is no longer counted anywhere
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a supervisor and its workers)."""
    found = [pid]
    for process in found:
        with contextlib.suppress(FileNotFoundError):
            for task in Path(f"/proc/{process}/task").iterdir():
                found += [int(child) for child in (task / "children").read_text().split()]
    return found


def tree_cpu(pid: int) -> tuple[float, float]:
    """``(all threads, main threads)`` CPU seconds of ``pid``'s process tree."""
    tree = process_tree(pid)
    return sum(cpu_seconds(p) for p in tree), sum(cpu_seconds(p, p) for p in tree)


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
    (before, loop_before), upstream_before = tree_cpu(pid), cpu_seconds(upstream_pid)
    summary = run_wrk(url, script, seconds=seconds, connections=connections, threads=threads, tag=tag)
    (after, loop_after), upstream_after = tree_cpu(pid), cpu_seconds(upstream_pid)
    errors = summary["errors"]
    assert isinstance(errors, dict)
    requests = int(str(summary["requests"]))
    return Result(
        name=name,
        requests=requests,
        seconds=int(str(summary["duration_us"])) / 1e6,
        cpu_seconds=after - before,
        p50_ms=int(str(summary["p50_us"])) / 1000,
        p99_ms=int(str(summary["p99_us"])) / 1000,
        errors=sum(int(value) for value in errors.values()),
        upstream_cpu_us=(upstream_after - upstream_before) * 1e6 / max(1, requests),
        loop_cpu_seconds=loop_after - loop_before,
    )


# -- child processes ---------------------------------------------------------------------------


@contextlib.contextmanager
def child(
    command: Sequence[str], *, log: Path, stdout_pipe: bool = True, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process (stderr to ``log``), terminated and reaped on exit."""
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE if stdout_pipe else subprocess.DEVNULL,
            stderr=log_file,
            env=env,
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


def check_once(url: str, operation: Operation, *, expect: bytes, reference: str | None = None) -> None:
    """One request before the load, so a broken set-up fails loudly instead of measuring faults."""
    body = operation.body.replace(REFERENCE_SLOT, reference or f"bench-check-{time.time_ns()}")
    request = urllib.request.Request(  # noqa: S310 (a loopback http URL built here)
        url,
        data=body.encode(),
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{operation.soap_action}"'},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        answer = response.read()
    if expect not in answer:
        raise RuntimeError(f"unexpected answer from {url}:\n{answer[:2000].decode(errors='replace')}")


def engine_microseconds(iterations: int = 2000) -> float:
    """The mapping engine alone on the benchmark's request (plan, canned answers), CPU µs per call."""
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
    started = time.thread_time()  # CPU time: other jobs on a shared machine do not inflate it
    for _ in range(iterations):
        dry.seen.clear()
        drive(engine.start(request), dry.answer)
    return (time.thread_time() - started) * 1e6 / iterations


# -- scenarios ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One operation against one proxy set-up (store, workers)."""

    key: str
    operation: Operation
    store: str  # "sqlite" or "postgres"
    workers: int = 1
    #: Also measure both sides at half the translating proxy's measured capacity (p99 target).
    latency: bool = False

    @property
    def title(self) -> str:
        """How the scenario is named in the report."""
        workers = f", {self.workers} workers" if self.workers > 1 else ""
        store = "PostgreSQL" if self.store == "postgres" else "SQLite"
        return f"{self.operation.name} ({store}{workers})"


INSERT_SQLITE = Scenario("insert", INSERT, "sqlite", latency=True)
#: In the order they run: the read first, while the fakes hold few correspondences (their listing
#: scans them all, and thousands of inserts later it is the fakes that limit the read).
SCENARIOS: dict[str, tuple[Scenario, ...]] = {
    "read": (Scenario("read", READ, "sqlite"),),
    "test": (Scenario("test", TEST, "sqlite"),),
    "insert": (INSERT_SQLITE,),
    "workers": (INSERT_SQLITE, Scenario("insert", INSERT, "sqlite", workers=2)),
    "postgres": (
        Scenario("insert", INSERT, "postgres"),
        Scenario("insert", INSERT, "postgres", workers=2),
    ),
}


@dataclass(frozen=True)
class Measured:
    """A scenario's two runs: the bare proxy's and the translating proxy's."""

    scenario: Scenario
    bare: Result
    proxy: Result
    #: Both sides again at half the translating proxy's capacity (``Scenario.latency``).
    half_load: tuple[Result, Result] | None = None

    @property
    def throughput(self) -> float:
        """Translated requests/s as a fraction of the bare proxy's."""
        return self.proxy.rps / self.bare.rps

    @property
    def cpu(self) -> float:
        """Translated CPU per request as a multiple of the bare proxy's."""
        return self.proxy.cpu_us / self.bare.cpu_us


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(measured: Sequence[Measured], engine_us: float | None, load: tuple[str, str]) -> tuple[str, bool]:
    """The table, every ratio against its target, and whether all targets were met."""
    lines = [
        f"load average (1, 5, 15 min): before {load[0]}, after {load[1]}; {os.cpu_count()} cores",
        f"{'run':<58}{'req/s':>8}{'CPU µs/req':>12}{'(loop)':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>7}"
        f"{'upstream µs':>12}",
    ]
    for item in measured:
        for label, result in (("(a) bare", item.bare), ("(b) " + item.scenario.title, item.proxy)):
            lines.append(
                f"{label:<58}{result.rps:>8.0f}{result.cpu_us:>12.0f}{result.loop_cpu_us:>8.0f}"
                f"{result.p50_ms:>9.2f}{result.p99_ms:>9.2f}{result.errors:>7}{result.upstream_cpu_us:>12.0f}"
            )
    met = True
    lines.append("targets:")
    for item in measured:
        operation = item.scenario.operation
        ok = item.cpu <= operation.cpu_target and item.proxy.errors == 0
        met &= ok
        line = f"  {item.scenario.title}: CPU b/a {item.cpu:.2f} (<= {operation.cpu_target}) {_verdict(ok)}"
        if operation.throughput_target is not None:
            ok = item.throughput >= operation.throughput_target
            met &= ok
            line += f"; req/s b/a {item.throughput:.2f} (>= {operation.throughput_target}) {_verdict(ok)}"
        lines.append(line)
    for store in ("sqlite", "postgres"):
        runs = {
            m.scenario.workers: m
            for m in measured
            if m.scenario.store == store and m.scenario.key == "insert"
        }
        if 1 in runs and 2 in runs:
            ratio = runs[2].proxy.rps / runs[1].proxy.rps
            met &= ratio >= TARGET_WORKERS
            lines.append(
                f"  2 workers / 1 worker req/s ({store}): {ratio:.2f} (>= {TARGET_WORKERS}) "
                f"{_verdict(ratio >= TARGET_WORKERS)}"
            )
    for item in measured:
        if item.half_load is not None:
            bare, proxy = item.half_load
            added = proxy.p99_ms - bare.p99_ms
            ok = added <= TARGET_ADDED_P99_MS and proxy.errors == 0
            met &= ok
            lines.append(
                f"  {item.scenario.title} at half capacity ({bare.rps:.0f} / {proxy.rps:.0f} req/s): "
                f"p99 {bare.p99_ms:.1f} / {proxy.p99_ms:.1f} ms, added {added:.1f} ms "
                f"(<= {TARGET_ADDED_P99_MS:.0f}) {_verdict(ok)}"
            )
    if engine_us is not None:
        met &= engine_us <= TARGET_ENGINE_US
        lines.append(
            f"  mapping engine alone (insert, canned answers): {engine_us:.0f} µs (<= {TARGET_ENGINE_US:.0f}) "
            f"{_verdict(engine_us <= TARGET_ENGINE_US)}"
        )
    return "\n".join(lines), met


def _load() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; exit 0 when every target is met, 1 when not, 2 when it could not run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of measured load per side")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load first")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated, from {', '.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--event-loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="for both the proxy and the bare proxy (auto: uvloop when installed)",
    )
    parser.add_argument("--postgres", default=POSTGRES_ADMIN_DSN, help="admin DSN; a fresh database is made")
    parser.add_argument("--workdir", type=Path, help="keep files (logs, database) here")
    parser.add_argument(
        "--profile", type=Path, help="write py-spy's collapsed stacks of the first translating run here"
    )
    args = parser.parse_args(argv)
    wanted = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    if unknown := set(wanted) - set(SCENARIOS):
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if shutil.which("wrk") is None:
        print(
            "bench: wrk is not installed; install it with `sudo apt-get install wrk` (Debian/Ubuntu)",
            file=sys.stderr,
        )
        return 2
    scenarios = list(dict.fromkeys(s for name in SCENARIOS if name in wanted for s in SCENARIOS[name]))
    with contextlib.ExitStack() as stack:
        if args.workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="altinn-proxy-bench-")))
        else:
            workdir = args.workdir
            workdir.mkdir(parents=True, exist_ok=True)
        print(f"bench: event loop {loop_name(args.event_loop)} (proxy and bare proxy)", file=sys.stderr)
        before = _load()
        measured = run(args, scenarios, workdir, stack)
        engine_us = engine_microseconds() if "insert" in wanted else None
        text, met = report(measured, engine_us, (before, _load()))
        print(text)
    return 0 if met else 1


class Bench:
    """The processes of one benchmark run, started once and shared by the scenarios."""

    def __init__(self, args: argparse.Namespace, workdir: Path, stack: contextlib.ExitStack) -> None:
        self.args = args
        self.workdir = workdir
        self.stack = stack
        self.run_id = f"{time.time_ns():x}"  # references stay unique even when --workdir keeps the database
        python = sys.executable
        upstream = stack.enter_context(child([python, "-m", "bench.upstream"], log=workdir / "upstream.log"))
        upstream_port = int(first_line(upstream, "bench.upstream").split()[1])
        target = f"http://127.0.0.1:{upstream_port}/correspondence"
        self.upstream = upstream
        self.bare = stack.enter_context(
            child(
                [python, "-m", "bench.bare_proxy", "--upstream", target, "--event-loop", args.event_loop],
                log=workdir / "bare.log",
            )
        )
        self.bare_url = f"http://127.0.0.1:{first_line(self.bare, 'bench.bare_proxy').split()[1]}{ENDPOINT}"
        self.fakes: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
        self.profiled = False

    def settings(self, store: str) -> tuple[subprocess.Popen[bytes], str]:
        """The fakes (and the proxy's settings file) for ``store``, started on first use."""
        if store not in self.fakes:
            folder = self.workdir / store
            folder.mkdir(exist_ok=True)
            command = [sys.executable, "-m", "bench.fakes", "--workdir", str(folder)]
            if store == "postgres":
                command += ["--store-url", self.stack.enter_context(fresh_database(self.args.postgres))]
            fakes = self.stack.enter_context(child(command, log=folder / "fakes.log"))
            self.fakes[store] = (fakes, json.loads(first_line(fakes, "bench.fakes"))["settings"])
        return self.fakes[store]

    def measure(self, scenario: Scenario) -> Measured:
        """Warm up and measure the bare proxy, then the translating proxy, on ``scenario``."""
        fakes, settings = self.settings(scenario.store)
        name = f"{scenario.key}-{scenario.store}-{scenario.workers}"
        script = self.workdir / f"{name}.lua"
        script.write_text(wrk_script(scenario.operation), encoding="utf-8")
        log = self.workdir / f"proxy-{name}.log"
        command = [sys.executable, "-m", "proxy.cli", "serve", "--config", settings]
        command += ["--workers", str(scenario.workers)]
        environment = {**os.environ, "ALTINN_PROXY_LISTEN__EVENT_LOOP": self.args.event_loop}
        with child(command, log=log, stdout_pipe=False, env=environment) as proxy:
            proxy_url = f"http://127.0.0.1:{listening_port(proxy, log)}{ENDPOINT}"
            operation = scenario.operation
            check_once(self.bare_url, operation, expect=b"correspondenceId")
            if operation is READ:
                check_once(proxy_url, INSERT, expect=INSERT.expect, reference=READ_REFERENCE)
            check_once(proxy_url, operation, expect=operation.expect)
            sides = (("bare", self.bare_url, self.bare, self.upstream), ("proxy", proxy_url, proxy, fakes))
            bare, translated = (self.run_side(name, script, *side) for side in sides)
            half_load = None
            if scenario.latency:
                # Each of the connections pauses so that together they ask about half the capacity.
                pause_ms = round(1000 * self.args.connections / (translated.rps / 2))
                paced = self.workdir / f"{name}-half.lua"
                paced.write_text(wrk_script(operation, pause_ms), encoding="utf-8")
                half = tuple(self.run_side(f"{name}-half", paced, *side) for side in sides)
                half_load = (half[0], half[1])
        return Measured(scenario, bare, translated, half_load)

    def run_side(
        self,
        name: str,
        script: Path,
        side: str,
        url: str,
        process: subprocess.Popen[bytes],
        behind: subprocess.Popen[bytes],
    ) -> Result:
        """Warm up, then measure one side (profiled once, when asked)."""
        tag = f"{self.run_id}-{name}-{side}"
        load = {"connections": self.args.connections, "threads": self.args.threads}
        if self.args.warmup > 0:
            run_wrk(url, script, seconds=self.args.warmup, tag=f"{tag}-warm", **load)
        profile = self.args.profile is not None and side == "proxy" and not self.profiled
        self.profiled |= profile
        with (
            profiling(process.pid, self.args.profile, self.args.duration)
            if profile
            else contextlib.nullcontext()
        ):
            return measure(
                side,
                url,
                process.pid,
                script,
                upstream_pid=behind.pid,
                seconds=self.args.duration,
                tag=tag,
                **load,
            )


@contextlib.contextmanager
def fresh_database(admin_dsn: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for the proxy's store, dropped afterwards."""
    import asyncpg

    name = f"altinn_proxy_bench_{uuid.uuid4().hex[:12]}"

    async def execute(statement: str) -> None:
        connection = await asyncpg.connect(admin_dsn, timeout=10)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run(
    args: argparse.Namespace, scenarios: Sequence[Scenario], workdir: Path, stack: contextlib.ExitStack
) -> list[Measured]:
    """Start the shared processes, then measure each scenario (bare, then translated)."""
    bench = Bench(args, workdir, stack)
    print(
        f"bench: wrk -t{args.threads} -c{args.connections}, {args.duration:.0f} s per side after "
        f"{args.warmup:.0f} s warm-up; logs in {workdir}",
        file=sys.stderr,
    )
    measured = []
    for scenario in scenarios:
        measured.append(bench.measure(scenario))
        print(f"bench: measured {scenario.title}", file=sys.stderr)
    return measured


if __name__ == "__main__":
    sys.exit(main())
