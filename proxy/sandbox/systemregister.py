"""A strict fake of Altinn's system register, system-user requests and the vendor's system-user list.

Modelled on Altinn/altinn-authentication (``SystemRegisterController``, ``RequestSystemUserController``,
``RequestSystemUserService``, ``SystemUserService.ValidateRights``):

* Every vendor endpoint needs a Maskinporten token with its scope (register: ``systemregister.write``;
  requests: ``systemuser.request.write`` / ``.read``), and the vendor organisation is the token's
  ``consumer``: a system whose id or ``vendor.ID`` names another organisation is refused, and so is
  reading another vendor's system or request (403/404 as the real controllers answer).
* Registering validates as Altinn does: the id is ``{vendor orgno}_{name}`` without spaces, unknown
  resources, duplicate rights, a client id already bound to another system, non-https redirect URLs.
* A request must name a registered system of the caller, rights that are all among the system's
  rights (full match by resource), at least one right or access package, and a ``redirectUrl`` among
  the system's ``allowedRedirectUrls``. An open request for the same (system, org, externalRef) is
  answered again (200) instead of a second one (201); an existing system user is a problem.
* Requests start ``New``; the customer (the sandbox-only ``/sandbox/customer/...`` endpoints stand in
  for the Altinn portal) approves (``Accepted``: a system user with the request's rights is created, so
  Maskinporten issues tokens for it) or rejects; requests unanswered for 180 days read ``Timedout``.
* The customer can withdraw a right from a system user or delete it; the platform's
  :func:`rights_middleware` then refuses that system user's calls to the API family of the resource
  (403), and Maskinporten refuses grants for a deleted one (MP-303).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from proxy.sandbox.maskinporten import FakeMaskinporten
from proxy.sandbox.tokens import Caller, Clock, FakeAuthError, TokenVerifier, org_from_iso6523
from proxy.sandbox.wire import read_body

BASE = "/authentication/api/v1"
REGISTER_WRITE = "altinn:authentication/systemregister.write"
REQUEST_WRITE = "altinn:authentication/systemuser.request.write"
REQUEST_READ = "altinn:authentication/systemuser.request.read"
RESOURCE = "urn:altinn:resource"
REQUEST_TIMEOUT = timedelta(days=180)
CONFIRM_HOST = "am.ui.sandbox.local"
PAGE_SIZE = 50

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AuthProblem(Exception):
    """A ProblemDetails answer (``code`` as Altinn's ``AUTH-nnnnn`` / ``AUTH.VLD-nnnnn``)."""

    def __init__(self, status: int, title: str, code: str | None = None, detail: str | None = None) -> None:
        super().__init__(title)
        self.status, self.title, self.code, self.detail = status, title, code, detail

    def response(self) -> web.Response:
        """The ``application/problem+json`` answer."""
        body: dict[str, Any] = {"type": None, "title": self.title, "status": self.status}
        if self.code:
            body["code"] = self.code
        if self.detail:
            body["detail"] = self.detail
        return web.json_response(body, status=self.status, content_type="application/problem+json")


def _validation(code: int, title: str, detail: str | None = None) -> AuthProblem:
    return AuthProblem(400, title, f"AUTH.VLD-{code:05d}", detail)


def _problem(status: int, code: int, title: str) -> AuthProblem:
    return AuthProblem(status, title, f"AUTH-{code:05d}")


@dataclass
class SystemUserRequest:
    """A vendor-driven request, as the fake stores it."""

    id: str
    system_id: str
    party_org: str
    external_ref: str
    rights: list[dict[str, Any]]
    access_packages: list[dict[str, Any]]
    redirect_url: str | None
    created: datetime
    status: str = "New"
    integration_title: str | None = None

    def as_json(self, now: datetime) -> dict[str, Any]:
        """``RequestSystemResponse`` (status ``Timedout`` once 180 days have passed unanswered)."""
        status = self.status
        if status == "New" and now - self.created > REQUEST_TIMEOUT:
            status = "Timedout"
        return {
            "id": self.id,
            "externalRef": self.external_ref,
            "systemId": self.system_id,
            "partyOrgNo": self.party_org,
            "rights": self.rights,
            "status": status,
            "redirectUrl": self.redirect_url,
            "confirmUrl": f"https://{CONFIRM_HOST}/accessmanagement/ui/systemuser/request?id={self.id}&DONTCHOOSEREPORTEE=true",
        }


@dataclass
class GrantedSystemUser:
    """A system user and the resources it holds rights to."""

    id: str
    system_id: str
    org: str
    external_ref: str
    resources: set[str]
    created: datetime


@dataclass
class FakeSystemRegister:
    """State of the fake: systems, requests, system users (shared with the fake Maskinporten)."""

    verifier: TokenVerifier
    maskinporten: FakeMaskinporten
    #: Resources that exist in the fake resource register (and may be delegated).
    known_resources: frozenset[str]
    clock: Clock = time.time
    systems: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: dict[str, SystemUserRequest] = field(default_factory=dict)
    users: dict[str, GrantedSystemUser] = field(default_factory=dict)

    def now(self) -> datetime:
        """The injected clock as a UTC datetime."""
        return datetime.fromtimestamp(self.clock(), UTC)

    # -- seeding (the world's fixed state) ---------------------------------------------------------

    def seed_system(self, entry: Mapping[str, Any]) -> None:
        """Register ``entry`` as if the vendor had done it before (no token involved)."""
        self.systems[str(entry["id"])] = {**entry, "isDeleted": False}

    def seed_system_user(self, system_id: str, org: str, resources: Iterable[str]) -> GrantedSystemUser:
        """A system user the customer approved earlier (and the Maskinporten fake issues tokens for)."""
        created = self.maskinporten.add_system_user(system_id, org)
        user = GrantedSystemUser(
            created.systemuser_id, system_id, org, created.external_ref, set(resources), self.now()
        )
        self.users[user.id] = user
        return user

    # -- the customer's side (stands in for the Altinn portal) -------------------------------------

    def approve(self, request_id: str) -> GrantedSystemUser:
        """The customer approves: the request is Accepted and its system user created."""
        request = self._open_request(request_id)
        request.status = "Accepted"
        created = self.maskinporten.add_system_user(
            request.system_id, request.party_org, external_ref=request.external_ref
        )
        user = GrantedSystemUser(
            created.systemuser_id,
            request.system_id,
            request.party_org,
            request.external_ref,
            {value for right in request.rights for value in _resource_values(right)},
            self.now(),
        )
        self.users[user.id] = user
        return user

    def reject(self, request_id: str) -> None:
        """The customer rejects the request."""
        self._open_request(request_id).status = "Rejected"

    def withdraw(self, org: str, resource_id: str) -> GrantedSystemUser:
        """The customer withdraws one right from its system user of our system."""
        user = self.user_of(org)
        if user is None or resource_id not in user.resources:
            raise AuthProblem(404, f"organisation {org} has no system user with a right to {resource_id}")
        user.resources.discard(resource_id)
        return user

    def delete_user(self, org: str) -> None:
        """The customer deletes its system user (Maskinporten then answers MP-303)."""
        user = self.user_of(org)
        if user is None:
            raise AuthProblem(404, f"organisation {org} has no system user")
        del self.users[user.id]
        self.maskinporten.system_users.pop((user.system_id, user.org, user.external_ref), None)

    def user_of(self, org: str) -> GrantedSystemUser | None:
        """The (first) system user of ``org``."""
        return next((u for u in self.users.values() if u.org == org), None)

    def _open_request(self, request_id: str) -> SystemUserRequest:
        request = self.requests.get(request_id)
        if request is None:
            raise _problem(404, 10, "The Id does not refer to a Request in our system.")
        if request.as_json(self.now())["status"] != "New":
            raise AuthProblem(400, f"The request is {request.as_json(self.now())['status']}, not New")
        return request

    # -- authorization --------------------------------------------------------------------------------

    def caller(self, request: web.Request, scope: str) -> Caller:
        """The vendor behind the token; 401 without a valid token, 403 without ``scope``."""
        try:
            caller = self.verifier.verify(request.headers.get("Authorization"))
        except FakeAuthError as error:
            raise AuthProblem(error.status, error.message) from None
        if caller.system_user_id is not None or not caller.has_scope(scope):
            raise AuthProblem(403, f"Forbidden: the token needs the scope {scope} (and no system user)")
        return caller

    def owned_system(self, caller: Caller, system_id: str) -> dict[str, Any]:
        """The caller's live system ``system_id`` (404 unknown, 403 another vendor's)."""
        system = self.systems.get(system_id)
        if system is None or system.get("isDeleted"):
            raise _problem(404, 11, "The Id does not refer to a Registered System.")
        if org_from_iso6523(system["vendor"]) != caller.consumer_org:
            raise AuthProblem(403, "Forbidden: the system belongs to another vendor")
        return system

    # -- validation ------------------------------------------------------------------------------------

    def validate_system(self, caller: Caller, entry: Mapping[str, Any], *, existing: str | None) -> None:
        """Altinn's checks on a new or replaced system register entry."""
        system_id = str(entry.get("id") or "")
        vendor = org_from_iso6523(entry.get("vendor") or {})
        if vendor is None:
            raise _validation(0, "the org number identifier is not valid ISO6523 identifier")
        if vendor != caller.consumer_org:
            raise AuthProblem(403, "Forbidden: vendor.ID is not the organisation of the token")
        if " " in system_id:
            raise _validation(
                13, "System ID cannot have spaces in id (leading, trailing or in between the id)"
            )
        if not system_id.startswith(f"{vendor}_") or len(system_id) <= len(vendor) + 1:
            raise _validation(1, "The system id does not match the format orgnumber_xxxx...")
        if existing is None and system_id in self.systems:
            raise _validation(2, "The system id already exists")
        if existing is not None and system_id != existing:
            raise _validation(12, "The system ID in the request body does not match the system ID in the URL")
        resources = [value for right in entry.get("rights") or () for value in _resource_values(right)]
        if any(not value for value in resources):
            raise _validation(
                9, "One or more resource id is in wrong format. The valid format is urn:altinn:resource"
            )
        unknown = sorted(set(resources) - self.known_resources)
        if unknown:
            raise _validation(
                3,
                "One or more resources specified in rights were not found in Altinn's resource register.",
                "ResourceIds Not Found : " + ", ".join(unknown),
            )
        if len(resources) != len(set(resources)):
            raise _validation(6, "One or more duplicate rights found")
        clients = list(entry.get("clientId") or ())
        if len(clients) != len(set(clients)):
            raise _validation(11, "Request contains duplicate client ids")
        for other_id, other in self.systems.items():
            if (
                other_id != system_id
                and not other.get("isDeleted")
                and set(clients) & set(other.get("clientId") or ())
            ):
                raise _validation(4, "One of the client id is already tagged with an existing system")
        if any(not str(url).startswith("https://") for url in entry.get("allowedRedirectUrls") or ()):
            raise _validation(
                5, "One or more of the redirect urls format is not valid. The valid format is https://xxx.xx"
            )

    def validate_request(self, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
        """Altinn's checks on a new standard request; the caller's system on success."""
        system = self.systems.get(str(body.get("systemId")))
        if (
            system is None
            or system.get("isDeleted")
            or org_from_iso6523(system["vendor"]) != caller.consumer_org
        ):
            raise _problem(404, 11, "The Id does not refer to a Registered System.")
        org = str(body.get("partyOrgNo") or "")
        if not (len(org) == 9 and org.isdigit()):
            raise _problem(400, 20, "The Reportee OrgNo was not found.")
        redirect = body.get("redirectUrl")
        if redirect:
            allowed = [str(url) for url in system.get("allowedRedirectUrls") or ()]
            if not allowed:
                raise _problem(400, 26, "No redirect uris are set for the system")
            if not any(str(redirect).startswith(url) for url in allowed):
                raise _problem(400, 21, "The RedirectUri was not found or not valid.")
        rights = body.get("rights") or []
        packages = body.get("accessPackages") or []
        if not rights and not packages:
            raise _problem(400, 29, "The Request must have at least one Right or AccessPackage")
        system_resources = {
            value for right in system.get("rights") or () for value in _resource_values(right)
        }
        for right in rights:
            values = _resource_values(right)
            if len(values) != 1 or values[0] not in system_resources:
                raise _problem(400, 1, "One or more Right not found or not delegable.")
        system_packages = {p.get("urn") for p in system.get("accessPackages") or ()}
        if any(p.get("urn") not in system_packages for p in packages):
            raise _problem(400, 25, "One or more AccessPackages are not found or not delegable")
        return system


def _resource_values(right: Mapping[str, Any]) -> list[str]:
    return [str(a.get("value") or "") for a in right.get("resource") or () if a.get("id") == RESOURCE]


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_type not in ("application/json", "text/json") and not request.content_type.endswith(
        "+json"
    ):
        raise AuthProblem(415, "Unsupported Media Type")
    try:
        body = json.loads(await read_body(request) or b"null")
    except ValueError:
        raise AuthProblem(
            400, "One or more validation errors occurred.", detail="The body is not JSON"
        ) from None
    if not isinstance(body, dict):
        raise AuthProblem(
            400, "One or more validation errors occurred.", detail="The body must be a JSON object"
        )
    return body


class _Routes:
    def __init__(self, fake: FakeSystemRegister) -> None:
        self.fake = fake

    async def create_system(self, request: web.Request) -> web.Response:
        caller = self.fake.caller(request, REGISTER_WRITE)
        entry = await _json_body(request)
        self.fake.validate_system(caller, entry, existing=None)
        internal = str(uuid.uuid4())
        self.fake.systems[str(entry["id"])] = {**entry, "isDeleted": False, "_internalId": internal}
        return web.json_response(internal)

    async def vendor_systems(self, request: web.Request) -> web.Response:
        caller = self.fake.caller(request, REGISTER_WRITE)
        mine = [
            s
            for s in self.fake.systems.values()
            if org_from_iso6523(s["vendor"]) == caller.consumer_org and not s.get("isDeleted")
        ]
        return web.json_response([_public(s) for s in mine])

    async def get_system(self, request: web.Request) -> web.Response:
        caller = self.fake.caller(request, REGISTER_WRITE)
        return web.json_response(_public(self.fake.owned_system(caller, request.match_info["systemId"])))

    async def replace_system(self, request: web.Request) -> web.Response:
        caller = self.fake.caller(request, REGISTER_WRITE)
        system_id = request.match_info["systemId"]
        current = self.fake.owned_system(caller, system_id)
        entry = await _json_body(request)
        self.fake.validate_system(caller, entry, existing=system_id)
        self.fake.systems[system_id] = {
            **entry,
            "isDeleted": False,
            "_internalId": current.get("_internalId"),
        }
        return web.json_response({"succeeded": True})

    async def system_users(self, request: web.Request) -> web.Response:
        caller = self.fake.caller(request, REGISTER_WRITE)
        system = self.fake.owned_system(caller, request.match_info["systemId"])
        users = sorted(
            (u for u in self.fake.users.values() if u.system_id == system["id"]), key=lambda u: u.created
        )
        page, following = _page(request, users)
        data = [
            {
                "id": u.id,
                "integrationTitle": system["name"].get("nb", system["id"]),
                "systemId": u.system_id,
                "productName": system["id"],
                "reporteeOrgNo": u.org,
                "created": u.created.isoformat(),
                "isDeleted": False,
                "supplierName": "",
                "supplierOrgno": caller.consumer_org,
                "externalRef": u.external_ref,
                "userType": "standard",
            }
            for u in page
        ]
        return web.json_response({"links": {"next": following}, "data": data})

    async def create_request(self, request: web.Request) -> web.Response:
        caller = self.fake.caller(request, REQUEST_WRITE)
        body = await _json_body(request)
        org = str(body.get("partyOrgNo") or "")
        external_ref = str(body.get("externalRef") or org)
        system_id = str(body.get("systemId") or "")
        if any(
            u.system_id == system_id and u.org == org and u.external_ref == external_ref
            for u in self.fake.users.values()
        ):
            raise _problem(400, 5, "The SystemUser already exists")
        now = self.fake.now()
        for existing in self.fake.requests.values():
            same = (existing.system_id, existing.party_org, existing.external_ref) == (
                system_id,
                org,
                external_ref,
            )
            if same and existing.as_json(now)["status"] != "Timedout":
                return web.json_response(existing.as_json(now))  # Altinn answers the open request again
        system = self.fake.validate_request(caller, body)
        created = SystemUserRequest(
            id=str(uuid.uuid4()),
            system_id=system_id,
            party_org=org,
            external_ref=external_ref,
            rights=list(body.get("rights") or []),
            access_packages=list(body.get("accessPackages") or []),
            redirect_url=body.get("redirectUrl"),
            created=now,
            integration_title=body.get("integrationTitle") or system["name"].get("nb"),
        )
        self.fake.requests[created.id] = created
        location = f"{request.url.origin()}{BASE}/systemuser/request/vendor/{created.id}"
        return web.json_response(created.as_json(now), status=201, headers={"Location": location})

    def _owned_request(self, caller: Caller, request_id: str) -> SystemUserRequest:
        found = self.fake.requests.get(request_id)
        if found is None:
            raise _problem(404, 10, "The Id does not refer to a Request in our system.")
        self.fake.owned_system(caller, found.system_id)
        return found

    async def get_request(self, request: web.Request) -> web.Response:
        caller = self.fake.caller(request, REQUEST_READ)
        raw = request.match_info["requestId"]
        try:
            uuid.UUID(raw)
        except ValueError:
            raise AuthProblem(
                400, "One or more validation errors occurred.", detail="requestId is not a UUID"
            ) from None
        return web.json_response(self._owned_request(caller, raw).as_json(self.fake.now()))

    async def request_by_external_ref(self, request: web.Request) -> web.Response:
        caller = self.fake.caller(request, REQUEST_READ)
        info = request.match_info
        self.fake.owned_system(caller, info["systemId"])
        for found in self.fake.requests.values():
            if (found.system_id, found.party_org, found.external_ref) == (
                info["systemId"],
                info["orgNo"],
                info["externalRef"],
            ):
                return web.json_response(found.as_json(self.fake.now()))
        raise _problem(404, 10, "The Id does not refer to a Request in our system.")

    async def requests_by_system(self, request: web.Request) -> web.Response:
        caller = self.fake.caller(request, REQUEST_READ)
        system = self.fake.owned_system(caller, request.match_info["systemId"])
        found = sorted(
            (r for r in self.fake.requests.values() if r.system_id == system["id"]), key=lambda r: r.created
        )
        page, following = _page(request, found)
        return web.json_response(
            {"links": {"next": following}, "data": [r.as_json(self.fake.now()) for r in page]}
        )

    async def delete_request(self, request: web.Request) -> web.Response:
        caller = self.fake.caller(request, REQUEST_WRITE)
        found = self._owned_request(caller, request.match_info["requestId"])
        del self.fake.requests[found.id]
        return web.json_response(found.as_json(self.fake.now()))

    # -- the customer (sandbox only) -------------------------------------------------------------------

    async def customer_decides(self, request: web.Request) -> web.Response:
        request_id, decision = request.match_info["requestId"], request.match_info["decision"]
        if decision == "approve":
            user = self.fake.approve(request_id)
            return web.json_response({"status": "Accepted", "systemUserId": user.id})
        self.fake.reject(request_id)
        return web.json_response({"status": "Rejected"})

    async def customer_withdraws(self, request: web.Request) -> web.Response:
        user = self.fake.withdraw(request.match_info["org"], request.match_info["resourceId"])
        return web.json_response({"systemUserId": user.id, "resources": sorted(user.resources)})

    async def customer_deletes(self, request: web.Request) -> web.Response:
        self.fake.delete_user(request.match_info["org"])
        return web.json_response({"deleted": True})

    async def customer_view(self, request: web.Request) -> web.Response:
        now = self.fake.now()
        return web.json_response(
            {
                "requests": [r.as_json(now) for r in self.fake.requests.values()],
                "systemUsers": [
                    {
                        "id": u.id,
                        "org": u.org,
                        "externalRef": u.external_ref,
                        "resources": sorted(u.resources),
                    }
                    for u in self.fake.users.values()
                ],
            }
        )


def _page(request: web.Request, items: list[Any]) -> tuple[list[Any], str | None]:
    """One page of ``items`` from the opaque ``token`` query parameter, and the next page's URL."""
    try:
        start = int(request.query.get("token", "0"))
    except ValueError:
        raise AuthProblem(
            400, "One or more validation errors occurred.", detail="invalid continuation token"
        ) from None
    end = start + PAGE_SIZE
    following = str(request.url.with_query(token=str(end))) if end < len(items) else None
    return items[start:end], following


def _public(system: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in system.items() if not key.startswith("_")}


def _problems_as_responses(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except AuthProblem as problem:
            return problem.response()

    return wrapped


#: Path prefixes of the customer's stand-in endpoints (not part of Altinn's API).
CUSTOMER_BASE = "/sandbox/customer"


def install_system_register(
    app: web.Application,
    *,
    verifier: TokenVerifier,
    maskinporten: FakeMaskinporten,
    known_resources: Iterable[str],
    clock: Clock = time.time,
) -> FakeSystemRegister:
    """Add the system register, request and system-user list routes (and the customer's) to ``app``."""
    fake = FakeSystemRegister(verifier, maskinporten, frozenset(known_resources), clock)
    routes = _Routes(fake)
    table: list[tuple[str, str, Handler]] = [
        ("POST", f"{BASE}/systemregister/vendor", routes.create_system),
        ("GET", f"{BASE}/systemregister/vendor", routes.vendor_systems),
        ("GET", f"{BASE}/systemregister/vendor/{{systemId}}", routes.get_system),
        ("PUT", f"{BASE}/systemregister/vendor/{{systemId}}", routes.replace_system),
        ("GET", f"{BASE}/systemuser/vendor/bysystem/{{systemId}}", routes.system_users),
        ("POST", f"{BASE}/systemuser/request/vendor", routes.create_request),
        ("GET", f"{BASE}/systemuser/request/vendor/bysystem/{{systemId}}", routes.requests_by_system),
        (
            "GET",
            f"{BASE}/systemuser/request/vendor/byexternalref/{{systemId}}/{{orgNo}}/{{externalRef}}",
            routes.request_by_external_ref,
        ),
        ("GET", f"{BASE}/systemuser/request/vendor/{{requestId}}", routes.get_request),
        ("DELETE", f"{BASE}/systemuser/request/vendor/{{requestId}}", routes.delete_request),
        (
            "POST",
            f"{CUSTOMER_BASE}/requests/{{requestId}}/{{decision:approve|reject}}",
            routes.customer_decides,
        ),
        ("POST", f"{CUSTOMER_BASE}/{{org:[0-9]{{9}}}}/withdraw/{{resourceId}}", routes.customer_withdraws),
        ("DELETE", f"{CUSTOMER_BASE}/{{org:[0-9]{{9}}}}/systemuser", routes.customer_deletes),
        ("GET", f"{CUSTOMER_BASE}", routes.customer_view),
    ]
    for method, path, handler in table:
        app.router.add_route(method, path, _problems_as_responses(handler))
    return fake


def rights_middleware(
    fake_register: Callable[[], FakeSystemRegister | None], families: Mapping[str, frozenset[str]]
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Refuse (403) a system user's call to an API family whose resources it holds no right to.

    ``families`` maps a path prefix (``/broker/``) to the resources served under it. A coarse
    stand-in for Altinn's PDP, which decides per resource: enough to make a withdrawn right show.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        register = fake_register()
        prefix = next((p for p in families if request.path.startswith(p)), None)
        if register is None or prefix is None:
            return await handler(request)
        try:
            caller = register.verifier.verify(request.headers.get("Authorization"))
        except FakeAuthError:
            return await handler(request)  # the API answers its own 401
        user = register.users.get(caller.system_user_id or "")
        if caller.system_user_id is not None and (user is None or not user.resources & families[prefix]):
            return AuthProblem(
                403, "Forbidden", detail="The system user has no right to this resource"
            ).response()
        return await handler(request)

    return middleware
