"""The fake Dialogporten end-user API: search as a system user, paging, filters, system labels, a dialog."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from proxy.sandbox.correspondence_model import Status
from tests.sandbox.test_correspondence_harness import (
    OTHER_ORG,
    RECIPIENT_URN,
    RESOURCE,
    Platform,
    correspondence_request,
    platform,
    signing_keys,
    upload_form,
)

__all__ = ["platform", "signing_keys"]  # fixtures used by the tests below

DIALOGS = "/dialogporten/api/v1/enduser/dialogs"
OTHER_URN = f"urn:altinn:organization:identifier-no:{OTHER_ORG}"


async def _send(platform: Platform, reference: str, recipient: str = RECIPIENT_URN) -> str:
    status, sent, _ = await platform.call(
        "POST",
        "/correspondence/api/v1/correspondence",
        platform.service_owner_token(),
        json=correspondence_request(senders_reference=reference, recipients=(recipient,)),
    )
    assert status == 200, sent
    return str(sent["correspondences"][0]["correspondenceId"])


async def test_search_pages_through_the_partys_dialogs_newest_first(platform: Platform) -> None:
    for index in range(3):
        await _send(platform, f"ref-{index}")
        platform.clock.now += 60
    await _send(platform, "for-someone-else", OTHER_URN)
    reader = platform.system_user_token()
    seen: list[str] = []
    params: list[tuple[str, str]] = [("party", RECIPIENT_URN), ("limit", "2")]
    status, page, _ = await platform.call("GET", DIALOGS, reader, params=params)
    assert (status, page["hasNextPage"], len(page["items"])) == (200, True, 2)
    seen += [item["id"] for item in page["items"]]
    status, page, _ = await platform.call(
        "GET", DIALOGS, reader, params=[*params, ("continuationToken", page["continuationToken"])]
    )
    assert (status, page["hasNextPage"], len(page["items"])) == (200, False, 1)
    seen += [item["id"] for item in page["items"]]
    dialogs = platform.dialogporten.dialogs
    created = [dialogs[next(d for d in dialogs if str(d) == ident)].created for ident in seen]
    assert created == sorted(created, reverse=True)
    assert len(set(seen)) == 3
    assert all(dialogs[d].party == RECIPIENT_URN for d in dialogs if str(d) in seen)


async def test_a_system_user_only_finds_its_own_partys_dialogs(platform: Platform) -> None:
    await _send(platform, "theirs", OTHER_URN)
    status, page, _ = await platform.call(
        "GET", DIALOGS, platform.system_user_token(), params=[("party", OTHER_URN)]
    )
    assert (status, page["items"], page["hasNextPage"]) == (200, [], False)
    status, page, _ = await platform.call("GET", DIALOGS, platform.system_user_token(OTHER_ORG))
    assert [item["party"] for item in page["items"]] == [OTHER_URN]


async def test_filters_by_service_resource_and_dates(platform: Platform) -> None:
    await _send(platform, "one")
    reader = platform.system_user_token()
    later = (datetime.fromtimestamp(platform.clock(), UTC) + timedelta(minutes=5)).isoformat()
    status, page, _ = await platform.call("GET", DIALOGS, reader, params=[("createdAfter", later)])
    assert (status, page["items"]) == (200, [])
    status, page, _ = await platform.call(
        "GET", DIALOGS, reader, params=[("serviceResource", f"urn:altinn:resource:{RESOURCE}")]
    )
    assert [item["serviceResource"] for item in page["items"]] == [f"urn:altinn:resource:{RESOURCE}"]
    status, page, _ = await platform.call(
        "GET", DIALOGS, reader, params=[("serviceResource", "urn:altinn:resource:another")]
    )
    assert page["items"] == []


async def test_dates_without_time_zone_and_bad_limits_are_refused(platform: Platform) -> None:
    reader = platform.system_user_token()
    status, problem, _ = await platform.call(
        "GET", DIALOGS, reader, params=[("createdAfter", "2026-01-01T00:00:00")], judge=False
    )
    assert status == 400
    assert "createdAfter" in problem["errors"]
    assert platform.contract_also_refused()
    status, problem, _ = await platform.call("GET", DIALOGS, reader, params=[("limit", "1001")], judge=False)
    assert (status, list(problem["errors"])) == (400, ["limit"])


async def test_tokens_need_the_scope_and_a_system_user(platform: Platform) -> None:
    status, _, body = await platform.call(
        "GET", DIALOGS, platform.system_user_token(scopes="altinn:correspondence.read")
    )
    assert (status, body) == (403, b"")
    status, _, _ = await platform.call(
        "GET", DIALOGS, platform.service_owner_token(scopes="digdir:dialogporten")
    )
    assert status == 403
    status, _, _ = await platform.call("GET", DIALOGS, None)
    assert status == 401


async def test_archive_label_moves_the_dialog_and_checks_the_revision(platform: Platform) -> None:
    await _send(platform, "to-archive")
    reader = platform.system_user_token()
    status, page, _ = await platform.call("GET", DIALOGS, reader)
    [item] = page["items"]
    labels = f"{DIALOGS}/{item['id']}/context/systemlabels"
    status, problem, _ = await platform.call(
        "PUT",
        labels,
        reader,
        json={"addLabels": ["Archive"]},
        headers={"If-Match": "5d8e6b0e-0000-4a0b-9f0c-7a7d6f1d2f10"},
        judge=False,  # the shared checker has no deserializer for application/problem+json
    )
    assert (status, problem["status"]) == (412, 412)
    status, _, _ = await platform.call(
        "PUT",
        labels,
        reader,
        json={"addLabels": ["Archive"]},
        headers={"If-Match": item["endUserContext"]["revision"]},
    )
    assert status == 204
    status, page, _ = await platform.call("GET", DIALOGS, reader, params=[("systemLabel", "Archive")])
    assert [i["endUserContext"]["systemLabels"] for i in page["items"]] == [["Archive"]]
    status, page, _ = await platform.call("GET", DIALOGS, reader, params=[("systemLabel", "Default")])
    assert page["items"] == []
    status, _, _ = await platform.call(
        "PUT", labels, platform.system_user_token(OTHER_ORG), json={"addLabels": ["Bin"]}
    )
    assert status == 403


async def test_confirming_the_correspondence_completes_the_dialog(platform: Platform) -> None:
    correspondence_id = await _send(platform, "confirm-me")
    reader = platform.system_user_token()
    item = f"/correspondence/api/v1/correspondence/{correspondence_id}"
    await platform.call("GET", item, reader)
    await platform.call("POST", f"{item}/confirm", reader)
    _, page, _ = await platform.call("GET", DIALOGS, reader, params=[("isContentSeen", "true")])
    [dialog] = page["items"]
    assert (dialog["status"], dialog["latestActivity"]["type"]) == ("Completed", "CorrespondenceConfirmed")


async def test_a_dialog_points_into_the_correspondence_api_without_fetching_it(platform: Platform) -> None:
    files = {"vedtak.pdf": b"%PDF-1.7 vedtak", "vilkar.txt": b"vilkaar"}
    status, sent, _ = await platform.call(
        "POST",
        "/correspondence/api/v1/correspondence/upload",
        platform.service_owner_token(),
        data=upload_form(platform, files, **{"Correspondence.SendersReference": "with-files"}),
    )
    assert status == 200, sent
    platform.finish_scans()
    correspondence_id = sent["correspondences"][0]["correspondenceId"]
    reader = platform.system_user_token()
    _, page, _ = await platform.call("GET", DIALOGS, reader)
    [item] = page["items"]
    assert item["isContentSeen"] is False

    status, dialog, _ = await platform.call("GET", f"{DIALOGS}/{item['id']}", reader)
    assert status == 200
    assert (dialog["id"], dialog["status"], dialog["externalReference"]) == (
        item["id"],
        "RequiresAttention",
        "with-files",
    )
    item_url = f"/correspondence/api/v1/correspondence/{correspondence_id}"
    endpoints = {
        (endpoint["httpMethod"], urlsplit(endpoint["url"]).path)
        for action in dialog["apiActions"]
        for endpoint in action["endpoints"]
    }
    attachment_ids = [attachment["id"] for attachment in dialog["attachments"]]
    assert endpoints == {
        ("POST", f"{item_url}/confirm"),
        ("DELETE", f"{item_url}/purge"),
        ("POST", f"{item_url}/markasread"),
        ("GET", item_url),
        ("GET", f"{item_url}/details"),
        *(("GET", f"{item_url}/attachment/{ident}/download") for ident in attachment_ids),
    }
    assert sorted(a["displayName"][0]["value"] for a in dialog["attachments"]) == sorted(files)
    assert [a["priority"] for a in dialog["guiActions"]] == ["Primary", "Tertiary"]
    assert [a["type"] for a in dialog["activities"]] == ["DialogCreated"]

    # Reading the dialog is Dialogporten's own "seen"; the correspondence stays Published.
    stored = platform.correspondence.correspondences[next(iter(platform.correspondence.correspondences))]
    assert Status.Fetched not in [event.status for event in stored.history]
    _, page, _ = await platform.call("GET", DIALOGS, reader)
    assert page["items"][0]["isContentSeen"] is True

    # The URLs are real: downloading through one of them works for the recipient.
    [download] = [a["urls"][0]["url"] for a in dialog["attachments"] if a["id"] == attachment_ids[0]]
    async with platform.client.get(
        urlsplit(download).path, headers={"Authorization": f"Bearer {reader}"}
    ) as response:
        assert response.status == 200
        assert await response.read() in files.values()


async def test_a_dialog_has_the_searchs_access_rules(platform: Platform) -> None:
    await _send(platform, "private")
    reader = platform.system_user_token()
    _, page, _ = await platform.call("GET", DIALOGS, reader)
    dialog = f"{DIALOGS}/{page['items'][0]['id']}"
    status, _, body = await platform.call("GET", dialog, platform.system_user_token(OTHER_ORG))
    assert (status, body) == (403, b"")
    status, _, _ = await platform.call(
        "GET", dialog, platform.system_user_token(scopes="altinn:correspondence.read")
    )
    assert status == 403
    status, _, _ = await platform.call(
        "GET", dialog, platform.service_owner_token(scopes="digdir:dialogporten")
    )
    assert status == 403
    status, _, _ = await platform.call("GET", dialog, None)
    assert status == 401
    status, problem, _ = await platform.call(
        "GET",
        f"{DIALOGS}/0194f7a0-0000-7000-8000-000000000001",
        reader,
        judge=False,  # the shared checker has no deserializer for application/problem+json
    )
    assert (status, problem["status"]) == (404, 404)
