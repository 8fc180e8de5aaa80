"""InsertCorrespondenceBasicV2, operation by operation, with no server.

Legacy request in → the expected Altinn 3 calls out (each judged by Altinn's published contract) →
canned answers in → the legacy ReceiptExternal out, compared after canonicalisation.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from proxy.errors import (
    AuthorizationDenied,
    InvalidField,
    NotFound,
    OperationNotTranslated,
    UnknownService,
    UpstreamError,
    UpstreamUnavailable,
)
from proxy.identity.principal import CallerKind, Principal
from proxy.mapping import Engine, MappingSet, OperationRequest, Route, RoutingTable
from proxy.mapping.calls import (
    AllocateId,
    Altinn3Call,
    Altinn3Response,
    BeginIdempotent,
    BytesBody,
    CallBatch,
    JsonBody,
    PlanRequest,
    Recall,
    Remember,
    SaveReceipt,
    Wait,
)
from proxy.mapping.dryrun import drive
from proxy.mapping.expressions import uuid5
from proxy.pipeline.loading import load_mapping_set
from tests.mapping.helpers import MAPPINGS, canonical, run

SERVICE = "CorrespondenceAgencyExternalBasic"
OPERATION = "InsertCorrespondenceBasicV2"
NS = "http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10"
NS1 = "http://schemas.altinn.no/services/ServiceEngine/Correspondence/2010/10"
NS_LIST = "http://www.altinn.no/services/ServiceEngine/ReporteeElementList/2010/10"
RESOURCE = "ttd-migratedcorrespondence-4711-1"
CORRESPONDENCE_ID = "6f0bd9ba-2f62-4a42-9df0-5ef3c1c9a001"
NOW = datetime(2026, 8, 21, 10, 0, tzinfo=UTC)

SERVICE_OWNER = Principal(
    caller_id="ttd-system",
    kind=CallerKind.SERVICE_OWNER,
    service_owner="ttd",
    org="991825827",
    scopes=("altinn:correspondence.write", "altinn:serviceowner"),
)


@pytest.fixture(scope="module")
def mapping_set() -> MappingSet:
    return load_mapping_set(MAPPINGS)


@pytest.fixture
def engine(mapping_set: MappingSet) -> Engine:
    routing = RoutingTable.of([Route("4711", "1", resource_id=RESOURCE)])
    return Engine(lambda: mapping_set, routing, clock=lambda: NOW)


def _request(
    reference: Path, *, attachments: Sequence[tuple[str, bytes]] = (), code: str = "4711"
) -> etree._Element:
    """The original contract's sample request, filled in the way a service owner system would."""
    template = reference / "altinn2" / "samples" / "InsertCorrespondenceBasicV2.request.template.xml"
    envelope = etree.parse(str(template)).getroot()
    body = envelope.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")[0]
    values = {
        f"{{{NS}}}systemUserName": "ttd-system",
        f"{{{NS}}}systemPassword": "not-a-real-password",
        f"{{{NS}}}SystemUserCode": "TTD_DEMO",
        f"{{{NS}}}ExternalShipmentReference": "shipment-42",
        f"{{{NS1}}}ServiceCode": code,
        f"{{{NS1}}}ServiceEdition": "1",
        f"{{{NS1}}}Reportee": "910000000",
    }
    for element in body.iter():
        if element.tag in values:
            element.text = values[element.tag]
    if attachments:
        content = body.find(f"{{{NS}}}Correspondence/{{{NS1}}}Content")
        holder = etree.SubElement(content, f"{{{NS1}}}Attachments")
        binaries = etree.SubElement(holder, f"{{{NS1}}}BinaryAttachments")
        for name, data in attachments:
            item = etree.SubElement(binaries, f"{{{NS_LIST}}}BinaryAttachmentV2")
            for tag, text in (
                ("FileName", name),
                ("Name", name.title()),
                ("Encrypted", "false"),
                ("Data", base64.b64encode(data).decode()),
            ):
                etree.SubElement(item, f"{{{NS_LIST}}}{tag}").text = text
    return body


