"""What the proxy knows about a legacy caller once its credentials have been checked.

``LegacyCredentials`` is what a front extracted from the request (Basic body, SOAP headers,
WS-Security UsernameToken, REST ApiKey); ``Principal`` is the verified caller that the mapping engine
and the token provider act for. Values only: no I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class CredentialSource(StrEnum):
    """Where in the legacy request the credentials were found."""

    BODY = "body"  # Basic: systemUserName/systemPassword as the operation's first elements
    HEADER = "header"  # BasicStreamed: the same fields as SOAP headers
    WSSE = "wsse"  # WS endpoints: WS-Security UsernameToken (PasswordText)
    API_KEY = "api_key"  # legacy REST: ApiKey header (+ client certificate)


@dataclass(frozen=True)
class LegacyCredentials:
    """A user name and secret as the legacy client sent them. The secret never reaches a repr."""

    username: str
    password: str = field(repr=False)
    source: CredentialSource = CredentialSource.BODY


class CallerKind(StrEnum):
    """The two kinds of legacy caller the proxy acts for."""

    END_USER_SYSTEM = "end_user_system"
    SERVICE_OWNER = "service_owner"


@dataclass(frozen=True)
class OrgGrant:
    """An organisation an end-user system may act for, through that org's system user."""

    org: str
    external_ref: str | None = None


@dataclass(frozen=True)
class Principal:
    """A verified legacy caller.

    For an end-user system, ``orgs`` lists the organisations (reportees) it may act for; each maps
    to one Altinn 3 system user. For a service owner, ``service_owner`` is its code (e.g. ``ttd``),
    ``org`` its own organisation number and ``scopes`` what it may ask Maskinporten for.
    """

    caller_id: str
    kind: CallerKind
    orgs: Mapping[str, OrgGrant] = field(default_factory=dict)
    service_owner: str | None = None
    org: str | None = None
    scopes: tuple[str, ...] = ()

    @property
    def is_service_owner(self) -> bool:
        """True for a service-owner caller."""
        return self.kind is CallerKind.SERVICE_OWNER

    def grant_for(self, reportee: str) -> OrgGrant | None:
        """The grant for acting as ``reportee``, or None when the caller may not act for it."""
        return self.orgs.get(reportee)
