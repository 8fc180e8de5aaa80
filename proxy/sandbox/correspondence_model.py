"""State and wire shapes of the fake Altinn 3 Correspondence API.

Invariants:

* A correspondence's status history only grows; ``current_status`` is derived from it (the highest
  lifecycle status reached, ignoring ``AttachmentsDownloaded``, which Altinn records without making it
  the correspondence's status).
* Every JSON body rendered here conforms to ``altinn-correspondence-v1.json`` (tests judge them with
  the published contract); field names and enum values are Altinn's, never ours.
* Errors are :class:`CorrespondenceProblem` values carrying Altinn's numeric ``errorCode`` where the
  real API has one; the HTTP layer turns them into ProblemDetails bodies.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any

from proxy.sandbox.wire import without_nulls

ORG_URN = "urn:altinn:organization:identifier-no:"
PERSON_URN = "urn:altinn:person:identifier-no:"
#: How long the fake says an attachment stays downloadable (informational only).
ATTACHMENT_LIFETIME = timedelta(days=365)
#: Content the fake's malware scan finds a threat in: the EICAR anti-virus test signature.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


class Status(IntEnum):
    """``CorrespondenceStatusExt`` with Altinn's ordinal values (the order is the lifecycle order)."""

    Initialized = 0
    ReadyForPublish = 1
    Published = 2
    Fetched = 3
    Read = 4
    Replied = 5
    Confirmed = 6
    PurgedByRecipient = 7
    PurgedByAltinn = 8
    Archived = 9
    Reserved = 10
    Failed = 11
    AttachmentsDownloaded = 12


#: Statuses in which a recipient can see the correspondence at all (Altinn's IsAvailableForRecipient).
RECIPIENT_VISIBLE = frozenset(
    {
        Status.Published,
        Status.Fetched,
        Status.Read,
        Status.Replied,
        Status.Confirmed,
        Status.Archived,
        Status.Reserved,
        Status.AttachmentsDownloaded,
    }
)
PURGED = frozenset({Status.PurgedByRecipient, Status.PurgedByAltinn})


class CorrespondenceProblem(Exception):
    """A refusal of the fake, rendered as ProblemDetails (``errors`` makes it a validation problem)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        error_code: int | None = None,
        errors: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.error_code = error_code
        self.errors = errors

    def body(self) -> dict[str, Any]:
        """The ProblemDetails JSON object the real API answers with."""
        if self.errors is not None:
            return {
                "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
                "title": "One or more validation errors occurred.",
                "status": self.status,
                "errors": {key: list(messages) for key, messages in self.errors.items()},
            }
        body: dict[str, Any] = {"title": _TITLES.get(self.status, "Error"), "status": self.status}
        body["detail"] = self.detail
        if self.error_code is not None:
            body["errorCode"] = self.error_code
        return body


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    422: "Unprocessable Entity",
}

NO_ACCESS = (
    "You must use an Altinn token, DialogToken or log in to IDPorten as someone with access to the "
    "resource and organization in Altinn Authorization"
)


def no_access(reason: str) -> CorrespondenceProblem:
    """Altinn's 4001 refusal (HTTP 401) with the fake's reason appended for the operator."""
    return CorrespondenceProblem(401, f"{NO_ACCESS} ({reason})", error_code=4001)


def not_found() -> CorrespondenceProblem:
    """Altinn's 1001: unknown id, or an id the caller may not see as recipient before publishing."""
    return CorrespondenceProblem(404, "The requested correspondence was not found", error_code=1001)


def attachment_not_found() -> CorrespondenceProblem:
    """Altinn's 2001."""
    return CorrespondenceProblem(404, "The requested attachment was not found", error_code=2001)


@dataclass(frozen=True)
class CorrespondenceResource:
    """A resource in the fake resource registry: who owns it and which service-owner code it has."""

    owner_org: str
    service_owner: str
    title: str = ""


@dataclass(frozen=True)
class StatusEvent:
    """One entry of a correspondence's status history."""

    status: Status
    changed: datetime
    text: str