def _created(**_: Any) -> Altinn3Response:
    return Altinn3Response(
        200,
        {"Content-Type": "application/json"},
        json={
            "correspondences": [
                {
                    "correspondenceId": CORRESPONDENCE_ID,
                    "status": "Initialized",
                    "recipient": "urn:altinn:organization:identifier-no:910000000",
                }
            ]
        },
    )


EXPECTED_RECEIPT = f"""
<InsertCorrespondenceBasicV2Response xmlns="{NS}">
  <InsertCorrespondenceBasicV2Result xmlns:a="http://schemas.altinn.no/services/Intermediary/Receipt/2009/10"
      xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
    <a:LastChanged>2026-08-21T12:00:00.000</a:LastChanged>
    <a:ParentReceiptId>0</a:ParentReceiptId>
    <a:ReceiptHistory i:nil="true"/>
    <a:ReceiptId>7001</a:ReceiptId>
    <a:ReceiptStatusCode>OK</a:ReceiptStatusCode>
    <a:ReceiptText>Correspondence created</a:ReceiptText>
    <a:ReceiptTypeName>Correspondence</a:ReceiptTypeName>
    <a:References>
      <a:Reference>
        <a:ReferenceTypeName>ExternalShipmentReference</a:ReferenceTypeName>
        <a:ReferenceValue>shipment-42</a:ReferenceValue>
      </a:Reference>
    </a:References>
    <a:SubReceipts i:nil="true"/>
  </InsertCorrespondenceBasicV2Result>
</InsertCorrespondenceBasicV2Response>
""".encode()


def _answers(request: PlanRequest) -> Any:
    if isinstance(request, BeginIdempotent):
        assert (request.caller, request.reference) == ("ttd-system", "shipment-42")
        return None
    if isinstance(request, SaveReceipt):
        return None
    if isinstance(request, AllocateId):
        assert (request.kind, request.guid, request.owner_org) == ("receipt", CORRESPONDENCE_ID, "991825827")
        return 7001
    if isinstance(request, Recall):
        return None
    if isinstance(request, Remember):
        return request.value
    if isinstance(request, CallBatch):
        if request.step == "new_attachments":
            return tuple(
                Altinn3Response(200, json=str(uuid.UUID(int=index + 1)))
                for index in range(len(request.calls))
            )
        return tuple(Altinn3Response(200, json={"status": "Published"}) for _ in request.calls)
    assert isinstance(request, Altinn3Call)
    return _created()


class _Scan:
    """Answers a plan as Altinn 3 does while the malware scan runs: UploadProcessing for ``polls`` looks."""

    def __init__(self, polls: int, remembered: dict[str, str] | None = None) -> None:
        self.polls = polls
        self.remembered = remembered if remembered is not None else {}
        self.waits: list[float] = []

    def __call__(self, request: PlanRequest) -> Any:
        if isinstance(request, Recall):
            return self.remembered.get(request.key)
        if isinstance(request, Remember):
            return self.remembered.setdefault(request.key, request.value)
        if isinstance(request, Wait):
            self.waits.append(request.seconds)
            return None
        if isinstance(request, CallBatch) and request.step in {"published_attachments", "earlier_states"}:
            if request.step == "published_attachments":
                self.polls -= 1
            status = "UploadProcessing" if self.polls >= 0 else "Published"
            return tuple(Altinn3Response(200, json={"status": status}) for _ in request.calls)
        return _answers(request)


