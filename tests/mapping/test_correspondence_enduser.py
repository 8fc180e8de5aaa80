"""The end-user correspondence mappings, run without any server (the engine's dry run)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from proxy.identity.principal import CallerKind, OrgGrant, Principal
from proxy.mapping.calls import Altinn3Call, ResolveId
from proxy.mapping.compiler import load_mapping_set
from proxy.mapping.engine import OperationRequest, run_operation
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


def test_reading_resolves_the_legacy_id_before_any_altinn3_call() -> None:
    operation = load_mapping_set(MAPPINGS).operation(
        "CorrespondenceExternalBasic", "GetCorrespondenceForEndUserSystemBasicV2"
    )
    body = etree.fromstring(
        b'<GetCorrespondenceForEndUserSystemBasicV2 xmlns="http://www.altinn.no/services/ServiceEngine/'
        b'Correspondence/2009/10"><correspondenceID>42</correspondenceID></GetCorrespondenceForEndUserSystemBasicV2>'
    )
    principal = Principal("eus", CallerKind.END_USER_SYSTEM, orgs={"310000019": OrgGrant("310000019")})
    request = OperationRequest(operation.legacy.service, operation.legacy.operation, body, principal)
    plan = run_operation(
        operation, request, RoutingTable(), lambda p, r: OrgGrant(r), lambda: datetime(2026, 1, 1, tzinfo=UTC)
    )
    first = plan.send(None)
    assert first == ResolveId("correspondence", 42, "310000019", "guid")
    second = plan.send("4c5e8a0e-7c7b-4a52-9a3c-0e4f0e0e0e01")
    assert isinstance(second, Altinn3Call)
    assert second.path == "/correspondence/api/v1/correspondence/4c5e8a0e-7c7b-4a52-9a3c-0e4f0e0e0e01/details"
    assert second.token.system_user_org == "310000019"
    plan.close()
