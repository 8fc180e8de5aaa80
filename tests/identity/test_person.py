"""Person-level fields are ignored, except where a person's signature is legally needed."""

from __future__ import annotations

import pytest

from proxy.errors import PersonSignatureRequired
from proxy.identity.person import PersonFields, check_person_fields


def test_person_fields_are_accepted_and_ignored_where_the_system_user_suffices() -> None:
    fields = PersonFields(
        user_ssn="01019012345", user_password="hunter22", user_pin_code="1234", auth_method="AltinnPin"
    )
    assert fields.present
    check_person_fields(  # no error: a person's fields are checked, not required
        fields, operation="SubmitFormTaskBasic", needs_person_signature=False, caller_id="eus"
    )
    assert True
    assert repr(fields) == "PersonFields(auth_method='AltinnPin')"


@pytest.mark.parametrize(
    "fields", [PersonFields(), PersonFields(user_ssn="01019012345", user_pin_code="1234")]
)
def test_an_operation_needing_a_signature_is_refused_with_a_clear_fault(fields: PersonFields) -> None:
    with pytest.raises(PersonSignatureRequired) as caught:
        check_person_fields(
            fields, operation="CompleteAndSignShipmentBasic", needs_person_signature=True, caller_id="eus"
        )
    assert caught.value.http_status == 403
    assert "CompleteAndSignShipmentBasic requires the signature of a person" in caught.value.message
    assert "1234" not in caught.value.message
