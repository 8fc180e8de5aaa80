"""What the ``system`` commands remember between runs: the request sent to each organisation.

One small JSON file, ``onboarding.json`` in the data directory, written atomically. Altinn stays the
authority (``system status`` reads the requests and system users back from it and updates this file);
the file lets ``system request`` print what it sent, and lets the running proxy's board and fault
texts say when a request was sent and where to approve it, without a call to Altinn per request.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FILE_NAME = "onboarding.json"


@dataclass(frozen=True)
class SentRequest:
    """A system-user request as last seen: Altinn's id, state and confirm URL."""

    org: str
    request_id: str
    external_ref: str
    status: str
    confirm_url: str
    #: ISO 8601 UTC time the request was created (as far as we know).
    created: str


def memory_path(data_dir: Path) -> Path:
    """Where the file lives for a data directory."""
    return data_dir / FILE_NAME


def read_requests(data_dir: Path) -> dict[str, SentRequest]:
    """The remembered requests by organisation (empty when there is no file or it is unreadable)."""
    try:
        document = json.loads(memory_path(data_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found: dict[str, SentRequest] = {}
    for org, item in (document.get("requests") or {}).items() if isinstance(document, dict) else ():
        try:
            found[str(org)] = SentRequest(**{key: str(item[key]) for key in SentRequest.__dataclass_fields__})
        except (KeyError, TypeError):
            continue
    return found


def write_requests(data_dir: Path, requests: Mapping[str, SentRequest]) -> None:
    """Replace the file with ``requests`` (atomically, mode 0600)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "version": 1,
        "requests": {org: asdict(r) for org, r in sorted(requests.items())},
    }
    descriptor, temporary = tempfile.mkstemp(dir=data_dir, prefix=f".{FILE_NAME}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
        os.replace(temporary, memory_path(data_dir))
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
