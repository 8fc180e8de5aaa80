"""Altinn 2's synchronous "not a ZIP" refusal (ErrorID 40206) for broker services that require ZIP.

Altinn 3 checks a broker upload's format only after the upload, asynchronously: the legacy sender
would get its OK receipt and learn of the rejection later, if ever. Altinn 2 refused the upload
call itself. A routing entry with ``require_zip`` restores that: the broker mapping peeks at the
upload's first bytes (a ``peek`` step) and passes them through :func:`require_zip` (the
``broker_require_zip`` filter) before the Altinn 3 upload call is built, so a refused file leaves
the transfer initialized with nothing uploaded.
"""

from __future__ import annotations

from typing import Any

from proxy.errors import InvalidField

#: Altinn 2's ErrorID for a broker file that is not a ZIP archive where the service requires one.
NOT_A_ZIP = 40206

#: Local file header (an archive with entries) and end of central directory (an empty archive).
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")


def is_zip(head: bytes) -> bool:
    """Whether a file starting with ``head`` (its first four bytes at least) is a ZIP archive."""
    return head.startswith(ZIP_SIGNATURES)


def require_zip(payload: Any, route: Any) -> Any:
    """``payload`` unchanged, or :class:`InvalidField` (40206) when ``route`` requires ZIP and it is none.

    ``payload`` is a peeked upload stream (its first bytes in ``head``) or None (no attachment: nothing
    to judge, Altinn 3 refuses the empty upload itself); ``route`` is the transfer's
    :class:`proxy.mapping.routing.Route` or None (an unrouted resource: no requirement known).
    """
    if payload is None or route is None or not getattr(route, "require_zip", False):
        return payload
    if is_zip(bytes(getattr(payload, "head", b""))):
        return payload
    raise InvalidField(
        f"the file is not a ZIP archive, and broker service {route.service_code}/{route.service_edition} "
        "requires one",
        error_id=NOT_A_ZIP,
    )
