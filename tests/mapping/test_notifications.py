"""Altinn 2 correspondence notifications as Altinn 3's notification block (proxy.mapping.notifications)."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.errors import InvalidField
from proxy.mapping.notifications import notification_block


def _notification(*tokens: str, to: list[tuple[str, str | None]]) -> dict[str, Any]:
    return {
        "tokens": [{"number": number, "value": value} for number, value in enumerate(tokens)],
        "end_points": [{"transport": transport, "address": address} for transport, address in to],
    }


def test_no_notification_gives_no_block() -> None:
    assert notification_block([]) is None
    assert notification_block(None) is None


def test_one_notification_to_email_and_sms_gives_email_and_sms_texts() -> None:
    block = notification_block([_notification("Subject", "Body", to=[("Email", None), ("SMS", None)])])
    assert block == {
        "notificationChannel": "EmailAndSms",
        "notificationTemplate": "CustomMessage",
        "emailSubject": "Subject",
        "emailBody": "Body",
        "smsBody": "Subject Body",
    }


def test_separate_email_and_sms_notifications_keep_their_own_texts() -> None:
    block = notification_block(
        [
            _notification("Subject", "Long e-mail body", to=[("Email", None)]),
            _notification("Short SMS", to=[("SMS", None)]),
        ]
    )
    assert block is not None
    assert (block["notificationChannel"], block["smsBody"]) == ("EmailAndSms", "Short SMS")
    assert (block["emailSubject"], block["emailBody"]) == ("Subject", "Long e-mail body")


@pytest.mark.parametrize(
    ("transports", "channel"),
    [
        (["Email"], "Email"),
        (["SMS"], "Sms"),
        (["Both"], "EmailAndSms"),
        (["EmailPreferred"], "EmailPreferred"),
        (["SMSPreferred"], "SmsPreferred"),
        ([], "EmailPreferred"),
    ],
)
def test_transport_types_become_the_channel(transports: list[str], channel: str) -> None:
    block = notification_block([_notification("S", "B", to=[(t, None) for t in transports])])
    assert block is not None
    assert block["notificationChannel"] == channel


def test_token_order_follows_token_numbers_not_document_order() -> None:
    notification = {
        "tokens": [{"number": 1, "value": "Body"}, {"number": 0, "value": "Subject"}],
        "end_points": [{"transport": "Email", "address": None}],
    }
    block = notification_block([notification])
    assert block is not None
    assert (block["emailSubject"], block["emailBody"]) == ("Subject", "Body")


def test_without_texts_altinn_writes_its_own() -> None:
    block = notification_block([_notification(to=[("Email", None)])])
    assert block == {"notificationChannel": "Email", "notificationTemplate": "GenericAltinnMessage"}


def test_given_addresses_become_the_custom_recipient() -> None:
    block = notification_block(
        [_notification("S", "B", to=[("Email", "post@example.no"), ("SMS", "+4799999999")])]
    )
    assert block is not None
    assert block["customRecipient"] == {"emailAddress": "post@example.no", "mobileNumber": "+4799999999"}


def test_more_addresses_than_altinn_3_can_notify_are_refused_not_dropped() -> None:
    with pytest.raises(InvalidField, match="at most one given e-mail address"):
        notification_block(
            [_notification("S", "B", to=[("Email", "a@example.no"), ("Email", "b@example.no")])]
        )
