"""Known secret values of a sandbox deployment, and a scan of texts (logs, metrics, faults) for them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from proxy.sandbox.fixtures import DEMO_CALLERS
from proxy.sandbox.world import Fakes

#: Any JSON Web Token (a grant assertion, a Maskinporten or an exchanged Altinn token).
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
#: How much of a secret is enough to call it leaked.
_FRAGMENT = 24


def known_secrets(fakes: Fakes, workdir: Path, extra: Iterable[str] = ()) -> list[str]:
    """The legacy passwords, the client key's lines, and every assertion and token the fakes saw."""
    secrets = [caller.password for caller in DEMO_CALLERS]
    key = (workdir / "maskinporten-client.pem").read_text()
    secrets += [line for line in key.splitlines() if line and not line.startswith("-----")]
    secrets += list(fakes.maskinporten.assertions_seen) + list(fakes.maskinporten.tokens_issued)
    secrets += list(extra)
    assert fakes.maskinporten.tokens_issued, "no token was issued: the scan would prove nothing"
    return secrets


def leaks(texts: Iterable[str], secrets: Iterable[str]) -> list[str]:
    """Every text that holds a secret (or a fragment of a long one) or anything shaped like a JWT."""
    needles = {secret if len(secret) <= _FRAGMENT else secret[-_FRAGMENT:] for secret in secrets}
    found = []
    for text in texts:
        if _JWT.search(text) or any(needle in text for needle in needles):
            found.append(text[:300])
    return found
