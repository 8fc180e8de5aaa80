"""Legacy REST message box end to end: a service owner sends over SOAP, an end-user system lists, reads,
downloads an attachment and confirms over REST; the ids are the SOAP inbox's.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from proxy.sandbox.correspondence_model import Status
from proxy.sandbox.world import SandboxKeys
from tests.e2e.conftest import legacy_client
from tests.e2e.rest_world import EUS, EUS2, RestWorld, rest_world
from tests.e2e.test_correspondence_flow import (
    AGENCY,
    ATTACHMENTS,
    END_USER,
    INBOX,
    _agency_wsdl,
    _inbox,
    _insert,
)

ORG = END_USER[2]


@pytest.fixture
async def world(tmp_path: Path, altinn3_contract: Any, sandbox_keys: SandboxKeys) -> AsyncIterator[RestWorld]:
    """The proxy on HTTPS (REST) and HTTP (SOAP) in front of the fakes."""
    async with rest_world(tmp_path, altinn3_contract, sandbox_keys) as running:
        yield running


async def _send(world: RestWorld, reference: os.PathLike[str], references: list[str]) -> None:
    agency = await asyncio.to_thread(legacy_client, _agency_wsdl(reference), world.http_url + AGENCY)
    for sent in references:
        receipt = await asyncio.to_thread(_insert, agency, sent, ORG)
        assert receipt.ReceiptStatusCode == "OK"
    world.fakes.correspondence.publish_due()


async def test_list_read_download_and_confirm_with_the_soap_inbox_ids(
    world: RestWorld, reference: os.PathLike[str]
) -> None:
    await _send(world, reference, ["rest-1"])
    async with world.client(EUS) as client:
        listed = await client.json("GET", "/api/my/messages")
        [message] = listed["_embedded"]["messages"]
        assert message["Subject"] == "Vedtak om tilskudd"
        assert message["Status"] == "Ulest"
        assert message["Type"] == "Correspondence"
        assert (message["ServiceCode"], message["ServiceEdition"]) == ("4711", 1)
        assert message["ServiceOwner"] == "ttd"

        # The same message has the same id in the SOAP inbox.
        inbox = await asyncio.to_thread(
            legacy_client, world.http_url + INBOX + "?wsdl", world.http_url + INBOX
        )
        [element] = await asyncio.to_thread(_inbox, inbox, END_USER)
        assert str(element.ReporteeElementId) == message["MessageId"]

        (stored,) = world.fakes.correspondence.correspondences.values()
        peek = await client.json("GET", f"/api/{ORG}/messages/{message['MessageId']}?markAsRead=false")
        assert peek["Status"] == "Ulest"
        assert Status.Read not in [event.status for event in stored.history]

        read = await client.json("GET", message["_links"]["self"]["href"])
        assert read["Body"] == "Hele meldingen"
        assert read["Status"] == "Lest"
        assert read["ServiceOwner"] == "ttd"
        assert Status.Read in [event.status for event in stored.history]
        links = {link["name"]: link["href"] for link in read["_links"]["attachment"]}
        assert set(links) == set(ATTACHMENTS)
        for name, href in links.items():
            async with client.request("GET", href) as response:
                assert response.status == 200
                assert name in response.headers["Content-Disposition"]
                assert await response.read() == ATTACHMENTS[name]

        # Altinn 2's message ids carried a letter prefix; clients that kept it are understood.
        confirmed = await client.json("PUT", f"/api/{ORG}/messages/a{message['MessageId']}/confirm")
        assert confirmed["Status"] == "Bekreftet"
        again = await client.json("GET", "/api/my/messages?$filter=Status eq 'Bekreftet'")
        assert [m["MessageId"] for m in again["_embedded"]["messages"]] == [message["MessageId"]]
    assert [event.status for event in stored.history].count(Status.Confirmed) == 1


async def test_paging_filters_and_bad_odata(
    world: RestWorld, reference: os.PathLike[str], altinn3_contract: Any
) -> None:
    await _send(world, reference, ["page-1", "page-2", "page-3"])
    async with world.client(EUS) as client:
        async with client.request("GET", "/api/my/messages?$top=2") as response:
            assert response.status == 200
            assert response.headers["X-Warning-LimitReached"] == "2"
            first = await response.json()
        assert len(first["_embedded"]["messages"]) == 2
        rest = await client.json("GET", first["_links"]["next"]["href"])
        assert len(rest["_embedded"]["messages"]) == 1
        assert "next" not in rest["_links"]
        ids = {m["MessageId"] for m in first["_embedded"]["messages"] + rest["_embedded"]["messages"]}
        assert len(ids) == 3
        dated = await client.json(
            "GET",
            "/api/my/messages?$filter=CreatedDate gt DateTime'2020-01-01T00:00:00' and ServiceOwner eq 'TTD'",
        )
        assert len(dated["_embedded"]["messages"]) == 3
        assert (await client.json("GET", "/api/my/messages?$filter=ServiceCode eq '9999'"))["_embedded"][
            "messages"
        ] == []

        calls = altinn3_contract.checked
        for bad in (
            "$top=-1",
            "$skip=x",
            "$filter=Status eq",
            "$filter=Status like 'x'",
            "$filter=(Status eq 'Lest'",
        ):
            async with client.request("GET", f"/api/my/messages?{bad}") as response:
                assert response.status == 400, bad
                body = await response.json()
                assert body["ErrorCode"] == 30001
                assert response.reason
                assert response.reason in body["ErrorMessage"][:200]
        assert altinn3_contract.checked == calls, "bad OData must be refused before any Altinn 3 call"


async def test_another_orgs_message_id_is_answered_like_an_unknown_one(
    world: RestWorld, reference: os.PathLike[str], altinn3_contract: Any
) -> None:
    await _send(world, reference, ["mine-1"])
    async with world.client(EUS) as owner:
        [message] = (await owner.json("GET", "/api/my/messages"))["_embedded"]["messages"]
    calls = altinn3_contract.checked
    async with world.client(EUS2) as stranger:
        replies = []
        for message_id in (message["MessageId"], "999999"):
            async with stranger.request("GET", f"/api/my/messages/{message_id}") as response:
                replies.append((response.status, (await response.json())["ErrorCode"]))
            async with stranger.request("GET", f"/api/{ORG}/messages/{message_id}") as response:
                assert response.status == 403
        assert replies[0] == replies[1]
        assert replies[0][0] == 404
        async with stranger.request("GET", "/api/my/nosuchthing") as response:
            assert response.status == 404
    # Only the token for the stranger's own org may have been fetched; nothing reached Altinn 3's APIs.
    assert altinn3_contract.checked == calls
