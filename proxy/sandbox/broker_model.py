"""The state and the rules of the fake Altinn 3 Broker, free of HTTP.

Invariants (the handlers in :mod:`proxy.sandbox.broker` rely on them):

* A :class:`FileTransfer` moves forward only: ``Initialized → UploadStarted → UploadProcessing →
  Published → AllConfirmedDownloaded``, or to ``Failed`` from any upload or processing step. A failed
  or started upload never goes back to ``Initialized``: like the real API, one file transfer gets
  exactly one upload attempt ("already been, or attempted to be, created").
* ``stored_size`` is set exactly when a complete body sits on disk under its final name.
* Every status change appends to the history, so ``/details`` can replay it.
* Organisations are kept as bare 9-digit numbers; the API shows them as ``0192:NNNNNNNNN``.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SCOPE_WRITE = "altinn:broker.write"
SCOPE_READ = "altinn:broker.read"
SCOPE_SERVICE_OWNER = "altinn:serviceowner"

#: The sender format of the published contract; recipients may also use the URN form the API accepts.
SENDER_PATTERN = re.compile(r"^\d{4}:(\d{9})$")
RECIPIENT_PATTERN = re.compile(r"^(?:\d{4}:(\d{9})|urn:altinn:organization:identifier-no:(\d{9}))$")
MAX_PROPERTIES = 10


class FileTransferStatus(enum.StrEnum):
    """``FileTransferStatusExt`` of the Broker API."""

    INITIALIZED = "Initialized"
    UPLOAD_STARTED = "UploadStarted"
    UPLOAD_PROCESSING = "UploadProcessing"
    PUBLISHED = "Published"
    CANCELLED = "Cancelled"
    ALL_CONFIRMED_DOWNLOADED = "AllConfirmedDownloaded"
    PURGED = "Purged"
    FAILED = "Failed"


class RecipientStatus(enum.StrEnum):
    """``RecipientFileTransferStatusExt`` of the Broker API."""

    INITIALIZED = "Initialized"
    DOWNLOAD_STARTED = "DownloadStarted"
    DOWNLOAD_CONFIRMED = "DownloadConfirmed"


STATUS_TEXT: Mapping[FileTransferStatus, str] = {
    FileTransferStatus.INITIALIZED: "Ready for upload",
    FileTransferStatus.UPLOAD_STARTED: "Upload started",
    FileTransferStatus.UPLOAD_PROCESSING: "Processing upload",
    FileTransferStatus.PUBLISHED: "Published and ready for download",
    FileTransferStatus.ALL_CONFIRMED_DOWNLOADED: "All recipients have confirmed the download",
    FileTransferStatus.FAILED: "Upload failed",
}
RECIPIENT_STATUS_TEXT: Mapping[RecipientStatus, str] = {
    RecipientStatus.INITIALIZED: "Initialized",
    RecipientStatus.DOWNLOAD_STARTED: "Recipient has started downloading the file",
    RecipientStatus.DOWNLOAD_CONFIRMED: "Recipient has confirmed the download",
}
VISIBLE_TO_RECIPIENTS = frozenset({FileTransferStatus.PUBLISHED, FileTransferStatus.ALL_CONFIRMED_DOWNLOADED})


@dataclass(frozen=True)
class BrokerResource:
    """One broker service (an Altinn resource) as configured in the fake."""

    resource_id: str
    #: Organisation number of the service owner that owns the resource.
    owner_org: str
    max_file_size: int = 1_073_741_824
    require_zip: bool = False
    use_manifest_shim: bool = False
    senders: frozenset[str] = frozenset()
    recipients: frozenset[str] = frozenset()
    virus_scan_may_be_disabled: bool = False
    external_service_code: str | None = None
    external_service_edition: int | None = None


class BrokerProblem(Exception):
    """A refusal with the broker's HTTP status and ProblemDetails fields.

    ``code`` is the broker's error number (rendered ``BRO-nnnnn``); ``errors`` carries field
    validation messages the way ASP.NET's ValidationProblemDetails does.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        code: int | None = None,
        errors: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        super().__init__(f"{status} {detail}")
        self.status = status
        self.detail = detail
        self.code = code
        self.errors = errors


