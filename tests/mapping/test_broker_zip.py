"""Broker ErrorID 40206 with no server: a routing entry with ``require_zip`` refuses a non-ZIP upload
before the Altinn 3 upload call is built, judged on the upload stream's first bytes only."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from typing import Any

import pytest
from lxml import etree

from proxy.altinn3.peek import peek
from proxy.broker.zipcheck import NOT_A_ZIP, is_zip
from proxy.errors import InvalidField
from proxy.identity.principal import CallerKind, OrgGrant, Principal
from proxy.mapping import Engine, MappingSet, OperationRequest, Route, RoutingTable
from proxy.mapping.calls import Altinn3Call, Altinn3Response, PeekStream, PlanRequest, Recall, StreamBody
from proxy.mapping.engine import Plan
from proxy.mapping.peek import PeekedStream
from proxy.pipeline.loading import load_mapping_set
from proxy.soap.payload import SizedStream
from tests.mapping.helpers import MAPPINGS, wire

NS = "http://www.altinn.no/services/ServiceEngine/Broker/2015/06"
FILE_ID = "6f1c2b1e-0c55-4f39-a6b5-0a3e4c7d9e01"
NOW = datetime(2026, 8, 21, 10, 0, tzinfo=UTC)
SENDER_ORG = "310000019"


@pytest.fixture(scope="module")
def mapping_set() -> MappingSet:
    return load_mapping_set(MAPPINGS)


def _engine(mapping_set: MappingSet, *, require_zip: bool, resource: str = "ttd-broker-4712") -> Engine:
    route = Route("4712", "1", broker_resource=resource, require_zip=require_zip)
    return Engine(lambda: mapping_set, RoutingTable.of([route]), clock=lambda: NOW)


def _zip_bytes() -> bytes:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data/report.xml", b"<report>" + b"x" * 5000 + b"</report>")
    return sink.getvalue()


class CountingStream:
    """An upload stream that records how many chunks were pulled from it, and whether it was closed."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = list(chunks)
        self.pulled = 0
        self.closed = False

    def __aiter__(self) -> CountingStream:
        return self

    async def __anext__(self) -> bytes:
        if not self._chunks:
            raise StopAsyncIteration
        self.pulled += 1
        return self._chunks.pop(0)

    async def aclose(self) -> None:
        self.closed = True


def _chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _upload_request(stream: Any) -> OperationRequest:
    body = etree.fromstring(
        f"<StreamedPayloadBasicBE xmlns='{NS}'><FileName>payload.zip</FileName>"
        f"<Reference>{FILE_ID}</Reference><Reportee>{SENDER_ORG}</Reportee></StreamedPayloadBasicBE>".encode()
    )
    sender = Principal("eus", CallerKind.END_USER_SYSTEM, orgs={SENDER_ORG: OrgGrant(SENDER_ORG)})
    return OperationRequest(
        "BrokerServiceExternalBasicStreamed",
        "UploadFileStreamedBasic",
        body,
        sender,
        streams={"attachment": stream},
    )


class Upstream:
    """Canned Altinn 3 answers; records every request and reads every upload body to its end."""

    def __init__(self, observer: Any, resource: str = "ttd-broker-4712") -> None:
        self.observer = observer
        self.resource = resource
        self.seen: list[PlanRequest] = []
        self.uploaded: bytes | None = None
        self.upload_length: int | None = None

    async def answer(self, request: PlanRequest) -> Any:
        self.seen.append(request)
        if isinstance(request, PeekStream):
            return await peek(request.source, request.size)
        if isinstance(request, Recall):
            return None  # a transfer id, not a reference of InitiateBrokerServiceBasic
        assert isinstance(request, Altinn3Call)
        method, url, headers, body = wire(request)
        if isinstance(request.body, StreamBody):
            self.upload_length = request.body.length
            self.uploaded = body = b"".join([chunk async for chunk in request.body.source])
            headers["Content-Type"] = request.body.content_type
        self.observer(method, url, headers, body)
        if request.path.endswith("/upload"):
            return Altinn3Response(200, json={"fileTransferId": FILE_ID})
        overview = {"fileTransferId": FILE_ID, "resourceId": self.resource, "fileName": "payload.zip"}
        return Altinn3Response(200, json=overview)

    def calls(self) -> list[tuple[str, str]]:
        return [(c.method, c.path) for c in self.seen if isinstance(c, Altinn3Call)]