def test_without_attachments_makes_one_json_call_and_returns_the_receipt(
    engine: Engine, reference: Path, altinn3_contract: Any
) -> None:
    request = OperationRequest(SERVICE, OPERATION, _request(reference), SERVICE_OWNER)

    answer, seen = run(engine.start(request), _answers, altinn3_contract)

    calls = [r for r in seen if isinstance(r, Altinn3Call)]
    assert [(c.method, c.path) for c in calls] == [("POST", "/correspondence/api/v1/correspondence")]
    call = calls[0]
    assert call.token.scopes == frozenset({"altinn:correspondence.write", "altinn:serviceowner"})
    assert call.token.system_user_org is None
    assert call.token.exchange
    assert isinstance(call.body, JsonBody)
    assert call.body.value == {
        "correspondence": {
            "resourceId": RESOURCE,
            "sendersReference": "shipment-42",
            "content": {
                "language": "en",
                "messageTitle": "Correspondence  test ",
                "messageSummary": "Du har fått tilsendt en melding. ",
                "messageBody": "Åpne meldingen ved å trykke på linken under.",
            },
            "requestedPublishTime": "2021-01-01T16:17:00.000Z",
            "allowSystemDeleteAfter": "2022-09-19T20:13:00.000Z",
            "dueDateTime": "2022-10-20T13:15:05.000Z",
        },
        "recipients": ["urn:altinn:organization:identifier-no:910000000"],
        # Altinn 3's own idempotency: derived from the caller and the ExternalShipmentReference.
        "idempotentKey": uuid5("ttd-system\nshipment-42"),
    }
    assert altinn3_contract.checked == 1
    assert canonical(answer.xml) == canonical(EXPECTED_RECEIPT)
    assert answer.stream is None


def test_inline_attachments_are_initialised_and_uploaded_before_the_correspondence(
    engine: Engine, reference: Path, altinn3_contract: Any
) -> None:
    files = [("a.pdf", b"%PDF-1.4 first"), ("b.txt", b"second")]
    request = OperationRequest(SERVICE, OPERATION, _request(reference, attachments=files), SERVICE_OWNER)

    scan = _Scan(polls=2)
    answer, seen = run(engine.start(request), scan, altinn3_contract)

    calls = [r for r in seen if isinstance(r, CallBatch | Altinn3Call)]
    init, upload, polls, create = calls[0], calls[1], calls[2:-1], calls[-1]
    assert [r.step for r in seen if isinstance(r, Recall | Remember)] == ["earlier_attachments"] * 2 + [
        "attachment_ids"
    ] * 2
    assert isinstance(init, CallBatch)
    assert isinstance(upload, CallBatch)
    assert [c.body.value for c in init.calls] == [  # type: ignore[union-attr]
        {
            "resourceId": RESOURCE,
            "sender": "urn:altinn:organization:identifier-no:991825827",
            "sendersReference": "shipment-42",
            "fileName": name,
            "displayName": name.title(),
            "isEncrypted": False,
        }
        for name, _ in files
    ]
    assert [c.path for c in upload.calls] == [
        f"/correspondence/api/v1/attachment/{uuid.UUID(int=1)}/upload",
        f"/correspondence/api/v1/attachment/{uuid.UUID(int=2)}/upload",
    ]
    assert [c.body for c in upload.calls] == [BytesBody(data) for _, data in files]
    # Polled until the malware scan published both: Altinn 3 refuses unpublished ones (1018).
    assert len(polls) == 3
    assert all(isinstance(p, CallBatch) and p.step == "published_attachments" for p in polls)
    assert scan.waits == [0.5, 0.5]
    assert isinstance(create, Altinn3Call)
    assert create.body.value["existingAttachments"] == [str(uuid.UUID(int=1)), str(uuid.UUID(int=2))]  # type: ignore[union-attr]
    assert altinn3_contract.checked == 11  # 2 initialised, 2 uploaded, 3 polls of 2, 1 created
    assert canonical(answer.xml) == canonical(EXPECTED_RECEIPT)


