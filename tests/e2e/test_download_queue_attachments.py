"""Issue 16: attachments the download queue lists, fetched by ``GetAttachmentDataStreamedBasic``.

The service owner lists a form task with ``GetArchivedFormTaskBasicDQ``; every attachment has an
AttachmentId (one over 30 MB is listed without data), and the streamed service answers it as the MTOM
part of the reply, from Storage as it arrives. The zeep clients are built from the ORIGINAL WSDLs.
``ServiceOwnerArchiveExternalStreamedBasic.wsdl`` imports its schemas from the service
(``.svc?xsd=xsdN``): the client fetches them from the proxy, as a client pointed at the proxy does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from proxy.sandbox.apps_model import DataElement
from tests.e2e.conftest import World
from tests.e2e.test_download_queue import SERVICE_OWNER, _archived, _fault, _items, _queue
from tests.e2e.test_form_submission import ATTACHMENTS, submitted

STREAMED = "/ArchiveExternal/ServiceOwnerArchiveExternalStreamedBasic.svc"
STREAMED_WSDL = (
    "altinn2/ServiceOwnerArchiveExternalStreamed/Basic/ServiceOwnerArchiveExternalStreamedBasic.wsdl"
)
REPO = Path(__file__).resolve().parents[2]
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"


def streamed_client(wsdl: Path, proxy_url: str) -> Any:
    """A zeep service proxy of the original streamed WSDL, its schema imports answered by the proxy.

    Each import names a namespace and a ``?xsd=`` location at www.altinn.no; the client gets that
    namespace's schema from the proxy's own description of the service instead (an empty schema for
    a namespace the proxy's description does not need).
    """
    import zeep
    from zeep.transports import Transport

    safe = etree.XMLParser(resolve_entities=False, no_network=True)
    imports = {
        element.get("schemaLocation"): element.get("namespace")
        for element in etree.parse(str(wsdl), safe).iter(f"{{{XSD_NS}}}import")
        if element.get("schemaLocation")
    }

    class ProxySchemas(Transport):  # type: ignore[misc]
        def load(self, url: str) -> bytes:
            if url not in imports:
                return bytes(super().load(url))
            served = etree.fromstring(bytes(super().load(proxy_url + STREAMED + "?singleWsdl")), safe)
            namespace = imports[url]
            for schema in served.iter(f"{{{XSD_NS}}}schema"):
                if schema.get("targetNamespace") == namespace:
                    return bytes(etree.tostring(schema))
            return f'<xsd:schema xmlns:xsd="{XSD_NS}" targetNamespace="{namespace}"/>'.encode()

    client = zeep.Client(str(wsdl), transport=ProxySchemas(timeout=30, operation_timeout=30))
    binding = next(iter(next(iter(client.wsdl.services.values())).ports.values())).binding
    return client.create_service(binding.name, proxy_url + STREAMED)


async def test_each_listed_attachment_streams_byte_identical_and_an_unknown_id_is_a_fault(
    world: World, reference: Path
) -> None:
    receipt = await submitted(world, "dq-attachments")
    archive = receipt["References"]["ArchiveReference"]

    def service_owner() -> dict[str, Any]:
        queue = _queue(reference, world)
        streamed = streamed_client(reference / STREAMED_WSDL, world.proxy_url)
        [item] = _items(queue)
        listed = queue.GetArchivedFormTaskBasicDQ(*SERVICE_OWNER, archive, 1044, False).Attachments
        again = queue.GetArchivedFormTaskBasicDQ(*SERVICE_OWNER, archive, 1044, False).Attachments
        fetched = {
            a.FileName: streamed.GetAttachmentDataStreamedBasic(*SERVICE_OWNER, a.AttachmentId)
            for a in listed.ArchivedAttachmentDQBE
        }
        unknown = _fault(lambda: streamed.GetAttachmentDataStreamedBasic(*SERVICE_OWNER, 99_999_999))
        listed_ids = [a.AttachmentId for a in listed.ArchivedAttachmentDQBE]
        again_ids = [a.AttachmentId for a in again.ArchivedAttachmentDQBE]
        return locals()

    seen = await asyncio.to_thread(service_owner)

    assert seen["item"].ArchiveReference == archive
    assert seen["fetched"] == ATTACHMENTS
    assert seen["listed_ids"] == seen["again_ids"]  # stable on repeated listing
    assert seen["unknown"] == "no archive_attachment with id 99999999"


async def test_an_end_user_cannot_fetch_a_service_owner_attachment(world: World, reference: Path) -> None:
    receipt = await submitted(world, "dq-attachments-eus")
    archive = receipt["References"]["ArchiveReference"]

    def calls() -> str:
        task = _queue(reference, world).GetArchivedFormTaskBasicDQ(*SERVICE_OWNER, archive, 1044, False)
        attachment_id = task.Attachments.ArchivedAttachmentDQBE[0].AttachmentId
        streamed = streamed_client(reference / STREAMED_WSDL, world.proxy_url)
        return _fault(
            lambda: streamed.GetAttachmentDataStreamedBasic("demo-eus", "demo-eus-password", attachment_id)
        )

    assert "only available to service owners" in await asyncio.to_thread(calls)


SIZE = 200 * 1024 * 1024
CHUNK = 1024 * 1024


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_a_200_mib_attachment_made_in_altinn_3_streams_to_the_service_owner(
    world: World, reference: Path
) -> None:
    fake = world.fakes.apps
    instance = _archived(world, 1)  # completed in Altinn 3 directly, never through the proxy
    # The app takes attachments up to Altinn's request limit (250 MiB) for this instance.
    spec = dataclasses.replace(instance.app.data_types[1], max_size_mb=None)
    sent = hashlib.sha256()

    async def chunks() -> AsyncIterator[bytes]:
        block = os.urandom(CHUNK)
        for index in range(SIZE // CHUNK):
            chunk = index.to_bytes(8, "big") + block[8:]  # no two chunks alike
            sent.update(chunk)
            yield chunk

    element: DataElement = await fake.store(
        instance, spec, chunks(), content_type="application/pdf", filename="stor.pdf", who="direct"
    )

    # zeep runs in its own process: parsing a 200 MiB multipart answer holds the GIL for long
    # stretches, which would stall this test's event loop (the proxy and the fakes run on it).
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        FETCH_SCRIPT,
        str(reference),
        world.proxy_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    inline, size, digest = out.decode().split()
    assert inline == "None"  # over 30 MB: listed without data
    assert (int(size), digest) == (SIZE, sent.hexdigest())
    assert element.size == SIZE


FETCH_SCRIPT = """
import hashlib, sys
from pathlib import Path
from tests.e2e.conftest import legacy_client
from tests.e2e.test_download_queue import QUEUE, QUEUE_WSDL, SERVICE_OWNER
from tests.e2e.test_download_queue_attachments import STREAMED_WSDL, streamed_client

reference, proxy_url = Path(sys.argv[1]), sys.argv[2]
queue = legacy_client(reference / QUEUE_WSDL, proxy_url + QUEUE)
[item] = queue.GetDownloadQueueItems(*SERVICE_OWNER, "4713")
task = queue.GetArchivedFormTaskBasicDQ(*SERVICE_OWNER, item.ArchiveReference, 1044, False)
[attachment] = task.Attachments.ArchivedAttachmentDQBE
streamed = streamed_client(reference / STREAMED_WSDL, proxy_url)
data = streamed.GetAttachmentDataStreamedBasic(*SERVICE_OWNER, attachment.AttachmentId)
print(attachment.AttachmentData, len(data), hashlib.sha256(data).hexdigest())
"""