@dataclass
class Attachment:
    """An attachment in the fake's blob store (attachments are small in the sandbox: kept in memory)."""

    id: uuid.UUID
    resource_id: str
    sender_org: str
    senders_reference: str
    file_name: str | None
    display_name: str | None
    is_encrypted: bool
    checksum: str | None
    created: datetime
    status: str = "Initialized"
    status_changed: datetime | None = None
    status_text: str | None = None
    data: bytes | None = None
    correspondence_ids: list[uuid.UUID] = field(default_factory=list)
    #: When the asynchronous malware scan of the uploaded bytes reports (None: not uploaded yet).
    scan_done_at: datetime | None = None
    #: Every status the attachment has had (Altinn's ``StatusHasBeen`` checks look at all of them).
    statuses: list[str] = field(default_factory=lambda: ["Initialized"])

    def set_status(self, status: str, at: datetime, text: str | None = None) -> None:
        """Move to ``status`` (the history keeps every status reached)."""
        self.status, self.status_changed, self.status_text = status, at, text
        self.statuses.append(status)

    def has_been(self, status: str) -> bool:
        """True when the attachment ever had ``status``."""
        return status in self.statuses

    def overview(self) -> dict[str, Any]:
        """``AttachmentOverviewExt``."""
        overview = {
            "attachmentId": str(self.id),
            "resourceId": self.resource_id,
            "sender": ORG_URN + self.sender_org,
            "sendersReference": self.senders_reference,
            "fileName": self.file_name,
            "displayName": self.display_name,
            "isEncrypted": self.is_encrypted,
            "checksum": self.checksum,
            "status": self.status,
            "statusText": self.status_text or self.status,
            "statusChanged": iso(self.status_changed or self.created),
            "correspondenceIds": [str(cid) for cid in self.correspondence_ids],
            "dataType": guess_data_type(self.file_name),
        }
        return without_nulls(overview)  # type: ignore[no-any-return]

    def in_correspondence(self) -> dict[str, Any]:
        """``CorrespondenceAttachmentExt`` as embedded in a correspondence's content."""
        changed = self.status_changed or self.created
        return {
            "id": str(self.id),
            "fileName": self.file_name,
            "displayName": self.display_name,
            "isEncrypted": self.is_encrypted,
            "checksum": self.checksum,
            "sendersReference": self.senders_reference,
            "dataLocationType": "AltinnCorrespondenceAttachment",
            "created": iso(self.created),
            "status": self.status,
            "statusText": self.status_text or self.status,
            "statusChanged": iso(changed),
            "expirationTime": iso(changed + ATTACHMENT_LIFETIME),
            "dataType": guess_data_type(self.file_name),
        }