def test_a_resend_reuses_the_attachments_an_earlier_attempt_created(
    engine: Engine, reference: Path, altinn3_contract: Any
) -> None:
    files = [("a.pdf", b"%PDF-1.4 first"), ("b.txt", b"second")]
    request = OperationRequest(SERVICE, OPERATION, _request(reference, attachments=files), SERVICE_OWNER)
    first = _Scan(polls=0)
    run(engine.start(request), first, altinn3_contract)

    # The first attempt crashed after uploading: the resend finds its attachments, uploads nothing.
    resend = _Scan(polls=0, remembered=first.remembered)
    _, seen = run(engine.start(request), resend, altinn3_contract)

    steps = [r.step for r in seen if isinstance(r, CallBatch | Altinn3Call)]
    assert steps == ["earlier_states", "published_attachments", "create"]
    created = next(r for r in seen if isinstance(r, Altinn3Call) and r.step == "create")
    assert created.body.value["existingAttachments"] == [str(uuid.UUID(int=1)), str(uuid.UUID(int=2))]  # type: ignore[union-attr]


def test_attachments_still_unpublished_after_the_wait_are_a_retryable_fault(
    engine: Engine, reference: Path
) -> None:
    request = OperationRequest(
        SERVICE, OPERATION, _request(reference, attachments=[("a.pdf", b"%PDF")]), SERVICE_OWNER
    )
    scan = _Scan(polls=1000)
    plan = engine.start(request)
    request_ = next(plan)
    while not (isinstance(request_, Altinn3Call) and request_.step == "create"):
        request_ = plan.send(scan(request_))
    assert sum(scan.waits) == 60  # the wait is bounded (until.within), on the executor's clock
    with pytest.raises(UpstreamUnavailable, match="malware scan") as raised:
        plan.throw(UpstreamError("Attachment is not published", status=400, error_code="1018"))
    assert raised.value.error_id == 30010


def test_an_unrouted_service_code_is_the_unknown_service_fault(engine: Engine, reference: Path) -> None:
    request = OperationRequest(SERVICE, OPERATION, _request(reference, code="9999"), SERVICE_OWNER)
    with pytest.raises(UnknownService, match="9999"):
        next(engine.start(request))


def test_an_end_user_system_may_not_send_correspondence(engine: Engine, reference: Path) -> None:
    vendor = Principal(caller_id="vendor", kind=CallerKind.END_USER_SYSTEM)
    with pytest.raises(AuthorizationDenied):
        next(engine.start(OperationRequest(SERVICE, OPERATION, _request(reference), vendor)))


def test_a_missing_required_field_is_an_invalid_field(engine: Engine, reference: Path) -> None:
    body = _request(reference)
    reference_element = body.find(f"{{{NS}}}ExternalShipmentReference")
    body.remove(reference_element)
    with pytest.raises(InvalidField, match="ExternalShipmentReference"):
        next(engine.start(OperationRequest(SERVICE, OPERATION, body, SERVICE_OWNER)))


@pytest.mark.parametrize(
    ("upstream", "expected", "error_id"),
    [
        (UpstreamError("refused", status=400, error_code="1008"), InvalidField, 30001),
        (UpstreamError("refused", status=403), AuthorizationDenied, 5),
        (UpstreamError("refused", status=404, error_code="1001"), NotFound, 30002),
        (UpstreamUnavailable("down", status=503), UpstreamUnavailable, 30010),
    ],
)
def test_upstream_failures_go_through_the_fault_table(
    engine: Engine, reference: Path, upstream: Exception, expected: type[Exception], error_id: int
) -> None:
    plan = engine.start(OperationRequest(SERVICE, OPERATION, _request(reference), SERVICE_OWNER))
    assert isinstance(next(plan), BeginIdempotent)
    assert isinstance(plan.send(None), Altinn3Call)
    with pytest.raises(expected) as raised:
        plan.throw(upstream)
    assert raised.value.error_id == error_id  # type: ignore[attr-defined]


def test_an_operation_without_mapping_is_not_translated(engine: Engine, reference: Path) -> None:
    request = OperationRequest(
        SERVICE, "CreateSimpleCorrespondenceServiceBasic", _request(reference), SERVICE_OWNER
    )
    with pytest.raises(OperationNotTranslated):
        engine.start(request)