async def _drive(plan: Plan, upstream: Upstream) -> Any:
    value: Any = None
    try:
        while True:
            try:
                request = plan.send(value)
            except StopIteration as stop:
                return stop.value
            value = await upstream.answer(request)
    finally:
        plan.close()


OVERVIEW = ("GET", f"/broker/api/v1/filetransfer/{FILE_ID}")
UPLOAD = ("POST", f"/broker/api/v1/filetransfer/{FILE_ID}/upload")


async def test_a_non_zip_upload_is_refused_with_40206_before_the_upload_call(
    mapping_set: MappingSet, altinn3_contract: Any
) -> None:
    stream = CountingStream(_chunked(b"%PDF-1.7 not an archive" * 1000, 4096))
    upstream = Upstream(altinn3_contract)

    with pytest.raises(InvalidField) as refused:
        await _drive(_engine(mapping_set, require_zip=True).start(_upload_request(stream)), upstream)

    assert refused.value.error_id == NOT_A_ZIP == 40206
    assert refused.value.message == "the file is not a ZIP archive, and broker service 4712/1 requires one"
    assert upstream.calls() == [OVERVIEW]
    assert upstream.uploaded is None
    assert stream.pulled == 1  # only the peeked chunk was read: nothing is buffered beyond it


@pytest.mark.parametrize("chunk_size", [1, 3, 4, 65536])
async def test_a_zip_upload_goes_through_whole_and_sized(
    mapping_set: MappingSet, altinn3_contract: Any, chunk_size: int
) -> None:
    data = _zip_bytes()
    stream = SizedStream(CountingStream(_chunked(data, chunk_size)), len(data))
    upstream = Upstream(altinn3_contract)

    answer = await _drive(_engine(mapping_set, require_zip=True).start(_upload_request(stream)), upstream)

    assert upstream.calls() == [OVERVIEW, UPLOAD]
    assert upstream.uploaded == data
    assert upstream.upload_length == len(data)  # still sent with a Content-Length
    assert b"<ReceiptStatusCode>OK</ReceiptStatusCode>" in answer.xml


async def test_an_empty_zip_archive_is_a_zip(mapping_set: MappingSet, altinn3_contract: Any) -> None:
    sink = io.BytesIO()
    zipfile.ZipFile(sink, "w").close()
    empty = sink.getvalue()
    assert empty.startswith(b"PK\x05\x06")
    upstream = Upstream(altinn3_contract)

    await _drive(
        _engine(mapping_set, require_zip=True).start(_upload_request(CountingStream([empty]))), upstream
    )

    assert upstream.uploaded == empty


async def test_without_require_zip_the_stream_is_sent_untouched(
    mapping_set: MappingSet, altinn3_contract: Any
) -> None:
    stream = CountingStream([b"not a zip at all"])
    upstream = Upstream(altinn3_contract)

    await _drive(_engine(mapping_set, require_zip=False).start(_upload_request(stream)), upstream)

    assert upstream.calls() == [UPLOAD]  # no look-up, no peek: the route table asks for nothing
    assert not any(isinstance(r, PeekStream) for r in upstream.seen)
    assert upstream.uploaded == b"not a zip at all"


async def test_a_transfer_of_another_resource_is_not_judged(
    mapping_set: MappingSet, altinn3_contract: Any
) -> None:
    # Some route requires ZIP, but this transfer's resource is not that route's.
    upstream = Upstream(altinn3_contract, resource="ttd-broker-other")

    await _drive(
        _engine(mapping_set, require_zip=True).start(_upload_request(CountingStream([b"plain text"]))),
        upstream,
    )

    assert upstream.calls() == [OVERVIEW, UPLOAD]
    assert upstream.uploaded == b"plain text"


async def test_peek_replays_the_head_then_the_rest_and_closes_the_source() -> None:
    source = CountingStream([b"P", b"K\x03", b"\x04abc", b"def"])

    peeked = await peek(source, 4)

    assert isinstance(peeked, PeekedStream)
    assert peeked.head == b"PK\x03\x04"
    assert source.pulled == 3
    assert b"".join([chunk async for chunk in peeked]) == b"PK\x03\x04abcdef"
    await peeked.aclose()
    assert source.closed


async def test_peek_of_a_short_stream_sees_what_there_is() -> None:
    peeked = await peek(CountingStream([b"PK"]), 4)

    assert peeked.head == b"PK"
    assert not is_zip(peeked.head)
    assert [chunk async for chunk in peeked] == [b"PK"]
