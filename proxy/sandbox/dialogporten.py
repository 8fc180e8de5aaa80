"""A strict, stateful fake of the Dialogporten end-user API (``/dialogporten/api/v1/enduser``).

Only what replaces the Altinn 2 message box is served (ALTINN3-API.md section 9):

* ``GET /dialogs``: the search, with the filters, date ranges (explicit time zone required), ``limit``
  (1-1000, default 100) and continuation-token paging of ``openapi.v1.enduser.verified.json``,
  ordered by ``contentUpdatedAt`` then ``id``, both descending (the API's default order).
* ``GET /dialogs/{dialogId}``: the whole ``Dialog``, with the ``apiActions``, ``guiActions``,
  ``attachments`` and ``content.mainContentReference`` that the Correspondence service gives the dialogs
  it creates (their URLs point into the Correspondence API, on the origin the dialog was asked on:
  the fakes share one platform app). Like the real API, the end user's GET records that the dialog
  was seen; it never changes the correspondence's own status.
* ``PUT /dialogs/{dialogId}/context/systemlabels``: ``Archive``/``Bin``/``Default`` are mutually
  exclusive, ``MarkedAsUnopened`` is independent; ``If-Match`` is checked against the revision.

Tokens: raw Maskinporten or exchanged, with ``digdir:dialogporten``, issued for a system user. A
system user is authorised for exactly one party, its customer organisation: parties it asks for that
are not its own are left out of the search (the real API only searches authorised parties), and
another party's dialog answers 403.

Dialogs are created by the fake Correspondence API when it publishes (as the real Correspondence
service does) and follow the correspondence's status through
:meth:`FakeDialogporten.correspondence_status_changed`.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from proxy.sandbox.correspondence_model import Correspondence, Status
from proxy.sandbox.tokens import Caller, Clock, FakeAuthError, TokenVerifier
from proxy.sandbox.wire import read_body, without_nulls

BASE = "/dialogporten/api/v1/enduser"
SCOPE = "digdir:dialogporten"
ORG_URN = "urn:altinn:organization:identifier-no:"
PERSON_URN = "urn:altinn:person:identifier-no:"
RESOURCE_URN = "urn:altinn:resource:"
DIALOG_STATUSES = frozenset(
    {"InProgress", "Draft", "RequiresAttention", "Completed", "NotApplicable", "Awaiting"}
)
SYSTEM_LABELS = frozenset({"Default", "Bin", "Archive", "MarkedAsUnopened", "Sent"})
#: Labels of which a dialog has exactly one; setting one replaces the others.
EXCLUSIVE_LABELS = frozenset({"Default", "Bin", "Archive"})
ORDER_BY = "contentupdatedat_desc,id_desc"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_DATE_FILTERS = {
    "createdAfter": ("created", True),
    "createdBefore": ("created", False),
    "updatedAfter": ("updated", True),
    "updatedBefore": ("updated", False),
    "contentUpdatedAfter": ("content_updated", True),
    "contentUpdatedBefore": ("content_updated", False),
    "dueAfter": ("due", True),
    "dueBefore": ("due", False),
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class DialogProblem(Exception):
    """A refusal rendered as Dialogporten's ``application/problem+json`` (``None`` detail: no body)."""

    def __init__(
        self, status: int, detail: str | None, *, errors: Mapping[str, list[str]] | None = None
    ) -> None:
        super().__init__(detail or str(status))
        self.status = status
        self.detail = detail
        self.errors = errors

    def response(self) -> web.Response:
        """The HTTP answer."""
        if self.detail is None:
            return web.Response(status=self.status)
        body: dict[str, Any] = {"title": _TITLES.get(self.status, "Error"), "status": self.status}
        body["detail"] = self.detail
        if self.errors:
            body["type"] = "https://tools.ietf.org/html/rfc9110#section-15.5.1"
            body["title"] = "One or more validation errors occurred."
            body["errors"] = dict(self.errors)
        return web.Response(
            status=self.status, body=json.dumps(body).encode(), content_type="application/problem+json"
        )


