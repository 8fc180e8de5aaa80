"""Altinn 2 correspondence ``Notifications`` as Altinn 3's correspondence ``notification`` block.

Altinn 2 let a sender attach a list of notifications, each with a template name, numbered text
tokens and receiver end points (transport type, optional address). Altinn 3 takes one notification
per correspondence with a channel and the texts themselves (``CustomMessage``), or Altinn's own
texts (``GenericAltinnMessage``). The translation, stated once:

* channel: the union of the end points' transport types: e-mail only ``Email``, SMS only ``Sms``,
  both (or ``Both``) ``EmailAndSms``; ``EmailPreferred``/``SMSPreferred`` alone keep their meaning.
  No end point at all means Altinn 2's default, e-mail preferred.
* texts (tokens in ``TokenNum`` order): e-mail subject = token 0, e-mail body = token 1 (token 0
  when there is only one), SMS body = the tokens of the SMS notification joined by spaces (the one
  notification's when a single notification serves both). No token at all: ``GenericAltinnMessage``.
* addresses: an end point with a ``ReceiverAddress`` makes it the ``customRecipient`` (at most one
  e-mail address and one mobile number: Altinn 3 has room for no more, and dropping one would lose a
  notification silently, so more are refused).
* ``ShipmentDateTime``, ``FromAddress`` and the template name have no Altinn 3 counterpart: Altinn 3
  notifies when the correspondence is published, from its own address, with its own templates.
  Confirmed in Altinn/altinn-correspondence: ``requestedSendTime`` was removed from the notification
  block on 2026-03-06 (commit 39181c66, "remove the requestSendTime from notifications"; the OpenAPI
  copy in the reference predates it), and ``CreateNotificationOrderHandler`` sends at the
  correspondence's ``requestedPublishTime`` (now, when that has passed). The block has no sender
  address (``EmailTemplate.FromAddress`` is internal, never set from the API). So a ShipmentDateTime
  is honoured only as far as it equals the VisibleDateTime, which becomes ``requestedPublishTime``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from proxy.errors import InvalidField

_EMAIL = frozenset({"email"})
_SMS = frozenset({"sms"})
_CHANNELS = {
    "email": "email",
    "sms": "sms",
    "both": "both",
    "emailpreferred": "EmailPreferred",
    "smspreferred": "SmsPreferred",
}


def notification_block(notifications: Sequence[Mapping[str, Any]] | None) -> dict[str, Any] | None:
    """The Altinn 3 ``correspondence.notification`` object for Altinn 2 ``Notification`` records, or None.

    Each record has ``tokens`` (``[{number, value}]``) and ``end_points`` (``[{transport, address}]``).
    """
    if not notifications:
        return None
    kinds: set[str] = set()
    emails: list[str] = []
    mobiles: list[str] = []
    email_texts: list[str] = []  # the tokens of the first notification that reaches e-mail
    sms_texts: list[str] = []  # the joined tokens of each SMS-only notification
    for notification in notifications:
        ends = notification.get("end_points") or []
        transports = {kind for end in ends if (kind := _transport(end.get("transport"))) is not None}
        for end in ends:
            address = (end.get("address") or "").strip()
            transport = _transport(end.get("transport"))
            if address and transport in {"email", "EmailPreferred"}:
                emails.append(address)
            elif address and transport in {"sms", "SmsPreferred"}:
                mobiles.append(address)
            elif address and transport == "both":
                (emails if "@" in address else mobiles).append(address)
        kinds |= transports
        tokens = _tokens(notification)
        if not tokens:
            continue
        if transports and transports <= {"sms", "SmsPreferred"}:
            sms_texts.append(" ".join(tokens))
        elif not email_texts:
            email_texts = tokens
    block: dict[str, Any] = {"notificationChannel": _channel(kinds)}
    if email_texts or sms_texts:
        texts = email_texts or [sms_texts[0]]
        block["notificationTemplate"] = "CustomMessage"
        block["emailSubject"] = texts[0]
        block["emailBody"] = texts[1] if len(texts) > 1 else texts[0]
        block["smsBody"] = sms_texts[0] if sms_texts else " ".join(texts)
    else:
        block["notificationTemplate"] = "GenericAltinnMessage"
    recipient = _custom_recipient(sorted(set(emails)), sorted(set(mobiles)))
    if recipient is not None:
        block["customRecipient"] = recipient
    return block


def _transport(value: object) -> str | None:
    text = str(value or "").strip().lower()
    return _CHANNELS.get(text)


def _tokens(notification: Mapping[str, Any]) -> list[str]:
    tokens = [t for t in notification.get("tokens") or [] if (t.get("value") or "").strip()]
    tokens.sort(key=lambda token: token.get("number") or 0)
    return [str(token["value"]).strip() for token in tokens]


def _channel(kinds: set[str]) -> str:
    plain = {kind for kind in kinds if kind in {"email", "sms", "both"}}
    if "both" in plain or plain == {"email", "sms"}:
        return "EmailAndSms"
    if plain == _EMAIL:
        return "Email"
    if plain == _SMS:
        return "Sms"
    if kinds == {"SmsPreferred"}:
        return "SmsPreferred"
    return "EmailPreferred"


def _custom_recipient(emails: list[str], mobiles: list[str]) -> dict[str, str] | None:
    if len(emails) > 1 or len(mobiles) > 1:
        raise InvalidField(
            "Altinn 3 notifies at most one given e-mail address and one mobile number per correspondence; "
            "send one ReceiverAddress per transport, or none to notify the reportee's registered addresses"
        )
    recipient = {}
    if emails:
        recipient["emailAddress"] = emails[0]
    if mobiles:
        recipient["mobileNumber"] = mobiles[0]
    return recipient or None
