"""Broker streaming benchmark: a large upload and download through the proxy, next to a plain copy.

Three child processes, so the memory figures are the proxy's alone:
* ``fakes``: the sandbox fakes (Maskinporten, Broker...) plus a sink/source server for the baseline
  (the sink stores uploads exactly as the fake Broker does);
* ``altinn-proxy serve`` with settings pointing at those fakes;
* ``copy``: a plain aiohttp streaming copy (the baseline) in front of the sink/source.
The parent sends ``--size`` bytes as an MTOM ``UploadFileStreamedBasic`` and reads them back with
``DownloadFileStreamedBasic``, once as an MTOM client and once as a plain-XML client (which gets MTOM
too, as from WCF), then the same through the legacy REST broker (``POST
/api/{who}/brokerservice/outbox`` with the file as the body, ``GET .../inbox/{ref}/download``; the
enterprise certificate comes in the trusted-ingress header, so no TLS is measured on either side),
then pushes the same number of bytes through the plain copy. Peak RSS (VmHWM) and RSS (VmRSS) of the
proxy are read from ``/proc/<pid>/status``.

    python -m bench.streaming --size 1GiB [--front soap|rest|both]
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
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

NS = "http://www.altinn.no/services/ServiceEngine/Broker/2015/06"
BASIC = "/ServiceEngineExternal/BrokerServiceExternalBasic.svc"
STREAMED = "/ServiceEngineExternal/BrokerServiceExternalBasicStreamed.svc"
BOUNDARY = "uuid:bench-boundary"
CHUNK = 256 * 1024
CERT_HEADER = "X-Client-Cert"
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)


def _size(text: str) -> int:
    match = re.fullmatch(r"(\d+)\s*(GiB|MiB|KiB|)", text)
    if match is None:
        raise argparse.ArgumentTypeError("a size like 1GiB, 64MiB or 1048576")
    return int(match.group(1)) * {"GiB": 1024**3, "MiB": 1024**2, "KiB": 1024, "": 1}[match.group(2)]


def _memory(pid: int) -> dict[str, int]:
    """VmHWM and VmRSS of ``pid`` in bytes."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            values[name] = int(rest.split()[0]) * 1024
    return values


async def _chunks(size: int) -> AsyncIterator[bytes]:
    block = os.urandom(CHUNK)
    sent = 0
    while sent < size:
        piece = block[: min(CHUNK, size - sent)]
        sent += len(piece)
        yield piece


async def source(request: web.Request) -> web.StreamResponse:
    """``?size=N``: N bytes of :func:`_chunks`, the baseline's upstream download."""
    size = int(request.query["size"])
    response = web.StreamResponse(headers={"Content-Length": str(size)})
    await response.prepare(request)
    async for chunk in _chunks(size):
        await response.write(chunk)
    return response


# -- child: fakes ----------------------------------------------------------------------------------


async def _run_fakes(workdir: Path) -> None:
    from proxy.sandbox.broker_files import FileStore
    from proxy.sandbox.runner import TLS_CLIENTS
    from proxy.sandbox.tls import write_sandbox_tls
    from proxy.sandbox.world import sandbox_settings_document, start_fakes, write_sandbox_files

    # The baseline's upstream does exactly what the fake Broker does with an upload (the same
    # FileStore: chunks batched to disk in a worker thread, MD5 on the way), so the two uploads end
    # in the same sink and the ratio compares the proxies, not their upstreams.
    files = FileStore(workdir / "baseline-files")

    async def sink(request: web.Request) -> web.Response:
        transfer_id = uuid.uuid4()
        stored = await files.receive(transfer_id, request.content.iter_chunked(CHUNK), limit=1 << 40)
        await files.remove(transfer_id)
        return web.json_response({"received": stored.size})

    app = web.Application(client_max_size=1 << 40)
    app.router.add_post("/sink", sink)
    app.router.add_get("/source", source)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    raw = f"http://127.0.0.1:{runner.addresses[0][1]}"
    async with start_fakes(workdir) as fakes:
        await asyncio.to_thread(write_sandbox_files, workdir, fakes.keys)
        tls = await asyncio.to_thread(write_sandbox_tls, workdir / "tls", TLS_CLIENTS)
        document = sandbox_settings_document(fakes, workdir, port=0, client_ca_file=tls.ca)
        # The REST caller's certificate arrives as an ingress would forward it (no TLS in the figures).
        document["identity"].update(trusted_proxies=["127.0.0.1/32"], client_certificate_header=CERT_HEADER)
        document["listen"]["port"] = int(os.environ.get("BENCH_PROXY_PORT", "0"))
        document.setdefault("limits", {})["max_streamed_bytes"] = 4 * 1024**3
        (workdir / "settings.yaml").write_text(yaml.safe_dump(document))
        print(json.dumps({"raw": raw}), flush=True)
        await asyncio.Event().wait()


