"""GetCorrespondenceStatusDetailsBasicV3 and GetReceiptBasicV2 with no Altinn 3 server.

Status details: filter → Altinn 3 list + details per id (each call judged by Altinn's contract) →
the legacy ``CorrespondenceStatusResultV3``. Receipts: the executor against a real SQLite store, so
another org's ReceiptId is proven to fail exactly like an unknown one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from proxy.altinn3.executor import execute
from proxy.errors import InvalidField, NotFound
from proxy.identity.principal import CallerKind, Principal
from proxy.mapping import Engine, MappingSet, OperationRequest, Route, RoutingTable
from proxy.mapping.calls import AllocateId, Altinn3Call, Altinn3Response, CallBatch, PlanRequest
from proxy.pipeline.loading import load_mapping_set
from proxy.store import Store, open_store
from proxy.store.model import Receipt, ReceiptReference, ReceiptStatus
from tests.mapping.helpers import MAPPINGS, canonical, run

NS = "http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10"
FILTER_NS = "http://schemas.altinn.no/services/ServiceEngine/Correspondence/2016/02"
RECEIPT_NS = "http://www.altinn.no/services/Intermediary/Receipt/2009/10"
RESOURCE = "ttd-migratedcorrespondence-4711-1"
IDS = ["6f0bd9ba-2f62-4a42-9df0-5ef3c1c9a001", "6f0bd9ba-2f62-4a42-9df0-5ef3c1c9a002"]
NOW = datetime(2026, 8, 21, 10, 0, tzinfo=UTC)


def _owner(org: str = "991825827") -> Principal:
    return Principal(
        caller_id=f"so-{org}",
        kind=CallerKind.SERVICE_OWNER,
        service_owner="ttd",
        org=org,
        scopes=("altinn:correspondence.write", "altinn:serviceowner"),
    )


@pytest.fixture(scope="module")
def mapping_set() -> MappingSet:
    return load_mapping_set(MAPPINGS)


@pytest.fixture
def engine(mapping_set: MappingSet) -> Engine:
    return Engine(
        lambda: mapping_set, RoutingTable.of([Route("4711", "1", resource_id=RESOURCE)]), clock=lambda: NOW
    )


def _filter(operation: str = "GetCorrespondenceStatusDetailsBasicV3", **values: str) -> etree._Element:
    body = etree.Element(f"{{{NS}}}{operation}")
    criteria = etree.SubElement(body, f"{{{NS}}}filterCriteria")
    for name, text in {"ServiceCode": "4711", "ServiceEditionCode": "1", **values}.items():
        etree.SubElement(criteria, f"{{{FILTER_NS}}}{name}").text = text
    return body


def _details(index: int, recipient: str, *statuses: str) -> dict[str, Any]:
    return {
        "correspondenceId": IDS[index],
        "recipient": f"urn:altinn:organization:identifier-no:{recipient}",
        "sendersReference": f"ref-{index}",
        "created": "2026-08-20T08:00:00Z",
        "statusHistory": [
            {"status": status, "statusText": status, "statusChanged": f"2026-08-20T{8 + n:02d}:00:00Z"}
            for n, status in enumerate(statuses)
        ],
    }


DETAILS = {
    IDS[0]: _details(
        0, "910000000", "Initialized", "ReadyForPublish", "Published", "Fetched", "Read", "Confirmed"
    ),
    IDS[1]: _details(1, "910000001", "Initialized", "ReadyForPublish", "Published"),
}


def _answers(request: PlanRequest) -> Any:
    if isinstance(request, AllocateId):
        return 501 + IDS.index(request.guid)
    if isinstance(request, CallBatch):
        return tuple(Altinn3Response(200, json=DETAILS[call.path.split("/")[-2]]) for call in request.calls)
    assert isinstance(request, Altinn3Call)
    return Altinn3Response(200, json={"ids": IDS})


EXPECTED = f"""
<GetCorrespondenceStatusDetailsBasicV3Response xmlns="{NS}">
  <GetCorrespondenceStatusDetailsBasicV3Result xmlns:a="{FILTER_NS}" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
    <a:CorrespondenceStatusInformation>
      <a:CorrespondenceStatusDetailsList xmlns:b="http://schemas.altinn.no/services/ServiceEngine/Correspondence/2014/10">
        <b:StatusV2>
          <b:CorrespondenceID>501</b:CorrespondenceID>
          <b:CreatedDate>2026-08-20T10:00:00.000</b:CreatedDate>
          <b:Notifications i:nil="true"/>
          <b:Reportee>910000000</b:Reportee>
          <b:SendersReference>ref-0</b:SendersReference>
          <b:StatusChanges>
            <b:StatusChangeV2><b:StatusDate>2026-08-20T10:00:00.000</b:StatusDate><b:StatusType>Created</b:StatusType></b:StatusChangeV2>
            <b:StatusChangeV2><b:StatusDate>2026-08-20T14:00:00.000</b:StatusDate><b:StatusType>Read</b:StatusType></b:StatusChangeV2>
            <b:StatusChangeV2><b:StatusDate>2026-08-20T15:00:00.000</b:StatusDate><b:StatusType>Confirmed</b:StatusType></b:StatusChangeV2>
          </b:StatusChanges>
        </b:StatusV2>
      </a:CorrespondenceStatusDetailsList>
      <a:LimitReached>false</a:LimitReached>
    </a:CorrespondenceStatusInformation>
    <a:SdpStatusInformation i:nil="true"/>
    <a:ServiceCode>4711</a:ServiceCode>
    <a:ServiceEditionCode>1</a:ServiceEditionCode>
  </GetCorrespondenceStatusDetailsBasicV3Result>
