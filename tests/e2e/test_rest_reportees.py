"""Legacy REST reportees through the proxy: Altinn 3 authorized parties, ReporteeIds, service owners."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lxml import etree
from prometheus_client import REGISTRY

from proxy.sandbox import fixtures
from proxy.sandbox.world import SandboxKeys
from proxy.settings import Settings
from tests.e2e.rest_world import EUS, EUS2, SO, RestWorld, rest_world


@pytest.fixture
async def world(tmp_path: Path, altinn3_contract: Any, sandbox_keys: SandboxKeys) -> AsyncIterator[RestWorld]:
    """The proxy on HTTPS in front of the fakes (judged by Altinn's published contract)."""
    async with rest_world(tmp_path, altinn3_contract, sandbox_keys) as running:
        yield running


async def test_reportees_list_the_system_users_party_with_a_stable_reportee_id(world: RestWorld) -> None:
    async with world.client(EUS) as client:
        first = await client.json("GET", "/api/reportees")
        again = await client.json("GET", "/api/reportees")
    reportees = first["_embedded"]["reportees"]
    assert [r["OrganizationNumber"] for r in reportees] == ["310000019"]
    reportee = reportees[0]
    assert reportee["Name"] == "SANDBOX REGNSKAP AS"
    assert reportee["Type"] == "Enterprise"
    assert reportee["Status"] == "Active"
    assert reportee["ReporteeId"].startswith("r")
    assert again["_embedded"]["reportees"][0]["ReporteeId"] == reportee["ReporteeId"]
    assert first["_links"]["self"]["href"] == f"{world.url}/api/reportees"
    assert reportee["_links"]["messages"]["href"] == f"{world.url}/api/{reportee['ReporteeId']}/messages"


async def test_one_reportee_by_its_id_and_another_orgs_id_is_refused(
    world: RestWorld, altinn3_contract: Any
) -> None:
    async with world.client(EUS) as client:
        reportee_id = (await client.json("GET", "/api/reportees"))["_embedded"]["reportees"][0]["ReporteeId"]
        one = await client.json("GET", f"/api/reportees/{reportee_id}")
    assert one["OrganizationNumber"] == "310000019"
    assert one["_links"]["self"]["href"].endswith(f"/api/reportees/{reportee_id}")
    calls = altinn3_contract.checked
    async with world.client(EUS2) as stranger:
        async with stranger.request("GET", f"/api/reportees/{reportee_id}") as response:
            assert response.status == 404
            assert (await response.json())["ErrorCode"] == 30002
        async with stranger.request("GET", f"/api/{reportee_id}/messages") as response:
            assert response.status == 403
    assert altinn3_contract.checked == calls, "nothing may reach Altinn 3 for another org's ReporteeId"


async def test_reportees_as_hal_xml_and_filtered_with_odata(world: RestWorld) -> None:
    async with world.client(EUS) as client:
        async with client.request(
            "GET", "/api/reportees", headers={"Accept": "application/hal+xml"}
        ) as response:
            assert response.status == 200
            assert response.content_type == "application/hal+xml"
            root = etree.fromstring(await response.read())
        none = await client.json("GET", "/api/reportees?$filter=Type eq 'Person'")
        some = await client.json("GET", "/api/reportees?$filter=Type ne 'Person' and Status eq 'Active'")
        async with client.request("GET", "/api/reportees?$filter=Colour eq 'red'") as response:
            assert response.status == 400
            problem = await response.json()
    assert root.tag == "resource"
    assert root.get("href") == f"{world.url}/api/reportees"
    [embedded] = root.findall("resource")
    assert embedded.get("rel") == "reportees"
    assert embedded.findtext("OrganizationNumber") == "310000019"
    assert none["_embedded"]["reportees"] == []
    assert len(some["_embedded"]["reportees"]) == 1
    assert "Colour" in problem["ErrorMessage"]


async def test_service_owner_reportees_of_a_person_for_a_service(world: RestWorld) -> None:
    async with world.client(SO) as client:
        found = await client.json(
            "GET",
            f"/api/serviceowner/reportees?subject={fixtures.DEMO_PERSON}&serviceCode=4711&serviceEdition=1",
        )
        async with client.request("GET", "/api/serviceowner/reportees") as response:
            assert response.status == 400
    numbers = sorted(
        r.get("OrganizationNumber") or r.get("SocialSecurityNumber") for r in found["_embedded"]["reportees"]
    )
    assert numbers == sorted([fixtures.DEMO_PERSON, *fixtures.DEMO_PERSON_ORGS])
    async with (
        world.client(EUS) as end_user,
        end_user.request("GET", f"/api/serviceowner/reportees?subject={fixtures.DEMO_PERSON}") as response,
    ):
        assert response.status == 403


async def test_links_use_the_configured_public_url(
    tmp_path: Path, altinn3_contract: Any, sandbox_keys: SandboxKeys
) -> None:
    def public(settings: Settings) -> Settings:
        listen = settings.listen.model_copy(update={"external_url": "https://altinn-proxy.example.no"})
        return settings.model_copy(update={"listen": listen})

    async with (
        rest_world(tmp_path, altinn3_contract, sandbox_keys, adjust=public) as world,
        world.client(EUS) as client,
    ):
        found = await client.json("GET", "/api/reportees")
    assert found["_links"]["self"]["href"] == "https://altinn-proxy.example.no/api/reportees"


async def test_request_series_of_mapped_routes_exist_before_their_first_call(world: RestWorld) -> None:
    labels = {
        "method": "GET",
        "route": "/api/{who}/brokerservice/inbox/{fileReference}/receipt",
        "outcome": "ok",
    }
    assert REGISTRY.get_sample_value("altinn_proxy_rest_requests_total", labels) is not None


async def test_a_reportee_id_names_the_organisation_in_who(world: RestWorld) -> None:
    async with world.client(EUS) as client:
        reportee_id = (await client.json("GET", "/api/reportees"))["_embedded"]["reportees"][0]["ReporteeId"]
        listed = await client.json("GET", f"/api/{reportee_id}/messages")
    assert listed["_links"]["self"]["href"] == f"{world.url}/api/310000019/messages"


def _demo_eus_acts_for_two_organisations(settings: Settings) -> Settings:
    """The demo end-user system's credential configured for both organisations with a system user."""
    path = settings.identity.credentials_file
    document = yaml.safe_load(path.read_text())
    document["callers"]["demo-eus"]["orgs"] = [{"org": org} for org in fixtures.SYSTEM_USER_ORGS]
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return settings


async def test_a_caller_of_several_organisations_lists_the_parties_of_each_once(
    tmp_path: Path, altinn3_contract: Any, sandbox_keys: SandboxKeys
) -> None:
    async with (
        rest_world(
            tmp_path, altinn3_contract, sandbox_keys, adjust=_demo_eus_acts_for_two_organisations
        ) as world,
        world.client(EUS) as client,
    ):
        listed = await client.json("GET", "/api/reportees")
        reportees = {r["OrganizationNumber"]: r["ReporteeId"] for r in listed["_embedded"]["reportees"]}
        assert sorted(reportees) == sorted(fixtures.SYSTEM_USER_ORGS)
        assert len(listed["_embedded"]["reportees"]) == len(reportees)
        # Each ReporteeId names its own organisation in {who}, and each party reads by its id.
        for org, reportee_id in reportees.items():
            one = await client.json("GET", f"/api/reportees/{reportee_id}")
            assert one["OrganizationNumber"] == org
            messages = await client.json("GET", f"/api/{reportee_id}/messages")
            assert messages["_links"]["self"]["href"] == f"{world.url}/api/{org}/messages"
        async with client.request("GET", "/api/my/messages") as response:
            assert response.status == 400, "'my' is ambiguous for a caller of several organisations"