# -- child: the plain copy -------------------------------------------------------------------------


async def _run_copy(upstream: str, port: int) -> None:
    session = aiohttp.ClientSession(timeout=TIMEOUT)

    async def upload(request: web.Request) -> web.Response:
        async with session.post(
            upstream + "/sink",
            data=request.content.iter_chunked(CHUNK),
            headers={"Content-Length": request.headers["Content-Length"]},
        ) as answer:
            return web.Response(body=await answer.read(), content_type="application/json")

    async def download(request: web.Request) -> web.StreamResponse:
        async with session.get(upstream + "/source", params=request.query) as answer:
            response = web.StreamResponse()
            await response.prepare(request)
            async for chunk in answer.content.iter_chunked(CHUNK):
                await response.write(chunk)
            return response

    app = web.Application(client_max_size=1 << 40)
    app.router.add_post("/up", upload)
    app.router.add_get("/down", download)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


# -- parent ----------------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _wait_http(url: str) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        for _ in range(300):
            try:
                async with session.get(url):
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def _soap(body: str) -> bytes:
    return (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        + body
        + "</s:Body></s:Envelope>"
    ).encode()


async def _call(session: aiohttp.ClientSession, url: str, action: str, body: str) -> str:
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{NS}/{action}"'}
    async with session.post(url, data=_soap(body), headers=headers) as response:
        text = await response.text()
        if response.status != 200:
            raise RuntimeError(text[:500])
        return text


def _rest_headers(workdir: Path, org: str) -> dict[str, str]:
    pem = (workdir / "tls" / f"eus-{org}.pem").read_text()
    return {"ApiKey": "demo-apikey", CERT_HEADER: urllib.parse.quote(pem)}


async def _rest(
    session: aiohttp.ClientSession, base: str, workdir: Path, size: int, proxy_pid: int
) -> dict[str, object]:
    """One ``size`` file through the REST outbox of 310000019 and the inbox of 310000027."""
    results: dict[str, object] = {}
    description = json.dumps({"ServiceCode": "4712", "ServiceEditionCode": 1, "Recipients": ["310000027"]})
    started = time.perf_counter()
    async with session.post(
        f"{base}/api/310000019/brokerservice/outbox",
        params={"ForceEIAuthentication": "", "fileName": "big.bin", "brokerServiceDescription": description},
        data=_chunks(size),
        headers={**_rest_headers(workdir, "310000019"), "Content-Length": str(size)},
    ) as response:
        created = await response.json(content_type=None)
        if response.status != 201:
            raise RuntimeError(str(created)[:500])
    results["rest_upload_MiBps"] = size / (time.perf_counter() - started) / 2**20
    results["proxy_rss_after_rest_upload"] = _memory(proxy_pid)
    url = f"{base}/api/310000027/brokerservice/inbox/{created['FileReference']}/download"
    received = 0
    for _ in range(600):
        started = time.perf_counter()
        received = 0
        async with session.get(
            url, params={"ForceEIAuthentication": ""}, headers=_rest_headers(workdir, "310000027")
        ) as response:
            if response.status == 200:
                async for chunk in response.content.iter_chunked(CHUNK):
                    received += len(chunk)
                break
            await response.read()
        await asyncio.sleep(0.1)
    if received != size:
        raise RuntimeError(f"REST download returned {received} bytes, expected {size}")
    results["rest_download_MiBps"] = size / (time.perf_counter() - started) / 2**20
    results["proxy_rss_after_rest_download"] = _memory(proxy_pid)
    return results


