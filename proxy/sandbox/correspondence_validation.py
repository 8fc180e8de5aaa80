"""Validation of ``InitializeCorrespondencesExt`` as the real Correspondence API performs it.

Two layers, in the real API's order: model binding (required fields, types, lengths; a 400
*validation problem* with an ``errors`` map and no ``errorCode``), then the business rules of
``InitializeCorrespondencesHandler`` (400/404 ProblemDetails with Altinn's numeric ``errorCode``).
The multipart ``/correspondence/upload`` form is first folded into the same JSON shape by
:func:`form_to_request`, so both endpoints share one set of rules.

Everything here is pure: the caller passes ``now`` and gets a normalised request dict back.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from proxy.sandbox.correspondence_model import ORG_URN, PERSON_URN, CorrespondenceProblem, iso

LANGUAGES = frozenset({"nb", "nn", "en"})
MAX_RECIPIENTS = 200
MAX_BODY_CHARS = 30000
MAX_TITLE_CHARS = 255
MAX_SUMMARY_CHARS = 255
TEMPLATES = frozenset({"CustomMessage", "GenericAltinnMessage"})
CHANNELS = frozenset({"Email", "Sms", "EmailPreferred", "SmsPreferred", "EmailAndSms"})
REFERENCE_TYPES = frozenset(
    {
        "Generic",
        "AltinnAppInstance",
        "AltinnBrokerFileTransfer",
        "DialogportenDialogId",
        "DialogportenProcessId",
    }
)
DATA_LOCATIONS = frozenset(
    {"NewCorrespondenceAttachment", "ExistingCorrespondenceAttachment", "ExistingExternalStorage"}
)
_BOOLEAN_FIELDS = frozenset(
    {
        "isEncrypted",
        "isConfirmationNeeded",
        "isConfidential",
        "ignoreReservation",
        "sendReminder",
        "isReserved",
    }
)
_RECIPIENT = re.compile(
    r"^(?:(?:0192:|urn:altinn:organization:identifier-no:)(?P<org>\d{9})"
    r"|urn:altinn:person:identifier-no:(?P<person>\d{11})|(?P<bare_org>\d{9})|(?P<bare_person>\d{11}))$"
)
_FORM_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_HTML_TAG = re.compile(r"<[a-zA-Z/!][^>]*>")


@dataclass(frozen=True)
class InitializeRequest:
    """A validated initialize request: the normalised ``correspondence`` object and its recipients."""

    correspondence: dict[str, Any]
    recipients: tuple[str, ...]
    existing_attachments: tuple[uuid.UUID, ...]
    idempotent_key: str | None
    requested_publish_time: datetime
    new_attachments: tuple[dict[str, Any], ...]


def normalise_recipient(value: str) -> str | None:
    """``urn:altinn:organization:identifier-no:<orgno>`` / ``urn:altinn:person:identifier-no:<ssn>``."""
    match = _RECIPIENT.match(value.strip())
    if match is None:
        return None
    org = match["org"] or match["bare_org"]
    return ORG_URN + org if org else PERSON_URN + (match["person"] or match["bare_person"])


def parse_time(value: object, field_name: str) -> datetime:
    """A date-time field; naive values are read as UTC (the real API binds them to DateTimeOffset)."""
    if not isinstance(value, str):
        raise _invalid(field_name, f"The value for {field_name} must be a date-time string.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _invalid(field_name, f"The value '{value}' is not valid for {field_name}.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def validate_initialize(payload: object, *, now: datetime) -> InitializeRequest:
    """Bind and check a request body; raise :class:`CorrespondenceProblem` as the real API would."""
    body = _bind(payload)
    correspondence: dict[str, Any] = dict(body["correspondence"])
    recipients = _recipients(body["recipients"])
    existing = tuple(uuid.UUID(str(a)) for a in body.get("existingAttachments") or ())
    idempotent_key = body.get("idempotentKey")
    if idempotent_key is not None and len(recipients) > 1:
        raise CorrespondenceProblem(
            400, "Idempotency key is not supported for requests with multiple recipients", error_code=1047
        )
    content = correspondence.get("content")
    if not isinstance(content, Mapping):
        raise CorrespondenceProblem(
            400, "The Content field must be provided for the correspondence", error_code=1019
        )
    _check_content(content)
    publish_at, normalised_dates = _check_dates(correspondence, now)
    correspondence.update(normalised_dates)
    _check_reply_options(correspondence.get("replyOptions") or [])
    notification = correspondence.get("notification")
    if notification is not None:
        _check_notification(notification)
    new_attachments = tuple(
        a
        for a in content.get("attachments") or ()
        if a.get("dataLocationType") == "NewCorrespondenceAttachment"
    )
    return InitializeRequest(
        correspondence=correspondence,
        recipients=recipients,
        existing_attachments=existing,
        idempotent_key=idempotent_key,
        requested_publish_time=publish_at,
        new_attachments=new_attachments,
    )


def _invalid(field_name: str, message: str) -> CorrespondenceProblem:
    return CorrespondenceProblem(400, message, errors={field_name: [message]})


def _required(container: Mapping[str, Any], key: str, path: str, errors: dict[str, list[str]]) -> None:
    value = container.get(key)
    if value is None or (isinstance(value, str) and not value):
        name = path.rsplit(".", 1)[-1]
        errors.setdefault(path, []).append(f"The {name} field is required.")


def _bind(payload: object) -> Mapping[str, Any]:
    """Model binding: shape, required fields and lengths, collected into one validation problem."""
    if not isinstance(payload, Mapping):
        raise _invalid("$", "The request body must be a JSON object.")
    errors: dict[str, list[str]] = {}
    _required(payload, "correspondence", "Correspondence", errors)
    if not isinstance(payload.get("recipients"), list):
        errors.setdefault("Recipients", []).append("The Recipients field is required.")
    correspondence = payload.get("correspondence")
    if isinstance(correspondence, Mapping):
        _required(correspondence, "resourceId", "Correspondence.ResourceId", errors)
        _required(correspondence, "sendersReference", "Correspondence.SendersReference", errors)
        _check_length(correspondence, "resourceId", 255, "Correspondence.ResourceId", errors)
        _check_length(correspondence, "sendersReference", 4096, "Correspondence.SendersReference", errors)
        _check_length(correspondence, "messageSender", 256, "Correspondence.MessageSender", errors)
        content = correspondence.get("content")
        if isinstance(content, Mapping):
            for key in ("language", "messageTitle", "messageSummary", "messageBody"):
                if key not in content:
                    name = key[0].upper() + key[1:]
                    errors.setdefault(f"Correspondence.Content.{name}", []).append(
                        f"The {name} field is required."
                    )
            for index, attachment in enumerate(content.get("attachments") or ()):
                path = f"Correspondence.Content.Attachments[{index}]"
                if not isinstance(attachment, Mapping):
                    errors.setdefault(path, []).append("Each attachment must be an object.")
                    continue
                _required(attachment, "sendersReference", f"{path}.SendersReference", errors)
                if attachment.get("dataLocationType") not in DATA_LOCATIONS:
                    errors.setdefault(f"{path}.DataLocationType", []).append(
                        "The DataLocationType field is required and must be one of "
                        + ", ".join(sorted(DATA_LOCATIONS))
                        + "."
                    )
        elif content is not None:
            errors.setdefault("Correspondence.Content", []).append("The Content field must be an object.")
        for index, reference in enumerate(correspondence.get("externalReferences") or ()):
            if not isinstance(reference, Mapping) or reference.get("referenceType") not in REFERENCE_TYPES:
                errors.setdefault(f"Correspondence.ExternalReferences[{index}].ReferenceType", []).append(
                    "The ReferenceType field is required and must be a known reference type."
                )
    elif correspondence is not None:
        errors.setdefault("Correspondence", []).append("The Correspondence field must be an object.")
    idempotent_key = payload.get("idempotentKey")
    if idempotent_key is not None and not _is_uuid(idempotent_key):
        raise CorrespondenceProblem(
            400, "The idempotency key must be a valid non-empty GUID", error_code=1033
        )
    for index, attachment_id in enumerate(payload.get("existingAttachments") or ()):
        if not _is_uuid(attachment_id):
            errors.setdefault(f"ExistingAttachments[{index}]", []).append(
                f"The value '{attachment_id}' is not a valid GUID."
            )
    if errors:
        raise CorrespondenceProblem(400, "One or more validation errors occurred.", errors=errors)
    return payload


def _check_length(
    container: Mapping[str, Any], key: str, limit: int, path: str, errors: dict[str, list[str]]
) -> None:
    value = container.get(key)
    if isinstance(value, str) and len(value) > limit:
        errors.setdefault(path, []).append(
            f"The field {path} must be a string with a maximum length of {limit}."
        )


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return str(value) != str(uuid.UUID(int=0))


def _recipients(values: Iterable[object]) -> tuple[str, ...]:
    normalised: list[str] = []
    for value in values:
        recipient = normalise_recipient(value) if isinstance(value, str) else None
        if recipient is None:
            raise _invalid(
                "Recipients",
                f"Recipient '{value}' is not a valid organization number or national identity number "
                f"(use {ORG_URN}<orgno> or {PERSON_URN}<ssn>).",
            )
        normalised.append(recipient)
    if not normalised:
        raise _invalid("Recipients", "At least one recipient is required.")
    if len(normalised) > MAX_RECIPIENTS:
        raise _invalid("Recipients", f"A correspondence can have at most {MAX_RECIPIENTS} recipients.")
    if len(set(normalised)) != len(normalised):
        raise CorrespondenceProblem(400, "Recipients must be unique", error_code=1006)
    return tuple(normalised)


def _check_content(content: Mapping[str, Any]) -> None:
    language = content.get("language")
    if not isinstance(language, str) or language.lower() not in LANGUAGES:
        raise CorrespondenceProblem(
            400,
            "Invalid language chosen. Supported languages is Norsk bokmål (nb), Nynorsk (nn) and English (en)",
            error_code=1023,
        )
    title = content.get("messageTitle")
    if not isinstance(title, str) or not title.strip():
        raise CorrespondenceProblem(400, "Message title cannot be empty", error_code=1020)
    if len(title) > MAX_TITLE_CHARS:
        raise CorrespondenceProblem(400, "Message title cannot exceed 255 characters", error_code=1037)
    if _HTML_TAG.search(title) or "\n" in title:
        raise CorrespondenceProblem(400, "Message title must be plain text", error_code=1002)
    body = content.get("messageBody")
    if not isinstance(body, str) or not body.strip():
        raise CorrespondenceProblem(400, "Message body cannot be empty", error_code=1021)
    if len(body) > MAX_BODY_CHARS:
        raise CorrespondenceProblem(400, "Message body cannot exceed 30000 characters", error_code=1022)
    if _HTML_TAG.search(body):
        raise CorrespondenceProblem(400, "Message body must be markdown", error_code=1003)
    summary = content.get("messageSummary")
    if summary is not None:
        if not isinstance(summary, str) or len(summary) > MAX_SUMMARY_CHARS:
            raise CorrespondenceProblem(
                400,
                "Message summary, if not null, must be between 0 and 255 characters long",
                error_code=1042,
            )
        if _HTML_TAG.search(summary):
            raise CorrespondenceProblem(400, "Message summary must be plain text", error_code=1004)


def _check_dates(correspondence: Mapping[str, Any], now: datetime) -> tuple[datetime, dict[str, str]]:
    """The effective publish time and the date fields rewritten in Altinn's UTC form."""
    normalised: dict[str, str] = {}
    publish_at = now
    raw_publish = correspondence.get("requestedPublishTime")
    if raw_publish is not None:
        publish_at = max(now, parse_time(raw_publish, "Correspondence.RequestedPublishTime"))
    due = None
    if correspondence.get("dueDateTime") is not None:
        due = parse_time(correspondence["dueDateTime"], "Correspondence.DueDateTime")
        normalised["dueDateTime"] = iso(due)
        if due.date() < now.date() or due < now:
            raise CorrespondenceProblem(400, "DueDateTime cannot be prior to today", error_code=1008)
        if due < publish_at:
            raise CorrespondenceProblem(
                400, "DueDateTime cannot be prior to RequestedPublishTime", error_code=1009
            )
    elif correspondence.get("isConfirmationNeeded") is True:
        raise CorrespondenceProblem(
            400, "DueDateTime is required when confirmation is needed", error_code=1016
        )
    if correspondence.get("allowSystemDeleteAfter") is not None:
        delete_after = parse_time(
            correspondence["allowSystemDeleteAfter"], "Correspondence.AllowSystemDeleteAfter"
        )
        normalised["allowSystemDeleteAfter"] = iso(delete_after)
        if delete_after < now:
            raise CorrespondenceProblem(400, "AllowSystemDelete cannot be prior to today", error_code=1010)
        if delete_after < publish_at:
            raise CorrespondenceProblem(
                400, "AllowSystemDelete cannot be prior to RequestedPublishTime", error_code=1011
            )
        if due is not None and delete_after < due:
            raise CorrespondenceProblem(
                400, "AllowSystemDelete cannot be prior to DueDateTime", error_code=1012
            )
    if raw_publish is not None:
        normalised["requestedPublishTime"] = iso(publish_at)
    return publish_at, normalised


