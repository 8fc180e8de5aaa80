"""A strict, stateful fake of the Altinn 3 Correspondence API (``/correspondence/api/v1``).

It answers like the real service (``altinn-correspondence-v1.json`` and ALTINN3-API.md section 6):

* Tokens: every request is verified by the shared :class:`TokenVerifier`. Sender operations accept a
  raw Maskinporten token with ``altinn:serviceowner`` + ``altinn:correspondence.write`` or an exchanged
  token with ``altinn:correspondence.write``; recipient-only operations (markasread, confirm, content,
  attachment download) need an exchanged token with ``altinn:correspondence.read``; list, overview,
  details and purge accept either with one of the two scopes. Missing/invalid token: 401; missing
  scope: 403 (the policy layer).
* Access: the caller's organisation is the system user's customer org, else the token's consumer.
  A sender must own the resource (resource registry = ``resources``); a recipient only sees
  published correspondences addressed to its own org. Anyone else gets Altinn's 401 ``4001``.
* Attachments publish asynchronously, as Altinn's malware scan makes them: ``POST /attachment``
  gives ``Initialized``; the upload sets ``UploadProcessing`` and the scan reports ``scan_seconds``
  later on the injected clock (``Published``, or ``Failed`` for content carrying the EICAR test
  signature). A correspondence naming an attachment that is not ``Published`` is refused with 1018;
  one whose own (multipart) attachments are still being scanned stays ``Initialized`` until they are.
  A second upload is 2005 (checked before 2003, as Altinn does).
* Lifecycle: Initialized -> ReadyForPublish (all attachments published) -> Published (at once, or
  when the injected clock passes ``requestedPublishTime``) -> Fetched (recipient's first
  overview/details) -> Read (markasread, after Fetched) -> Confirmed (confirm, after Fetched).
  Publishing creates a Dialogporten dialog when a :class:`FakeDialogporten` is attached, and status
  changes are mirrored onto it. A purge also purges the attachments no other live correspondence uses.

State is in memory and exposed (``correspondences``, ``attachments``) for test assertions.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import BodyPartReader, web

from proxy.sandbox.correspondence_model import (
    EICAR,
    ORG_URN,
    PURGED,
    Attachment,
    Correspondence,
    CorrespondenceProblem,
    CorrespondenceResource,
    Status,
    attachment_not_found,
    no_access,
    not_found,
)
from proxy.sandbox.correspondence_validation import (
    InitializeRequest,
    form_to_request,
    normalise_recipient,
    parse_time,
    validate_initialize,
)
from proxy.sandbox.dialogporten import FakeDialogporten
from proxy.sandbox.tokens import Caller, Clock, FakeAuthError, TokenVerifier
from proxy.sandbox.wire import BODY_READ_SECONDS, read_body

BASE = "/correspondence/api/v1"
WRITE = "altinn:correspondence.write"
READ = "altinn:correspondence.read"
SERVICE_OWNER = "altinn:serviceowner"
MAX_ATTACHMENT_BYTES = 50 * 1024 * 1024
ROLES = frozenset({"Recipient", "Sender", "RecipientAndSender"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class FakeCorrespondence:
    """The fake's state and operations; :func:`install_correspondence` wires it onto an app."""

    verifier: TokenVerifier
    resources: Mapping[str, CorrespondenceResource]
    dialogs: FakeDialogporten | None = None
    clock: Clock = time.time
    #: How long the malware scan of an uploaded attachment takes (seconds on ``clock``).
    scan_seconds: float = 2.0
    correspondences: dict[uuid.UUID, Correspondence] = field(default_factory=dict)
    attachments: dict[uuid.UUID, Attachment] = field(default_factory=dict)
    _idempotency: dict[tuple[str, str], uuid.UUID] = field(default_factory=dict)

    def now(self) -> datetime:
        """The injected clock as an aware UTC datetime."""
        return datetime.fromtimestamp(self.clock(), UTC)

    # -- tokens and access -------------------------------------------------------------------------

    def authenticate(self, request: web.Request, *, recipient_only: bool = False) -> Caller:
        """Verify the bearer token; FakeAuthError maps to 401."""
        try:
            return self.verifier.verify(
                request.headers.get("Authorization"), require_exchanged=recipient_only
            )
        except FakeAuthError as error:
            raise CorrespondenceProblem(401, f"{error.message}", error_code=4001) from None

    @staticmethod
    def require_sender_scopes(caller: Caller) -> None:
        """The ``Sender`` policy: write scope, and ``altinn:serviceowner`` on a raw Maskinporten token."""
        needed = (WRITE,) if caller.exchanged else (SERVICE_OWNER, WRITE)
        if not caller.has_scope(*needed):
            raise CorrespondenceProblem(403, f"the token lacks the scope(s) {' + '.join(needed)}")

    @staticmethod
    def require_any_scope(caller: Caller) -> None:
        """The ``SenderOrRecipient`` policy: read or write scope."""
        if not (caller.has_scope(READ) or caller.has_scope(WRITE)):
            raise CorrespondenceProblem(403, f"the token lacks the scope {READ} or {WRITE}")

    @staticmethod
    def require_read_scope(caller: Caller) -> None:
        """The ``Recipient`` policy: read scope."""
        if not caller.has_scope(READ):
            raise CorrespondenceProblem(403, f"the token lacks the scope {READ}")

    def owned_resource(self, caller: Caller, resource_id: str) -> CorrespondenceResource:
        """The resource, if it exists and the caller's org owns it."""
        resource = self.resources.get(resource_id)
        if resource is None:
            raise CorrespondenceProblem(
                400,
                f"ResourceId must match an existing resource in the resource registry ('{resource_id}' is unknown)",
                error_code=1036,
            )
        if resource.owner_org != caller.party_org:
            raise no_access(f"organisation {caller.party_org} does not own resource '{resource_id}'")
        return resource

    def lookup(self, raw_id: str) -> Correspondence:
        """A correspondence by id (404 for malformed or unknown ids)."""
        self.publish_due()
        try:
            found = self.correspondences.get(uuid.UUID(raw_id))
        except ValueError:
            found = None
        if found is None:
            raise not_found()
        return found

    @staticmethod
    def is_sender(caller: Caller, correspondence: Correspondence) -> bool:
        """True when the caller's org sent it."""
        return caller.party_org == correspondence.sender_org

    @staticmethod
    def is_recipient(caller: Caller, correspondence: Correspondence) -> bool:
        """True when the caller acts for the recipient org."""
        return correspondence.recipient_org == caller.party_org

    def as_recipient(self, caller: Caller, correspondence: Correspondence) -> Correspondence:
        """The correspondence if the caller may act on it as recipient (published, its own org)."""
        if not self.is_recipient(caller, correspondence):
            raise no_access(f"organisation {caller.party_org} is not the recipient of this correspondence")
        if not correspondence.visible_to_recipient:
            raise not_found()
        return correspondence

    # -- lifecycle ---------------------------------------------------------------------------------

    def scan_due(self) -> None:
        """Report every malware scan that has finished by now (Altinn's MalwareScanResultHandler)."""
        now = self.now()
        for attachment in self.attachments.values():
            if attachment.status != "UploadProcessing" or attachment.scan_done_at is None:
                continue
            if attachment.scan_done_at > now:
                continue
            using = [self.correspondences[cid] for cid in attachment.correspondence_ids]
            if EICAR in (attachment.data or b""):
                attachment.set_status("Failed", attachment.scan_done_at, "Malware scan failed: Malicious")
                for correspondence in using:
                    if correspondence.current_status < Status.Published:
                        correspondence.add_status(Status.Failed, attachment.scan_done_at)
                continue
            attachment.set_status("Published", attachment.scan_done_at)
            for correspondence in using:
                self._ready_when_attachments_published(correspondence, attachment.scan_done_at)

    @staticmethod
    def _ready_when_attachments_published(correspondence: Correspondence, at: datetime) -> None:
        if correspondence.current_status is Status.Initialized and all(
            attachment.status == "Published" for attachment in correspondence.attachments
        ):
            correspondence.add_status(Status.ReadyForPublish, at)

    def publish_due(self) -> None:
        """Publish every correspondence whose attachments are scanned and whose publish time has come."""
        self.scan_due()
        now = self.now()
        for correspondence in self.correspondences.values():
            if (
                correspondence.current_status is Status.ReadyForPublish
                and correspondence.requested_publish_time <= now
            ):
                self._publish(correspondence, max(now, correspondence.requested_publish_time))

    def _publish(self, correspondence: Correspondence, at: datetime) -> None:
        correspondence.add_status(Status.Published, at)
        if self.dialogs is not None:
            resource = self.resources[correspondence.resource_id]
            correspondence.dialog_id = self.dialogs.create_correspondence_dialog(
                correspondence, service_owner=resource.service_owner, at=at
            )

    def _mirror(self, correspondence: Correspondence, status: Status, at: datetime) -> None:
        if self.dialogs is not None and correspondence.dialog_id is not None:
            self.dialogs.correspondence_status_changed(correspondence.dialog_id, status, at)

    def initialize(
        self, caller: Caller, request: InitializeRequest, uploads: list[tuple[str, bytes]]
    ) -> dict[str, Any]:
        """Create one correspondence per recipient; returns ``InitializeCorrespondencesResponseExt``."""
        resource_id = request.correspondence["resourceId"]
        self.owned_resource(caller, resource_id)
        self.scan_due()
        if (
            request.idempotent_key is not None
            and (caller.party_org, request.idempotent_key) in self._idempotency
        ):
            raise CorrespondenceProblem(
                409, "A correspondence with the same idempotent key already exists", error_code=1034
            )
        now = self.now()
        attachments = [
            self._existing_attachment(caller, attachment_id) for attachment_id in request.existing_attachments
        ]
        attachments += self._new_attachments(caller, request, uploads, now)
        created: list[dict[str, Any]] = []
        notification = request.correspondence.get("notification")
        for recipient in request.recipients:
            correspondence = Correspondence(
                id=uuid.uuid4(),
                resource_id=resource_id,
                sender_org=caller.party_org,
                recipient=recipient,
                request=request.correspondence,
                attachments=attachments,
                created=now,
                requested_publish_time=request.requested_publish_time,
                idempotent_key=request.idempotent_key,
                notification_order_id=uuid.uuid4() if notification else None,
            )
            correspondence.add_status(Status.Initialized, now)
            self._ready_when_attachments_published(correspondence, now)
            if (
                correspondence.current_status is Status.ReadyForPublish
                and request.requested_publish_time <= now
            ):
                self._publish(correspondence, now)
            self.correspondences[correspondence.id] = correspondence
            for attachment in attachments:
                attachment.correspondence_ids.append(correspondence.id)
            created.append(
                {
                    "correspondenceId": str(correspondence.id),
                    "status": correspondence.current_status.name,
                    "recipient": recipient,
                    "notifications": (
                        [
                            {
                                "orderId": str(correspondence.notification_order_id),
                                "isReminder": False,
                                "status": "Success",
                            }
                        ]
                        if notification
                        else []
                    ),
                }
            )
        if request.idempotent_key is not None:
            self._idempotency[(caller.party_org, request.idempotent_key)] = uuid.UUID(
                created[0]["correspondenceId"]
            )
        return {"correspondences": created, "attachmentIds": [str(a.id) for a in attachments]}

    def _existing_attachment(self, caller: Caller, attachment_id: uuid.UUID) -> Attachment:
        attachment = self.attachments.get(attachment_id)
        if attachment is None:
            raise CorrespondenceProblem(
                400, f"Existing attachment not found ({attachment_id})", error_code=1007
            )
        if attachment.sender_org != caller.party_org:
            raise CorrespondenceProblem(
                400,
                "The sender of the correspondence must be equal the sender of existing attachments",
                error_code=1017,
            )
        if attachment.status != "Published":
            raise CorrespondenceProblem(
                400, f"Attachment is not published ({attachment_id})", error_code=1018
            )
        return attachment

    def _new_attachments(
        self, caller: Caller, request: InitializeRequest, uploads: list[tuple[str, bytes]], now: datetime
    ) -> list[Attachment]:
        if len(request.new_attachments) != len(uploads):
            raise CorrespondenceProblem(
                400,
                "Mismatch between uploaded files and attachment metadata "
                f"({len(request.new_attachments)} NewCorrespondenceAttachment entries, {len(uploads)} files; "
                "new attachments need the multipart /correspondence/upload endpoint)",
                error_code=1005,
            )
        by_name = dict(uploads)
        created: list[Attachment] = []
        for metadata in request.new_attachments:
            file_name = metadata.get("fileName")
            if file_name not in by_name:
                raise CorrespondenceProblem(
                    400,
                    f"Mismatch between uploaded files and attachment metadata (no file named '{file_name}')",
                    error_code=1005,
                )
            attachment = self.create_attachment(
                caller,
                resource_id=request.correspondence["resourceId"],
                metadata=metadata,
                now=now,
            )
            self.store_attachment_data(attachment, by_name[file_name], now)
            created.append(attachment)
        return created

    def create_attachment(
        self, caller: Caller, *, resource_id: str, metadata: Mapping[str, Any], now: datetime
    ) -> Attachment:
        file_name = metadata.get("fileName")
        if not file_name:
            raise CorrespondenceProblem(400, "Filename is missing", error_code=2010)
        if len(file_name) > 255:
            raise CorrespondenceProblem(400, "Filename is too long", error_code=2011)
        if any(ch in file_name for ch in '/\\:*?"<>|') or any(ord(ch) < 32 for ch in file_name):
            raise CorrespondenceProblem(400, "Filename contains invalid characters", error_code=2012)
        attachment = Attachment(
            id=uuid.uuid4(),
            resource_id=resource_id,
            sender_org=caller.party_org,
            senders_reference=metadata["sendersReference"],
            file_name=file_name,
            display_name=metadata.get("displayName"),
            is_encrypted=bool(metadata.get("isEncrypted")),
            checksum=metadata.get("checksum"),
            created=now,
            status_changed=now,
        )
        self.attachments[attachment.id] = attachment
        return attachment

    def store_attachment_data(self, attachment: Attachment, data: bytes, now: datetime) -> None:
        if not data or len(data) > MAX_ATTACHMENT_BYTES:
            raise CorrespondenceProblem(
                400, "File must have content and has a max file size of 50 MB in the sandbox", error_code=2004
            )
        digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if attachment.checksum and attachment.checksum.lower() != digest:
            raise CorrespondenceProblem(400, "Checksum mismatch", error_code=2008)
        attachment.checksum = digest
        attachment.data = data
        attachment.set_status("UploadProcessing", now)
        attachment.scan_done_at = datetime.fromtimestamp(now.timestamp() + self.scan_seconds, UTC)

    # -- recipient operations ------------------------------------------------------------------------

    def fetch(self, caller: Caller, correspondence: Correspondence) -> None:
        """A recipient looked at it: the first look adds ``Fetched``."""
        if self.is_recipient(caller, correspondence) and not correspondence.has_been(Status.Fetched):
            now = self.now()
            correspondence.add_status(Status.Fetched, now)
            self._mirror(correspondence, Status.Fetched, now)

    def mark_as_read(self, correspondence: Correspondence) -> None:
        """``markasread``: after Fetched, once."""
        if not correspondence.has_been(Status.Fetched):
            raise CorrespondenceProblem(
                400, "Correspondence must be fetched before it can be read", error_code=1024
            )
        if correspondence.has_been(Status.Read):
            raise CorrespondenceProblem(400, "Correspondence is already marked as read", error_code=1040)
        now = self.now()
        correspondence.add_status(Status.Read, now)
        self._mirror(correspondence, Status.Read, now)

    def confirm(self, correspondence: Correspondence) -> None:
        """``confirm``: after Fetched, once."""
        if not correspondence.has_been(Status.Fetched):
            raise CorrespondenceProblem(
                400, "Correspondence must be fetched before it can be confirmed", error_code=1025
            )
        if correspondence.has_been(Status.Confirmed):
            raise CorrespondenceProblem(400, "Correspondence has already been confirmed", error_code=1041)
        now = self.now()
        correspondence.add_status(Status.Confirmed, now)
        self._mirror(correspondence, Status.Confirmed, now)

    def purge(self, caller: Caller, correspondence: Correspondence) -> None:
        """``purge``: the sender only before publishing, the recipient after confirming where required."""
        if correspondence.current_status in PURGED:
            raise CorrespondenceProblem(400, "Correspondence has already been purged", error_code=1014)
        now = self.now()
        if self.is_recipient(caller, correspondence) and correspondence.visible_to_recipient:
            if correspondence.request.get("isConfirmationNeeded") and not correspondence.has_been(
                Status.Confirmed
            ):
                raise CorrespondenceProblem(
                    400,
                    "Cannot archive or delete a correspondence which has not been confirmed when confirmation "
                    "is required",
                    error_code=1026,
                )
            correspondence.add_status(Status.PurgedByRecipient, now)
            self._mirror(correspondence, Status.PurgedByRecipient, now)
        elif self.is_sender(caller, correspondence):
            if correspondence.published is not None:
                raise CorrespondenceProblem(
                    400, "Sender cannot delete correspondence that has been published", error_code=1013
                )
            correspondence.add_status(Status.PurgedByAltinn, now)
        else:
            raise no_access(f"organisation {caller.party_org} is neither sender nor recipient")
        self._purge_unused_attachments(correspondence, now)

    def _purge_unused_attachments(self, correspondence: Correspondence, now: datetime) -> None:
        for attachment in correspondence.attachments:
            users = (self.correspondences[cid] for cid in attachment.correspondence_ids)
            if attachment.status != "Purged" and all(user.current_status in PURGED for user in users):
                attachment.set_status("Purged", now)
                attachment.data = None

    def list_ids(self, caller: Caller, query: Mapping[str, str]) -> list[str]:
        """``GET /correspondence``: ids of the caller's correspondences for one resource."""
        errors: dict[str, list[str]] = {}
        role = query.get("role")
        if role not in ROLES:
            errors["role"] = ["The role field is required (Recipient, Sender or RecipientAndSender)."]
        resource_id = query.get("resourceId")
        if not resource_id:
            errors["resourceId"] = ["The resourceId field is required."]
        if errors:
            raise CorrespondenceProblem(400, "One or more validation errors occurred.", errors=errors)
        start = parse_time(query["from"], "from") if query.get("from") else None
        end = parse_time(query["to"], "to") if query.get("to") else None
        if start and end and start > end:
            raise CorrespondenceProblem(400, "From date cannot be after to date", error_code=1027)
        party = caller.party_org
        if query.get("onBehalfOf"):
            on_behalf_of = normalise_recipient(query["onBehalfOf"])
            if on_behalf_of != ORG_URN + party:
                raise no_access(f"the token acts for {party}, not for {query['onBehalfOf']}")
        status = query.get("status")
        if status is not None and status not in Status.__members__:
            raise CorrespondenceProblem(
                400, "One or more validation errors occurred.", errors={"status": [status]}
            )
        self.publish_due()
        found = []
        for correspondence in sorted(self.correspondences.values(), key=lambda c: c.created):
            as_recipient = role != "Sender" and self.is_recipient(caller, correspondence)
            as_sender = role != "Recipient" and self.is_sender(caller, correspondence)
            if as_recipient and not correspondence.visible_to_recipient and not as_sender:
                continue
            if not (as_recipient or as_sender) or correspondence.resource_id != resource_id:
                continue
            if (start and correspondence.created < start) or (end and correspondence.created > end):
                continue
            if status and correspondence.current_status.name != status:
                continue
            if (
                query.get("sendersReference")
                and correspondence.request["sendersReference"] != query["sendersReference"]
            ):
                continue
            if query.get("idempotentKey") and correspondence.idempotent_key != query["idempotentKey"]:
                continue
            found.append(str(correspondence.id))
        return found[:1000]

    def download(self, caller: Caller, correspondence: Correspondence, raw_attachment_id: str) -> Attachment:
        """A recipient downloads an attachment of a correspondence addressed to it."""
        self.as_recipient(caller, correspondence)
        attachment = next((a for a in correspondence.attachments if str(a.id) == raw_attachment_id), None)
        if attachment is None or attachment.data is None:
            raise attachment_not_found()
        now = self.now()
        correspondence.add_status(Status.AttachmentsDownloaded, now)
        return attachment


