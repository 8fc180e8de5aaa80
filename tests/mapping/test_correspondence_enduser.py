"""The end-user correspondence mappings, run without any server (the engine's dry run)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from proxy.identity.principal import CallerKind, OrgGrant, Principal
from proxy.mapping.calls import Altinn3Call, ResolveIdAmong
from proxy.mapping.compiler import load_mapping_set
from proxy.mapping.engine import OperationRequest, default_authorize, run_operation
from proxy.mapping.routing import Route, RoutingTable

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