</GetCorrespondenceStatusDetailsBasicV3Response>
""".encode()


def test_status_details_list_by_resource_then_map_the_history_of_the_reportees_items(
    engine: Engine, altinn3_contract: Any
) -> None:
    body = _filter(Reportee="910000000", SendersReference="ref-0", CreatedAfterDate="2026-08-01T00:00:00")
    request = OperationRequest(
        "CorrespondenceAgencyExternalBasic", "GetCorrespondenceStatusDetailsBasicV3", body, _owner()
    )

    answer, seen = run(engine.start(request), _answers, altinn3_contract)

    listing = seen[0]
    assert isinstance(listing, Altinn3Call)
    assert (listing.method, listing.path) == ("GET", "/correspondence/api/v1/correspondence")
    assert listing.query == (
        ("resourceId", RESOURCE),
        ("role", "Sender"),
        ("from", "2026-07-31T22:00:00.000Z"),
        ("sendersReference", "ref-0"),
    )
    assert isinstance(seen[1], CallBatch)
    assert [c.path for c in seen[1].calls] == [
        f"/correspondence/api/v1/correspondence/{i}/details" for i in IDS
    ]
    assert altinn3_contract.checked == 3
    assert canonical(answer.xml) == canonical(EXPECTED)


def test_current_status_filters_on_the_last_legacy_status(engine: Engine) -> None:
    body = _filter(CurrentStatus="Created")
    request = OperationRequest(
        "CorrespondenceAgencyExternalBasic", "GetCorrespondenceStatusDetailsBasicV3", body, _owner()
    )
    answer, _ = run(engine.start(request), _answers, lambda *call: None)
    ids = answer.element().xpath("//*[local-name()='CorrespondenceID']/text()")
    assert ids == ["502"]


def test_the_ws_twin_answers_under_its_own_element_names(engine: Engine) -> None:
    body = _filter("GetCorrespondenceStatusDetailsV3")
    request = OperationRequest(
        "CorrespondenceAgencyExternal", "GetCorrespondenceStatusDetailsV3", body, _owner()
    )
    answer, _ = run(engine.start(request), _answers, lambda *call: None)
    element = answer.element()
    assert element.tag == f"{{{NS}}}GetCorrespondenceStatusDetailsV3Response"
    assert element[0].tag == f"{{{NS}}}GetCorrespondenceStatusDetailsV3Result"


def test_a_missing_service_code_is_an_invalid_field(engine: Engine) -> None:
    body = _filter()
    criteria = body[0]
    criteria.remove(criteria[0])
    request = OperationRequest(
        "CorrespondenceAgencyExternalBasic", "GetCorrespondenceStatusDetailsBasicV3", body, _owner()
    )
    with pytest.raises(InvalidField, match="ServiceCode"):
        next(engine.start(request))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await open_store(f"sqlite:///{tmp_path / 'state.db'}") as opened:
        yield opened


class _NoAltinn3:
    async def send(self, call: Altinn3Call) -> Altinn3Response:
        raise AssertionError("the receipt operations never call Altinn 3")


def _get_receipt(receipt_id: int, org: str) -> OperationRequest:
    body = etree.Element(f"{{{RECEIPT_NS}}}GetReceiptBasicV2")
    search = etree.SubElement(body, f"{{{RECEIPT_NS}}}receipt")
    etree.SubElement(
        search, "{http://schemas.altinn.no/services/Intermediary/Receipt/2015/06}ReceiptId"
    ).text = str(receipt_id)
    return OperationRequest("ReceiptAgencyExternalBasic", "GetReceiptBasicV2", body, _owner(org))


async def test_a_receipt_is_found_by_its_owner_and_another_orgs_id_is_not_found(
    engine: Engine, store: Store
) -> None:
    receipt_id = await store.allocate_id("receipt", IDS[0], "991825827")
    other_id = await store.allocate_id("receipt", IDS[1], "910000000")
    for owner, legacy_id in (("991825827", receipt_id), ("910000000", other_id)):
        await store.save_receipt(
            Receipt(
                legacy_id,
                owner,
                ReceiptStatus.OK,
                "Correspondence created",
                "Correspondence",
                NOW,
                (ReceiptReference("ExternalShipmentReference", f"ref-{owner}"),),
            )
        )

    answer = await execute(engine.start(_get_receipt(receipt_id, "991825827")), _NoAltinn3(), store)
    element = answer.element()
    assert element.xpath("//*[local-name()='ReceiptId']/text()") == [str(receipt_id)]
    assert element.xpath("//*[local-name()='ReferenceValue']/text()") == ["ref-991825827"]

    messages = []
    for missing in (other_id, other_id + 1000):
        with pytest.raises(NotFound) as raised:
            await execute(engine.start(_get_receipt(missing, "991825827")), _NoAltinn3(), store)
        assert raised.value.error_id == 30008
        messages.append(raised.value.message.replace(str(missing), "N"))
    assert messages[0] == messages[1]
