"""A strict fake of the Altinn 3 Broker API (``/broker/api/v1/filetransfer``) for the sandbox and tests.

It answers like the real API does (``ALTINN3-API.md`` section 7, ``altinn-broker-v1.json``):
bearer tokens are verified on every call, scopes and the token's organisation are checked against the
sender and recipients, request bodies are validated, refusals are ProblemDetails with the broker's
``BRO-nnnnn`` code. Bodies are streamed to ``storage_dir`` and served from there, never kept in memory.

Upload processing is asynchronous as in Altinn: an upload leaves the file transfer in
``UploadProcessing``; it becomes ``Published`` (or ``Failed`` when the resource requires a ZIP and the
body is not one) once ``publish_delay`` seconds of the injected clock have passed. That step runs in
:meth:`FakeBroker.process_pending`, which every read calls first, so tests are deterministic with a
fake clock; the sandbox may also run it on a background task (``background_interval``).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.helpers import content_disposition_header

from proxy.sandbox.broker_files import BodyTooLarge, ChecksumMismatch, FileStore
from proxy.sandbox.broker_model import (
    SCOPE_READ,
    SCOPE_SERVICE_OWNER,
    SCOPE_WRITE,
    VISIBLE_TO_RECIPIENTS,
    BrokerProblem,
    BrokerResource,
    FileTransfer,
    FileTransferStatus,
    InitializeRequest,
    RecipientStatus,
    already_uploaded,
    checksum_mismatch,
    confirm_before_download,
    file_too_large,
    invalid_resource,
    no_access,
    no_file_uploaded,
    not_available,
    not_found,
    not_published,
    parse_initialize,
    validation_failed,
    virus_scan_not_approved,
)
from proxy.sandbox.tokens import Caller, Clock, FakeAuthError, TokenVerifier

__all__ = ["BrokerResource", "FakeBroker", "install_broker"]

BASE = "/broker/api/v1/filetransfer"
DEFAULT_TIME_TO_LIVE = 30 * 24 * 3600.0
LIST_LIMIT = 100
DOWNLOAD_CHUNK = 256 * 1024
UPLOAD_CHUNK = 256 * 1024

_TITLES = {
    400: ("https://tools.ietf.org/html/rfc9110#section-15.5.1", "Bad Request"),
    401: ("https://tools.ietf.org/html/rfc9110#section-15.5.2", "Unauthorized"),
    403: ("https://tools.ietf.org/html/rfc9110#section-15.5.4", "Forbidden"),
    404: ("https://tools.ietf.org/html/rfc9110#section-15.5.5", "Not Found"),
    409: ("https://tools.ietf.org/html/rfc9110#section-15.5.10", "Conflict"),
    411: ("https://tools.ietf.org/html/rfc9110#section-15.5.12", "Length Required"),
    415: ("https://tools.ietf.org/html/rfc9110#section-15.5.16", "Unsupported Media Type"),
    500: ("https://tools.ietf.org/html/rfc9110#section-15.6.1", "Internal Server Error"),
}

Handler = Callable[["FakeBroker", web.Request], Awaitable[web.StreamResponse]]


def problem_response(problem: BrokerProblem) -> web.Response:
    """The ProblemDetails reply for ``problem`` (``application/json``, as the API's actions produce)."""
    kind, title = _TITLES.get(problem.status, ("about:blank", "Error"))
    document: dict[str, Any] = {
        "type": kind,
        "title": title,
        "status": problem.status,
        "detail": problem.detail,
    }
    if problem.code is not None:
        document["code"] = f"BRO-{problem.code:05d}"
    if problem.errors:
        document["errors"] = {name: list(messages) for name, messages in problem.errors.items()}
    headers = {"WWW-Authenticate": "Bearer"} if problem.status == 401 else None
    return web.json_response(document, status=problem.status, headers=headers)


def _answers_problems(handler: Handler) -> Handler:
    @wraps(handler)
    async def guarded(self: FakeBroker, request: web.Request) -> web.StreamResponse:
        try:
            return await handler(self, request)
        except BrokerProblem as problem:
            return problem_response(problem)

    return guarded


class FakeBroker:
    """The fake Broker's state (``transfers``, ``files``) and its HTTP handlers."""

    def __init__(
        self,
        *,
        verifier: TokenVerifier,
        resources: Mapping[str, BrokerResource],
        storage_dir: Path,
        clock: Clock = time.time,
        publish_delay: float = 0.0,
        time_to_live: float = DEFAULT_TIME_TO_LIVE,
        body_idle_timeout: float = 30.0,
    ) -> None:
        self.verifier = verifier
        self.resources = dict(resources)
        self.files = FileStore(storage_dir)
        self.clock = clock
        self.publish_delay = publish_delay
        self.time_to_live = time_to_live
        self.body_idle_timeout = body_idle_timeout
        self.transfers: dict[uuid.UUID, FileTransfer] = {}
        self._processing: set[uuid.UUID] = set()
        self._changed = asyncio.Event()

    def _notify_change(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def sent_with(self, senders_reference: str) -> FileTransfer:
        """The newest transfer initialised with ``senders_reference`` (for tests); ``KeyError`` when none.

        A legacy sender holds the proxy's file reference, not the Altinn 3 id of the transfer.
        """
        found = [t for t in self.transfers.values() if t.request.senders_reference == senders_reference]
        if not found:
            raise KeyError(senders_reference)
        return max(found, key=lambda transfer: transfer.created)

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Return once ``condition()`` holds, re-checking it after every status change (for tests)."""
        while not condition():
            await self._changed.wait()

    # -- processing ---------------------------------------------------------------------------

    async def process_pending(self) -> int:
        """Finish the processing of every upload that is due by the clock; returns how many.

        Transfers whose time to live has run out are purged first, whatever their status (Altinn's
        PurgeFileTransferHandler, scheduled at initialise for the expiration time): the file is
        deleted and the transfer is ``Purged``.
        """
        now = self.clock()
        for transfer in [t for t in self.transfers.values() if t.expires <= now]:
            if transfer.status is not FileTransferStatus.PURGED and transfer.id not in self._processing:
                await self.files.remove(transfer.id)
                transfer.move_to(FileTransferStatus.PURGED, now, "File transfer purged")
        due = [
            transfer
            for transfer in self.transfers.values()
            if transfer.status is FileTransferStatus.UPLOAD_PROCESSING
            and transfer.processing_due is not None
            and transfer.processing_due <= now
            and transfer.id not in self._processing
        ]
        for transfer in due:
            self._processing.add(transfer.id)
            try:
                if transfer.resource.require_zip and not await self.files.is_zip(transfer.id):
                    transfer.move_to(
                        FileTransferStatus.FAILED,
                        self.clock(),
                        "File failed during upload processing: the resource requires a ZIP archive",
                    )
                    await self.files.remove(transfer.id)
                else:
                    transfer.move_to(FileTransferStatus.PUBLISHED, self.clock())
            finally:
                self._processing.discard(transfer.id)
        return len(due)

    async def run_background(self, interval: float) -> None:
        """Process due uploads every ``interval`` seconds until cancelled (sandbox mode)."""
        while True:
            await asyncio.sleep(interval)
            await self.process_pending()

    # -- helpers ------------------------------------------------------------------------------

    def _caller(self, request: web.Request, *any_of: str) -> Caller:
        try:
            caller = self.verifier.verify(request.headers.get("Authorization"))
        except FakeAuthError as error:
            raise BrokerProblem(401 if error.status == 401 else 403, error.message) from None
        if not any(caller.has_scope(scope) for scope in any_of):
            raise BrokerProblem(403, f"The token lacks the scope this operation needs: {' or '.join(any_of)}")
        return caller

    def _transfer(self, request: web.Request) -> FileTransfer:
        raw = request.match_info["file_transfer_id"]
        try:
            transfer_id = uuid.UUID(raw)
        except ValueError:
            raise validation_failed({"fileTransferId": (f"The value '{raw[:40]}' is not valid.",)}) from None
        transfer = self.transfers.get(transfer_id)
        if transfer is None:
            raise not_found()
        return transfer

    @staticmethod
    def _owns(caller: Caller, resource: BrokerResource) -> bool:
        return caller.has_scope(SCOPE_SERVICE_OWNER) and caller.consumer_org == resource.owner_org

    def _may_see(self, caller: Caller, transfer: FileTransfer) -> bool:
        party = caller.party_org
        return (
            party == transfer.sender_org
            or party in transfer.recipients
            or self._owns(caller, transfer.resource)
        )

    def _recipient_transfer(self, request: web.Request, caller: Caller) -> FileTransfer:
        transfer = self._transfer(request)
        if caller.party_org not in transfer.recipients:
            raise not_found()
        if caller.party_org not in transfer.resource.recipients:
            raise no_access()
        return transfer

    async def _json_body(self, request: web.Request) -> Any:
        if request.content_type != "application/json":
            raise BrokerProblem(415, "The request body must be application/json")
        async with asyncio.timeout(self.body_idle_timeout):
            raw = await request.read()
        try:
            return json.loads(raw)
        except ValueError:
            raise validation_failed({"$": ("The request body is not valid JSON.",)}) from None

    def _initialize(self, caller: Caller, initialize: InitializeRequest) -> FileTransfer:
        resource = self.resources.get(initialize.resource_id)
        if resource is None:
            raise invalid_resource()
        if caller.party_org != initialize.sender_org or caller.party_org not in resource.senders:
            raise no_access()
        if initialize.disable_virus_scan and not resource.virus_scan_may_be_disabled:
            raise virus_scan_not_approved()
        transfer = FileTransfer.create(resource, initialize, self.clock(), self.time_to_live)
        transfer.on_change = self._notify_change
        self.transfers[transfer.id] = transfer
        return transfer

    async def _receive(self, transfer: FileTransfer, chunks: AsyncIterator[bytes]) -> None:
        """Store the body of ``transfer`` and move it to ``UploadProcessing`` (or ``Failed``)."""
        if transfer.status is not FileTransferStatus.INITIALIZED:
            raise already_uploaded()
        transfer.move_to(FileTransferStatus.UPLOAD_STARTED, self.clock())
        try:
            stored = await self.files.receive(
                transfer.id,
                chunks,
                limit=transfer.resource.max_file_size,
                expected_md5=transfer.request.checksum,
            )
        except BodyTooLarge:
            transfer.move_to(FileTransferStatus.FAILED, self.clock(), "File size exceeds maximum")
            raise file_too_large() from None
        except ChecksumMismatch:
            transfer.move_to(FileTransferStatus.FAILED, self.clock(), "Checksum mismatch")
            raise checksum_mismatch() from None
        except TimeoutError:
            transfer.move_to(FileTransferStatus.FAILED, self.clock(), "Error occurred while uploading file")
            raise BrokerProblem(
                400, "The request body stopped arriving: no data within the read deadline", 8
            ) from None
        except BaseException:
            # The client went away or the read timed out: the body is gone, and like Altinn the file
            # transfer is failed rather than reopened for another upload.
            transfer.move_to(FileTransferStatus.FAILED, self.clock(), "Error occurred while uploading file")
            raise
        transfer.stored_size = stored.size
        now = self.clock()
        transfer.move_to(FileTransferStatus.UPLOAD_PROCESSING, now)
        transfer.processing_due = now + self.publish_delay

    async def _chunks(self, reader: Callable[[int], Awaitable[bytes]]) -> AsyncIterator[bytes]:
        """Chunks from ``reader`` until it returns b"", each within the idle deadline."""
        while True:
            async with asyncio.timeout(self.body_idle_timeout):
                chunk = await reader(UPLOAD_CHUNK)
            if not chunk:
                return
            yield chunk

    # -- handlers -----------------------------------------------------------------------------

    @_answers_problems
    async def initialize(self, request: web.Request) -> web.StreamResponse:
        """``POST /filetransfer``: validate and register a new file transfer."""
        caller = self._caller(request, SCOPE_WRITE)
        transfer = self._initialize(caller, parse_initialize(await self._json_body(request)))
        return web.json_response({"fileTransferId": str(transfer.id)})

    @_answers_problems
    async def upload(self, request: web.Request) -> web.StreamResponse:
        """``POST /filetransfer/{id}/upload``: stream the octet-stream body to disk."""
        caller = self._caller(request, SCOPE_WRITE)
        transfer = self._transfer(request)
        if caller.party_org != transfer.sender_org:
            raise no_access()
        if transfer.status is not FileTransferStatus.INITIALIZED:
            raise already_uploaded()
        if request.content_type != "application/octet-stream":
            raise BrokerProblem(415, "The request body must be application/octet-stream")
        if request.content_length is None:
            raise BrokerProblem(411, "Content-length header is required")
        if request.content_length > transfer.resource.max_file_size:
            raise file_too_large()
        await self._receive(transfer, self._chunks(request.content.read))
        return web.json_response({"fileTransferId": str(transfer.id)})

    @_answers_problems
    async def initialize_and_upload(self, request: web.Request) -> web.StreamResponse:
        """``POST /filetransfer/upload``: multipart ``Metadata.*`` fields, then the ``FileTransfer`` part."""
        caller = self._caller(request, SCOPE_WRITE)
        if not request.content_type.startswith("multipart/form-data"):
            raise BrokerProblem(415, "The request body must be multipart/form-data")
        reader = await request.multipart()
        metadata: dict[str, Any] = {"recipients": [], "propertyList": {}}
        while True:
            async with asyncio.timeout(self.body_idle_timeout):
                part = await reader.next()
            if part is None:
                raise validation_failed({"FileTransfer": ("The FileTransfer field is required.",)})
            if not isinstance(part, BodyPartReader):
                raise validation_failed({"$": ("Nested multipart bodies are not supported.",)})
            if part.name == "FileTransfer":
                break
            async with asyncio.timeout(self.body_idle_timeout):
                value = await part.text()
            _collect_form_field(metadata, part.name or "", value)
        transfer = self._initialize(caller, parse_initialize(metadata))
        await self._receive(transfer, self._chunks(part.read_chunk))
        return web.json_response(str(transfer.id))

    @_answers_problems
    async def overview(self, request: web.Request) -> web.StreamResponse:
        """``GET /filetransfer/{id}``: ``FileTransferOverviewExt``."""
        caller = self._caller(request, SCOPE_READ, SCOPE_WRITE, SCOPE_SERVICE_OWNER)
        await self.process_pending()
        transfer = self._transfer(request)
        if not self._may_see(caller, transfer):
            raise not_found()
        return web.json_response(transfer.overview())

    @_answers_problems
    async def details(self, request: web.Request) -> web.StreamResponse:
        """``GET /filetransfer/{id}/details``: the overview plus status histories."""
        caller = self._caller(request, SCOPE_READ, SCOPE_WRITE, SCOPE_SERVICE_OWNER)
        await self.process_pending()
        transfer = self._transfer(request)
        if not self._may_see(caller, transfer):
            raise not_found()
        return web.json_response(transfer.details())

    @_answers_problems
    async def search(self, request: web.Request) -> web.StreamResponse:
        """``GET /filetransfer``: ids of the caller's file transfers of one resource, filtered."""
        caller = self._caller(request, SCOPE_READ, SCOPE_WRITE, SCOPE_SERVICE_OWNER)
        query = _SearchQuery.parse(request.query)
        resource = self.resources.get(query.resource_id)
        if resource is None:
            raise invalid_resource()
        await self.process_pending()
        party, owner = caller.party_org, self._owns(caller, resource)
        found = [
            t for t in self.transfers.values() if t.resource is resource and query.matches(t, party, owner)
        ]
        found.sort(key=lambda t: t.created)
        found = found[-LIST_LIMIT:]
        if not query.ascending:
            found.reverse()
        return web.json_response([str(t.id) for t in found])

    @_answers_problems
    async def download(self, request: web.Request) -> web.StreamResponse:
        """``GET /filetransfer/{id}/download``: the body from disk, honouring ``Range``."""
        caller = self._caller(request, SCOPE_READ)
        await self.process_pending()
        transfer = self._recipient_transfer(request, caller)
        # Altinn's DownloadFileHandler: any status but Published or AllConfirmedDownloaded is
        # "not available" (an Initialized one too); a file stays downloadable after every confirm.
        if transfer.status not in VISIBLE_TO_RECIPIENTS:
            raise not_available()
        if transfer.recipients[caller.party_org].status is RecipientStatus.INITIALIZED:
            transfer.move_recipient(caller.party_org, RecipientStatus.DOWNLOAD_STARTED, self.clock())
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Disposition": content_disposition_header(
                "attachment", filename=transfer.request.file_name
            ),
        }
        return web.FileResponse(self.files.path_for(transfer.id), chunk_size=DOWNLOAD_CHUNK, headers=headers)

    @_answers_problems
    async def confirm_download(self, request: web.Request) -> web.StreamResponse:
        """``POST /filetransfer/{id}/confirmdownload``: the recipient is done with the file."""
        caller = self._caller(request, SCOPE_READ)
        await self.process_pending()
        transfer = self._recipient_transfer(request, caller)
        if transfer.status in (FileTransferStatus.INITIALIZED, FileTransferStatus.UPLOAD_STARTED):
            raise no_file_uploaded()
        # Altinn's ConfirmDownloadHandler: only a Published transfer, so a confirm resent after the
        # last recipient's (AllConfirmedDownloaded) is refused like an unpublished one.
        if transfer.status is not FileTransferStatus.PUBLISHED:
            raise not_published()
        state = transfer.recipients[caller.party_org]
        if state.status is RecipientStatus.INITIALIZED:
            raise confirm_before_download()
        if state.status is not RecipientStatus.DOWNLOAD_CONFIRMED:
            transfer.move_recipient(caller.party_org, RecipientStatus.DOWNLOAD_CONFIRMED, self.clock())
        return web.Response(status=200)

    def install(self, app: web.Application) -> None:
        """Add the Broker routes to the platform application."""
        app.router.add_post(BASE, self.initialize)
        app.router.add_get(BASE, self.search)
        app.router.add_post(f"{BASE}/upload", self.initialize_and_upload)
        app.router.add_post(BASE + "/{file_transfer_id}/upload", self.upload)
        app.router.add_get(BASE + "/{file_transfer_id}", self.overview)
        app.router.add_get(BASE + "/{file_transfer_id}/details", self.details)
        app.router.add_get(BASE + "/{file_transfer_id}/download", self.download)
        app.router.add_post(BASE + "/{file_transfer_id}/confirmdownload", self.confirm_download)


