"""Finding the legacy credentials in a SOAP request: body fields, SOAP headers or WS-Security.

Only extraction happens here; whether the credentials are right is for ``proxy.identity``.
Matching is on local names, case-insensitively and in any namespace, because hand-written clients
vary both; ``systemName`` is the Altinn quirk of ``GetFormSetPdfBasic``.
"""

from __future__ import annotations

from collections.abc import Iterable

from lxml import etree

from proxy.errors import AuthenticationFailed
from proxy.identity.principal import CredentialSource, LegacyCredentials
from proxy.soap.catalogue import CredentialPlacement
from proxy.soap.names import WSSE_NS, WSSE_PASSWORD_TEXT

_USER_NAMES = frozenset({"systemusername", "systemname"})
_PASSWORD_NAMES = frozenset({"systempassword"})


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname.lower()


def _pick(elements: Iterable[etree._Element], source: CredentialSource) -> LegacyCredentials | None:
    username: str | None = None
    password: str | None = None
    for element in elements:
        if not isinstance(element.tag, str):
            continue
        name = _local(element)
        if name in _USER_NAMES and username is None:
            username = (element.text or "").strip()
        elif name in _PASSWORD_NAMES and password is None:
            password = element.text or ""
    if not username:
        return None
    return LegacyCredentials(username=username, password=password or "", source=source)


def username_token(headers: Iterable[etree._Element]) -> LegacyCredentials | None:
    """The WS-Security UsernameToken (PasswordText) among the SOAP headers, or None."""
    for header in headers:
        if header.tag != f"{{{WSSE_NS}}}Security":
            continue
        token = header.find(f"{{{WSSE_NS}}}UsernameToken")
        if token is None:
            continue
        username = token.findtext(f"{{{WSSE_NS}}}Username")
        password = token.find(f"{{{WSSE_NS}}}Password")
        if not username or password is None:
            raise AuthenticationFailed("the WS-Security UsernameToken needs a Username and a Password")
        password_type = password.get("Type")
        if password_type not in (None, "", WSSE_PASSWORD_TEXT):
            raise AuthenticationFailed(
                "only WS-Security UsernameToken passwords of type PasswordText are supported"
            )
        return LegacyCredentials(
            username=username.strip(), password=password.text or "", source=CredentialSource.WSSE
        )
    return None


def extract_credentials(
    placement: CredentialPlacement, body: etree._Element, headers: Iterable[etree._Element]
) -> LegacyCredentials | None:
    """The credentials the operation's ``placement`` says to look for, or None when absent."""
    if placement is CredentialPlacement.BODY:
        return _pick(body, CredentialSource.BODY)
    if placement is CredentialPlacement.HEADER:
        return _pick(headers, CredentialSource.HEADER)
    if placement is CredentialPlacement.WSSE:
        return username_token(headers)
    return None
