"""Reportee validation (check digits) and the authorization decision."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from proxy.errors import AuthorizationDenied, InvalidReportee
from proxy.identity.principal import CallerKind, OrgGrant, Principal
from proxy.identity.reportee import (
    INVALID_REPORTEE_DETAIL,
    INVALID_REPORTEE_MESSAGE,
    NOT_AUTHORIZED_MESSAGE,
    ReporteeKind,
    authorize,
    is_valid_national_id,
    is_valid_org_number,
    parse_reportee,
    require_service_owner,
)
from tests.identity.conftest import ORG_A, ORG_B, ORG_C, SERVICE_OWNER_ORG

WEIGHTS_1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
WEIGHTS_2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def _check(digits: str, weights: tuple[int, ...]) -> int | None:
    check = (11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11) % 11
    return None if check == 10 else check


def national_id(first_nine: str) -> str | None:
    """The valid national id starting with ``first_nine``, or None when those digits admit none."""
    k1 = _check(first_nine, WEIGHTS_1)
    if k1 is None:
        return None
    k2 = _check(first_nine + str(k1), WEIGHTS_2)
    return None if k2 is None else f"{first_nine}{k1}{k2}"


VALID_PERSON = next(
    value for value in (national_id(f"010190{n:03d}") for n in range(100, 200)) if value is not None
)
# A D-number (day + 40) and a synthetic test id (month + 80) only need valid check digits.
D_NUMBER = next(v for v in (national_id(f"410190{n:03d}") for n in range(100, 200)) if v is not None)
SYNTHETIC = next(v for v in (national_id(f"018190{n:03d}") for n in range(100, 200)) if v is not None)


@pytest.mark.parametrize("org", [ORG_A, ORG_B, ORG_C, SERVICE_OWNER_ORG])
def test_valid_organisation_numbers(org: str) -> None:
    assert parse_reportee(org).kind is ReporteeKind.ORGANISATION


@pytest.mark.parametrize("person", [VALID_PERSON, D_NUMBER, SYNTHETIC])
def test_valid_national_ids(person: str) -> None:
    reportee = parse_reportee(f" {person} ")
    assert (reportee.number, reportee.kind) == (person, ReporteeKind.PERSON)


def _flip(value: str, index: int) -> str:
    return value[:index] + str((int(value[index]) + 1) % 10) + value[index + 1 :]


@pytest.mark.parametrize(
    "value",
    [
        "310000018",  # wrong org check digit
        "31000001",  # too short
        "3100000190",  # ten digits
        "31000001x",
        "３１０００００１９",  # full-width digits are digits to str.isdigit, not to Altinn
        "",
        "   ",
        _flip(VALID_PERSON, 9),  # first check digit wrong
        _flip(VALID_PERSON, 10),  # second check digit wrong
        _flip(VALID_PERSON, 3),  # a body digit changed
    ],
)
def test_malformed_reportees_get_the_altinn_invalid_reportee_fault(value: str) -> None:
    with pytest.raises(InvalidReportee) as caught:
        parse_reportee(value)
    assert caught.value.message == INVALID_REPORTEE_MESSAGE
    assert caught.value.extended == INVALID_REPORTEE_DETAIL  # the value itself is never echoed


def test_org_number_whose_check_digit_would_be_ten_is_invalid() -> None:
    impossible = next(
        f"{n:08d}" for n in range(31000000, 31001000) if _check(f"{n:08d}", (3, 2, 7, 6, 5, 4, 3, 2)) is None
    )
    assert not any(is_valid_org_number(impossible + str(d)) for d in range(10))


def test_none_is_invalid() -> None:
    with pytest.raises(InvalidReportee):
        parse_reportee(None)


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_exactly_one_check_digit_completes_eight_digits(value: str) -> None:
    body = value[:8]
    valid = [d for d in range(10) if is_valid_org_number(body + str(d))]
    assert len(valid) <= 1
    assert is_valid_org_number(value) == (valid == [int(value[8])])


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_national_id_check_digits_are_unique(first_nine: str) -> None:
    completions = [f"{first_nine}{k:02d}" for k in range(100) if is_valid_national_id(f"{first_nine}{k:02d}")]
    assert completions == ([] if national_id(first_nine) is None else [national_id(first_nine)])


END_USER_SYSTEM = Principal(
    caller_id="eus", kind=CallerKind.END_USER_SYSTEM, orgs={ORG_A: OrgGrant(ORG_A, "customer-a")}
)
SERVICE_OWNER = Principal(
    caller_id="so", kind=CallerKind.SERVICE_OWNER, service_owner="ttd", org=SERVICE_OWNER_ORG
)


def _denied() -> float:
    return (
        REGISTRY.get_sample_value("altinn_proxy_identity_authorizations_total", {"outcome": "denied"}) or 0.0
    )


def test_caller_acts_for_its_org_through_its_grant() -> None:
    assert authorize(END_USER_SYSTEM, parse_reportee(ORG_A)) == OrgGrant(ORG_A, "customer-a")


def test_caller_for_org_a_asking_for_org_b_gets_the_authorization_fault() -> None:
    before = _denied()
    with pytest.raises(AuthorizationDenied) as caught:
        authorize(END_USER_SYSTEM, parse_reportee(ORG_B))
    assert (caught.value.error_id, caught.value.message) == (5, NOT_AUTHORIZED_MESSAGE)
    assert _denied() == before + 1


def test_a_person_reportee_is_denied_without_a_grant() -> None:
    with pytest.raises(AuthorizationDenied):
        authorize(END_USER_SYSTEM, parse_reportee(VALID_PERSON))


def test_service_owner_operations_need_a_service_owner() -> None:
    assert require_service_owner(SERVICE_OWNER) is SERVICE_OWNER
    with pytest.raises(AuthorizationDenied):
        require_service_owner(END_USER_SYSTEM)
    with pytest.raises(AuthorizationDenied):
        authorize(SERVICE_OWNER, parse_reportee(ORG_A))
