"""A strict fake of Altinn 3 apps (the generic App API) and the Storage instance API behind them.

The app API is served for every app under ``/apps/{org}/{org}/{app}/...`` of the platform host (the
sandbox's stand-in for ``https://{org}.apps.altinn.no/{org}/{app}/...``); Storage under
``/storage/api/v1``. Rules and their sources are in :mod:`proxy.sandbox.apps_model`. Access:

* App endpoints need an exchanged Altinn token (401 otherwise). A system user needs
  ``altinn:instances.write`` to create or change and ``altinn:instances.read`` (or write) to read,
  and may only touch instances of the organisation it acts for (403). The service owner of the app
  (``urn:altinn:org``) needs ``altinn:serviceowner/instances.read`` / ``.write``.
* Storage's query: a service owner must name ``org`` or ``appId`` of its own; a system user must
  name the instance owner (``instanceOwner.partyId`` or ``X-Ai-InstanceOwnerIdentifier``) and sees
  only its own organisation's instances.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import BodyPartReader, web
from lxml import etree

from proxy.sandbox.apps_model import (
    PDF_DATA_TYPE,
    AppProblem,
    AppSpec,
    DataElement,
    DataTypeSpec,
    Instance,
    Query,
    count_problem,
    iso,
    parse_form,
    select,
    upload_issue,
    upload_problems,
    validation_issues,
)
from proxy.sandbox.broker_files import BodyTooLarge, FileStore
from proxy.sandbox.tokens import Caller, Clock, FakeAuthError, TokenVerifier
from proxy.sandbox.wire import read_body

__all__ = ["APPS_PREFIX", "FakeApps", "install_apps"]

APPS_PREFIX = "/apps"
STORAGE = "/storage/api/v1"
READ = "altinn:instances.read"
WRITE = "altinn:instances.write"
SO_READ = "altinn:serviceowner/instances.read"
SO_WRITE = "altinn:serviceowner/instances.write"
#: App-lib's request size limit for instance creation and data upload when a type sets none.
REQUEST_SIZE_LIMIT = 250 * 1024 * 1024
DEFAULT_PAGE_SIZE = 100
CHUNK = 256 * 1024
#: What the fake app writes as the PDF of a submitted form (a minimal, valid PDF).
PDF_BYTES = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_FILENAME = re.compile(r"""filename\*?=(?:UTF-8'')?"?([^";]+)"?""", re.IGNORECASE)

_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict"}


def _problem(problem: AppProblem) -> web.Response:
    document: dict[str, Any] = {
        "type": f"https://tools.ietf.org/html/rfc9110#section-15.{problem.status // 100 + 1}.{problem.status % 100 + 1}",
        "title": problem.title or _TITLES.get(problem.status, "Error"),
        "status": problem.status,
        "detail": problem.detail,
        **problem.extra,
    }
    headers = {"WWW-Authenticate": "Bearer"} if problem.status == 401 else None
    return web.json_response(document, status=problem.status, headers=headers)


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")


