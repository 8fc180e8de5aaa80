"""A strict fake of Altinn 3 access management's authorized parties (ALTINN3-API.md section 5).

* ``GET /accessmanagement/api/v1/enduser/authorizedparties`` (end user or system user): scope
  ``altinn:accessmanagement/authorizedparties`` (or ``altinn:portal/enduser``); the token must name a
  user or a system user (``authorization_details`` of type ``urn:altinn:systemuser``), else 401 with
  the JSON string "Unknown user type" (the controller's ``Unauthorized(...)``); a refused token or scope
  is 401/403 with no body (the authorization policy). A standard system user is authorised for its owner organisation: the answer is
  ``{"links": {"next": null}, "data": [AuthorizedPartyDto]}``, a flat list, never paged. ``partyFilter``
  (party UUIDs) narrows it; ``anyOfResourceIds`` keeps parties with one of those resources (unknown
  ids match nothing). The include filters take ``true``/``false``/``auto`` and nothing else.
* ``POST /accessmanagement/api/v1/resourceowner/authorizedparties`` (service owner): scope
  ``altinn:accessmanagement/authorizedparties.resourceowner``; body ``{"type", "value"}`` at the top
  level (what the code binds; the published spec nests a ``subject``), with the subject types the code
  knows; any other type is 400 "Unknown attribute type". The answer is a bare JSON array. ``orgCode``
  must be the caller's own service-owner code (any case; the ``.admin`` scope may name any), else 400.

Confirmed in Altinn/altinn-authorization-tmp (``Api.Enduser/Controllers/AuthorizedPartiesController.cs``:
user id first, then the system user's uuid, else ``Unauthorized("Unknown user type")``; the list wrapped
by ``PaginatedResult.Create(list, null)``) and as summarised in ALTINN3-API.md 5.1/5.2; Altinn's own
request collections post the resource-owner subject as top-level ``type``/``value``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from proxy.sandbox.fixtures import DemoParty
from proxy.sandbox.tokens import Caller, FakeAuthError, TokenVerifier
from proxy.sandbox.wire import read_body, without_nulls

ENDUSER_PATH = "/accessmanagement/api/v1/enduser/authorizedparties"
RESOURCE_OWNER_PATHS = (
    "/accessmanagement/api/v1/resourceowner/authorizedparties",
    "/accessmanagement/api/v1/serviceowner/authorizedparties",
)
ENDUSER_SCOPES = ("altinn:accessmanagement/authorizedparties", "altinn:portal/enduser")
RESOURCE_OWNER_SCOPES = (
    "altinn:accessmanagement/authorizedparties.resourceowner",
    "altinn:accessmanagement/authorizedparties.admin",
)
INCLUDE_FILTERS = ("includePartiesViaKeyRoles", "includeSubParties", "includeInactiveParties")
INCLUDE_FLAGS = ("includeRoles", "includeAccessPackages", "includeResources", "includeInstances")
PERSON = "urn:altinn:person:identifier-no"
ORGANIZATION = "urn:altinn:organization:identifier-no"
PARTY_UUID = "urn:altinn:party:uuid"
PARTY_ID = "urn:altinn:partyid"
#: Subject types the service knows but this fake does not model (answered 404-free with an empty list).
OTHER_KNOWN_TYPES = frozenset(
    {
        "urn:altinn:userid",
        "urn:altinn:systemuser:uuid",
        "urn:altinn:enterpriseuser:username",
        "urn:altinn:person:uuid",
        "urn:altinn:organization:uuid",
        "urn:altinn:person:idporten-email",
        "urn:altinn:person:legacy-selfidentified",
    }
)


class _Problem(Exception):
    def __init__(self, status: int, title: str, detail: str | None = None) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.detail = detail

    def response(self) -> web.Response:
        body = without_nulls(
            {"type": None, "title": self.title, "status": self.status, "detail": self.detail}
        )
        return web.Response(
            status=self.status, text=json.dumps(body), content_type="application/problem+json"
        )


@dataclass
class FakeAuthorizedParties:
    """The parties of the sandbox and who may act for which (state for assertions, too)."""

    verifier: TokenVerifier
    parties: Sequence[DemoParty]
    #: Person national id -> organisation numbers that person may act for (besides herself).
    person_orgs: Mapping[str, Sequence[str]]
    #: Resource ids every organisation of :attr:`parties` has (the sandbox's services).
    resources: Sequence[str]

    def _party(self, *, org: str | None = None, person: str | None = None) -> DemoParty | None:
        for party in self.parties:
            if (org is not None and party.organization_number == org) or (
                person is not None and party.person_id == person
            ):
                return party
        return None

    def enduser(self, caller: Caller, request: web.Request) -> dict[str, Any]:
        """``GET .../enduser/authorizedparties`` for a system user: its owner organisation."""
        _check_filters(request)
        party = self._party(org=caller.party_org)
        found = [party] if party is not None else []
        return {"links": {"next": None}, "data": [self._dto(p) for p in self._narrow(found, request)]}

    def resource_owner(self, caller: Caller, request: web.Request, body: Any) -> list[dict[str, Any]]:
        """``POST .../resourceowner/authorizedparties``: the parties the subject may act for."""
        org_code = request.query.get("orgCode")
        admin = caller.has_scope("altinn:accessmanagement/authorizedparties.admin")
        if (
            org_code is not None
            and not admin
            and org_code.strip().lower() != (caller.service_owner or "").lower()
        ):
            raise _Problem(400, "One or more validation errors occurred.", "orgCode is not the caller's own")
        if not isinstance(body, Mapping) or not body.get("type") or not body.get("value"):
            raise _Problem(400, "One or more validation errors occurred.", "'type' and 'value' are required")
        kind, value = str(body["type"]), str(body["value"])
        if kind == PERSON:
            subject = self._party(person=value)
            found = [] if subject is None else [subject]
            found += [p for o in self.person_orgs.get(value, ()) if (p := self._party(org=o)) is not None]
        elif kind == ORGANIZATION:
            own = self._party(org=value)
            found = [] if own is None else [own]
        elif kind in (PARTY_UUID, PARTY_ID) or kind in OTHER_KNOWN_TYPES:
            found = [p for p in self.parties if value in (p.party_uuid, str(p.party_id))]
        else:
            raise _Problem(400, "Unknown attribute type", f"{kind} is not a subject type")
        filters = body.get("partyFilter") or []
        if filters:
            wanted = {(str(f.get("type")), str(f.get("value"))) for f in filters if isinstance(f, Mapping)}
            found = [p for p in found if any(_matches(p, kind, value) for kind, value in wanted)]
        return [self._dto(p) for p in self._narrow(found, request)]

    def _narrow(self, found: Iterable[DemoParty], request: web.Request) -> list[DemoParty]:
        parties = list(found)
        uuids = request.query.getall("partyFilter", [])
        if uuids:
            parties = [p for p in parties if p.party_uuid in uuids]
        resources = request.query.getall("anyOfResourceIds", [])
        if resources and not set(resources) & set(self.resources):
            return []
        return parties

    def _dto(self, party: DemoParty) -> dict[str, Any]:
        return without_nulls(  # type: ignore[no-any-return]
            {
                "partyUuid": party.party_uuid,
                "name": party.name,
                "organizationNumber": party.organization_number,
                "personId": party.person_id,
                "partyId": party.party_id,
                "type": "Organization" if party.organization_number else "Person",
                "unitType": party.unit_type,
                "isDeleted": False,
                "onlyHierarchyElementWithNoAccess": False,
                "authorizedResources": list(self.resources),
                "authorizedRoles": [],
                "subunits": [],
            }
        )


def _matches(party: DemoParty, kind: str, value: str) -> bool:
    return (
        (kind == ORGANIZATION and party.organization_number == value)
        or (kind == PERSON and party.person_id == value)
        or (kind == PARTY_UUID and party.party_uuid == value)
        or (kind == PARTY_ID and str(party.party_id) == value)
    )


def _check_filters(request: web.Request) -> None:
    for name in INCLUDE_FILTERS:
        value = request.query.get(name)
        if value is not None and value.lower() not in ("true", "false", "auto"):
            raise _Problem(
                400, "One or more validation errors occurred.", f"{name} must be true, false or auto"
            )
    for name in INCLUDE_FLAGS:
        value = request.query.get(name)
        if value is not None and value.lower() not in ("true", "false"):
            raise _Problem(400, "One or more validation errors occurred.", f"{name} must be true or false")


def _caller(verifier: TokenVerifier, request: web.Request, scopes: Sequence[str]) -> Caller:
    try:
        caller = verifier.verify(request.headers.get("Authorization"))
    except FakeAuthError as error:
        raise _Problem(401, "Unauthorized", error.message) from None
    if not any(caller.has_scope(scope) for scope in scopes):
        raise _Problem(403, "Forbidden", f"needs one of the scopes {', '.join(scopes)}")
    return caller


def install_authorized_parties(
    app: web.Application,
    *,
    verifier: TokenVerifier,
    parties: Sequence[DemoParty],
    person_orgs: Mapping[str, Sequence[str]],
    resources: Sequence[str],
) -> FakeAuthorizedParties:
    """Add the authorized-parties routes (end user and resource owner) to ``app``."""
    fake = FakeAuthorizedParties(verifier, parties, person_orgs, resources)

    async def enduser(request: web.Request) -> web.Response:
        try:
            caller = _caller(verifier, request, ENDUSER_SCOPES)
            if caller.system_user_id is None and "urn:altinn:userid" not in caller.claims:
                # The controller's own ``Unauthorized("Unknown user type")``: a JSON string body.
                return web.json_response("Unknown user type", status=401)
            return web.json_response(fake.enduser(caller, request))
        except _Problem as problem:
            return problem.response()

    async def resource_owner(request: web.Request) -> web.Response:
        try:
            caller = _caller(verifier, request, RESOURCE_OWNER_SCOPES)
            if caller.system_user_id is not None:
                raise _Problem(403, "Forbidden", "a system user is not a resource owner")
            raw = await read_body(request)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                raise _Problem(
                    400, "One or more validation errors occurred.", "the body is not JSON"
                ) from None
            return web.json_response(fake.resource_owner(caller, request, body))
        except _Problem as problem:
            return problem.response()

    app.router.add_get(ENDUSER_PATH, enduser)
    for path in RESOURCE_OWNER_PATHS:
        app.router.add_post(path, resource_owner)
    return fake