class _SearchQuery:
    """The validated query of ``GET /filetransfer``."""

    def __init__(
        self,
        resource_id: str,
        status: FileTransferStatus | None,
        recipient_status: RecipientStatus | None,
        created_from: datetime | None,
        created_to: datetime | None,
        ascending: bool,
        role: str | None,
    ) -> None:
        self.resource_id = resource_id
        self.status = status
        self.recipient_status = recipient_status
        self.created_from = created_from.timestamp() if created_from else None
        self.created_to = created_to.timestamp() if created_to else None
        self.ascending = ascending
        self.role = role

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> _SearchQuery:
        """Validate the query parameters like the API's model binding, or raise ``validation_failed``."""
        errors: dict[str, tuple[str, ...]] = {}

        def choose(name: str, values: Any) -> Any:
            raw = query.get(name)
            if raw is None or raw == "":
                return None
            try:
                return values(raw)
            except ValueError:
                errors[name] = (f"The value '{raw[:40]}' is not valid.",)
                return None

        resource_id = query.get("resourceId") or ""
        if not resource_id:
            errors["resourceId"] = ("The resourceId field is required.",)
        status = choose("status", FileTransferStatus)
        recipient_status = choose("recipientStatus", RecipientStatus)
        created_from = choose("from", _parse_datetime)
        created_to = choose("to", _parse_datetime)
        ascending = choose("orderAscending", _parse_bool)
        role = choose("role", _parse_role)
        if errors:
            raise validation_failed(errors)
        return cls(
            resource_id,
            status,
            recipient_status,
            created_from,
            created_to,
            True if ascending is None else ascending,
            role,
        )

    def matches(self, transfer: FileTransfer, party: str, owner: bool) -> bool:
        """True when ``transfer`` is the caller's (in the asked role) and passes every filter."""
        as_sender = transfer.sender_org == party
        as_recipient = party in transfer.recipients and transfer.status in VISIBLE_TO_RECIPIENTS
        if self.role == "Sender":
            visible = as_sender
        elif self.role == "Recipient":
            visible = as_recipient
        else:
            visible = as_sender or as_recipient or owner
        if not visible:
            return False
        if self.status is not None and transfer.status is not self.status:
            return False
        if self.recipient_status is not None:
            if party in transfer.recipients and self.role != "Sender":
                statuses = [transfer.recipients[party].status]
            else:
                statuses = [state.status for state in transfer.recipients.values()]
            if self.recipient_status not in statuses:
                return False
        if self.created_from is not None and transfer.created < self.created_from:
            return False
        return self.created_to is None or transfer.created <= self.created_to