_TITLES = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 412: "Precondition Failed"}


def _invalid(name: str, message: str) -> DialogProblem:
    return DialogProblem(400, message, errors={name: [message]})


@dataclass(frozen=True)
class Activity:
    """A dialog activity (only the types the correspondence flow produces)."""

    id: uuid.UUID
    type: str
    at: datetime
    by_service_owner: bool


@dataclass(frozen=True)
class DialogAttachment:
    """A correspondence attachment as the dialog shows it (downloaded through the Correspondence API)."""

    id: uuid.UUID
    name: str


@dataclass
class Dialog:
    """One dialog in the fake's store."""

    id: uuid.UUID
    org: str
    service_resource: str
    party: str
    title: str
    summary: str | None
    sender_name: str | None
    language: str
    created: datetime
    updated: datetime
    content_updated: datetime
    due: datetime | None
    status: str
    attachments: tuple[DialogAttachment, ...] = ()
    correspondence_id: uuid.UUID | None = None
    senders_reference: str | None = None
    needs_confirmation: bool = False
    system_labels: set[str] = field(default_factory=lambda: {"Default"})
    revision: uuid.UUID = field(default_factory=uuid.uuid4)
    seen_at: datetime | None = None
    activities: list[Activity] = field(default_factory=list)
    deleted: bool = False

    def touch(self, at: datetime) -> None:
        """Record a change: new revision, new ``updatedAt``."""
        self.updated = max(self.updated, at)
        self.revision = uuid.uuid4()

    def list_item(self, viewer_party: str) -> dict[str, Any]:
        """``DialogListItem``."""
        latest = self.activities[-1] if self.activities else None
        return {
            **self._summary(viewer_party),
            "guiAttachmentCount": len(self.attachments),
            "latestActivity": _activity(latest, viewer_party) if latest else None,
            "content": self._content(),
        }

    def details(self, viewer_party: str, origin: str) -> dict[str, Any]:
        """``Dialog``: the summary plus the actions, attachments and activities (URLs under ``origin``)."""
        item = f"{origin}/correspondence/api/v1/correspondence/{self.correspondence_id}"
        return {
            **self._summary(viewer_party),
            "revision": str(self.revision),
            "expiresAt": None,
            "dialogToken": None,
            "content": {
                **self._content(),
                "mainContentReference": {
                    "value": [{"value": f"{item}/content", "languageCode": self.language}],
                    "mediaType": "application/vnd.dialogporten.frontchannelembed+json;type=markdown",
                },
            },
            "attachments": [
                {
                    "id": str(attachment.id),
                    "displayName": [{"value": attachment.name, "languageCode": self.language}],
                    "urls": [
                        {
                            "id": str(uuid.uuid5(attachment.id, "url")),
                            "url": f"{item}/attachment/{attachment.id}/download",
                            "consumerType": "Gui",
                            "mediaType": "application/octet-stream",
                        }
                    ],
                }
                for attachment in self.attachments
            ],
            "apiActions": [
                self._api_action(action, method, url)
                for action, method, url in (
                    ("write", "POST", f"{item}/confirm"),
                    ("write", "DELETE", f"{item}/purge"),
                    ("write", "POST", f"{item}/markasread"),
                    ("read", "GET", item),
                    ("read", "GET", f"{item}/details"),
                    *(
                        ("read", "GET", f"{item}/attachment/{attachment.id}/download")
                        for attachment in self.attachments
                    ),
                )
            ],
            "guiActions": [
                self._gui_action(title, method, url, priority)
                for title, method, url, priority in (
                    *(
                        (("Bekreft", "POST", f"{item}/confirm", "Primary"),)
                        if self.needs_confirmation
                        else ()
                    ),
                    ("Slett", "DELETE", f"{item}/purge", "Tertiary"),
                )
            ],
            "activities": [_activity(activity, viewer_party) for activity in self.activities],
            "transmissions": [],
        }

    def _summary(self, viewer_party: str) -> dict[str, Any]:
        """The members a ``DialogListItem`` and a ``Dialog`` share."""
        seen = (
            [
                {
                    "id": str(uuid.uuid5(self.id, "seen")),
                    "seenAt": _iso(self.seen_at),
                    "seenBy": {"actorType": "PartyRepresentative", "actorId": viewer_party},
                    "isViaServiceOwner": False,
                    "isCurrentEndUser": True,
                }
            ]
            if self.seen_at is not None
            else []
        )
        return {
            "id": str(self.id),
            "org": self.org,
            "serviceResource": self.service_resource,
            "serviceResourceType": "CorrespondenceService",
            "party": self.party,
            "progress": None,
            "process": None,
            "precedingProcess": None,
            "extendedStatus": None,
            "externalReference": self.senders_reference,
            "createdAt": _iso(self.created),
            "updatedAt": _iso(self.updated),
            "contentUpdatedAt": _iso(self.content_updated),
            "dueAt": _iso(self.due) if self.due else None,
            "status": self.status,
            "hasUnopenedContent": False,
            "fromServiceOwnerTransmissionsCount": 0,
            "fromPartyTransmissionsCount": 0,
            "isApiOnly": False,
            "isContentSeen": self.seen_at is not None and "MarkedAsUnopened" not in self.system_labels,
            "systemLabel": self._primary_label(),
            "endUserContext": {"revision": str(self.revision), "systemLabels": sorted(self.system_labels)},
            "seenSinceLastUpdate": seen,
            "seenSinceLastContentUpdate": seen,
        }

    def _content(self) -> dict[str, Any]:
        return {
            "title": _text(self.title, self.language),
            "summary": _text(self.summary, self.language) if self.summary else None,
            "senderName": _text(self.sender_name, self.language) if self.sender_name else None,
        }

    def _api_action(self, action: str, method: str, url: str) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid5(self.id, f"api {method} {url}")),
            "action": action,
            "isAuthorized": True,
            "endpoints": [
                {
                    "id": str(uuid.uuid5(self.id, f"endpoint {method} {url}")),
                    "httpMethod": method,
                    "url": url,
                    "deprecated": False,
                }
            ],
        }

    def _gui_action(self, title: str, method: str, url: str, priority: str) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid5(self.id, f"gui {method} {url}")),
            "action": "read",
            "url": url,
            "httpMethod": method,
            "priority": priority,
            "isAuthorized": True,
            "isDeleteDialogAction": method == "DELETE",
            "title": [{"value": title, "languageCode": self.language}],
        }

    def _primary_label(self) -> str:
        return next((label for label in ("Bin", "Archive") if label in self.system_labels), "Default")