@dataclass
class Correspondence:
    """One correspondence to one recipient, as the fake stores it."""

    id: uuid.UUID
    resource_id: str
    sender_org: str
    recipient: str
    request: Mapping[str, Any]
    attachments: list[Attachment]
    created: datetime
    requested_publish_time: datetime
    idempotent_key: str | None = None
    notification_order_id: uuid.UUID | None = None
    dialog_id: uuid.UUID | None = None
    history: list[StatusEvent] = field(default_factory=list)

    @property
    def current_status(self) -> Status:
        """The highest lifecycle status reached."""
        reached = [e.status for e in self.history if e.status is not Status.AttachmentsDownloaded]
        return max(reached)

    @property
    def status_changed(self) -> datetime:
        """When the current status was reached."""
        current = self.current_status
        return max(e.changed for e in self.history if e.status is current)

    def has_been(self, status: Status) -> bool:
        """True when ``status`` appears anywhere in the history."""
        return any(e.status is status for e in self.history)

    def add_status(self, status: Status, at: datetime) -> None:
        """Append a status event (the history is append-only)."""
        self.history.append(StatusEvent(status, at, status.name))

    @property
    def published(self) -> datetime | None:
        """When it was published, if it was."""
        return next((e.changed for e in self.history if e.status is Status.Published), None)

    @property
    def visible_to_recipient(self) -> bool:
        """Published and not purged."""
        return self.current_status in RECIPIENT_VISIBLE

    @property
    def recipient_org(self) -> str | None:
        """The recipient organisation number, or None for a person recipient."""
        return self.recipient.removeprefix(ORG_URN) if self.recipient.startswith(ORG_URN) else None

    def _base(self) -> dict[str, Any]:
        body = self.request
        content = body.get("content") or {}
        external = list(body.get("externalReferences") or [])
        if self.dialog_id is not None:
            external.append({"referenceType": "DialogportenDialogId", "referenceValue": str(self.dialog_id)})
        return {
            "correspondenceId": str(self.id),
            "resourceId": self.resource_id,
            "sender": ORG_URN + self.sender_org,
            "sendersReference": body["sendersReference"],
            "messageSender": body.get("messageSender"),
            "recipient": self.recipient,
            "content": {
                "language": content.get("language"),
                "messageTitle": content.get("messageTitle"),
                "messageSummary": content.get("messageSummary"),
                "messageBody": content.get("messageBody"),
                "attachments": [attachment.in_correspondence() for attachment in self.attachments],
            },
            "created": iso(self.created),
            "requestedPublishTime": iso(self.requested_publish_time),
            "published": iso(self.published) if self.published else None,
            "allowSystemDeleteAfter": body.get("allowSystemDeleteAfter"),
            "dueDateTime": body.get("dueDateTime"),
            "externalReferences": external,
            "propertyList": dict(body.get("propertyList") or {}),
            "replyOptions": list(body.get("replyOptions") or []),
            "notification": body.get("notification"),
            "ignoreReservation": body.get("ignoreReservation"),
            "isConfirmationNeeded": bool(body.get("isConfirmationNeeded")),
            "isConfidential": bool(body.get("isConfidential")),
            "status": self.current_status.name,
            "statusText": self.current_status.name,
            "statusChanged": iso(self.status_changed),
        }

    def overview(self) -> dict[str, Any]:
        """``CorrespondenceOverviewExt``."""
        body = self._base()
        body["notifications"] = (
            [{"notificationOrderId": str(self.notification_order_id), "isReminder": False}]
            if self.notification_order_id
            else []
        )
        return without_nulls(body)  # type: ignore[no-any-return]

    def details(self) -> dict[str, Any]:
        """``CorrespondenceDetailsExt``: the overview plus status history and notification orders."""
        body = self._base()
        body["statusHistory"] = [
            {"status": e.status.name, "statusText": e.text, "statusChanged": iso(e.changed)}
            for e in self.history
        ]
        body["notifications"] = self._notification_details()
        return without_nulls(body)  # type: ignore[no-any-return]

    def _notification_details(self) -> list[dict[str, Any]]:
        notification = self.request.get("notification")
        if not notification or self.notification_order_id is None:
            return []
        return [
            {
                "id": str(self.notification_order_id),
                "sendersReference": notification.get("sendersReference"),
                "requestedSendTime": iso(self.requested_publish_time),
                "creator": self.resource_id,
                "created": iso(self.created),
                "isReminder": False,
                "notificationChannel": notification.get("notificationChannel") or "Email",
                "ignoreReservation": self.request.get("ignoreReservation"),
                "resourceId": self.resource_id,
                "processingStatus": {"status": "Registered", "lastUpdate": iso(self.created)},
            }
        ]


def iso(moment: datetime) -> str:
    """RFC 3339 with a ``Z`` suffix, as Altinn writes UTC times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def guess_data_type(file_name: str | None) -> str:
    """The MIME type Altinn records for an attachment, from its file name."""
    suffix = (file_name or "").rsplit(".", 1)[-1].lower() if file_name and "." in file_name else ""
    return _DATA_TYPES.get(suffix, "application/octet-stream")


_DATA_TYPES = {
    "pdf": "application/pdf",
    "xml": "application/xml",
    "txt": "text/plain",
    "json": "application/json",
    "zip": "application/zip",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