# -- HTTP ------------------------------------------------------------------------------------------------


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")


def _problem(problem: CorrespondenceProblem) -> web.Response:
    return _json(problem.body(), status=problem.status)


async def _read_json(request: web.Request) -> object:
    if request.content_type != "application/json":
        raise CorrespondenceProblem(
            415, f"expected application/json, got {request.content_type or 'nothing'}"
        )
    try:
        return json.loads(await read_body(request))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorrespondenceProblem(
            400, "One or more validation errors occurred.", errors={"$": [f"invalid JSON: {error}"]}
        ) from None


async def _read_form(request: web.Request) -> tuple[list[tuple[str, str]], list[tuple[str, bytes]]]:
    if request.content_type != "multipart/form-data":
        raise CorrespondenceProblem(
            415, f"expected multipart/form-data, got {request.content_type or 'nothing'}"
        )
    fields: list[tuple[str, str]] = []
    files: list[tuple[str, bytes]] = []
    try:
        async with asyncio.timeout(BODY_READ_SECONDS):
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):  # nested multipart is not something ASP.NET binds
                    raise CorrespondenceProblem(400, "nested multipart bodies are not supported")
                data = await part.read()
                if part.filename is not None:
                    files.append((part.filename, bytes(data)))
                elif part.name:
                    fields.append((part.name, bytes(data).decode("utf-8")))
    except TimeoutError:
        raise web.HTTPRequestTimeout(text="request body not received in time") from None
    return fields, files