def test_the_engine_is_a_plain_generator_usable_without_any_server(engine: Engine, reference: Path) -> None:
    request = OperationRequest(SERVICE, OPERATION, _request(reference), SERVICE_OWNER)
    answer = drive(engine.start(request), _answers)
    assert answer.element().tag == f"{{{NS}}}InsertCorrespondenceBasicV2Response"


def test_a_resend_answers_the_first_answer_without_any_altinn3_call(engine: Engine, reference: Path) -> None:
    plan = engine.start(OperationRequest(SERVICE, OPERATION, _request(reference), SERVICE_OWNER))
    begin = next(plan)
    assert begin == BeginIdempotent("ttd-system", OPERATION, "shipment-42")
    with pytest.raises(StopIteration) as stop:
        plan.send(EXPECTED_RECEIPT)
    assert stop.value.value.xml == EXPECTED_RECEIPT


def test_the_receipt_is_saved_with_the_shipment_reference(engine: Engine, reference: Path) -> None:
    request = OperationRequest(SERVICE, OPERATION, _request(reference), SERVICE_OWNER)
    answer, seen = run(engine.start(request), _answers, lambda *call: None)
    [saved] = [r for r in seen if isinstance(r, SaveReceipt)]
    assert saved == SaveReceipt(
        receipt_id=7001,
        owner_org="991825827",
        status="OK",
        text="Correspondence created",
        type_name="Correspondence",
        last_changed=NOW,
        references=(("ExternalShipmentReference", "shipment-42"),),
        step="saved_receipt",
    )
    assert canonical(answer.xml) == canonical(EXPECTED_RECEIPT)


def test_the_ws_twin_is_the_same_translation_under_its_own_names(engine: Engine, reference: Path) -> None:
    body = _request(reference)
    body.tag = f"{{{NS}}}InsertCorrespondenceV2"
    for name in ("systemUserName", "systemPassword"):
        body.remove(body.find(f"{{{NS}}}{name}"))
    request = OperationRequest("CorrespondenceAgencyExternal", "InsertCorrespondenceV2", body, SERVICE_OWNER)

    answer, seen = run(engine.start(request), _answers, lambda *call: None)

    assert [type(r).__name__ for r in seen] == [
        "BeginIdempotent",
        "Altinn3Call",
        "AllocateId",
        "SaveReceipt",
    ]
    expected = EXPECTED_RECEIPT.replace(b"InsertCorrespondenceBasicV2", b"InsertCorrespondenceV2")
    assert canonical(answer.xml) == canonical(expected)


def test_a_409_for_the_idempotent_key_answers_with_the_correspondence_altinn3_already_holds(
    engine: Engine, reference: Path, altinn3_contract: Any
) -> None:
    key = uuid5("ttd-system\nshipment-42")

    def answers(request: PlanRequest) -> Any:
        if isinstance(request, Altinn3Call) and request.step == "create":
            return Altinn3Response(409, json={"status": 409, "errorCode": 1034})
        if isinstance(request, Altinn3Call) and request.step == "existing":
            return Altinn3Response(200, json={"ids": [CORRESPONDENCE_ID]})
        return _answers(request)

    request = OperationRequest(SERVICE, OPERATION, _request(reference), SERVICE_OWNER)
    answer, seen = run(engine.start(request), answers, altinn3_contract)

    calls = [r for r in seen if isinstance(r, Altinn3Call)]
    assert [c.step for c in calls] == ["create", "existing"]
    assert (calls[0].accept_status, calls[0].body.value["idempotentKey"]) == (frozenset({409}), key)  # type: ignore[union-attr]
    assert dict(calls[1].query) == {"resourceId": RESOURCE, "role": "Sender", "idempotentKey": key}
    assert canonical(answer.xml) == canonical(EXPECTED_RECEIPT)