async def _bench(size: int, front: str = "both") -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-streaming-"))
    proxy_port, copy_port = _free_port(), _free_port()
    env = {**os.environ, "BENCH_PROXY_PORT": str(proxy_port)}
    fakes = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.streaming",
        "fakes",
        str(workdir),
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    procs = [fakes]
    try:
        assert fakes.stdout is not None
        raw = json.loads(await fakes.stdout.readline())["raw"]
        proxy = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "proxy.cli", "serve", "--config", str(workdir / "settings.yaml"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        copy = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.streaming", "copy", raw, str(copy_port)
        )
        procs += [proxy, copy]
        base = f"http://127.0.0.1:{proxy_port}"
        await _wait_http(base + "/healthz")
        await _wait_http(f"http://127.0.0.1:{copy_port}/none")
        idle = _memory(proxy.pid)
        results: dict[str, object] = {"size_bytes": size, "proxy_idle_rss": idle["VmRSS"]}
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            if front in ("rest", "both"):
                results.update(await _rest(session, base, workdir, size, proxy.pid))
                results["rest_peak_rss_growth_MiB"] = (_memory(proxy.pid)["VmHWM"] - idle["VmRSS"]) / 2**20
            if front == "rest":
                return await _finish(results, session, copy_port, size, proxy.pid, idle["VmRSS"])
            initiate = await _call(
                session, base + BASIC, "IBrokerServiceExternalBasic/InitiateBrokerServiceBasic",
                f'<InitiateBrokerServiceBasic xmlns="{NS}" xmlns:b="http://schemas.altinn.no/services/'
                'ServiceEngine/Broker/2015/06"><systemUserName>demo-eus</systemUserName>'
                "<systemPassword>demo-eus-password</systemPassword><brokerServiceInitiation><b:Manifest>"
                "<b:ExternalServiceCode>4712</b:ExternalServiceCode><b:ExternalServiceEditionCode>1"
                "</b:ExternalServiceEditionCode><b:Reportee>310000019</b:Reportee></b:Manifest>"
                "<b:RecipientList><b:Recipient><b:PartyNumber>310000027</b:PartyNumber></b:Recipient>"
                "</b:RecipientList></brokerServiceInitiation></InitiateBrokerServiceBasic>",
            )  # fmt: skip
            reference = re.search(r"[0-9a-f-]{36}", initiate.split("InitiateBrokerServiceBasicResult")[1])
            assert reference is not None
            file_id = reference.group(0)
            head = (
                f"--{BOUNDARY}\r\nContent-ID: <root>\r\nContent-Type: application/xop+xml; "
                'charset=utf-8; type="text/xml"\r\n\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/'
                f'envelope/"><s:Header><FileName xmlns="{NS}">big.bin</FileName><Reference xmlns="{NS}">'
                f'{file_id}</Reference><Reportee xmlns="{NS}">310000019</Reportee><SystemPassword '
                f'xmlns="{NS}">demo-eus-password</SystemPassword><SystemUserName xmlns="{NS}">demo-eus'
                f'</SystemUserName></s:Header><s:Body><StreamedPayloadBasicBE xmlns="{NS}"><DataStream>'
                '<xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:p"/></DataStream>'
                f"</StreamedPayloadBasicBE></s:Body></s:Envelope>\r\n--{BOUNDARY}\r\nContent-ID: <p>\r\n"
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            tail = f"\r\n--{BOUNDARY}--\r\n".encode()

            async def mtom() -> AsyncIterator[bytes]:
                yield head
                async for chunk in _chunks(size):
                    yield chunk
                yield tail

            content_type = (
                f'multipart/related; type="application/xop+xml"; boundary="{BOUNDARY}"; start="<root>"; '
                'start-info="text/xml"'
            )
            started = time.perf_counter()
            async with session.post(
                base + STREAMED,
                data=mtom(),
                headers={
                    "Content-Type": content_type,
                    "Content-Length": str(len(head) + size + len(tail)),
                    "SOAPAction": f'"{NS}/IBrokerServiceExternalBasicStreamed/UploadFileStreamedBasic"',
                },
            ) as response:
                text = await response.text()
                if response.status != 200:
                    raise RuntimeError(text[:500])
            results["proxy_upload_MiBps"] = size / (time.perf_counter() - started) / 2**20
            results["proxy_rss_after_upload"] = _memory(proxy.pid)

            # The fake publishes every 50 ms; poll until the download is accepted.
            body = (
                f'<DownloadFileStreamedBasic xmlns="{NS}"><systemUserName>demo-eus2</systemUserName>'
                f"<systemPassword>demo-eus2-password</systemPassword><fileReference>{file_id}"
                "</fileReference><reportee>310000027</reportee></DownloadFileStreamedBasic>"
            )
            headers = {
                "Content-Type": 'multipart/related; type="application/xop+xml"; boundary="b"; '
                'start="<r>"; start-info="text/xml"',
                "SOAPAction": f'"{NS}/IBrokerServiceExternalBasicStreamed/DownloadFileStreamedBasic"',
            }
            mtom_request = (
                (
                    b'--b\r\nContent-ID: <r>\r\nContent-Type: application/xop+xml; charset=utf-8; type="text/xml"'
                    b"\r\n\r\n"
                )
                + _soap(body)
                + b"\r\n--b--\r\n"
            )
            for _ in range(600):
                started = time.perf_counter()
                received = 0
                async with session.post(base + STREAMED, data=mtom_request, headers=headers) as response:
                    if response.status == 200:
                        async for chunk in response.content.iter_chunked(CHUNK):
                            received += len(chunk)
                        break
                    await response.read()
                await asyncio.sleep(0.1)
            if received < size:
                raise RuntimeError(f"download returned {received} bytes, expected at least {size}")
            results["proxy_download_MiBps"] = size / (time.perf_counter() - started) / 2**20
            results["proxy_rss_after_download"] = _memory(proxy.pid)

            # A client without MTOM (plain text/xml request) gets MTOM back all the same, streamed.
            started = time.perf_counter()
            received = 0
            plain = {**headers, "Content-Type": "text/xml; charset=utf-8"}
            async with session.post(base + STREAMED, data=_soap(body), headers=plain) as response:
                if response.status != 200 or not response.content_type.startswith("multipart/related"):
                    raise RuntimeError(
                        f"plain-XML download answered {response.status} {response.content_type}"
                    )
                async for chunk in response.content.iter_chunked(CHUNK):
                    received += len(chunk)
            if received < size:
                raise RuntimeError(f"plain-XML download returned {received} bytes, expected at least {size}")
            results["proxy_download_to_plain_client_MiBps"] = size / (time.perf_counter() - started) / 2**20
            results["proxy_rss_after_plain_download"] = _memory(proxy.pid)

            results = await _finish(results, session, copy_port, size, proxy.pid, idle["VmRSS"])
            results["plain_client_download_ratio"] = float(  # type: ignore[arg-type]
                results["proxy_download_to_plain_client_MiBps"]  # type: ignore[arg-type]
            ) / float(results["plain_download_MiBps"])  # type: ignore[arg-type]
            return results
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()


async def _finish(
    results: dict[str, object],
    session: aiohttp.ClientSession,
    copy_port: int,
    size: int,
    proxy_pid: int,
    idle_rss: int,
) -> dict[str, object]:
    """The plain copy's figures, the proxy's peak RSS growth and the ratios."""
    copy_base = f"http://127.0.0.1:{copy_port}"
    started = time.perf_counter()
    async with session.post(
        copy_base + "/up", data=_chunks(size), headers={"Content-Length": str(size)}
    ) as response:
        await response.read()
    results["plain_upload_MiBps"] = size / (time.perf_counter() - started) / 2**20
    started = time.perf_counter()
    async with session.get(copy_base + "/down", params={"size": str(size)}) as response:
        async for _ in response.content.iter_chunked(CHUNK):
            pass
    results["plain_download_MiBps"] = size / (time.perf_counter() - started) / 2**20
    results["proxy_peak_rss_growth_MiB"] = (_memory(proxy_pid)["VmHWM"] - idle_rss) / 2**20
    for kind, prefix in (
        ("upload", "proxy"),
        ("download", "proxy"),
        ("upload", "rest"),
        ("download", "rest"),
    ):
        measured = results.get(f"{prefix}_{kind}_MiBps")
        if measured is not None:
            name = f"{kind}_ratio" if prefix == "proxy" else f"rest_{kind}_ratio"
            results[name] = float(measured) / float(results[f"plain_{kind}_MiBps"])  # type: ignore[arg-type]
    return results


def main() -> None:
    """Command line: ``python -m bench.streaming [--size 1GiB]`` (children use ``fakes``/``copy``)."""
    if len(sys.argv) > 1 and sys.argv[1] == "fakes":
        asyncio.run(_run_fakes(Path(sys.argv[2])))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "copy":
        asyncio.run(_run_copy(sys.argv[2], int(sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=_size, default=_size("1GiB"))
    parser.add_argument("--front", choices=["soap", "rest", "both"], default="both")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_bench(args.size, args.front)), indent=2, default=str))


if __name__ == "__main__":
    main()