class _Routes:
    """aiohttp handlers over one :class:`FakeCorrespondence`."""

    def __init__(self, fake: FakeCorrespondence) -> None:
        self.fake = fake

    async def initialize(self, request: web.Request) -> web.Response:
        caller = self.fake.authenticate(request)
        self.fake.require_sender_scopes(caller)
        payload = await _read_json(request)
        validated = validate_initialize(payload, now=self.fake.now())
        return _json(self.fake.initialize(caller, validated, []))

    async def initialize_with_upload(self, request: web.Request) -> web.Response:
        caller = self.fake.authenticate(request)
        self.fake.require_sender_scopes(caller)
        fields, files = await _read_form(request)
        validated = validate_initialize(form_to_request(fields), now=self.fake.now())
        if not files and not validated.new_attachments:
            raise CorrespondenceProblem(
                400, "Mismatch between uploaded files and attachment metadata", error_code=1005
            )
        return _json(self.fake.initialize(caller, validated, files))

    async def list(self, request: web.Request) -> web.Response:
        caller = self.fake.authenticate(request)
        self.fake.require_any_scope(caller)
        return _json({"ids": self.fake.list_ids(caller, request.query)})

    async def overview(self, request: web.Request) -> web.Response:
        return _json(self._look(request).overview())

    async def details(self, request: web.Request) -> web.Response:
        return _json(self._look(request).details())

    def _look(self, request: web.Request) -> Correspondence:
        caller = self.fake.authenticate(request)
        self.fake.require_any_scope(caller)
        correspondence = self.fake.lookup(request.match_info["correspondenceId"])
        if self.fake.is_recipient(caller, correspondence) and correspondence.visible_to_recipient:
            self.fake.fetch(caller, correspondence)
        elif not self.fake.is_sender(caller, correspondence):
            self.fake.as_recipient(caller, correspondence)  # raises: not found, or not the recipient
        return correspondence

    def _recipient_target(self, request: web.Request) -> tuple[Caller, Correspondence]:
        caller = self.fake.authenticate(request, recipient_only=True)
        self.fake.require_read_scope(caller)
        correspondence = self.fake.lookup(request.match_info["correspondenceId"])
        return caller, self.fake.as_recipient(caller, correspondence)

    async def mark_as_read(self, request: web.Request) -> web.Response:
        _, correspondence = self._recipient_target(request)
        self.fake.mark_as_read(correspondence)
        return _json(str(correspondence.id))

    async def confirm(self, request: web.Request) -> web.Response:
        _, correspondence = self._recipient_target(request)
        self.fake.confirm(correspondence)
        return _json(str(correspondence.id))

    async def content(self, request: web.Request) -> web.Response:
        caller, correspondence = self._recipient_target(request)
        self.fake.fetch(caller, correspondence)
        if not correspondence.has_been(Status.Read):
            self.fake.mark_as_read(correspondence)
        body = (correspondence.request.get("content") or {}).get("messageBody") or ""
        return web.Response(text=body, content_type="text/plain")

    async def download(self, request: web.Request) -> web.Response:
        caller, correspondence = self._recipient_target(request)
        attachment = self.fake.download(caller, correspondence, request.match_info["attachmentId"])
        return web.Response(
            body=attachment.data,
            content_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{attachment.file_name}"'},
        )

    async def purge(self, request: web.Request) -> web.Response:
        caller = self.fake.authenticate(request)
        self.fake.require_any_scope(caller)
        correspondence = self.fake.lookup(request.match_info["correspondenceId"])
        self.fake.purge(caller, correspondence)
        return _json(str(correspondence.id))

    async def initialize_attachment(self, request: web.Request) -> web.Response:
        caller = self.fake.authenticate(request)
        self.fake.require_sender_scopes(caller)
        payload = await _read_json(request)
        if not isinstance(payload, Mapping):
            raise CorrespondenceProblem(
                400, "One or more validation errors occurred.", errors={"$": ["not an object"]}
            )
        errors = {
            name: [f"The {name} field is required."]
            for name in ("resourceId", "sender", "sendersReference")
            if not payload.get(name)
        }
        if errors:
            raise CorrespondenceProblem(400, "One or more validation errors occurred.", errors=errors)
        self.fake.owned_resource(caller, payload["resourceId"])
        attachment = self.fake.create_attachment(
            caller, resource_id=payload["resourceId"], metadata=payload, now=self.fake.now()
        )
        return _json(str(attachment.id))

    async def upload_attachment(self, request: web.Request) -> web.Response:
        caller = self.fake.authenticate(request)
        self.fake.require_sender_scopes(caller)
        attachment = self._own_attachment(caller, request.match_info["attachmentId"])
        if attachment.has_been("UploadProcessing"):
            raise CorrespondenceProblem(400, "File has already been or is being uploaded", error_code=2005)
        if attachment.correspondence_ids:
            raise CorrespondenceProblem(
                400, "Cannot upload attachment to a correspondence that has been created", error_code=2003
            )
        self.fake.store_attachment_data(attachment, await read_body(request), self.fake.now())
        return _json(attachment.overview())

    async def attachment_overview(self, request: web.Request) -> web.Response:
        caller = self.fake.authenticate(request)
        self.fake.require_sender_scopes(caller)
        return _json(self._own_attachment(caller, request.match_info["attachmentId"]).overview())

    def _own_attachment(self, caller: Caller, raw_id: str) -> Attachment:
        self.fake.scan_due()
        try:
            attachment = self.fake.attachments.get(uuid.UUID(raw_id))
        except ValueError:
            attachment = None
        if attachment is None:
            raise attachment_not_found()
        if attachment.sender_org != caller.party_org:
            raise no_access(f"organisation {caller.party_org} did not create this attachment")
        return attachment


