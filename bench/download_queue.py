"""Download queue benchmark: 1,200 waiting submissions paged 500 at a time through the proxy.

Two child processes, so the memory figures are the proxy's alone: the sandbox fakes with ``--count``
completed instances of ``ttd/legacy-form-4713`` waiting in Storage, and ``altinn-proxy serve``. The
parent, as ``demo-so``, lists the queue (the oldest 500), purges every listed item with ``PurgeItem``
(Storage's confirm-download), and lists again until the queue is empty; it reports the items per
listing, the time of each step and the proxy's RSS (VmRSS, and the peak VmHWM) after each listing.

With ``--attachment SIZE`` the one waiting instance instead carries an attachment of that size (made
in Altinn 3 directly, listed by ``GetArchivedFormTaskBasicDQ`` without data): the parent fetches it
with ``GetAttachmentDataStreamedBasic`` as a plain-XML client (answered MTOM), checks its SHA-256
against the stored file, and reports the proxy's peak RSS growth over its RSS before the fetch, next
to a plain aiohttp streaming copy (``bench.streaming``'s) of the same number of bytes.

    python -m bench.download_queue --count 1200
    python -m bench.download_queue --attachment 200MiB
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

from bench.streaming import CHUNK, _chunks, _free_port, _memory, _size, _wait_http, source

NS = "http://www.altinn.no/services/Archive/DownloadQueue/2012/08"
QUEUE = "/ArchiveExternal/DownloadQueueExternalBasic.svc"
ARCHIVE_NS = "http://www.altinn.no/services/Archive/ServiceOwnerArchive/2013/06"
STREAMED = "/ArchiveExternal/ServiceOwnerArchiveExternalStreamedBasic.svc"
CREDENTIALS = "<systemUserName>demo-so</systemUserName><systemPassword>demo-so-password</systemPassword>"
TIMEOUT = aiohttp.ClientTimeout(total=600, sock_connect=10, sock_read=300)


async def _run_fakes(workdir: Path, count: int, attachment: int) -> None:
    import dataclasses
    import hashlib

    from proxy.sandbox import fixtures
    from proxy.sandbox.apps_model import Instance
    from proxy.sandbox.world import sandbox_settings_document, start_fakes, write_sandbox_files

    async with start_fakes(workdir) as fakes:
        app = fakes.apps.apps["ttd/legacy-form-4713"]
        ready: dict[str, object] = {"ready": True}
        instance = None
        for number in range(count):
            moment = 1_700_000_000.0 + number
            instance = Instance(
                guid=uuid.uuid4(),
                app=app,
                party_id=fixtures.PARTY_IDS["310000019"],
                org_number="310000019",
                created=moment,
                created_by="bench",
                data_values={"source": "bench"},
                last_changed=moment,
                task_index=None,
                process_started=moment,
                task_started=moment,
                process_ended=moment,
                order=number,
            )
            fakes.apps.instances[instance.guid] = instance
        if attachment and instance is not None:
            # Made in Altinn 3 directly, by an app that takes attachments up to Storage's request limit.
            spec = dataclasses.replace(app.data_types[1], max_size_mb=None)
            element = await fakes.apps.store(
                instance,
                spec,
                _chunks(attachment),
                content_type="application/pdf",
                filename="big.pdf",
                who="bench",
            )
            digest = hashlib.sha256()
            with fakes.apps.files.path_for(element.id).open("rb") as stored:
                while block := stored.read(CHUNK):
                    digest.update(block)
            ready.update(sha256=digest.hexdigest(), raw=await _source())
        await asyncio.to_thread(write_sandbox_files, workdir, fakes.keys)
        document = sandbox_settings_document(fakes, workdir, port=int(os.environ["BENCH_PROXY_PORT"]))
        (workdir / "settings.yaml").write_text(yaml.safe_dump(document))
        print(json.dumps(ready), flush=True)
        await asyncio.Event().wait()


async def _source() -> str:
    """A server of ``bench.streaming.source`` at ``/source`` for the plain copy's baseline; its URL."""
    app = web.Application()
    app.router.add_get("/source", source)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return f"http://127.0.0.1:{runner.addresses[0][1]}"


def _envelope(operation: str, body: str, namespace: str = NS) -> bytes:
    return (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        f'<{operation} xmlns="{namespace}">{CREDENTIALS}{body}</{operation}></s:Body></s:Envelope>'
    ).encode()


async def _call(session: aiohttp.ClientSession, url: str, operation: str, body: str) -> str:
    envelope = _envelope(operation, body)
    headers = {
        "Content-Type": "text/xml; charset=utf-8",
        "SOAPAction": f'"{NS}/IDownloadQueueExternalBasic/{operation}"',
    }
    async with session.post(url, data=envelope, headers=headers) as response:
        text = await response.text()
        if response.status != 200:
            raise RuntimeError(text[:500])
        return text


