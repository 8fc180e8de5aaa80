"""``altinn-proxy check --online``: can the proxy get every Maskinporten token it will need?

One token request for the service owner (the scopes of every service-owner operation the mappings
declare) and one per configured system-user organisation (the scopes of every system-user
operation), each judged by what Maskinporten answers. The verdict per organisation is one of:
ok, no system user (MP-303), unknown client or key id (the configured kid is named), missing scope,
or Maskinporten's own refusal. Tokens are requested but never shown or kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from proxy.errors import TokenError, TokenRefused
from proxy.maskinporten.request import TokenRequest

#: MP codes that mean the client or its key is not what Maskinporten has registered.
_CLIENT_OR_KEY = frozenset({"MP-100", "MP-120", "MP-121", "MP-122", "MP-123", "MP-124"})
_SCOPE = frozenset({"MP-200", "MP-201", "MP-250", "MP-251"})


@dataclass(frozen=True)
class Subject:
    """Whose token to ask for: the service owner (``org`` None) or a system user's organisation."""

    label: str
    request: TokenRequest


@dataclass(frozen=True)
class Verdict:
    """What Maskinporten said about one subject."""

    label: str
    ok: bool
    text: str

    def line(self) -> str:
        """One report line."""
        return f"{'ok  ' if self.ok else 'FAIL'} {self.label}: {self.text}"


def subjects(
    service_owner_scopes: frozenset[str],
    system_user_scopes: frozenset[str],
    organisations: Iterable[tuple[str, str | None]],
) -> list[Subject]:
    """The token requests to try: the service owner's, then one per (org, externalRef)."""
    found = []
    if service_owner_scopes:
        found.append(Subject("service owner", TokenRequest(scopes=service_owner_scopes, exchange=False)))
    if system_user_scopes:
        for org, external_ref in sorted(set(organisations), key=lambda pair: (pair[0], pair[1] or "")):
            label = f"organisation {org}" + (f" (externalRef {external_ref})" if external_ref else "")
            request = TokenRequest(
                scopes=system_user_scopes, system_user_org=org, external_ref=external_ref, exchange=False
            )
            found.append(Subject(label, request))
    return found


def verdict(subject: Subject, error: TokenError | None, *, kid: str | None) -> Verdict:
    """The verdict for ``subject`` given the token request's failure (None: a token was issued)."""
    if error is None:
        return Verdict(subject.label, True, "token issued")
    code = error.code if isinstance(error, TokenRefused) else None
    if code == "MP-303":
        return Verdict(subject.label, False, f"no system user (MP-303): {error.message}")
    if code in _CLIENT_OR_KEY:
        key = f"key id {kid!r}" if kid else "the certificate"
        return Verdict(
            subject.label, False, f"unknown client or key id ({code}; signed with {key}): {error.message}"
        )
    if code in _SCOPE:
        return Verdict(subject.label, False, f"missing scope ({code}): {error.message}")
    return Verdict(subject.label, False, error.message)