def _parse_datetime(raw: str) -> datetime:
    value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("a date-time needs an offset")
    return value


def _parse_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise ValueError(raw)
    return lowered == "true"


def _parse_role(raw: str) -> str:
    if raw not in ("Recipient", "Sender"):
        raise ValueError(raw)
    return raw


def _collect_form_field(metadata: dict[str, Any], name: str, value: str) -> None:
    """Bind one ``Metadata.*`` form field the way ASP.NET binds the form to the model."""
    key = name.removeprefix("Metadata.")
    if key == name:
        return
    if key == "Recipients":
        metadata["recipients"].extend(v.strip() for v in value.split(",") if v.strip())
    elif key.startswith("PropertyList[") and key.endswith("]"):
        metadata["propertyList"][key[len("PropertyList[") : -1]] = value
    elif key == "DisableVirusScan":
        metadata["disableVirusScan"] = value.lower() == "true"
    else:
        metadata[key[:1].lower() + key[1:]] = value


def install_broker(
    app: web.Application,
    *,
    verifier: TokenVerifier,
    resources: Mapping[str, BrokerResource],
    storage_dir: Path,
    clock: Clock = time.time,
    publish_delay: float = 0.0,
    background_interval: float | None = None,
) -> FakeBroker:
    """Install the fake Broker on the platform ``app`` and return it (for state assertions).

    With ``background_interval`` (the sandbox), due uploads are also published by a task that runs
    while the application runs; without it (tests) they are published on the next read or by an
    explicit ``await fake.process_pending()``.
    """
    broker = FakeBroker(
        verifier=verifier,
        resources=resources,
        storage_dir=storage_dir,
        clock=clock,
        publish_delay=publish_delay,
    )
    broker.install(app)
    if background_interval is not None:
        interval = background_interval

        async def background(_: web.Application) -> AsyncIterator[None]:
            task = asyncio.create_task(broker.run_background(interval), name="fake-broker-publisher")
            yield
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        app.cleanup_ctx.append(background)
    return broker