def _problems_as_responses(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except CorrespondenceProblem as problem:
            return _problem(problem)

    return wrapped


CORRESPONDENCE_KEY = web.AppKey("fake_correspondence", FakeCorrespondence)


def install_correspondence(
    app: web.Application,
    *,
    verifier: TokenVerifier,
    resources: Mapping[str, CorrespondenceResource],
    dialogs: FakeDialogporten | None,
    clock: Clock = time.time,
    scan_seconds: float = 2.0,
) -> FakeCorrespondence:
    """Add the Correspondence API routes to ``app`` (served behind the observing middleware)."""
    fake = FakeCorrespondence(
        verifier=verifier, resources=resources, dialogs=dialogs, clock=clock, scan_seconds=scan_seconds
    )
    routes = _Routes(fake)
    item = f"{BASE}/correspondence/{{correspondenceId}}"
    table: list[tuple[str, str, Handler]] = [
        ("POST", f"{BASE}/correspondence", routes.initialize),
        ("GET", f"{BASE}/correspondence", routes.list),
        ("POST", f"{BASE}/correspondence/upload", routes.initialize_with_upload),
        ("GET", item, routes.overview),
        ("GET", f"{item}/details", routes.details),
        ("GET", f"{item}/content", routes.content),
        ("POST", f"{item}/markasread", routes.mark_as_read),
        ("POST", f"{item}/confirm", routes.confirm),
        ("DELETE", f"{item}/purge", routes.purge),
        ("GET", f"{item}/attachment/{{attachmentId}}/download", routes.download),
        ("POST", f"{BASE}/attachment", routes.initialize_attachment),
        ("GET", f"{BASE}/attachment/{{attachmentId}}", routes.attachment_overview),
        ("POST", f"{BASE}/attachment/{{attachmentId}}/upload", routes.upload_attachment),
    ]
    for method, path, handler in table:
        app.router.add_route(method, path, _problems_as_responses(handler))
    app[CORRESPONDENCE_KEY] = fake
    return fake