async def _bench(count: int) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    port = _free_port()
    env = {**os.environ, "BENCH_PROXY_PORT": str(port)}
    fakes = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.download_queue", "fakes", str(workdir), str(count), "0",
        stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    procs = [fakes]
    try:
        assert fakes.stdout is not None
        await fakes.stdout.readline()
        proxy = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "proxy.cli", "serve", "--config", str(workdir / "settings.yaml"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(proxy)
        base = f"http://127.0.0.1:{port}"
        await _wait_http(base + "/healthz")
        url = base + QUEUE
        results: dict[str, object] = {"waiting": count, "proxy_idle_rss": _memory(proxy.pid)["VmRSS"]}
        rounds = []
        seen: set[str] = set()
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            while True:
                started = time.perf_counter()
                answer = await _call(session, url, "GetDownloadQueueItems", "<serviceCode>4713</serviceCode>")
                listed = time.perf_counter() - started
                references = re.findall(r"<a:ArchiveReference>(AR\d+)</a:ArchiveReference>", answer)
                memory = _memory(proxy.pid)
                if not references:
                    break
                assert not seen & set(references), "an item was listed again after it was purged"
                seen |= set(references)
                started = time.perf_counter()
                for reference in references:
                    await _call(
                        session, url, "PurgeItem", f"<archiveReference>{reference}</archiveReference>"
                    )
                purged = time.perf_counter() - started
                rounds.append(
                    {
                        "listed": len(references),
                        "list_seconds": round(listed, 3),
                        "purge_seconds": round(purged, 3),
                        "proxy_rss_after_list": memory["VmRSS"],
                        "proxy_peak_rss": memory["VmHWM"],
                    }
                )
        results["rounds"] = rounds
        results["all_listed_once"] = len(seen) == count
        return results
    finally:
        for proc in procs:
            proc.terminate()
            await proc.wait()


async def _listed_attachment(session: aiohttp.ClientSession, base: str) -> str:
    """The AttachmentId of the one waiting item's attachment (listed without data: it is large)."""
    url = base + QUEUE
    answer = await _call(session, url, "GetDownloadQueueItems", "<serviceCode>4713</serviceCode>")
    [reference] = re.findall(r"<a:ArchiveReference>(AR\d+)</a:ArchiveReference>", answer)
    task = await _call(
        session,
        url,
        "GetArchivedFormTaskBasicDQ",
        f"<archiveReference>{reference}</archiveReference><languageID>1044</languageID>"
        "<includeXmlNamespace>false</includeXmlNamespace>",
    )
    assert '<a:AttachmentData i:nil="true"/>' in task, "a large attachment must be listed without data"
    [attachment_id] = re.findall(r"<a:AttachmentId>(\d+)</a:AttachmentId>", task)
    return str(attachment_id)


async def _streamed(session: aiohttp.ClientSession, base: str, attachment_id: str) -> tuple[int, str, float]:
    """``GetAttachmentDataStreamedBasic`` as a plain-XML client: (bytes, SHA-256, seconds)."""
    import hashlib

    headers = {
        "Content-Type": "text/xml; charset=utf-8",
        "SOAPAction": f'"{ARCHIVE_NS}/IServiceOwnerArchiveExternalStreamedBasic/GetAttachmentDataStreamedBasic"',
    }
    body = _envelope(
        "GetAttachmentDataStreamedBasic", f"<attachmentId>{attachment_id}</attachmentId>", ARCHIVE_NS
    )
    digest, size = hashlib.sha256(), 0
    started = time.perf_counter()
    async with session.post(base + STREAMED, data=body, headers=headers) as response:
        if response.status != 200:
            raise RuntimeError((await response.text())[:500])
        parts = aiohttp.MultipartReader.from_response(response)
        await parts.next()  # the SOAP envelope, naming the binary part by its Content-ID
        binary = await parts.next()
        assert isinstance(binary, aiohttp.BodyPartReader)
        while chunk := await binary.read_chunk(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest(), time.perf_counter() - started


async def _bench_attachment(size: int) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-attachment-"))
    port, copy_port = _free_port(), _free_port()
    env = {**os.environ, "BENCH_PROXY_PORT": str(port)}
    fakes = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.download_queue", "fakes", str(workdir), "1", str(size),
        stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    procs = [fakes]
    try:
        assert fakes.stdout is not None
        ready = json.loads(await fakes.stdout.readline())
        proxy = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "proxy.cli", "serve", "--config", str(workdir / "settings.yaml"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        copy = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.streaming", "copy", ready["raw"], str(copy_port)
        )  # fmt: skip
        procs += [proxy, copy]
        base = f"http://127.0.0.1:{port}"
        await _wait_http(base + "/healthz")
        await _wait_http(f"http://127.0.0.1:{copy_port}/none")
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=300)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            attachment_id = await _listed_attachment(session, base)
            before = _memory(proxy.pid)["VmRSS"]
            fetched, digest, seconds = await _streamed(session, base, attachment_id)
            peak = _memory(proxy.pid)["VmHWM"]
            copy_before = _memory(copy.pid)["VmRSS"]
            started = time.perf_counter()
            copied = 0
            async with session.get(
                f"http://127.0.0.1:{copy_port}/down", params={"size": str(size)}
            ) as response:
                async for chunk in response.content.iter_chunked(CHUNK):
                    copied += len(chunk)
            copy_seconds = time.perf_counter() - started
            copy_peak = _memory(copy.pid)["VmHWM"]
        return {
            "attachment_MiB": size / 2**20,
            "byte_identical": fetched == size and digest == ready["sha256"],
            "proxy_rss_before_MiB": round(before / 2**20, 1),
            "proxy_peak_rss_growth_MiB": round((peak - before) / 2**20, 1),
            "proxy_MiBps": round(size / seconds / 2**20, 1),
            "plain_copy_bytes": copied,
            "plain_copy_peak_rss_growth_MiB": round((copy_peak - copy_before) / 2**20, 1),
            "plain_copy_MiBps": round(size / copy_seconds / 2**20, 1),
        }
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()


def main() -> None:
    """Command line: ``fakes WORKDIR COUNT SIZE`` (child), ``--count N`` or ``--attachment SIZE``."""
    if len(sys.argv) > 1 and sys.argv[1] == "fakes":
        asyncio.run(_run_fakes(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1200)
    parser.add_argument("--attachment", type=_size, default=None, help="e.g. 200MiB: the streamed fetch")
    args = parser.parse_args()
    if args.attachment:
        print(json.dumps(asyncio.run(_bench_attachment(args.attachment)), indent=2))
        return
    print(json.dumps(asyncio.run(_bench(args.count)), indent=2))


if __name__ == "__main__":
    main()