# Error numbers and texts as the Altinn Broker API publishes them (Altinn/altinn-broker, Errors.cs).
def not_found() -> BrokerProblem:
    """The file transfer does not exist, or the caller may not see it."""
    return BrokerProblem(404, "The requested file transfer was not found", 1)


def no_file_uploaded() -> BrokerProblem:
    """Download or confirm before any upload."""
    return BrokerProblem(400, "No file uploaded yet", 3)


def already_uploaded() -> BrokerProblem:
    """A second upload attempt on the same file transfer."""
    return BrokerProblem(
        409,
        "A file transfer has already been, or attempted to be, created. "
        "Create a new file transfer resource to try again.",
        4,
    )


def invalid_resource() -> BrokerProblem:
    """The resource id is not a broker resource the fake knows."""
    return BrokerProblem(
        403,
        "The resource needs to be registered as an Altinn 3 resource and it has to be associated "
        "with a service owner",
        5,
    )


def no_access() -> BrokerProblem:
    """The caller's party has no right to act in this role on the resource or file transfer."""
    return BrokerProblem(
        401,
        "You must use a bearer token that represents a system user with access to the resource in "
        "the Resource Rights Registry",
        6,
    )


def not_available() -> BrokerProblem:
    """The file is not (or no longer) ready for download."""
    return BrokerProblem(
        403, "The requested file transfer's file is not ready for download. See file transfer status.", 7
    )


def checksum_mismatch() -> BrokerProblem:
    """The MD5 of the uploaded bytes differs from the one given at initialize."""
    return BrokerProblem(
        400, "The checksum of uploaded file did not match the checksum specified in initialize call.", 9
    )


def not_published() -> BrokerProblem:
    """Confirm on a file transfer that is not published."""
    return BrokerProblem(
        400,
        "A file transfer can only be confirmed to be downloaded when it is published. "
        "See file transfer status.",
        10,
    )


def file_too_large() -> BrokerProblem:
    """The body is larger than the resource allows."""
    return BrokerProblem(400, "File size exceeds maximum", 16)


def confirm_before_download() -> BrokerProblem:
    """Confirm by a recipient that never started a download."""
    return BrokerProblem(400, "Cannot confirm before the files have been downloaded", 19)


def virus_scan_not_approved() -> BrokerProblem:
    """``disableVirusScan`` on a resource not approved for it."""
    return BrokerProblem(
        400,
        "In order to use file transfers without virus scan the service resource needs to be approved "
        "by Altinn. Please contact us @ Slack.",
        20,
    )


def validation_failed(errors: Mapping[str, tuple[str, ...]]) -> BrokerProblem:
    """A request body that breaks the model's validation attributes."""
    return BrokerProblem(400, "One or more validation errors occurred.", None, errors)


def timestamp(epoch_seconds: float) -> str:
    """ISO 8601 UTC with an offset, as the API writes ``DateTimeOffset`` values."""
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat()


def org_number(value: str) -> str | None:
    """``0192:310000019`` or ``urn:altinn:organization:identifier-no:310000019`` → ``310000019``."""
    match = RECIPIENT_PATTERN.match(value)
    if match is None:
        return None
    return match.group(1) or match.group(2)


def actor(org: str) -> str:
    """The API's spelling of an organisation."""
    return f"0192:{org}"


@dataclass(frozen=True)
class InitializeRequest:
    """A validated ``FileTransferInitalizeExt``."""

    resource_id: str
    file_name: str
    sender_org: str
    recipient_orgs: tuple[str, ...]
    senders_reference: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)
    checksum: str | None = None
    disable_virus_scan: bool = False