def _check_reply_options(options: Iterable[Mapping[str, Any]]) -> None:
    for option in options:
        link = option.get("linkURL") if isinstance(option, Mapping) else None
        parts = urlsplit(link) if isinstance(link, str) else None
        if parts is None or parts.scheme != "https" or not parts.netloc or len(link or "") > 255:
            raise CorrespondenceProblem(
                400,
                "Reply options must be well-formed URIs and HTTPS with a max length of 255 characters",
                error_code=1035,
            )


def _check_notification(notification: object) -> None:
    if not isinstance(notification, Mapping) or notification.get("notificationTemplate") not in TEMPLATES:
        raise _invalid(
            "Correspondence.Notification.NotificationTemplate",
            "The NotificationTemplate field is required and must be CustomMessage or GenericAltinnMessage.",
        )
    channel = str(notification.get("notificationChannel") or "Email")
    if channel not in CHANNELS:
        raise _invalid("Correspondence.Notification.NotificationChannel", f"Unknown channel '{channel}'.")
    if notification["notificationTemplate"] != "CustomMessage":
        return
    _require_texts(notification, channel, reminder=False)
    if notification.get("sendReminder"):
        _require_texts(
            notification, notification.get("reminderNotificationChannel") or channel, reminder=True
        )


#: Per channel: which texts it needs, the errorCodes (main, reminder) and the end of Altinn's message.
_CHANNEL_TEXTS: Mapping[str, tuple[tuple[str, ...], tuple[int, int], str, str]] = {
    "Email": (("emailSubject", "emailBody"), (3002, 3003), "Email body and subject", "email"),
    "Sms": (("smsBody",), (3004, 3005), "SMS body", "SMS"),
    "EmailPreferred": (
        ("emailSubject", "emailBody", "smsBody"),
        (3006, 3007),
        "Email body, subject and SMS body",
        "preferred",
    ),
    "SmsPreferred": (
        ("emailSubject", "emailBody", "smsBody"),
        (3006, 3007),
        "Email body, subject and SMS body",
        "preferred",
    ),
    "EmailAndSms": (
        ("emailSubject", "emailBody", "smsBody"),
        (3024, 3025),
        "Email body, subject and SMS body",
        "email and SMS",
    ),
}


