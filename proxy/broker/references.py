"""The manifest a legacy broker sender initiated, kept under the proxy's file reference.

Altinn 3 fixes a file transfer's name when it is initialised, but an Altinn 2 sender names its file
only with the upload. ``broker.yaml`` therefore answers ``InitiateBrokerServiceBasic`` with a
reference of the proxy's own and keeps the manifest under it (a durable memo, readable by any
caller); the upload reads it back through :func:`own_manifest` (the ``broker_own_manifest``
filter), which gives it only to the organisation that initiated it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from proxy.errors import AuthorizationDenied

#: Altinn 2's ErrorID for an upload to a file reference the reportee did not initiate.
NOT_THE_SENDER = 40213


def own_manifest(kept: str | None, org: str) -> dict[str, Any] | None:
    """The manifest kept under a file reference (JSON text, or None when none is kept) for ``org``.

    None when nothing is kept (the reference is an Altinn 3 transfer id); :class:`AuthorizationDenied`
    (40213) when another organisation initiated it, before anything is sent to Altinn 3.
    """
    if not kept:
        return None
    manifest = json.loads(kept)
    if not isinstance(manifest, dict) or manifest.get("sender") != org:
        raise AuthorizationDenied(
            "The reportee is not the sender of this file reference", error_id=NOT_THE_SENDER
        )
    return manifest


def initialised_from(
    transfers: Sequence[Mapping[str, Any] | None] | None, manifest: Mapping[str, Any], file_name: str
) -> list[str]:
    """The ids (lower case) of ``transfers`` (overviews) still ``Initialized`` from ``manifest`` as ``file_name``.

    For a resend whose first attempt died between initialising the Altinn 3 transfer and keeping its
    id: these are the candidates it may have created (the mapping then claims one no reference owns).
    """
    recipients = sorted(str(recipient) for recipient in manifest.get("recipients") or [])
    return [
        str(transfer["fileTransferId"]).lower()
        for transfer in transfers or []
        if transfer
        and transfer.get("fileTransferStatus") == "Initialized"
        and transfer.get("fileName") == file_name
        and transfer.get("sendersFileTransferReference") == manifest.get("senders_reference")
        and sorted(str(r.get("recipient")) for r in transfer.get("recipients") or []) == recipients
        and (transfer.get("propertyList") or {}) == (manifest.get("properties") or {})
    ]
