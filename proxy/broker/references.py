"""The manifest a legacy broker sender initiated, kept under the proxy's file reference.

Altinn 3 fixes a file transfer's name when it is initialised, but an Altinn 2 sender names its file
only with the upload. ``broker.yaml`` therefore answers ``InitiateBrokerServiceBasic`` with a
reference of the proxy's own and keeps the manifest under it (a durable memo, readable by any
caller); the upload reads it back through :func:`own_manifest` (the ``broker_own_manifest``
filter), which gives it only to the organisation that initiated it.
"""

from __future__ import annotations

import json
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