def _activity(activity: Activity, viewer_party: str) -> dict[str, Any]:
    return {
        "id": str(activity.id),
        "createdAt": _iso(activity.at),
        "type": activity.type,
        "performedBy": {
            "actorType": "ServiceOwner" if activity.by_service_owner else "PartyRepresentative",
            "actorId": None if activity.by_service_owner else viewer_party,
        },
    }


def _text(value: str, language: str) -> dict[str, Any]:
    return {"value": [{"value": value, "languageCode": language}], "mediaType": "text/plain"}


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


@dataclass
class FakeDialogporten:
    """The fake's state and operations; :func:`install_dialogporten` wires it onto an app."""

    verifier: TokenVerifier
    clock: Clock = time.time
    dialogs: dict[uuid.UUID, Dialog] = field(default_factory=dict)

    def now(self) -> datetime:
        """The injected clock as an aware UTC datetime."""
        return datetime.fromtimestamp(self.clock(), UTC)

    # -- the Correspondence side -------------------------------------------------------------------

    def create_correspondence_dialog(
        self, correspondence: Correspondence, *, service_owner: str, at: datetime
    ) -> uuid.UUID:
        """Create the recipient's dialog for a published correspondence; returns the dialog id."""
        content = correspondence.request.get("content") or {}
        due = correspondence.request.get("dueDateTime")
        needs_confirmation = bool(correspondence.request.get("isConfirmationNeeded"))
        dialog = Dialog(
            id=uuid.uuid4(),
            org=service_owner,
            service_resource=RESOURCE_URN + correspondence.resource_id,
            party=correspondence.recipient,
            title=content.get("messageTitle") or "",
            summary=content.get("messageSummary") or None,
            sender_name=correspondence.request.get("messageSender"),
            language=content.get("language") or "nb",
            created=at,
            updated=at,
            content_updated=at,
            due=datetime.fromisoformat(due) if due else None,
            status="RequiresAttention" if needs_confirmation else "NotApplicable",
            attachments=tuple(
                DialogAttachment(a.id, a.display_name or a.file_name or str(a.id))
                for a in correspondence.attachments
            ),
            correspondence_id=correspondence.id,
            senders_reference=correspondence.request.get("sendersReference"),
            needs_confirmation=needs_confirmation,
        )
        dialog.activities.append(Activity(uuid.uuid4(), "DialogCreated", at, by_service_owner=True))
        self.dialogs[dialog.id] = dialog
        return dialog.id

    def correspondence_status_changed(self, dialog_id: uuid.UUID, status: Status, at: datetime) -> None:
        """Mirror a correspondence status onto its dialog (seen, opened, confirmed, deleted)."""
        dialog = self.dialogs.get(dialog_id)
        if dialog is None:
            return
        if status is Status.Fetched:
            dialog.seen_at = dialog.seen_at or at
        elif status is Status.Read:
            dialog.activities.append(
                Activity(uuid.uuid4(), "CorrespondenceOpened", at, by_service_owner=False)
            )
        elif status is Status.Confirmed:
            dialog.activities.append(
                Activity(uuid.uuid4(), "CorrespondenceConfirmed", at, by_service_owner=False)
            )
            dialog.status = "Completed"
        elif status is Status.PurgedByRecipient:
            dialog.deleted = True
        dialog.touch(at)

    # -- tokens ------------------------------------------------------------------------------------

    def authenticate(self, request: web.Request) -> Caller:
        """A system user's token with ``digdir:dialogporten`` (401 without a valid token, 403 otherwise)."""
        try:
            caller = self.verifier.verify(request.headers.get("Authorization"))
        except FakeAuthError:
            raise DialogProblem(401, None) from None
        if not caller.has_scope(SCOPE) or caller.system_user_id is None:
            raise DialogProblem(403, None)
        return caller

    # -- search ------------------------------------------------------------------------------------

    def search(
        self, caller: Caller, query: Mapping[str, Any], getall: Callable[[str], list[str]]
    ) -> dict[str, Any]:
        """``GET /dialogs``: a ``PaginatedListOfDialogListItem`` for the caller's authorised party."""
        own_party = ORG_URN + caller.party_org
        parties = {_party(value) for value in getall("party")}
        searched = {own_party} & parties if parties else {own_party}
        resources = set(getall("serviceResource"))
        for resource in resources:
            if not resource.startswith(RESOURCE_URN) or resource == RESOURCE_URN:
                raise _invalid("serviceResource", f"'{resource}' is not a {RESOURCE_URN}<id> reference.")
        statuses = set(getall("status"))
        if statuses - DIALOG_STATUSES:
            raise _invalid("status", f"Unknown status: {', '.join(sorted(statuses - DIALOG_STATUSES))}.")
        labels = set(getall("systemLabel"))
        if labels - SYSTEM_LABELS:
            raise _invalid(
                "systemLabel", f"Unknown system label: {', '.join(sorted(labels - SYSTEM_LABELS))}."
            )
        orgs = set(getall("org"))
        bounds = {name: _zoned_time(query[name], name) for name in _DATE_FILTERS if query.get(name)}
        limit = _limit(query.get("limit"))
        order_by = (query.get("orderBy") or ORDER_BY).lower()
        if order_by not in {ORDER_BY, "contentupdatedat_desc", "contentupdatedat"}:
            raise _invalid("orderBy", f"The fake orders by '{ORDER_BY}' only.")
        after = _decode_token(query["continuationToken"]) if query.get("continuationToken") else None
        seen_filter = _boolean(query.get("isContentSeen"), "isContentSeen")
        needle = (query.get("search") or "").lower()

        def matches(dialog: Dialog) -> bool:
            item_seen = dialog.seen_at is not None and "MarkedAsUnopened" not in dialog.system_labels
            return (
                not dialog.deleted
                and dialog.party in searched
                and (not resources or dialog.service_resource in resources)
                and (not statuses or dialog.status in statuses)
                and (not orgs or dialog.org in orgs)
                and (not labels or bool(labels & dialog.system_labels))
                and (seen_filter is None or item_seen is seen_filter)
                and (not needle or needle in f"{dialog.title} {dialog.summary or ''}".lower())
                and _within(dialog, bounds)
            )

        ordered = sorted(
            (d for d in self.dialogs.values() if matches(d)),
            key=lambda d: (d.content_updated, d.id.hex),
            reverse=True,
        )
        if after is not None:
            ordered = [d for d in ordered if (d.content_updated, d.id.hex) < after]
        page = ordered[:limit]
        has_next = len(ordered) > limit
        return {
            "items": [without_nulls(dialog.list_item(caller.party_org)) for dialog in page],
            "hasNextPage": has_next,
            "continuationToken": _encode_token(page[-1]) if has_next else None,
            "orderBy": ORDER_BY,
        }

    def get(self, caller: Caller, raw_id: str, origin: str) -> dict[str, Any]:
        """``GET /dialogs/{id}``: the ``Dialog``; records that the caller's party has seen it."""
        dialog = self._own_dialog(caller, raw_id)
        dialog.seen_at = dialog.seen_at or self.now()
        return without_nulls(dialog.details(caller.party_org, origin))  # type: ignore[no-any-return]

    def _own_dialog(self, caller: Caller, raw_id: str) -> Dialog:
        """The live dialog ``raw_id`` of the caller's party (404 unknown or deleted, 403 another party's)."""
        try:
            dialog = self.dialogs.get(uuid.UUID(raw_id))
        except ValueError:
            dialog = None
        if dialog is None or dialog.deleted:
            raise DialogProblem(404, f"Dialog with key '{raw_id}' not found.")
        if dialog.party != ORG_URN + caller.party_org:
            raise DialogProblem(403, None)
        return dialog

    def set_system_labels(
        self, caller: Caller, raw_id: str, payload: object, if_match: str | None
    ) -> uuid.UUID:
        """``PUT /dialogs/{id}/context/systemlabels``; returns the new revision."""
        dialog = self._own_dialog(caller, raw_id)
        if if_match and if_match.strip('"') != str(dialog.revision):
            raise DialogProblem(412, "The supplied If-Match header did not match the current revision.")
        if not isinstance(payload, Mapping):
            raise _invalid("$", "The body must be a SetDialogSystemLabelRequest object.")
        add = _labels(payload.get("addLabels") or payload.get("systemLabels") or [], "addLabels")
        remove = _labels(payload.get("removeLabels") or [], "removeLabels")
        if "Sent" in add | remove:
            raise _invalid("addLabels", "The 'Sent' label is set by Dialogporten and cannot be changed.")
        if len(add & EXCLUSIVE_LABELS) > 1:
            raise _invalid("addLabels", "Only one of Default, Bin and Archive can be added.")
        labels = set(dialog.system_labels)
        if add & EXCLUSIVE_LABELS:
            labels -= EXCLUSIVE_LABELS
        labels |= add
        labels -= remove
        if not labels & EXCLUSIVE_LABELS:
            labels.add("Default")
        dialog.system_labels = labels
        dialog.touch(self.now())
        return dialog.revision