def _require_texts(notification: Mapping[str, Any], channel: str, *, reminder: bool) -> None:
    """Altinn's ValidateNotificationContent for one channel (the reminder's texts are ``reminder*``)."""
    needed, codes, text, kind = _CHANNEL_TEXTS[channel]
    keys = ["reminder" + name[0].upper() + name[1:] if reminder else name for name in needed]
    if all(notification.get(key) for key in keys):
        return
    if reminder:
        text, kind = "Reminder " + text[0].lower() + text[1:], "reminder " + kind
    raise CorrespondenceProblem(
        400, f"{text} must be provided when sending {kind} notifications", error_code=codes[reminder]
    )


def form_to_request(fields: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Fold ``multipart/form-data`` fields (``Correspondence.Content.MessageTitle``,
    ``Recipients`` repeated or ``Recipients[0]``, ``Correspondence.Content.Attachments[0].FileName``)
    into the JSON shape of ``InitializeCorrespondencesExt`` (ASP.NET binds names case-insensitively).
    """
    root: dict[str, Any] = {}
    for name, value in fields:
        segments = [(m[1], m[2]) for m in _FORM_SEGMENT.finditer(name)]
        if not segments:
            continue
        node: Any = root
        for position, (key, index) in enumerate(segments):
            last = position == len(segments) - 1
            if key:
                key = key[0].lower() + key[1:]
                next_is_index = not last and segments[position + 1][1] is not None
                if last:
                    _assign(node, key, _scalar(key, value))
                else:
                    node = node.setdefault(key, [] if next_is_index else {})
            else:
                slot = int(index)
                while len(node) <= slot:
                    node.append({})
                if last:
                    node[slot] = value
                elif not isinstance(node[slot], dict):
                    node[slot] = {}
                    node = node[slot]
                else:
                    node = node[slot]
    correspondence = root.get("correspondence")
    if isinstance(correspondence, dict):
        root["correspondence"] = correspondence
    for key in ("recipients", "existingAttachments"):
        if isinstance(root.get(key), str):
            root[key] = [root[key]]
    return root


def _assign(node: dict[str, Any], key: str, value: Any) -> None:
    if key in {"recipients", "existingAttachments"} and key in node:
        existing = node[key]
        node[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
    else:
        node[key] = value


def _scalar(key: str, value: str) -> Any:
    if key in _BOOLEAN_FIELDS:
        return value.strip().lower() == "true"
    return value
