"""Reportee numbers and the question "may this caller act for that reportee?".

Pure functions: the fronts call :func:`parse_reportee` on every ``Reportee`` / ``reporteeNumber`` /
``{who}`` they read, then :func:`authorize` (end-user systems acting through the reportee's system
user) or :func:`require_service_owner` (operations run with the service owner's own token), all
before anything is sent to Altinn 3.

A reportee is a 9-digit organisation number (mod-11 check digit, weights 3,2,7,6,5,4,3,2) or an
11-digit national identity number (fødselsnummer, D-number, synthetic test number: two mod-11 check
digits). Dates inside national ids are not checked, as synthetic test ids shift the month on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import structlog

from proxy.errors import AuthorizationDenied, InvalidReportee
from proxy.identity import metrics
from proxy.identity.principal import OrgGrant, Principal

_ORG_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)
_PERSON_WEIGHTS_1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_PERSON_WEIGHTS_2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)

INVALID_REPORTEE_MESSAGE = "Invalid reportee"
INVALID_REPORTEE_DETAIL = (
    "The reportee must be a 9-digit organisation number or an 11-digit national identity number "
    "with valid check digits."
)
NOT_AUTHORIZED_MESSAGE = "The system is not authorized to act for the reportee"
NOT_SERVICE_OWNER_MESSAGE = "The system is not authorized to act as a service owner"

_log = structlog.get_logger("proxy.identity")


class ReporteeKind(StrEnum):
    """What a reportee number denotes."""

    ORGANISATION = "organisation"
    PERSON = "person"


@dataclass(frozen=True)
class Reportee:
    """A validated reportee number. A person's number is personal data: log :attr:`kind`, not it."""

    number: str
    kind: ReporteeKind

    @property
    def is_organisation(self) -> bool:
        """True for an organisation number."""
        return self.kind is ReporteeKind.ORGANISATION


def _mod11(digits: str, weights: Sequence[int]) -> int | None:
    """The mod-11 check digit over ``digits``, or None where no digit is valid (remainder 1)."""
    check = 11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def is_valid_org_number(value: str) -> bool:
    """True for a 9-digit organisation number with a valid check digit."""
    if len(value) != 9 or not value.isascii() or not value.isdigit():
        return False
    return _mod11(value[:8], _ORG_WEIGHTS) == int(value[8])


def is_valid_national_id(value: str) -> bool:
    """True for an 11-digit national identity number whose two check digits are valid."""
    if len(value) != 11 or not value.isascii() or not value.isdigit():
        return False
    return _mod11(value[:9], _PERSON_WEIGHTS_1) == int(value[9]) and _mod11(
        value[:10], _PERSON_WEIGHTS_2
    ) == int(value[10])


def parse_reportee(value: str | None) -> Reportee:
    """Validate a reportee as sent by a legacy client (surrounding whitespace is tolerated).

    Raises :class:`~proxy.errors.InvalidReportee` with the Altinn 2 text; the value is not echoed, as
    it may be a person's national identity number.
    """
    number = (value or "").strip()
    if is_valid_org_number(number):
        return Reportee(number, ReporteeKind.ORGANISATION)
    if is_valid_national_id(number):
        return Reportee(number, ReporteeKind.PERSON)
    metrics.AUTHORIZATIONS.labels(outcome="invalid_reportee").inc()
    raise InvalidReportee(INVALID_REPORTEE_MESSAGE, extended=INVALID_REPORTEE_DETAIL)


def authorize(principal: Principal, reportee: Reportee) -> OrgGrant:
    """The grant through which ``principal`` acts for ``reportee``.

    Raises :class:`~proxy.errors.AuthorizationDenied` (Altinn 2 ErrorID 5) when the caller has no
    system user for that reportee, so no Altinn 3 call is ever attempted for it.
    """
    grant = principal.grant_for(reportee.number)
    if grant is None:
        metrics.AUTHORIZATIONS.labels(outcome="denied").inc()
        _log.warning(
            "reportee_denied",
            caller_id=principal.caller_id,
            reportee_kind=str(reportee.kind),
            org=reportee.number if reportee.is_organisation else None,
            outcome="denied",
        )
        raise AuthorizationDenied(NOT_AUTHORIZED_MESSAGE)
    metrics.AUTHORIZATIONS.labels(outcome="allowed").inc()
    _log.info("reportee_allowed", caller_id=principal.caller_id, org=grant.org, outcome="allowed")
    return grant


def require_service_owner(principal: Principal) -> Principal:
    """``principal`` itself when it is a service owner; else :class:`~proxy.errors.AuthorizationDenied`."""
    if not principal.is_service_owner:
        metrics.AUTHORIZATIONS.labels(outcome="denied").inc()
        _log.warning("service_owner_denied", caller_id=principal.caller_id, outcome="denied")
        raise AuthorizationDenied(NOT_SERVICE_OWNER_MESSAGE)
    metrics.AUTHORIZATIONS.labels(outcome="allowed").inc()
    _log.info(
        "service_owner_allowed",
        caller_id=principal.caller_id,
        org=principal.org,
        service_owner=principal.service_owner,
        outcome="allowed",
    )
    return principal