def _party(value: str) -> str:
    digits = value.removeprefix(ORG_URN).removeprefix(PERSON_URN)
    valid = digits.isdigit() and (
        (value.startswith(ORG_URN) and len(digits) == 9)
        or (value.startswith(PERSON_URN) and len(digits) == 11)
    )
    if not valid:
        raise _invalid("party", f"'{value}' is not {ORG_URN}<orgno> or {PERSON_URN}<ssn>.")
    return value


def _zoned_time(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _invalid(name, f"'{value}' is not a date-time.") from None
    if parsed.tzinfo is None:
        raise _invalid(name, f"'{value}' has no time zone; Dialogporten needs an explicit offset or Z.")
    return parsed


def _within(dialog: Dialog, bounds: Mapping[str, datetime]) -> bool:
    for name, limit in bounds.items():
        attribute, is_lower = _DATE_FILTERS[name]
        moment = getattr(dialog, attribute)
        if moment is None or (moment <= limit if is_lower else moment >= limit):
            return False
    return True


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise _invalid("limit", f"'{raw}' is not a number.") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise _invalid("limit", f"limit must be between 1 and {MAX_LIMIT}.")
    return limit


def _boolean(raw: str | None, name: str) -> bool | None:
    if raw is None or raw == "":
        return None
    if raw.lower() not in {"true", "false"}:
        raise _invalid(name, f"'{raw}' is not true or false.")
    return raw.lower() == "true"


def _labels(values: Iterable[object], name: str) -> set[str]:
    labels = {str(v) for v in values}
    if labels - SYSTEM_LABELS:
        raise _invalid(name, f"Unknown system label: {', '.join(sorted(labels - SYSTEM_LABELS))}.")
    return labels


def _encode_token(dialog: Dialog) -> str:
    raw = f"contentupdatedat_{dialog.content_updated.astimezone(UTC).isoformat()},id_{dialog.id.hex}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_token(token: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        moment, ident = raw.split(",")
        return datetime.fromisoformat(moment.removeprefix("contentupdatedat_")), uuid.UUID(
            ident.removeprefix("id_")
        ).hex
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _invalid("continuationToken", "Invalid continuation token.") from None


async def _read_json(request: web.Request) -> object:
    raw = await read_body(request)
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _invalid("$", "The body is not valid JSON.") from None


def _problems_as_responses(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except DialogProblem as problem:
            return problem.response()

    return wrapped


DIALOGPORTEN_KEY = web.AppKey("fake_dialogporten", FakeDialogporten)


def install_dialogporten(
    app: web.Application, *, verifier: TokenVerifier, clock: Clock = time.time
) -> FakeDialogporten:
    """Add the Dialogporten end-user routes to ``app`` (served behind the observing middleware)."""
    fake = FakeDialogporten(verifier=verifier, clock=clock)

    async def search(request: web.Request) -> web.Response:
        caller = fake.authenticate(request)
        return web.json_response(
            fake.search(caller, request.query, lambda name: list(request.query.getall(name, [])))
        )

    async def get_dialog(request: web.Request) -> web.Response:
        caller = fake.authenticate(request)
        origin = str(request.url.origin())
        return web.json_response(fake.get(caller, request.match_info["dialogId"], origin))

    async def set_labels(request: web.Request) -> web.Response:
        caller = fake.authenticate(request)
        payload = await _read_json(request)
        revision = fake.set_system_labels(
            caller, request.match_info["dialogId"], payload, request.headers.get("If-Match")
        )
        return web.Response(status=204, headers={"Etag": str(revision)})

    app.router.add_get(f"{BASE}/dialogs", _problems_as_responses(search))
    app.router.add_get(f"{BASE}/dialogs/{{dialogId}}", _problems_as_responses(get_dialog))
    app.router.add_put(
        f"{BASE}/dialogs/{{dialogId}}/context/systemlabels", _problems_as_responses(set_labels)
    )
    app[DIALOGPORTEN_KEY] = fake
    return fake