def parse_initialize(body: Any) -> InitializeRequest:
    """Validate an initialize body like the API's model binding does, or raise ``validation_failed``."""
    if not isinstance(body, Mapping):
        raise validation_failed({"$": ("The request body must be a JSON object.",)})
    errors: dict[str, list[str]] = {}

    def refuse(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    def text(name: str, maximum: int, *, required: bool) -> str | None:
        value = body.get(name)
        if value is None:
            if required:
                refuse(name, f"The {name} field is required.")
            return None
        if not isinstance(value, str) or not 1 <= len(value) <= maximum:
            refuse(name, f"The field {name} must be a string of 1 to {maximum} characters.")
            return None
        return value

    file_name = text("fileName", 255, required=True)
    resource_id = text("resourceId", 255, required=True)
    reference = text("sendersFileTransferReference", 4096, required=False)
    sender = text("sender", 255, required=True)
    sender_org = None
    if sender is not None:
        match = SENDER_PATTERN.match(sender)
        if match is None:
            refuse("sender", "Organization numbers should be on the form countrycode:organizationnumber")
        else:
            sender_org = match.group(1)
    recipients = body.get("recipients")
    recipient_orgs: list[str] = []
    if not isinstance(recipients, list) or not recipients:
        refuse("recipients", "The recipients field is required and needs at least one recipient.")
    else:
        for value in recipients:
            org = org_number(value) if isinstance(value, str) else None
            if org is None:
                refuse(
                    "recipients", "Each recipient must be an organization number on the form 0192:NNNNNNNNN"
                )
            elif org not in recipient_orgs:
                recipient_orgs.append(org)
    properties = body.get("propertyList") or {}
    if not isinstance(properties, Mapping):
        refuse("propertyList", "The propertyList must be an object of string values.")
        properties = {}
    elif len(properties) > MAX_PROPERTIES:
        refuse("propertyList", f"The propertyList may hold at most {MAX_PROPERTIES} properties.")
    for key, value in properties.items():
        if not 1 <= len(key) <= 50 or not isinstance(value, str) or len(value) > 300:
            refuse("propertyList", "Property keys are 1 to 50 characters and values at most 300.")
    checksum = body.get("checksum")
    if checksum is not None and not isinstance(checksum, str):
        refuse("checksum", "The checksum must be a string.")
    disable_virus_scan = body.get("disableVirusScan")
    if disable_virus_scan is not None and not isinstance(disable_virus_scan, bool):
        refuse("disableVirusScan", "The disableVirusScan field must be a boolean.")
    if errors or file_name is None or resource_id is None or sender_org is None:
        raise validation_failed({name: tuple(messages) for name, messages in errors.items()})
    return InitializeRequest(
        resource_id=resource_id,
        file_name=file_name,
        sender_org=sender_org,
        recipient_orgs=tuple(recipient_orgs),
        senders_reference=reference,
        properties=dict(properties),
        checksum=checksum.lower() if isinstance(checksum, str) else None,
        disable_virus_scan=bool(disable_virus_scan),
    )


@dataclass(frozen=True)
class StatusEvent:
    """One entry of a file transfer's status history."""

    status: FileTransferStatus
    text: str
    at: float


@dataclass(frozen=True)
class RecipientEvent:
    """One entry of a recipient's status history."""

    recipient_org: str
    status: RecipientStatus
    at: float


@dataclass
class RecipientState:
    """The current status of one recipient of a file transfer."""

    org: str
    status: RecipientStatus
    changed: float


@dataclass
class FileTransfer:
    """One file transfer: metadata, current statuses and their history (mutable, in memory)."""

    id: uuid.UUID
    resource: BrokerResource
    request: InitializeRequest
    created: float
    expires: float
    status: FileTransferStatus
    status_text: str
    status_changed: float
    recipients: dict[str, RecipientState]
    history: list[StatusEvent] = field(default_factory=list)
    recipient_history: list[RecipientEvent] = field(default_factory=list)
    stored_size: int | None = None
    processing_due: float | None = None
    published: float | None = None
    #: Called after every status change (the fake uses it to wake :meth:`FakeBroker.wait_until`).
    on_change: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def create(
        cls, resource: BrokerResource, request: InitializeRequest, now: float, ttl: float
    ) -> FileTransfer:
        """A new file transfer in ``Initialized`` with every recipient ``Initialized``."""
        transfer = cls(
            id=uuid.uuid4(),
            resource=resource,
            request=request,
            created=now,
            expires=now + ttl,
            status=FileTransferStatus.INITIALIZED,
            status_text=STATUS_TEXT[FileTransferStatus.INITIALIZED],
            status_changed=now,
            recipients={
                org: RecipientState(org, RecipientStatus.INITIALIZED, now) for org in request.recipient_orgs
            },
        )
        transfer.history.append(StatusEvent(transfer.status, transfer.status_text, now))
        for org in request.recipient_orgs:
            transfer.recipient_history.append(RecipientEvent(org, RecipientStatus.INITIALIZED, now))
        return transfer

    @property
    def sender_org(self) -> str:
        """Organisation number of the sender."""
        return self.request.sender_org

    def move_to(self, status: FileTransferStatus, now: float, text: str | None = None) -> None:
        """Change the transfer status and record it."""
        self.status = status
        self.status_text = text or STATUS_TEXT.get(status, str(status))
        self.status_changed = now
        if status is FileTransferStatus.PUBLISHED:
            self.published = now
        self.history.append(StatusEvent(status, self.status_text, now))
        if self.on_change is not None:
            self.on_change()

    def move_recipient(self, org: str, status: RecipientStatus, now: float) -> None:
        """Change one recipient's status and record it; the transfer follows once all have confirmed."""
        state = self.recipients[org]
        state.status, state.changed = status, now
        self.recipient_history.append(RecipientEvent(org, status, now))
        if self.on_change is not None:
            self.on_change()
        if status is RecipientStatus.DOWNLOAD_CONFIRMED and all(
            r.status is RecipientStatus.DOWNLOAD_CONFIRMED for r in self.recipients.values()
        ):
            self.move_to(FileTransferStatus.ALL_CONFIRMED_DOWNLOADED, now)

    def overview(self) -> dict[str, Any]:
        """``FileTransferOverviewExt``."""
        document: dict[str, Any] = {
            "fileTransferId": str(self.id),
            "resourceId": self.resource.resource_id,
            "fileName": self.request.file_name,
            "sendersFileTransferReference": self.request.senders_reference,
            "checksum": self.request.checksum,
            "useVirusScan": not self.request.disable_virus_scan,
            "fileTransferSize": self.stored_size or 0,
            "fileTransferStatus": str(self.status),
            "fileTransferStatusText": self.status_text,
            "fileTransferStatusChanged": timestamp(self.status_changed),
            "created": timestamp(self.created),
            "expirationTime": timestamp(self.expires),
            "sender": actor(self.sender_org),
            "recipients": [
                {
                    "recipient": actor(state.org),
                    "currentRecipientFileTransferStatusCode": str(state.status),
                    "currentRecipientFileTransferStatusText": RECIPIENT_STATUS_TEXT[state.status],
                    "currentRecipientFileTransferStatusChanged": timestamp(state.changed),
                }
                for state in self.recipients.values()
            ],
            "propertyList": dict(self.request.properties),
        }
        if self.published is not None:
            document["published"] = timestamp(self.published)
        # The published contract (OpenAPI 3.1) does not admit null for its "nullable" fields.
        return {name: value for name, value in document.items() if value is not None}

    def details(self) -> dict[str, Any]:
        """``FileTransferStatusDetailsExt``: the overview plus both status histories."""
        document = self.overview()
        document.pop("published", None)
        document["fileTransferStatusHistory"] = [
            {
                "fileTransferStatus": str(event.status),
                "fileTransferStatusText": event.text,
                "fileTransferStatusChanged": timestamp(event.at),
            }
            for event in self.history
        ]
        document["recipientFileTransferStatusHistory"] = [
            {
                "recipient": actor(event.recipient_org),
                "recipientFileTransferStatusCode": str(event.status),
                "recipientFileTransferStatusText": RECIPIENT_STATUS_TEXT[event.status],
                "recipientFileTransferStatusChanged": timestamp(event.at),
            }
            for event in self.recipient_history
        ]
        return document