def _guarded(fake: FakeApps, name: str, handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            pending = fake.outages.get(name)
            if pending:
                raise AppProblem(pending.pop(0), "Service Unavailable", f"injected outage of {name}")
            hold = fake.holds.get(name)
            if hold is not None:
                fake.held.set()
                await hold.wait()
                raise AppProblem(503, "Service Unavailable", f"injected stall of {name}")
            return await handler(request)
        except AppProblem as problem:
            return _problem(problem)

    return wrapped


def filename_of(disposition: str | None) -> str | None:
    """The file name of a ``Content-Disposition`` header, or None."""
    if not disposition:
        return None
    found = _FILENAME.search(disposition)
    return unquote(found.group(1)).strip() if found else None


@dataclass
class FakeApps:
    """The apps, their instances and Storage's view of them; exposed for test assertions."""

    verifier: TokenVerifier
    apps: Mapping[str, AppSpec]
    #: Organisation number → party id (the register's answer).
    parties: Mapping[str, int]
    storage_dir: Path
    clock: Clock = time.time
    instances: dict[uuid.UUID, Instance] = field(default_factory=dict)
    #: Injected outages for tests: route name (e.g. ``"next"``) → statuses to answer, in turn,
    #: before the route works again (as a real app answers 503 while it restarts).
    outages: dict[str, list[int]] = field(default_factory=dict)
    #: Injected stalls for tests: a request to the route named here waits until the event is set,
    #: then gets a 503 (``held`` is set once such a request has arrived).
    holds: dict[str, asyncio.Event] = field(default_factory=dict)
    held: asyncio.Event = field(default_factory=asyncio.Event)
    files: FileStore = field(init=False)
    _order: Iterator[int] = field(init=False)

    def __post_init__(self) -> None:
        self.files = FileStore(self.storage_dir)
        self._order = itertools.count(1)

    # -- access ---------------------------------------------------------------------------------

    def authenticate(self, request: web.Request) -> Caller:
        """The exchanged-token caller, or 401."""
        try:
            return self.verifier.verify(request.headers.get("Authorization"), require_exchanged=True)
        except FakeAuthError as error:
            raise AppProblem(error.status, "Unauthorized", error.message) from None

    @staticmethod
    def is_owner_of(caller: Caller, app: AppSpec) -> bool:
        """Whether the caller is the app's service owner."""
        return caller.service_owner is not None and caller.service_owner.lower() == app.org.lower()

    def require(self, caller: Caller, app: AppSpec, *, write: bool, org_number: str | None) -> None:
        """403 unless the caller may read (or write) instances of ``org_number`` in ``app``."""
        if self.is_owner_of(caller, app):
            if not caller.has_scope(SO_WRITE) and not (not write and caller.has_scope(SO_READ)):
                raise AppProblem(403, "Forbidden", "the token lacks the service owner's instance scope")
            return
        if not caller.has_scope(WRITE) and not (not write and caller.has_scope(READ)):
            raise AppProblem(403, "Forbidden", f"the token lacks {WRITE if write else READ}")
        if org_number is not None and caller.party_org != org_number:
            raise AppProblem(
                403, "Forbidden", f"organisation {caller.party_org} may not act for party of {org_number}"
            )

    def app_of(self, request: web.Request) -> AppSpec:
        """The app named in the path (404 for an unknown one, as no such app host exists)."""
        app = self.apps.get(f"{request.match_info['org']}/{request.match_info['app']}")
        if app is None or request.match_info.get("host", app.org) != app.org:
            raise AppProblem(404, "Not Found", "no such app")
        return app

    def instance_of(self, request: web.Request, app: AppSpec | None = None) -> Instance:
        """The instance named in the path (404 when absent, deleted or of another app); the path
        may name it by its GUID alone (Storage's ``GET /instances/{instanceGuid}``)."""
        try:
            guid = uuid.UUID(request.match_info["guid"])
            party = int(request.match_info.get("party", "-1"))
        except ValueError:
            raise AppProblem(404, "Not Found", "no such instance") from None
        instance = self.instances.get(guid)
        if (
            instance is None
            or instance.hard_deleted
            or (party != -1 and instance.party_id != party)
            or (app is not None and instance.app is not app)
        ):
            raise AppProblem(404, "Not Found", f"Unable to find instance {party}/{guid}")
        return instance

    def party_of(self, org_number: str) -> int:
        """The party id of an organisation (404 "Cannot lookup party" for an unknown one)."""
        party = self.parties.get(org_number)
        if party is None:
            raise AppProblem(404, "Not Found", "Cannot lookup party: Unknown party")
        return party

    def touch(self, instance: Instance) -> None:
        """Record a change of ``instance`` now."""
        instance.last_changed = self.clock()
        instance.order = next(self._order)

    # -- data -----------------------------------------------------------------------------------

    async def store(
        self,
        instance: Instance,
        spec: DataTypeSpec,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str,
        filename: str | None,
        who: str,
    ) -> DataElement:
        """Stream one data element to disk within the type's limit (400 over it)."""
        element_id = uuid.uuid4()
        limit = spec.max_bytes or REQUEST_SIZE_LIMIT
        try:
            stored = await self.files.receive(element_id, chunks, limit=limit)
        except BodyTooLarge:
            raise AppProblem(
                400,
                "File validation failed",
                "Common checks failed",
                uploadValidationIssues=[
                    upload_issue(f"Invalid data provided. Error: Binary attachment exceeds limit of {limit}")
                ],
            ) from None
        if stored.size == 0:
            await self.files.remove(element_id)
            raise AppProblem(400, "Invalid data", "Invalid data provided. Error: The file is zero bytes.")
        if spec.is_form:
            try:
                raw = await asyncio.to_thread(stored.path.read_bytes)
                await asyncio.to_thread(parse_form, raw, spec)
            except AppProblem:
                await self.files.remove(element_id)
                raise
        element = DataElement(
            element_id, instance.guid, spec.id, content_type, filename, stored.size, self.clock(), who
        )
        instance.data.append(element)
        self.touch(instance)
        return element

    async def forms(self, instance: Instance) -> dict[uuid.UUID, etree._Element]:
        """The parsed form of every form data element of ``instance``."""
        parsed = {}
        for element in instance.data:
            spec = instance.app.data_type(element.data_type)
            if spec is not None and spec.is_form:
                raw = await asyncio.to_thread(self.files.path_for(element.id).read_bytes)
                parsed[element.id] = parse_form(raw, spec)
        return parsed

    async def delete(self, instance: Instance) -> None:
        """Hard-delete ``instance`` and its data."""
        instance.hard_deleted = True
        for element in instance.data:
            await self.files.remove(element.id)
        self.touch(instance)

    async def advance(self, instance: Instance, who: str) -> None:
        """Move the process one task on; at the end, archive and add the PDF (if the app makes one)."""
        index = instance.task_index
        assert index is not None
        now = self.clock()
        if index + 1 < len(instance.app.process):
            instance.task_index = index + 1
            instance.task_started = now
        else:
            instance.task_index = None
            instance.process_ended = now
            if instance.app.pdf:
                pdf_id = uuid.uuid4()

                async def pdf() -> AsyncIterator[bytes]:
                    yield PDF_BYTES

                stored = await self.files.receive(pdf_id, pdf(), limit=len(PDF_BYTES))
                instance.data.append(
                    DataElement(
                        pdf_id,
                        instance.guid,
                        PDF_DATA_TYPE,
                        "application/pdf",
                        "skjema.pdf",
                        stored.size,
                        now,
                        who,
                    )
                )
        self.touch(instance)


async def _body_chunks(request: web.Request) -> AsyncIterator[bytes]:
    if request.content.at_eof():
        # Read already (by the observing middleware); aiohttp keeps the bytes.
        yield await read_body(request)
        return
    async for chunk in request.content.iter_chunked(CHUNK):
        yield chunk


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield chunk


def _who(caller: Caller) -> str:
    return caller.system_user_id or caller.service_owner or caller.party_org


def _template(raw: bytes) -> dict[str, Any]:
    try:
        template = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AppProblem(400, "Bad Request", f"The instance template is not valid JSON: {error}") from None
    if not isinstance(template, dict):
        raise AppProblem(400, "Bad Request", "The instance template must be a JSON object")
    return template


class _AppRoutes:
    """The App API handlers."""

    def __init__(self, fake: FakeApps) -> None:
        self.fake = fake

    def _target(self, request: web.Request, *, write: bool) -> tuple[AppSpec, Caller, Instance]:
        """The app, the caller and the instance of an instance route, once the caller may use it."""
        app = self.fake.app_of(request)
        caller = self.fake.authenticate(request)
        instance = self.fake.instance_of(request, app)
        self.fake.require(caller, app, write=write, org_number=instance.org_number)
        return app, caller, instance

    async def metadata(self, request: web.Request) -> web.Response:
        app = self.fake.app_of(request)
        return _json(app.metadata(iso(0)))

    async def create(self, request: web.Request) -> web.Response:
        fake = self.fake
        app = fake.app_of(request)
        caller = fake.authenticate(request)
        party_query = request.query.get("instanceOwnerPartyId")
        template: dict[str, Any] | None = None
        reader = None
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            first = await reader.next()
            if isinstance(first, BodyPartReader) and first.name == "instance":
                template = _template(await first.read())
            elif first is not None:
                raise AppProblem(
                    400, "Bad Request", "The first part must be the instance template 'instance'"
                )
        elif request.can_read_body:
            template = _template(await read_body(request))
        owner = (template or {}).get("instanceOwner") or {}
        if party_query is None and template is None:
            raise AppProblem(
                400,
                "Bad Request",
                "Cannot create an instance without an instanceOwner.partyId. Either provide instanceOwner "
                "party Id as a query parameter or an instanceTemplate object in the body.",
            )
        if party_query is not None and owner.get("partyId") is not None:
            raise AppProblem(
                400,
                "Bad Request",
                "You cannot provide an instanceOwnerPartyId as a query param as well as an instance "
                "template in the body. Choose one or the other.",
            )
        org_number = owner.get("organisationNumber")
        if party_query is not None or owner.get("partyId") is not None:
            wanted = int(party_query or owner["partyId"])
            org_number = next((org for org, party in fake.parties.items() if party == wanted), None)
            if org_number is None:
                raise AppProblem(404, "Not Found", "Cannot lookup party: Unknown party")
        if not isinstance(org_number, str) or not org_number:
            raise AppProblem(
                400,
                "Bad Request",
                "Error: instanceOwnerPartyId query parameter is empty and InstanceOwner is missing from "
                "instance template. You must populate instanceOwnerPartyId or InstanceOwner",
            )
        party = fake.party_of(org_number)
        fake.require(caller, app, write=True, org_number=org_number)
        values = (template or {}).get("dataValues") or {}
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            raise AppProblem(400, "Bad Request", "dataValues must map names to strings")
        now = fake.clock()
        instance = Instance(
            guid=uuid.uuid4(),
            app=app,
            party_id=party,
            org_number=org_number,
            created=now,
            created_by=_who(caller),
            data_values=dict(values),
            process_started=now,
            task_started=now,
        )
        fake.touch(instance)
        fake.instances[instance.guid] = instance
        try:
            if reader is not None:
                while (part := await reader.next()) is not None:
                    if not isinstance(part, BodyPartReader):
                        raise AppProblem(400, "Bad Request", "nested multipart is not supported")
                    await self._store_part(instance, part, caller)
        except BaseException:
            # App-lib deletes the instance again when a part is refused (TryDeleteInstance).
            await fake.delete(instance)
            del fake.instances[instance.guid]
            raise
        return _json(instance.app_document(), status=201)

    async def _store_part(self, instance: Instance, part: BodyPartReader, caller: Caller) -> None:
        spec = instance.app.data_type(part.name or "")
        if spec is None:
            raise AppProblem(
                400,
                "Bad Request",
                f"Error when comparing content to application metadata: Multipart section named, "
                f"'{part.name}' does not correspond to an element type in application metadata",
            )
        content_type = (part.headers.get("Content-Type") or "").split(";")[0].strip()
        if spec.allowed_content_types and content_type not in spec.allowed_content_types:
            raise AppProblem(
                400,
                "Bad Request",
                f"Error when comparing content to application metadata: The multipart section named "
                f"{part.name} has a Content-Type '{content_type}' which is invalid for element type '{spec.id}'",
            )
        problem = count_problem(spec, len(instance.elements_of(spec.id)))
        if problem is not None:
            raise AppProblem(
                400,
                "Bad Request",
                f"Error when comparing content to application metadata: The multipart section named "
                f"{part.name} exceeds the allowed element count of {spec.max_count}",
            )
        await self.fake.store(
            instance,
            spec,
            _part_chunks(part),
            content_type=content_type or "application/octet-stream",
            filename=part.filename,
            who=_who(caller),
        )

    async def get(self, request: web.Request) -> web.Response:
        _app, _caller, instance = self._target(request, write=False)
        return _json(instance.app_document())

    async def delete(self, request: web.Request) -> web.Response:
        fake = self.fake
        app, caller, instance = self._target(request, write=True)
        if instance.process_ended is not None and not fake.is_owner_of(caller, app):
            raise AppProblem(
                403, "Forbidden", "an archived instance can only be deleted by its service owner"
            )
        await fake.delete(instance)
        return _json(instance.app_document())

    async def add_data(self, request: web.Request) -> web.Response:
        fake = self.fake
        app, caller, instance = self._target(request, write=True)
        name = request.query.get("dataType", "")
        spec = app.data_type(name)
        if spec is None:
            raise AppProblem(
                400, "Bad Request", f"Element type {name} not allowed for instance {instance.id}."
            )
        task = instance.current_task
        if task is None:
            raise AppProblem(
                409,
                "Instance Not Active",
                f"Cannot update data element of archived or deleted instance {instance.id}",
            )
        if spec.task_id is not None and spec.task_id != task.id:
            raise AppProblem(
                409,
                "Conflict with Current Task",
                f"Data element of type {spec.id} can only be modified in {spec.task_id} (current task {task.id})",
            )
        problem = count_problem(spec, len(instance.elements_of(spec.id)))
        if problem is not None:
            raise problem
        content_type = request.headers.get("Content-Type")
        filename = filename_of(request.headers.get("Content-Disposition"))
        if not spec.is_form:
            if "Content-Disposition" not in request.headers:
                issues = [
                    "Invalid data provided. Error: The request must include a Content-Disposition header"
                ]
            else:
                size = request.content_length if request.content_length is not None else 0
                issues = upload_problems(spec, (content_type or "").split(";")[0].strip(), filename, size)
            if issues:
                raise AppProblem(
                    400,
                    "File validation failed",
                    "Common checks failed",
                    uploadValidationIssues=[upload_issue(text) for text in issues],
                )
            if content_type is None:
                raise AppProblem(400, "Missing content type", "The request is missing a content type header.")
        element = await fake.store(
            instance,
            spec,
            _body_chunks(request),
            content_type=(content_type or "application/xml").split(";")[0].strip(),
            filename=filename,
            who=_who(caller),
        )
        return _json(element.document(instance), status=201)

    async def get_data(self, request: web.Request) -> web.StreamResponse:
        fake = self.fake
        _app, _caller, instance = self._target(request, write=False)
        return await _download(fake, instance, request)

    async def process(self, request: web.Request) -> web.Response:
        _app, _caller, instance = self._target(request, write=False)
        return _json(instance.process_state())

    async def next(self, request: web.Request) -> web.Response:
        fake = self.fake
        _app, caller, instance = self._target(request, write=True)
        if request.can_read_body and request.content_length:
            body = _template(await read_body(request))
            unknown = set(body) - {"action", "actionOnBehalfOf"}
            if unknown:
                raise AppProblem(
                    400, "Bad Request", f"unknown members in ProcessNext: {', '.join(sorted(unknown))}"
                )
        task = instance.current_task
        if task is None:
            raise AppProblem(409, "Conflict", "Instance does not have current task information!")
        if task.task_type == "data":
            issues = validation_issues(instance, await fake.forms(instance))
            if issues:
                raise AppProblem(
                    409,
                    "Validation failed for task",
                    f"{len(issues)} validation errors found for task {task.id}",
                    validationIssues=issues,
                )
        elif caller.system_user_id is not None and task.task_type in ("signing", "confirmation"):
            raise AppProblem(
                403, "Forbidden", f"User is not authorized to perform {task.task_type} on task {task.id}"
            )
        await fake.advance(instance, _who(caller))
        return _json(instance.process_state())

    async def validate(self, request: web.Request) -> web.Response:
        fake = self.fake
        _app, _caller, instance = self._target(request, write=False)
        if instance.current_task is None:
            raise AppProblem(409, "Conflict", "Instance does not have current task information!")
        return _json(validation_issues(instance, await fake.forms(instance)))


async def _download(fake: FakeApps, instance: Instance, request: web.Request) -> web.StreamResponse:
    try:
        data_id = uuid.UUID(request.match_info["data"])
    except ValueError:
        raise AppProblem(404, "Not Found", "no such data element") from None
    element = next((e for e in instance.data if e.id == data_id), None)
    if element is None:
        raise AppProblem(404, "Not Found", f"Unable to find data element {data_id}")
    headers = {"Content-Type": element.content_type}
    if element.filename:
        headers["Content-Disposition"] = f'attachment; filename="{quote(element.filename)}"'
    return web.FileResponse(fake.files.path_for(element.id), headers=headers, chunk_size=CHUNK)


class _StorageRoutes:
    """The Storage handlers (instance query, instance and data reads, confirm-download)."""

    def __init__(self, fake: FakeApps) -> None:
        self.fake = fake

    def _caller(self, request: web.Request) -> Caller:
        try:
            return self.fake.verifier.verify(request.headers.get("Authorization"))
        except FakeAuthError as error:
            raise AppProblem(error.status, "Unauthorized", error.message) from None

    async def query(self, request: web.Request) -> web.Response:
        fake = self.fake
        caller = self._caller(request)
        params = request.query
        org = params.get("org") or None
        app_id = params.get("appId") or None
        party_text = params.get("instanceOwner.partyId")
        identifier = request.headers.get("X-Ai-InstanceOwnerIdentifier")
        if party_text is not None and identifier:
            raise AppProblem(
                400,
                "Bad Request",
                "Both InstanceOwner.PartyId and InstanceOwnerIdentifier cannot be present at the same time.",
            )
        party: int | None = None
        if caller.service_owner is not None:
            if not caller.has_scope(SO_READ):
                raise AppProblem(403, "Forbidden", f"the token lacks {SO_READ}")
            if org is None and app_id is None:
                raise AppProblem(400, "Bad Request", "Org or AppId must be defined.")
            org = org or (app_id or "").split("/")[0]
            if org.lower() != caller.service_owner.lower():
                raise AppProblem(403, "Forbidden", f"{caller.service_owner} may not read instances of {org}")
        else:
            if party_text is None and not identifier:
                raise AppProblem(
                    400,
                    "Bad Request",
                    "Either InstanceOwnerPartyId or InstanceOwnerIdentifier need to be defined.",
                )
            if not caller.has_scope(READ) and not caller.has_scope(WRITE):
                raise AppProblem(403, "Forbidden", f"the token lacks {READ}")
        if identifier:
            kind, _, value = identifier.partition(":")
            if kind.lower() != "organisation" or not value:
                raise AppProblem(400, "Bad Request", "Invalid InstanceOwnerIdentifier")
            party = fake.parties.get(value, -1)
        elif party_text is not None:
            try:
                party = int(party_text)
            except ValueError:
                raise AppProblem(400, "Bad Request", "instanceOwner.partyId must be an integer") from None
        query = Query(
            org=org,
            app_id=app_id,
            party_id=party,
            is_complete=_bool(params.get("process.isComplete")),
            exclude_confirmed_by=params.get("excludeConfirmedBy") or None,
            ascending=not (params.get("order") or "desc:lastChanged").lower().startswith("desc:"),
            size=_size(params.get("size")),
            after=_token(params.get("continuationToken")),
        )
        page, following = select(list(fake.instances.values()), query)
        if caller.service_owner is None:
            page = [i for i in page if i.org_number == caller.party_org]
        self_url = str(request.url)
        document: dict[str, Any] = {
            "count": len(page),
            "self": self_url,
            "instances": [instance.document() for instance in page],
        }
        if following is not None:
            token = f"{int(following[0] * 1_000_000)};{following[1]}"
            document["next"] = str(request.url.update_query(continuationToken=token))
        return _json(document)

    def _readable(self, request: web.Request) -> tuple[Caller, Instance]:
        caller = self._caller(request)
        instance = self.fake.instance_of(request)
        if caller.service_owner is not None and self.fake.is_owner_of(caller, instance.app):
            if not caller.has_scope(SO_READ) and not caller.has_scope(SO_WRITE):
                raise AppProblem(403, "Forbidden", f"the token lacks {SO_READ}")
        elif caller.party_org != instance.org_number or not (
            caller.has_scope(READ) or caller.has_scope(WRITE)
        ):
            raise AppProblem(403, "Forbidden", "not authorized for this instance")
        return caller, instance

    async def get(self, request: web.Request) -> web.Response:
        _, instance = self._readable(request)
        return _json(instance.document())

    async def get_data(self, request: web.Request) -> web.StreamResponse:
        _, instance = self._readable(request)
        return await _download(self.fake, instance, request)

    async def complete(self, request: web.Request) -> web.Response:
        fake = self.fake
        caller = self._caller(request)
        instance = fake.instance_of(request)
        if not fake.is_owner_of(caller, instance.app) or not caller.has_scope(SO_WRITE):
            raise AppProblem(403, "Forbidden", "only the app's service owner may confirm the download")
        owner = instance.app.org
        if not any(who == owner for who, _ in instance.confirmations):
            instance.confirmations.append((owner, fake.clock()))
            fake.touch(instance)
        return _json(instance.document())


def _bool(text: str | None) -> bool | None:
    if text is None or text == "":
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    raise AppProblem(400, "Bad Request", f"'{text}' is not a boolean")


def _size(text: str | None) -> int:
    if text is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(text)
    except ValueError:
        raise AppProblem(400, "Bad Request", "size must be an integer") from None
    if size < 1:
        raise AppProblem(400, "Bad Request", "size must be positive")
    return size


def _token(text: str | None) -> tuple[float, int] | None:
    if not text:
        return None
    ticks, _, order = text.partition(";")
    try:
        return int(ticks) / 1_000_000, int(order)
    except ValueError:
        raise AppProblem(400, "Bad Request", "invalid continuationToken") from None


APPS_KEY = web.AppKey("fake_apps", FakeApps)


def install_apps(
    app: web.Application,
    *,
    verifier: TokenVerifier,
    apps: Mapping[str, AppSpec],
    parties: Mapping[str, int],
    storage_dir: Path,
    clock: Clock = time.time,
) -> FakeApps:
    """Add the App API (under ``/apps/{org}``) and Storage routes to ``app``."""
    fake = FakeApps(verifier=verifier, apps=apps, parties=parties, storage_dir=storage_dir, clock=clock)
    routes = _AppRoutes(fake)
    storage = _StorageRoutes(fake)
    base = f"{APPS_PREFIX}/{{host}}/{{org}}/{{app}}"
    item = f"{base}/instances/{{party:\\d+}}/{{guid}}"
    stored = f"{STORAGE}/instances/{{party:\\d+}}/{{guid}}"
    table: list[tuple[str, str, Handler]] = [
        ("GET", f"{base}/api/v1/applicationmetadata", routes.metadata),
        ("POST", f"{base}/instances", routes.create),
        ("GET", item, routes.get),
        ("DELETE", item, routes.delete),
        ("POST", f"{item}/data", routes.add_data),
        ("GET", f"{item}/data/{{data}}", routes.get_data),
        ("GET", f"{item}/process", routes.process),
        ("PUT", f"{item}/process/next", routes.next),
        ("GET", f"{item}/validate", routes.validate),
        ("GET", f"{STORAGE}/instances", storage.query),
        ("GET", stored, storage.get),
        ("GET", f"{STORAGE}/instances/{{guid}}", storage.get),
        ("GET", f"{stored}/data/{{data}}", storage.get_data),
        ("POST", f"{stored}/complete", storage.complete),
    ]
    for method, path, handler in table:
        app.router.add_route(method, path, _guarded(fake, handler.__name__, handler))
    app[APPS_KEY] = fake
    return fake
