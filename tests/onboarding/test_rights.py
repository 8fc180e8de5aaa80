"""Rights derived from the shipped mappings and a routing table: what Altinn 3 checks for each call.

Altinn's Correspondence and Broker APIs authorize a recipient with ``read`` and a sender with
``write`` on the resource (``AltinnAuthorizationService`` in Altinn/altinn-correspondence and
altinn-broker); a service owner's own calls need no system user at all.
"""

from __future__ import annotations

from proxy.onboarding.register import differences
from proxy.onboarding.rights import OperationNeed, Right, derive_rights, rights_key
from proxy.pipeline.loading import load_mapping_set
from proxy.sandbox.world import default_mappings_dir

RESOURCES = {
    "correspondence": ("ttd-migratedcorrespondence-4711-1",),
    "broker": ("ttd-broker-4712",),
    "apps": ("app_ttd_skjema",),
}


def shipped_needs() -> list[OperationNeed]:
    mappings = load_mapping_set(default_mappings_dir())
    return [
        OperationNeed(op.legacy.operation, op.identity.acts_as, op.identity.scopes)
        for op in mappings.operations.values()
    ]


def test_the_shipped_families_need_read_on_correspondence_and_read_write_on_broker() -> None:
    rights = {right.resource_id: right for right in derive_rights(RESOURCES, shipped_needs())}
    assert set(rights) == {"ttd-migratedcorrespondence-4711-1", "ttd-broker-4712", "app_ttd_skjema"}
    assert "SubmitFormTaskBasic" in rights["app_ttd_skjema"].operations  # forms: the routed app
    assert rights["ttd-migratedcorrespondence-4711-1"].actions == {"read"}
    assert rights["ttd-broker-4712"].actions == {"read", "write"}
    correspondence_ops = rights["ttd-migratedcorrespondence-4711-1"].operations
    assert "GetReporteeElementListBasicV2" in correspondence_ops
    assert "SaveCorrespondenceConfirmationBasic" in correspondence_ops
    assert "InsertCorrespondenceBasicV2" not in correspondence_ops  # the service owner's own token
    broker_ops = rights["ttd-broker-4712"].operations
    assert {"InitiateBrokerServiceBasic", "DownloadFileStreamedBasic", "GetReceiptBasicV2"} <= broker_ops


def test_service_owner_operations_and_unknown_scopes_add_no_right() -> None:
    needs = [
        OperationNeed(
            "InsertCorrespondenceBasicV2", "service_owner", frozenset({"altinn:correspondence.write"})
        ),
        OperationNeed("Search", "system_user", frozenset({"digdir:dialogporten"})),
    ]
    assert derive_rights(RESOURCES, needs) == []


def test_apps_become_app_resources() -> None:
    needs = [OperationNeed("SubmitFormTaskBasic", "system_user", frozenset({"altinn:instances.write"}))]
    assert [right.as_altinn() for right in derive_rights(RESOURCES, needs)] == [
        {"resource": [{"id": "urn:altinn:resource", "value": "app_ttd_skjema"}]}
    ]


def test_rights_compare_by_resource_including_the_old_app_format() -> None:
    old_app = {
        "resource": [{"id": "urn:altinn:org", "value": "ttd"}, {"id": "urn:altinn:app", "value": "skjema"}]
    }
    assert rights_key([old_app, Right("ttd-broker-4712").as_altinn()]) == {
        "app_ttd_skjema",
        "ttd-broker-4712",
    }


def test_differences_name_each_change() -> None:
    desired = {
        "id": "310000035_altinn_proxy",
        "name": {"nb": "Proxy"},
        "description": {"nb": "Ny"},
        "rights": [Right("b").as_altinn()],
        "clientId": ["client"],
        "isVisible": False,
        "allowedRedirectUrls": ["https://example.org/done"],
    }
    current = {
        **desired,
        "description": {"nb": "Gammel"},
        "rights": [Right("a").as_altinn()],
        "clientId": ["other"],
        "isVisible": True,
        "allowedRedirectUrls": [],
    }
    assert differences(current, desired) == [
        "~ description.nb: 'Gammel' -> 'Ny'",
        "+ right b",
        "- right a",
        "+ Maskinporten client client",
        "~ isVisible: True -> False",
        "+ redirect URL https://example.org/done",
    ]
    assert differences(desired, desired) == []
    assert differences(None, desired)[0] == "+ system 310000035_altinn_proxy (not registered yet)"
