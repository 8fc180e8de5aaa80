"""Person-level fields of Altinn 2 Basic operations (``userSSN``, ``userPassword``, ``userPinCode``,
``authMethod``).

Altinn 3 cannot take a person's Altinn password or pin, so the proxy never checks or forwards them.
Operations a system user may perform alone accept and ignore them; an operation that legally needs a
person's signature is refused with a clear fault instead of being run without one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from proxy.errors import PersonSignatureRequired
from proxy.identity import metrics

_log = structlog.get_logger("proxy.identity")


@dataclass(frozen=True)
class PersonFields:
    """The person-level fields as a front read them (any may be absent); none of them reaches a repr."""

    user_ssn: str | None = field(default=None, repr=False)  # personal data
    user_password: str | None = field(default=None, repr=False)
    user_pin_code: str | None = field(default=None, repr=False)
    auth_method: str | None = None

    @property
    def present(self) -> bool:
        """True when the client filled in any of the fields."""
        return any((self.user_ssn, self.user_password, self.user_pin_code, self.auth_method))


def person_signature_message(operation: str) -> str:
    """The fault text for ``operation``, which needs a person's signature."""
    return (
        f"{operation} requires the signature of a person. Altinn 3 does not accept a person's "
        "password or pin from a system, so this proxy cannot sign on anyone's behalf: sign the element "
        "in Altinn (the web portal) or from a client that logs the person in with ID-porten."
    )


def check_person_fields(
    fields: PersonFields, *, operation: str, needs_person_signature: bool, caller_id: str
) -> None:
    """Accept (and ignore) person-level fields, or refuse an operation that needs a person's signature.

    Raises :class:`~proxy.errors.PersonSignatureRequired` whenever ``needs_person_signature`` is set,
    whether or not the client sent person fields: a system user can never sign for a person.
    """
    if needs_person_signature:
        metrics.AUTHORIZATIONS.labels(outcome="person_signature_required").inc()
        _log.warning("person_signature_required", caller_id=caller_id, operation=operation, outcome="refused")
        raise PersonSignatureRequired(person_signature_message(operation))
    if fields.present:
        _log.debug("person_fields_ignored", caller_id=caller_id, operation=operation)
