"""``system request`` and ``system status``: one system user per customer organisation.

A customer organisation is *configured* when a legacy caller in the credentials file may act for it
(an end-user system's ``orgs``); its system user is the one of our system with that organisation and
the configured ``externalRef`` (default: the organisation number, as Altinn defaults it).

Status is read from Altinn, never assumed: our system's system-user list finds a system user however
it was created (vendor request or the customer's portal), the request list tells pending, rejected
and expired requests apart, and a token is asked for each organisation so that what Maskinporten says
(e.g. MP-303) is shown next to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from proxy.errors import ConfigurationError, TokenError, TokenRefused
from proxy.identity.credentials import CredentialBook
from proxy.identity.principal import CallerKind
from proxy.maskinporten.request import TokenRequest, TokenSource
from proxy.onboarding.api import AuthenticationApi
from proxy.onboarding.memory import SentRequest
from proxy.onboarding.rights import Right, rights_key
from proxy.onboarding.states import State

#: Altinn's RequestStatus values and what each means for the organisation.
_REQUEST_STATES = {
    "New": State.PENDING,
    "Rejected": State.REJECTED,
    "Denied": State.REJECTED,
    "Timedout": State.EXPIRED,
}


@dataclass(frozen=True)
class Customer:
    """A configured customer organisation and the legacy callers acting for it."""

    org: str
    external_ref: str
    callers: tuple[str, ...]


@dataclass(frozen=True)
class CustomerStatus:
    """One line of ``system status``."""

    customer: Customer
    state: State
    system_user_id: str | None = None
    request: SentRequest | None = None
    missing_rights: tuple[str, ...] = ()
    #: What Maskinporten answered to a system-user grant for the organisation (``ok``, ``refused MP-303``).
    grant: str = "not tried"

    @property
    def ready(self) -> bool:
        """True when the organisation can be served."""
        return self.state is State.READY

    def as_json(self) -> dict[str, Any]:
        """The line for ``--json``."""
        request = self.request
        return {
            "org": self.customer.org,
            "externalRef": self.customer.external_ref,
            "callers": list(self.customer.callers),
            "state": str(self.state),
            "ready": self.ready,
            "systemUserId": self.system_user_id,
            "request": None
            if request is None
            else {
                "id": request.request_id,
                "status": request.status,
                "confirmUrl": request.confirm_url,
                "created": request.created,
            },
            "missingRights": list(self.missing_rights),
            "token": self.grant,
        }

    def line(self) -> str:
        """The human-readable line."""
        parts = [f"{self.customer.org:<10} {self.state!s:<15}"]
        if self.system_user_id:
            parts.append(f"system user {self.system_user_id}")
        if self.request is not None and self.state is not State.READY:
            parts.append(f"request {self.request.status} since {self.request.created[:10]}")
            if self.state is State.PENDING and self.request.confirm_url:
                parts.append(f"approve at {self.request.confirm_url}")
        if self.missing_rights:
            parts.append("missing rights: " + ", ".join(self.missing_rights))
        parts.append(f"token: {self.grant}")
        parts.append("callers: " + ", ".join(self.customer.callers))
        return "  ".join(parts)


def configured_customers(book: CredentialBook) -> list[Customer]:
    """Every (organisation, externalRef) an end-user system caller may act for, sorted."""
    callers: dict[tuple[str, str], list[str]] = {}
    for caller_id, entry in book.callers.items():
        principal = entry.principal
        if principal.kind is not CallerKind.END_USER_SYSTEM:
            continue
        for grant in principal.orgs.values():
            callers.setdefault((grant.org, grant.external_ref or grant.org), []).append(caller_id)
    return [Customer(org, ref, tuple(sorted(names))) for (org, ref), names in sorted(callers.items())]


def request_body(
    system_id: str,
    org: str,
    rights: Sequence[Right],
    access_packages: Sequence[str],
    *,
    external_ref: str | None = None,
    redirect_url: str | None = None,
) -> dict[str, Any]:
    """The ``CreateRequestSystemUser`` for ``org`` with exactly ``rights`` (and access packages)."""
    if not rights and not access_packages:
        raise ConfigurationError(
            "no routed service needs a system user (no rights derived) and system.access_packages is empty: "
            "there is nothing to request",
            location="routing",
        )
    body: dict[str, Any] = {
        "systemId": system_id,
        "partyOrgNo": org,
        "rights": [r.as_altinn() for r in rights],
    }
    if access_packages:
        body["accessPackages"] = [{"urn": urn} for urn in access_packages]
    if external_ref:
        body["externalRef"] = external_ref
    if redirect_url:
        body["redirectUrl"] = redirect_url
    return body


def sent_request(answer: Mapping[str, Any], now: datetime | None = None) -> SentRequest:
    """What to remember of Altinn's ``RequestSystemResponse``."""
    created = answer.get("created")
    if not isinstance(created, str) or not created or created.startswith("0001-"):
        created = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    return SentRequest(
        org=str(answer["partyOrgNo"]),
        request_id=str(answer["id"]),
        external_ref=str(answer.get("externalRef") or answer["partyOrgNo"]),
        status=str(answer.get("status") or "New"),
        confirm_url=str(answer.get("confirmUrl") or ""),
        created=created,
    )


