"""The end-user correspondence mappings, run without any server (the engine's dry run)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from proxy.identity.principal import CallerKind, OrgGrant, Principal
from proxy.mapping.calls import (
    AllocateId,
    Altinn3Call,
    Altinn3Response,
    CallBatch,
    PlanRequest,
    ResolveIdAmong,
)
from proxy.mapping.engine import OperationRequest, default_authorize, run_operation
from proxy.mapping.routing import Route, RoutingTable
from proxy.pipeline.loading import load_mapping_set
from tests.mapping.helpers import run

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


def test_every_end_user_operation_is_mapped() -> None:
    operations = load_mapping_set(MAPPINGS).operations
    assert {
        ("ReporteeElementListExternalBasic", "GetReporteeElementListBasicV2"),
        ("CorrespondenceExternalBasic", "GetCorrespondenceForEndUserSystemBasicV2"),
        ("CorrespondenceExternalBasic", "SaveCorrespondenceConfirmationBasic"),
        ("CorrespondenceExternalBasic", "ArchiveCorrespondenceForEndUserSystemBasic"),
    } <= set(operations)


def test_routing_reverse_lookups() -> None:
    table = RoutingTable.of(
        [
            Route("4711", "1", resource_id="r-4711-1"),
            Route("4711", "2", resource_id="r-4711-2"),
            Route("9", "1"),
        ]
    )
    assert table.by_resource("r-4711-2") == Route("4711", "2", resource_id="r-4711-2")
    assert table.by_resource("unknown") is None
    assert [r.resource_id for r in table.for_codes(["4711"])] == ["r-4711-1", "r-4711-2"]
    assert table.for_codes("404") == ()
    assert table.for_codes(None) == ()


def _read_plan(principal: Principal, correspondence_id: int) -> Any:
    operation = load_mapping_set(MAPPINGS).operation(
        "CorrespondenceExternalBasic", "GetCorrespondenceForEndUserSystemBasicV2"
    )
    body = etree.fromstring(
        b'<GetCorrespondenceForEndUserSystemBasicV2 xmlns="http://www.altinn.no/services/ServiceEngine/'
        b'Correspondence/2009/10"><correspondenceID>%d</correspondenceID>'
        b"</GetCorrespondenceForEndUserSystemBasicV2>" % correspondence_id
    )
    request = OperationRequest(operation.legacy.service, operation.legacy.operation, body, principal)
    return run_operation(
        operation, request, RoutingTable(), default_authorize, lambda: datetime(2026, 1, 1, tzinfo=UTC)
    )


def test_reading_resolves_the_legacy_id_before_any_altinn3_call() -> None:
    principal = Principal("eus", CallerKind.END_USER_SYSTEM, orgs={"310000019": OrgGrant("310000019")})
    plan = _read_plan(principal, 42)
    first = plan.send(None)
    assert first == ResolveIdAmong("correspondence", 42, ("310000019",), "guid")
    second = plan.send(("4c5e8a0e-7c7b-4a52-9a3c-0e4f0e0e0e01", "310000019"))
    assert isinstance(second, Altinn3Call)
    assert second.path == "/correspondence/api/v1/correspondence/4c5e8a0e-7c7b-4a52-9a3c-0e4f0e0e0e01/details"
    assert second.token.system_user_org == "310000019"
    plan.close()


def test_a_caller_of_several_orgs_acts_for_the_org_owning_the_id() -> None:
    principal = Principal(
        "eus",
        CallerKind.END_USER_SYSTEM,
        orgs={"310000019": OrgGrant("310000019"), "310000027": OrgGrant("310000027", external_ref="b")},
    )
    plan = _read_plan(principal, 7)
    lookup = plan.send(None)
    assert lookup == ResolveIdAmong("correspondence", 7, ("310000019", "310000027"), "guid")
    details = plan.send(("4c5e8a0e-7c7b-4a52-9a3c-0e4f0e0e0e01", "310000027"))
    assert isinstance(details, Altinn3Call)
    assert (details.token.system_user_org, details.token.external_ref) == ("310000027", "b")
    plan.close()


def _dialog(ident: str, correspondence: str, **members: Any) -> dict[str, Any]:
    """A ``Dialog`` as Correspondence creates it (only what the inbox reads)."""
    item = f"https://platform.tt02.altinn.no/correspondence/api/v1/correspondence/{correspondence}"
    return {
        "id": ident,
        "org": "ttd",
        "serviceResource": "urn:altinn:resource:ttd-migratedcorrespondence-4711-1",
        "serviceResourceType": "CorrespondenceService",
        "status": "NotApplicable",
        "updatedAt": "2026-01-02T10:00:00Z",
        "content": {"title": {"value": [{"value": f"Title {ident[-1]}", "languageCode": "nb"}]}},
        "endUserContext": {"systemLabels": ["Default"]},
        "activities": [{"type": "DialogCreated", "createdAt": "2026-01-02T09:00:00Z"}],
        "apiActions": [
            {
                "action": "write",
                "isAuthorized": True,
                "endpoints": [{"httpMethod": "POST", "url": f"{item}/confirm"}],
            },
            {"action": "read", "isAuthorized": True, "endpoints": [{"httpMethod": "GET", "url": item}]},
        ],
        "guiActions": [{"httpMethod": "DELETE", "url": f"{item}/purge"}],
        **members,
    }


def test_the_inbox_reads_only_dialogporten(altinn3_contract: Any) -> None:
    """No Correspondence API call (it would record Fetched); the status comes from the dialog."""
    first, second = "0194f7a0-0000-7000-8000-00000000000a", "0194f7a0-0000-7000-8000-00000000000b"
    ids = {first: "4c5e8a0e-7c7b-4a52-9a3c-0e4f0e0e0e0a", second: "4c5e8a0e-7c7b-4a52-9a3c-0e4f0e0e0e0b"}
    dialogs = {
        first: _dialog(
            first,
            ids[first],
            activities=[
                {"type": "DialogCreated", "createdAt": "2026-01-02T09:00:00Z"},
                {"type": "CorrespondenceOpened", "createdAt": "2026-01-03T09:00:00Z"},
            ],
            guiActions=[
                {"httpMethod": "POST", "url": "https://x/correspondence/api/v1/correspondence/a/confirm"}
            ],
        ),
        second: _dialog(second, ids[second], endUserContext={"systemLabels": ["Archive"]}),
    }
    search = {
        "items": [
            {"id": first, "serviceResourceType": "CorrespondenceService"},
            {"id": "0194f7a0-0000-7000-8000-0000000000ff", "serviceResourceType": "AltinnApp"},
            {"id": second, "serviceResourceType": "CorrespondenceService"},
        ]
    }

    def answer(request: PlanRequest) -> Any:
        if isinstance(request, CallBatch):
            return tuple(Altinn3Response(200, json=dialogs[c.path.rsplit("/", 1)[1]]) for c in request.calls)
        if isinstance(request, AllocateId):
            assert request.owner_org == "310000019"
            return {ids[first]: 11, ids[second]: 12}[request.guid]
        return Altinn3Response(200, json=search)

    operation = load_mapping_set(MAPPINGS).operation(
        "ReporteeElementListExternalBasic", "GetReporteeElementListBasicV2"
    )
    body = etree.fromstring(
        b'<GetReporteeElementListBasicV2 xmlns="http://www.altinn.no/services/ServiceEngine/ReporteeElementList/'
        b'2009/10" xmlns:s="http://schemas.altinn.no/services/Archive/ReporteeArchive/2009/10">'
        b"<searchBE><s:Reportee>310000019</s:Reportee></searchBE></GetReporteeElementListBasicV2>"
    )
    principal = Principal("eus", CallerKind.END_USER_SYSTEM, orgs={"310000019": OrgGrant("310000019")})
    request = OperationRequest(operation.legacy.service, operation.legacy.operation, body, principal)
    routes = RoutingTable.of([Route("4711", "1", resource_id="ttd-migratedcorrespondence-4711-1")])
    plan = run_operation(
        operation, request, routes, default_authorize, lambda: datetime(2026, 1, 5, tzinfo=UTC)
    )

    legacy, seen = run(plan, answer, altinn3_contract)

    calls = [
        c for r in seen for c in (r.calls if isinstance(r, CallBatch) else (r,)) if isinstance(c, Altinn3Call)
    ]
    assert [c.path for c in calls] == [
        "/dialogporten/api/v1/enduser/dialogs",
        f"/dialogporten/api/v1/enduser/dialogs/{first}",
        f"/dialogporten/api/v1/enduser/dialogs/{second}",
    ]
    a = "{http://www.altinn.no/services/ServiceEngine/ReporteeElementList/2010/10}"
    listed = [
        (
            e.findtext(f"{a}ReporteeElementId"),
            e.findtext(f"{a}CorrespondenceStatus"),
            e.findtext(f"{a}Status"),
        )
        for e in legacy.element().iter(f"{a}ReporteeElementBEV2")
    ]
    assert listed == [("11", "Read", "OpenedNotConfirmed"), ("12", "Created", "Archive")]
    assert [e.text for e in legacy.element().iter(f"{a}Title")] == ["Title a", "Title b"]
