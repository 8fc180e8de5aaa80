"""The fake Correspondence API: a full send/read/confirm flow and the refusals the real API gives."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from proxy.sandbox.correspondence_model import Status
from proxy.sandbox.correspondence_validation import form_to_request
from tests.sandbox.test_correspondence_harness import (
    OTHER_ORG,
    OTHER_RESOURCE,
    RECIPIENT_ORG,
    RECIPIENT_URN,
    RESOURCE,
    Platform,
    correspondence_request,
    iso,
    platform,
    signing_keys,
    upload_form,
)

__all__ = ["platform", "signing_keys"]  # fixtures used by the tests below

BASE = "/correspondence/api/v1"


async def test_full_flow_send_list_read_download_confirm(platform: Platform) -> None:
    files = {"vedtak.pdf": b"%PDF-1.7 vedtak", "vilkar.txt": b"vilkaar for tilskudd"}
    sender = platform.service_owner_token()
    status, sent, _ = await platform.call(
        "POST", f"{BASE}/correspondence/upload", sender, data=upload_form(platform, files)
    )
    assert status == 200, sent
    [created] = sent["correspondences"]
    # Its own attachments are still being scanned: created, not yet published (Altinn's multipart path).
    assert created["status"] == "Initialized"
    assert created["recipient"] == RECIPIENT_URN
    assert len(sent["attachmentIds"]) == 2
    correspondence_id = created["correspondenceId"]
    reader = platform.system_user_token()
    status, _, _ = await platform.call("GET", f"{BASE}/correspondence/{correspondence_id}", reader)
    assert status == 404  # a recipient cannot see it before publication
    platform.clock.now += platform.correspondence.scan_seconds

    status, listed, _ = await platform.call(
        "GET", f"{BASE}/correspondence", reader, params={"resourceId": RESOURCE, "role": "Recipient"}
    )
    assert (status, listed) == (200, {"ids": [correspondence_id]})

    status, dialogs, _ = await platform.call(
        "GET",
        "/dialogporten/api/v1/enduser/dialogs",
        reader,
        params=[("party", RECIPIENT_URN), ("serviceResource", f"urn:altinn:resource:{RESOURCE}")],
    )
    assert status == 200
    [dialog] = dialogs["items"]
    assert dialog["content"]["title"]["value"][0]["value"] == "Vedtak"
    assert dialog["isContentSeen"] is False

    status, overview, _ = await platform.call("GET", f"{BASE}/correspondence/{correspondence_id}", reader)
    assert status == 200
    assert overview["status"] == "Fetched"
    assert {"referenceType": "DialogportenDialogId", "referenceValue": dialog["id"]} in overview[
        "externalReferences"
    ]
    attachments = {a["fileName"]: a for a in overview["content"]["attachments"]}
    assert set(attachments) == set(files)

    for name, data in files.items():
        status, _, raw = await platform.call(
            "GET",
            f"{BASE}/correspondence/{correspondence_id}/attachment/{attachments[name]['id']}/download",
            reader,
            judge=False,  # the shared checker cannot judge a binary body against `format: binary`
        )
        assert (status, raw) == (200, data)
        assert attachments[name]["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()

    status, marked, _ = await platform.call(
        "POST", f"{BASE}/correspondence/{correspondence_id}/markasread", reader
    )
    assert (status, marked) == (200, correspondence_id)
    status, confirmed, _ = await platform.call(
        "POST", f"{BASE}/correspondence/{correspondence_id}/confirm", reader
    )
    assert (status, confirmed) == (200, correspondence_id)

    status, details, _ = await platform.call(
        "GET", f"{BASE}/correspondence/{correspondence_id}/details", sender
    )
    assert status == 200
    assert details["status"] == "Confirmed"
    history = [event["status"] for event in details["statusHistory"]]
    assert history == [
        "Initialized",
        "ReadyForPublish",
        "Published",
        "Fetched",
        "AttachmentsDownloaded",
        "AttachmentsDownloaded",
        "Read",
        "Confirmed",
    ]
    assert details["notifications"][0]["notificationChannel"] == "Email"

    status, dialogs, _ = await platform.call("GET", "/dialogporten/api/v1/enduser/dialogs", reader)
    [dialog] = dialogs["items"]
    assert dialog["status"] == "Completed"
    assert dialog["isContentSeen"] is True
    assert dialog["latestActivity"]["type"] == "CorrespondenceConfirmed"
    assert platform.judged >= 8


async def test_attachment_first_then_correspondence_with_existing_attachment(platform: Platform) -> None:
    sender = platform.service_owner_token()
    status, attachment_id, _ = await platform.call(
        "POST",
        f"{BASE}/attachment",
        sender,
        json={
            "resourceId": RESOURCE,
            "sender": "0192:310000035",
            "sendersReference": "att-1",
            "fileName": "brev.pdf",
        },
    )
    assert status == 200
    status, before, _ = await platform.call(
        "POST",
        f"{BASE}/correspondence",
        sender,
        json={**correspondence_request(), "existingAttachments": [attachment_id]},
    )
    assert (status, before["errorCode"]) == (400, 1018)  # not uploaded yet: not published

    status, uploaded, _ = await platform.call(
        "POST", f"{BASE}/attachment/{attachment_id}/upload", sender, data=b"%PDF brev"
    )
    # Uploaded, but the malware scan has not reported yet: still refused with 1018.
    assert (status, uploaded["status"]) == (200, "UploadProcessing")
    status, during, _ = await platform.call(
        "POST",
        f"{BASE}/correspondence",
        sender,
        json={**correspondence_request(), "existingAttachments": [attachment_id]},
    )
    assert (status, during["errorCode"]) == (400, 1018)
    status, twice, _ = await platform.call(
        "POST", f"{BASE}/attachment/{attachment_id}/upload", sender, data=b"%PDF brev"
    )
    assert (status, twice["errorCode"]) == (400, 2005)  # already uploaded, even while scanning

    platform.clock.now += platform.correspondence.scan_seconds
    status, scanned, _ = await platform.call("GET", f"{BASE}/attachment/{attachment_id}", sender)
    assert (status, scanned["status"]) == (200, "Published")
    status, sent, _ = await platform.call(
        "POST",
        f"{BASE}/correspondence",
        sender,
        json={**correspondence_request(), "existingAttachments": [attachment_id]},
    )
    assert status == 200
    assert sent["attachmentIds"] == [attachment_id]
    status, again, _ = await platform.call(
        "POST", f"{BASE}/attachment/{attachment_id}/upload", sender, data=b"x"
    )
    assert (status, again["errorCode"]) == (400, 2005)  # Altinn checks 2005 before 2003


async def test_an_attachment_the_scan_finds_malware_in_fails_with_its_correspondence(
    platform: Platform,
) -> None:
    eicar = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    sender = platform.service_owner_token()
    status, sent, _ = await platform.call(
        "POST", f"{BASE}/correspondence/upload", sender, data=upload_form(platform, {"virus.txt": eicar})
    )
    assert status == 200, sent
    [attachment_id] = sent["attachmentIds"]
    platform.clock.now += platform.correspondence.scan_seconds
    status, scanned, _ = await platform.call("GET", f"{BASE}/attachment/{attachment_id}", sender)
    assert (status, scanned["status"]) == (200, "Failed")
    assert scanned["statusText"].startswith("Malware scan failed")
    status, details, _ = await platform.call(
        "GET", f"{BASE}/correspondence/{sent['correspondences'][0]['correspondenceId']}/details", sender
    )
    assert (status, details["status"]) == (200, "Failed")
    status, refused, _ = await platform.call(
        "POST",
        f"{BASE}/correspondence",
        sender,
        json={**correspondence_request(), "existingAttachments": [attachment_id]},
    )
    assert (status, refused["errorCode"]) == (400, 1018)


async def test_a_sender_purge_before_publication_purges_the_attachments_only_it_used(
    platform: Platform,
) -> None:
    sender = platform.service_owner_token()
    status, sent, _ = await platform.call(
        "POST", f"{BASE}/correspondence/upload", sender, data=upload_form(platform, {"a.txt": b"a"})
    )
    assert status == 200, sent
    correspondence_id = sent["correspondences"][0]["correspondenceId"]
    status, _, _ = await platform.call("DELETE", f"{BASE}/correspondence/{correspondence_id}/purge", sender)
    assert status == 200
    status, attachment, _ = await platform.call(
        "GET", f"{BASE}/attachment/{sent['attachmentIds'][0]}", sender
    )
    assert (status, attachment["status"]) == (200, "Purged")
    status, again, _ = await platform.call(
        "DELETE", f"{BASE}/correspondence/{correspondence_id}/purge", sender
    )
    assert (status, again["errorCode"]) == (400, 1014)


async def test_missing_or_invalid_token_is_401(platform: Platform) -> None:
    status, problem, _ = await platform.call(
        "POST", f"{BASE}/correspondence", None, json=correspondence_request()
    )
    assert (status, problem["status"]) == (401, 401)
    status, _, _ = await platform.call(
        "POST", f"{BASE}/correspondence", "not-a-jwt", json=correspondence_request()
    )
    assert status == 401
    assert platform.correspondence.correspondences == {}


async def test_raw_maskinporten_token_needs_serviceowner_scope_to_send(platform: Platform) -> None:
    token = platform.service_owner_token(scopes="altinn:correspondence.write")
    status, problem, _ = await platform.call(
        "POST", f"{BASE}/correspondence", token, json=correspondence_request(), judge=False
    )
    assert status == 403
    assert "altinn:serviceowner" in problem["detail"]
    assert platform.correspondence.correspondences == {}


async def test_missing_required_field_is_a_validation_problem(platform: Platform) -> None:
    body = correspondence_request()
    del body["correspondence"]["sendersReference"]
    status, problem, _ = await platform.call(
        "POST", f"{BASE}/correspondence", platform.service_owner_token(), json=body
    )
    assert status == 400
    assert "Correspondence.SendersReference" in problem["errors"]
    assert platform.contract_also_refused()


async def test_business_rules_answer_altinn_error_codes(platform: Platform) -> None:
    token = platform.service_owner_token()
    now = datetime.fromtimestamp(platform.clock(), UTC)
    cases: list[tuple[dict[str, Any], int]] = [
        (
            correspondence_request(
                content={**correspondence_request()["correspondence"]["content"], "messageTitle": ""}
            ),
            1020,
        ),
        (
            correspondence_request(
                content={**correspondence_request()["correspondence"]["content"], "language": "sv"}
            ),
            1023,
        ),
        (correspondence_request(isConfirmationNeeded=True), 1016),
        (correspondence_request(dueDateTime=iso(now - timedelta(days=1))), 1008),
        (
            correspondence_request(replyOptions=[{"linkURL": "http://insecure.example", "linkText": "x"}]),
            1035,
        ),
        (correspondence_request(recipients=(RECIPIENT_URN, f"0192:{RECIPIENT_ORG}")), 1006),
        (correspondence_request(resourceId="no-such-resource"), 1036),
        (
            correspondence_request(
                notification={"notificationTemplate": "CustomMessage", "notificationChannel": "Sms"}
            ),
            3004,
        ),
    ]
    for body, code in cases:
        status, problem, _ = await platform.call("POST", f"{BASE}/correspondence", token, json=body)
        assert (status, problem.get("errorCode")) == (400, code), problem
    assert platform.correspondence.correspondences == {}


async def test_sender_must_own_the_resource(platform: Platform) -> None:
    status, problem, _ = await platform.call(
        "POST",
        f"{BASE}/correspondence",
        platform.service_owner_token(),
        json=correspondence_request(resourceId=OTHER_RESOURCE),
    )
    assert (status, problem["errorCode"]) == (401, 4001)


async def _send(platform: Platform, **overrides: Any) -> str:
    status, sent, _ = await platform.call(
        "POST",
        f"{BASE}/correspondence",
        platform.service_owner_token(),
        json=correspondence_request(**overrides),
    )
    assert status == 200, sent
    return str(sent["correspondences"][0]["correspondenceId"])


async def test_other_org_cannot_see_or_act_on_the_correspondence(platform: Platform) -> None:
    correspondence_id = await _send(platform)
    intruder = platform.system_user_token(OTHER_ORG)
    for method, suffix in [("GET", ""), ("GET", "/details"), ("POST", "/markasread"), ("POST", "/confirm")]:
        status, problem, _ = await platform.call(
            method, f"{BASE}/correspondence/{correspondence_id}{suffix}", intruder
        )
        assert (status, problem["errorCode"]) == (401, 4001), (method, suffix)
    status, listed, _ = await platform.call(
        "GET", f"{BASE}/correspondence", intruder, params={"resourceId": RESOURCE, "role": "Recipient"}
    )
    assert listed == {"ids": []}
    [correspondence] = platform.correspondence.correspondences.values()
    assert correspondence.current_status is Status.Published


async def test_unknown_id_is_404(platform: Platform) -> None:
    status, problem, _ = await platform.call(
        "GET", f"{BASE}/correspondence/0b0e6b8e-5a43-4a0b-9f0c-7a7d6f1d2f10", platform.system_user_token()
    )
    assert (status, problem["errorCode"]) == (404, 1001)


async def test_raw_maskinporten_token_is_refused_on_recipient_only_operations(platform: Platform) -> None:
    correspondence_id = await _send(platform)
    raw = platform.system_user_token(exchanged=False)
    status, overview, _ = await platform.call("GET", f"{BASE}/correspondence/{correspondence_id}", raw)
    assert (status, overview["status"]) == (200, "Fetched")  # overview accepts Maskinporten tokens
    status, problem, _ = await platform.call(
        "POST", f"{BASE}/correspondence/{correspondence_id}/markasread", raw
    )
    assert (status, problem["errorCode"]) == (401, 4001)


async def test_status_transitions_need_fetched_first_and_happen_once(platform: Platform) -> None:
    correspondence_id = await _send(platform)
    reader = platform.system_user_token()
    item = f"{BASE}/correspondence/{correspondence_id}"
    status, problem, _ = await platform.call("POST", f"{item}/markasread", reader)
    assert (status, problem["errorCode"]) == (400, 1024)
    status, problem, _ = await platform.call("POST", f"{item}/confirm", reader)
    assert (status, problem["errorCode"]) == (400, 1025)
    await platform.call("GET", f"{item}/details", reader)
    assert (await platform.call("POST", f"{item}/markasread", reader))[0] == 200
    status, problem, _ = await platform.call("POST", f"{item}/markasread", reader)
    assert (status, problem["errorCode"]) == (400, 1040)


async def test_recipient_read_scope_is_required(platform: Platform) -> None:
    correspondence_id = await _send(platform)
    token = platform.system_user_token(scopes="digdir:dialogporten")
    status, _, _ = await platform.call(
        "POST", f"{BASE}/correspondence/{correspondence_id}/markasread", token, judge=False
    )
    assert status == 403


async def test_idempotent_key_refuses_a_second_initialize(platform: Platform) -> None:
    body = {**correspondence_request(), "idempotentKey": "6f1d2f10-5a43-4a0b-9f0c-7a7d0b0e6b8e"}
    token = platform.service_owner_token()
    assert (await platform.call("POST", f"{BASE}/correspondence", token, json=body))[0] == 200
    status, problem, _ = await platform.call("POST", f"{BASE}/correspondence", token, json=body, judge=False)
    assert (status, problem["errorCode"]) == (409, 1034)
    assert len(platform.correspondence.correspondences) == 1
    status, listed, _ = await platform.call(
        "GET", f"{BASE}/correspondence", token, params={"resourceId": RESOURCE, "role": "Sender"}
    )
    assert len(listed["ids"]) == 1


async def test_future_publish_time_hides_the_correspondence_until_the_clock_passes_it(
    platform: Platform,
) -> None:
    publish_at = datetime.fromtimestamp(platform.clock(), UTC) + timedelta(hours=1)
    correspondence_id = await _send(platform, requestedPublishTime=iso(publish_at))
    reader = platform.system_user_token()
    status, problem, _ = await platform.call("GET", f"{BASE}/correspondence/{correspondence_id}", reader)
    assert (status, problem["errorCode"]) == (404, 1001)
    status, sender_view, _ = await platform.call(
        "GET", f"{BASE}/correspondence/{correspondence_id}", platform.service_owner_token()
    )
    assert sender_view["status"] == "ReadyForPublish"
    platform.clock.now += 3601
    reader = platform.system_user_token()
    status, overview, _ = await platform.call("GET", f"{BASE}/correspondence/{correspondence_id}", reader)
    assert (status, overview["status"]) == (200, "Fetched")


async def test_sender_may_purge_only_before_publishing(platform: Platform) -> None:
    published = await _send(platform)
    token = platform.service_owner_token()
    status, problem, _ = await platform.call("DELETE", f"{BASE}/correspondence/{published}/purge", token)
    assert (status, problem["errorCode"]) == (400, 1013)
    later = iso(datetime.fromtimestamp(platform.clock(), UTC) + timedelta(days=1))
    pending = await _send(platform, senders_reference="ref-2", requestedPublishTime=later)
    status, purged, _ = await platform.call("DELETE", f"{BASE}/correspondence/{pending}/purge", token)
    assert (status, purged) == (200, pending)


def test_form_fields_fold_into_the_json_request_shape() -> None:
    folded = form_to_request(
        [
            ("Correspondence.ResourceId", "r"),
            ("Correspondence.Content.Attachments[1].FileName", "b.txt"),
            ("Correspondence.Content.Attachments[0].FileName", "a.txt"),
            ("Correspondence.Content.Attachments[0].IsEncrypted", "false"),
            ("Recipients", "urn:altinn:organization:identifier-no:310000019"),
            ("Recipients", "urn:altinn:organization:identifier-no:310000027"),
        ]
    )
    assert folded["correspondence"]["resourceId"] == "r"
    assert folded["correspondence"]["content"]["attachments"] == [
        {"fileName": "a.txt", "isEncrypted": False},
        {"fileName": "b.txt"},
    ]
    assert folded["recipients"] == [
        "urn:altinn:organization:identifier-no:310000019",
        "urn:altinn:organization:identifier-no:310000027",
    ]