async def send_request(api: AuthenticationApi, body: Mapping[str, Any]) -> SentRequest:
    """Create the request (Altinn answers the open one when it exists already)."""
    return sent_request(await api.create_request(body))


def _latest(requests: Iterable[Mapping[str, Any]], customer: Customer) -> Mapping[str, Any] | None:
    matching = [
        r
        for r in requests
        if str(r.get("partyOrgNo")) == customer.org
        and str(r.get("externalRef") or r.get("partyOrgNo")) == customer.external_ref
    ]
    return max(matching, key=lambda r: str(r.get("created") or ""), default=None)


async def token_outcome(tokens: TokenSource, customer: Customer, scopes: frozenset[str]) -> str:
    """Ask for the organisation's system-user token: ``ok`` or what Maskinporten said."""
    if not scopes:
        return "not needed"
    external_ref = None if customer.external_ref == customer.org else customer.external_ref
    try:
        await tokens.token(
            TokenRequest(scopes, system_user_org=customer.org, external_ref=external_ref, exchange=False)
        )
    except TokenRefused as error:
        return f"refused {error.code or ''}".strip()
    except TokenError as error:
        return f"unavailable ({error.kind})"
    return "ok"


async def customer_statuses(
    api: AuthenticationApi,
    tokens: TokenSource,
    *,
    system_id: str,
    customers: Sequence[Customer],
    needed: Sequence[Right],
    registered_rights: frozenset[str],
    remembered: Mapping[str, SentRequest],
    scopes: frozenset[str],
) -> list[CustomerStatus]:
    """The status of every customer, read from Altinn (one list call each for users and requests)."""
    users = [u for u in await api.system_users(system_id) if not u.get("isDeleted")]
    requests = await api.requests(system_id)
    statuses = []
    for customer in customers:
        user = next(
            (
                u
                for u in users
                if str(u.get("reporteeOrgNo")) == customer.org
                and str(u.get("externalRef") or customer.org) == customer.external_ref
            ),
            None,
        )
        latest = _latest(requests, customer)
        request = sent_request(latest) if latest is not None else remembered.get(customer.org)
        if request is not None and not request.confirm_url and customer.org in remembered:
            request = replace(request, confirm_url=remembered[customer.org].confirm_url)
        token = await token_outcome(tokens, customer, scopes)
        if user is not None:
            granted = (
                rights_key(latest.get("rights") or ())
                if latest is not None and latest.get("status") == "Accepted"
                else registered_rights
            )
            missing = tuple(sorted(r.resource_id for r in needed if r.resource_id not in granted))
            state = State.RIGHTS_MISSING if missing else State.READY
            if token.startswith("refused"):
                state = State.NO_SYSTEM_USER
            statuses.append(CustomerStatus(customer, state, str(user.get("id")), request, missing, token))
            continue
        state = (
            _REQUEST_STATES.get(request.status, State.NO_SYSTEM_USER)
            if request is not None
            else State.NO_SYSTEM_USER
        )
        statuses.append(CustomerStatus(customer, state, None, request, (), token))
    return statuses
