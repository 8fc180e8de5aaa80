"""Broker operations with no server: legacy request in → Altinn 3 calls out (each judged by Altinn's
published contract) → canned Altinn 3 answers in → legacy XML out, compared after C14N."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from lxml import etree

from proxy.errors import AuthorizationDenied, Conflict, NotFound, ProxyError
from proxy.identity.principal import CallerKind, OrgGrant, Principal
from proxy.mapping import Engine, MappingSet, OperationRequest, Route, RoutingTable
from proxy.mapping.calls import (
    Altinn3Call,
    Altinn3Response,
    CallBatch,
    LoadReceipts,
    PlanRequest,
    Recall,
    Remember,
)
from proxy.pipeline.loading import load_mapping_set
from tests.mapping.helpers import MAPPINGS, canonical, run
from tests.mapping.playbook import Answer, Batch, Call, Fault, Playbook, Yields

NS = "http://www.altinn.no/services/ServiceEngine/Broker/2015/06"
BE = "http://schemas.altinn.no/services/ServiceEngine/Broker/2015/06"
RECEIPT_NS = "http://www.altinn.no/services/Intermediary/Receipt/2009/10"
RECEIPT_2015 = "http://schemas.altinn.no/services/Intermediary/Receipt/2015/06"
FILE_ID = "6f1c2b1e-0c55-4f39-a6b5-0a3e4c7d9e01"
NOW = datetime(2026, 8, 21, 10, 0, tzinfo=UTC)
SENDER = Principal("eus", CallerKind.END_USER_SYSTEM, orgs={"310000019": OrgGrant("310000019")})
RECIPIENT = Principal("eus2", CallerKind.END_USER_SYSTEM, orgs={"310000027": OrgGrant("310000027")})
NOW_TEXT = "2026-08-21T10:00:00.000Z"
OTHER_ID = "7a2d3c2f-1d66-4a40-b7c6-1b4f5d8eaf02"
CLAIMED_ID = "8b3e4d3a-2e77-4b51-88d7-2c5a6e9fb003"
#: The proxy's file reference of a file initiated through InitiateBrokerServiceBasic.
REFERENCE = "0b6e9e0e-5d1c-4c43-8f0e-3f0c1a2b3c4d"
MANIFEST = {
    "sender": "310000019",
    "resource": "ttd-broker-4712",
    "file_name": "data.zip",
    "recipients": ["0192:310000027", "0192:310000035"],
    "senders_reference": "ref-1",
    "properties": {"k": "v"},
}


def _overview(status: str = "Published", recipient_status: str = "Initialized") -> dict[str, Any]:
    return {
        "fileTransferId": FILE_ID,
        "resourceId": "ttd-broker-4712",
        "fileName": "data.zip",
        "fileTransferSize": 42,
        "fileTransferStatus": status,
        "fileTransferStatusChanged": "2026-01-01T10:00:05+00:00",
        "sender": "0192:310000019",
        "sendersFileTransferReference": "ref-1",
        "created": "2026-01-01T10:00:00+00:00",
        "published": "2026-01-01T10:00:05+00:00",
        "propertyList": {"kind": "test"},
        "recipients": [
            {"recipient": "0192:310000027", "currentRecipientFileTransferStatusCode": recipient_status}
        ],
        "fileTransferStatusHistory": [
            {"fileTransferStatus": "Initialized", "fileTransferStatusChanged": "2026-01-01T10:00:00+00:00"},
            {"fileTransferStatus": status, "fileTransferStatusChanged": "2026-01-01T10:00:05+00:00"},
        ],
    }


@pytest.fixture(scope="module")
def mapping_set() -> MappingSet:
    return load_mapping_set(MAPPINGS)


def _engine(mapping_set: MappingSet, *, shim: bool = False) -> Engine:
    route = Route("4712", "1", broker_resource="ttd-broker-4712", manifest_shim=shim)
    return Engine(lambda: mapping_set, RoutingTable.of([route]), clock=lambda: NOW)


def _xml(text: str) -> etree._Element:
    return etree.fromstring(text.encode())


def test_initiate_posts_the_manifest_as_a_file_transfer(
    mapping_set: MappingSet, altinn3_contract: Any
) -> None:
    body = _xml(f"""
      <InitiateBrokerServiceBasic xmlns="{NS}" xmlns:b="{BE}">
        <brokerServiceInitiation><b:Manifest>
          <b:ExternalServiceCode>4712</b:ExternalServiceCode><b:ExternalServiceEditionCode>1</b:ExternalServiceEditionCode>
          <b:FileList><b:File><b:FileName>data.zip</b:FileName></b:File></b:FileList>
          <b:PropertyList><b:Property><b:PropertyKey>k</b:PropertyKey><b:PropertyValue>v</b:PropertyValue></b:Property></b:PropertyList>
          <b:Reportee>310000019</b:Reportee><b:SendersReference>ref-1</b:SendersReference>
        </b:Manifest>
        <b:RecipientList><b:Recipient><b:PartyNumber>310000027</b:PartyNumber></b:Recipient>
          <b:Recipient><b:PartyNumber>310000035</b:PartyNumber></b:Recipient></b:RecipientList>
        </brokerServiceInitiation>
      </InitiateBrokerServiceBasic>""")
    request = OperationRequest("BrokerServiceExternalBasic", "InitiateBrokerServiceBasic", body, SENDER)

    answer, seen = run(
        _engine(mapping_set).start(request), lambda r: getattr(r, "value", None), altinn3_contract
    )

    # Nothing goes to Altinn 3 yet: the upload initialises the transfer under the uploaded name.
    (kept,) = seen
    assert isinstance(kept, Remember)
    assert kept.durable
    reference = kept.key.removeprefix("broker manifest ")
    assert str(uuid.UUID(reference)) == reference
    assert json.loads(kept.value) == {**MANIFEST, "initiated": "2026-08-21T10:00:00.000Z"}
    assert canonical(answer.xml) == canonical(
        f"<InitiateBrokerServiceBasicResponse xmlns='{NS}'>"
        f"<InitiateBrokerServiceBasicResult>{reference}</InitiateBrokerServiceBasicResult>"
        "</InitiateBrokerServiceBasicResponse>".encode()
    )


def test_every_initiation_gets_its_own_reference(mapping_set: MappingSet) -> None:
    body = _xml(f"""
      <InitiateBrokerServiceBasic xmlns="{NS}" xmlns:b="{BE}"><brokerServiceInitiation><b:Manifest>
        <b:ExternalServiceCode>4712</b:ExternalServiceCode><b:ExternalServiceEditionCode>1</b:ExternalServiceEditionCode>
        <b:Reportee>310000019</b:Reportee></b:Manifest>
        <b:RecipientList><b:Recipient><b:PartyNumber>310000027</b:PartyNumber></b:Recipient></b:RecipientList>
      </brokerServiceInitiation></InitiateBrokerServiceBasic>""")
    request = OperationRequest("BrokerServiceExternalBasic", "InitiateBrokerServiceBasic", body, SENDER)
    keys = set()
    for _ in range(3):
        _, seen = run(
            _engine(mapping_set).start(request), lambda r: getattr(r, "value", None), lambda *_: None
        )
        keys.add(seen[0].key)  # type: ignore[union-attr]
    assert len(keys) == 3


def test_available_files_lists_published_transfers_for_the_recipient(
    mapping_set: MappingSet, altinn3_contract: Any
) -> None:
    body = _xml(f"""
      <GetAvailableFilesBasic xmlns="{NS}" xmlns:b="{BE}"><searchParameters>
        <b:ExternalServiceCode>4712</b:ExternalServiceCode><b:ExternalServiceEditionCode>1</b:ExternalServiceEditionCode>
        <b:FileStatus>Uploaded</b:FileStatus><b:Reportee>310000027</b:Reportee>
      </searchParameters></GetAvailableFilesBasic>""")
    request = OperationRequest("BrokerServiceExternalBasic", "GetAvailableFilesBasic", body, RECIPIENT)

    def answers(request: PlanRequest) -> Any:
        if isinstance(request, CallBatch):
            return tuple(Altinn3Response(200, json=_overview()) for _ in request.calls)
        if isinstance(request, Recall):  # the transfer was sent through InitiateBrokerServiceBasic
            return REFERENCE if request.key == f"broker reference {FILE_ID}" else None
        return Altinn3Response(200, json=[FILE_ID])

    answer, seen = run(_engine(mapping_set).start(request), answers, altinn3_contract)

    search = seen[0]
    assert isinstance(search, Altinn3Call)
    assert search.query == (("resourceId", "ttd-broker-4712"), ("role", "Recipient"), ("status", "Published"))
    assert isinstance(seen[1], CallBatch)
    assert [c.path for c in seen[1].calls] == [f"/broker/api/v1/filetransfer/{FILE_ID}"]
    assert altinn3_contract.checked == 2
    assert canonical(answer.xml) == canonical(
        f"""<GetAvailableFilesBasicResponse xmlns="{NS}">
          <GetAvailableFilesBasicResult xmlns:a="{BE}" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
            <a:BrokerServiceAvailableFile>
              <a:ExternalServiceCode>4712</a:ExternalServiceCode>
              <a:ExternalServiceEditionCode>1</a:ExternalServiceEditionCode>
              <a:FileName>data.zip</a:FileName>
              <a:FileReference>{REFERENCE}</a:FileReference>
              <a:FileSize>42</a:FileSize>
              <a:FileStatus>Uploaded</a:FileStatus>
              <a:IsSftpDownloadOnly>false</a:IsSftpDownloadOnly>
              <a:ReceiptID>0</a:ReceiptID>
              <a:Reportee>310000019</a:Reportee>
              <a:SendersReference>ref-1</a:SendersReference>
              <a:SentDate>2026-01-01T11:00:05.000</a:SentDate>
            </a:BrokerServiceAvailableFile>
          </GetAvailableFilesBasicResult>
        </GetAvailableFilesBasicResponse>""".encode()
    )


@pytest.mark.parametrize(
    ("recipient_status", "confirmed"), [("DownloadStarted", True), ("DownloadConfirmed", False)]
)
def test_confirm_downloaded_posts_confirmdownload_unless_confirmed_already(
    mapping_set: MappingSet, altinn3_contract: Any, recipient_status: str, confirmed: bool
) -> None:
    body = _xml(
        f"<ConfirmDownloadedBasic xmlns='{NS}'><fileReference>{FILE_ID}</fileReference>"
        "<reportee>310000027</reportee></ConfirmDownloadedBasic>"
    )
    request = OperationRequest("BrokerServiceExternalBasic", "ConfirmDownloadedBasic", body, RECIPIENT)
    # After the last recipient's confirmation Altinn 3 refuses another (BRO-00010): a resend is done.
    status = "AllConfirmedDownloaded" if recipient_status == "DownloadConfirmed" else "Published"

    def answers(request: PlanRequest) -> Any:
        if isinstance(request, Recall):
            return None
        assert isinstance(request, Altinn3Call)
        return Altinn3Response(
            200, json=_overview(status, recipient_status) if request.method == "GET" else None
        )

    answer, seen = run(_engine(mapping_set).start(request), answers, altinn3_contract)

    posts = [(c.method, c.path) for c in seen if isinstance(c, Altinn3Call) and c.method == "POST"]
    assert posts == (
        [("POST", f"/broker/api/v1/filetransfer/{FILE_ID}/confirmdownload")] if confirmed else []
    )
    assert canonical(answer.xml) == canonical(f"<ConfirmDownloadedBasicResponse xmlns='{NS}'/>".encode())


def _download(mapping_set: MappingSet, shim: bool, payload: bytes, observer: Any) -> tuple[Any, list[Any]]:
    body = _xml(
        f"<DownloadFileStreamedBasic xmlns='{NS}'><fileReference>{FILE_ID}</fileReference>"
        "<reportee>310000027</reportee></DownloadFileStreamedBasic>"
    )
    request = OperationRequest(
        "BrokerServiceExternalBasicStreamed", "DownloadFileStreamedBasic", body, RECIPIENT
    )

    async def stream() -> AsyncIterator[bytes]:
        for index in range(0, len(payload), 1000):
            yield payload[index : index + 1000]

    def answers(call: PlanRequest) -> Any:
        if isinstance(call, Recall):
            return None
        assert isinstance(call, Altinn3Call)
        if call.path.endswith("/download"):
            return Altinn3Response(200, stream=stream())
        return Altinn3Response(200, json=_overview())

    return run(_engine(mapping_set, shim=shim).start(request), answers, observer)


async def _collect(stream: Any) -> bytes:
    return b"".join([chunk async for chunk in stream])


async def test_download_streams_the_file_unchanged_without_the_shim(
    mapping_set: MappingSet, altinn3_contract: Any
) -> None:
    payload = b"not even a zip" * 500
    answer, seen = _download(mapping_set, False, payload, altinn3_contract)

    assert [c.path for c in seen if isinstance(c, Altinn3Call)] == [
        f"/broker/api/v1/filetransfer/{FILE_ID}",
        f"/broker/api/v1/filetransfer/{FILE_ID}/download",
    ]
    assert await _collect(answer.stream) == payload


async def test_download_gets_a_manifest_with_the_shim(mapping_set: MappingSet, altinn3_contract: Any) -> None:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.txt", b"hello" * 2000)
    answer, _ = _download(mapping_set, True, sink.getvalue(), altinn3_contract)

    with zipfile.ZipFile(io.BytesIO(await _collect(answer.stream))) as archive:
        assert archive.read("a.txt") == b"hello" * 2000
        manifest = etree.fromstring(archive.read("manifest.xml"))
    assert manifest.findtext(f"{{{BE.replace('schemas', 'schema')}}}ExternalServiceCode") == "4712"


def _upload_plan(mapping_set: MappingSet, reference: str = FILE_ID, file_name: str = "report.zip") -> Any:
    body = _xml(
        f"<StreamedPayloadBasicBE xmlns='{NS}'><FileName>{file_name}</FileName><Reference>{reference}</Reference>"
        "<Reportee>310000019</Reportee><DataStream/></StreamedPayloadBasicBE>"
    )

    async def data() -> AsyncIterator[bytes]:
        yield b"PK"

    request = OperationRequest(
        "BrokerServiceExternalBasicStreamed",
        "UploadFileStreamedBasic",
        body,
        SENDER,
        streams={"attachment": data()},
    )
    return _engine(mapping_set).start(request)


def _not_recalled(response: Altinn3Response) -> Any:
    """Answers: no memo for any recall (a transfer not sent through InitiateBrokerServiceBasic), else ``response``."""
    return lambda request: None if isinstance(request, Recall) else response


def _receipt(reference: str) -> Answer:
    return Answer(
        f"<ReceiptExternalStreamedBE xmlns='{NS}' xmlns:i='http://www.w3.org/2001/XMLSchema-instance'>"
        "<LastChanged>2026-08-21T12:00:00.000</LastChanged><ParentReceiptId>0</ParentReceiptId>"
        "<ReceiptHistory i:nil='true'/><ReceiptId>0</ReceiptId><ReceiptStatusCode>OK</ReceiptStatusCode>"
        f"<ReceiptText>Upload of file {reference} was successful. Recipients can now download the file."
        "</ReceiptText><ReceiptTypeName>BrokerService</ReceiptTypeName></ReceiptExternalStreamedBE>"
    )


def _recall(step: str, key: str) -> Yields:
    return Yields(Recall("*", "*", key, step=step, durable=True))


def test_upload_initialises_the_transfer_under_the_uploaded_name(mapping_set: MappingSet) -> None:
    assert (
        Playbook(_upload_plan(mapping_set, REFERENCE))
        >> _recall("kept", f"broker manifest {REFERENCE}")
        << json.dumps(MANIFEST)
        >> _recall("earlier", f"broker transfer {REFERENCE}")
        << None
        >> _attempt()
        << NOW_TEXT  # the first attempt
        >> Call(
            "POST",
            "/broker/api/v1/filetransfer",
            json={
                "fileName": "report.zip",
                "resourceId": "ttd-broker-4712",
                "sender": "0192:310000019",
                "recipients": ["0192:310000027", "0192:310000035"],
                "sendersFileTransferReference": "ref-1",
                "propertyList": {"k": "v"},
            },
        )
        << Altinn3Response(200, json={"fileTransferId": FILE_ID})
        >> Yields(Remember("*", "*", f"broker transfer {REFERENCE}", FILE_ID, "transfer_id", durable=True))
        << FILE_ID
        >> Yields(Remember("*", "*", f"broker reference {FILE_ID}", REFERENCE, "named", durable=True))
        << REFERENCE
        >> Call("POST", f"/broker/api/v1/filetransfer/{FILE_ID}/upload")
        << Altinn3Response(200, json={"fileTransferId": FILE_ID})
        >> _receipt(REFERENCE)
    )


def _attempt() -> Yields:
    return Yields(Remember("eus", "UploadFileStreamedBasic", f"attempt {REFERENCE}", NOW_TEXT, "attempt"))


def test_a_resend_finds_the_transfer_whose_id_the_first_attempt_never_learnt(mapping_set: MappingSet) -> None:
    other_name = {**_overview("Initialized"), "fileTransferId": OTHER_ID, "fileName": "other.zip"}
    claimed = {**_overview("Initialized"), "fileTransferId": CLAIMED_ID, "fileName": "report.zip"}
    ours = {**_overview("Initialized"), "fileName": "report.zip"}
    for transfer in (other_name, claimed, ours):
        transfer |= {
            "propertyList": {"k": "v"},
            "recipients": [{"recipient": "0192:310000027"}, {"recipient": "0192:310000035"}],
        }
    assert (
        Playbook(_upload_plan(mapping_set, REFERENCE))
        >> _recall("kept", f"broker manifest {REFERENCE}")
        << json.dumps(MANIFEST)
        >> _recall("earlier", f"broker transfer {REFERENCE}")
        << None
        >> _attempt()
        << "2026-08-21T09:59:00.000Z"  # an earlier attempt died without keeping a transfer id
        >> Call("GET", "/broker/api/v1/filetransfer")
        << Altinn3Response(200, json=[OTHER_ID, CLAIMED_ID, FILE_ID])
        >> Batch(
            tuple(Call("GET", f"/broker/api/v1/filetransfer/{i}") for i in (OTHER_ID, CLAIMED_ID, FILE_ID))
        )
        << tuple(Altinn3Response(200, json=t) for t in (other_name, claimed, ours))
        >> _recall("claims", f"broker reference {CLAIMED_ID}")
        << "another-reference"
        >> _recall("claims", f"broker reference {FILE_ID}")
        << None
        >> Yields(Remember("*", "*", f"broker reference {FILE_ID}", REFERENCE, "claimed", durable=True))
        << REFERENCE
        >> Yields(Remember("*", "*", f"broker transfer {REFERENCE}", FILE_ID, "transfer_id", durable=True))
        << FILE_ID
        >> Call("POST", f"/broker/api/v1/filetransfer/{FILE_ID}/upload")
        << Altinn3Response(200, json={"fileTransferId": FILE_ID})
        >> _receipt(REFERENCE)
    )


def test_a_resent_upload_reuses_the_transfer_the_first_attempt_initialised(mapping_set: MappingSet) -> None:
    assert (
        Playbook(_upload_plan(mapping_set, REFERENCE))
        >> _recall("kept", f"broker manifest {REFERENCE}")
        << json.dumps(MANIFEST)
        >> _recall("earlier", f"broker transfer {REFERENCE}")
        << FILE_ID
        >> Yields(Remember("*", "*", f"broker transfer {REFERENCE}", FILE_ID, "transfer_id", durable=True))
        << FILE_ID
        >> Call("POST", f"/broker/api/v1/filetransfer/{FILE_ID}/upload")
        << Altinn3Response(200, json={"fileTransferId": FILE_ID})
        >> _receipt(REFERENCE)
    )


def test_another_organisations_reference_is_refused_before_anything_is_sent(mapping_set: MappingSet) -> None:
    foreign = json.dumps({**MANIFEST, "sender": "310000043"})
    assert (
        Playbook(_upload_plan(mapping_set, REFERENCE))
        >> _recall("kept", f"broker manifest {REFERENCE}")
        << foreign
        >> Fault(AuthorizationDenied, error_id=40213)
    )


@pytest.mark.parametrize(
    ("error_code", "status", "error", "error_id"),
    [("BRO-00004", 409, Conflict, 40208), ("BRO-00006", 401, AuthorizationDenied, 40213)],
)
def test_upload_faults_follow_the_legacy_codes(
    mapping_set: MappingSet, error_code: str, status: int, error: type[ProxyError], error_id: int
) -> None:
    refusal = json.dumps({"title": "Refused", "status": status, "errorCode": error_code}).encode()
    assert (
        Playbook(_upload_plan(mapping_set))
        >> _recall("kept", f"broker manifest {FILE_ID}")
        << None
        >> Call("POST", f"/broker/api/v1/filetransfer/{FILE_ID}/upload")
        << Altinn3Response(status, content=refusal)
        >> Fault(error, error_id=error_id)
    )


def _receipt_request(value: str, receipt_id: str | None = None) -> OperationRequest:
    identifier = f"<r:ReceiptId>{receipt_id}</r:ReceiptId>" if receipt_id else ""
    body = _xml(
        f"<GetReceiptBasicV2 xmlns='{RECEIPT_NS}' xmlns:r='{RECEIPT_2015}'><receipt>{identifier}"
        "<r:References><r:Reference><r:ReferenceType>SendersReference</r:ReferenceType>"
        f"<r:ReferenceValue>{value}</r:ReferenceValue></r:Reference></r:References></receipt></GetReceiptBasicV2>"
    )
    return OperationRequest("ReceiptExternalBasic", "GetReceiptBasicV2", body, SENDER)


@pytest.mark.parametrize(
    ("status", "expected_status", "text"),
    [
        (
            "Published",
            "OK",
            f"Upload of file {FILE_ID} was successful. Recipients can now download the file.",
        ),
        ("UploadProcessing", "NotSet", f"Upload of file {FILE_ID} is being processed."),
        ("Failed", "Rejected", "File failed during upload processing in Altinn 3."),
    ],
)
def test_broker_receipt_is_synthesised_from_the_transfer_details(
    mapping_set: MappingSet, altinn3_contract: Any, status: str, expected_status: str, text: str
) -> None:
    answer, seen = run(
        _engine(mapping_set).start(_receipt_request(FILE_ID.upper())),
        _not_recalled(Altinn3Response(200, json=_overview(status))),
        altinn3_contract,
    )

    assert [c.path for c in seen if isinstance(c, Altinn3Call)] == [
        f"/broker/api/v1/filetransfer/{FILE_ID}/details"
    ]
    receipt = answer.element()
    ns = {"a": RECEIPT_2015}
    assert receipt.findtext(".//a:ReceiptId", namespaces=ns) == "0"
    assert receipt.findtext(".//a:ReceiptStatus", namespaces=ns) == expected_status
    assert receipt.findtext(".//a:ReceiptText", namespaces=ns) == text
    assert receipt.findtext(".//a:ReceiptType", namespaces=ns) == "BrokerService"
    subs = receipt.findall(".//a:SubReceipts/a:Receipt", namespaces=ns)
    assert len(subs) == (1 if expected_status == "OK" else 0)


def test_a_reference_that_is_no_file_reference_is_looked_up_in_the_store(mapping_set: MappingSet) -> None:
    assert (
        Playbook(_engine(mapping_set).start(_receipt_request("my-own-reference")))
        >> Yields(LoadReceipts("310000019", None, ("SendersReference", "my-own-reference"), "found"))
        << NotFound("no receipt matches the search", error_id=30008)
        >> Fault(NotFound, error_id=30008)
    )
