"""Altinn's published OpenAPI contract as a request observer for the fake Altinn 3 APIs.

Every fake in the tests is built with ``contract_observer`` (the ``altinn3_contract`` fixture), so a
request the real API would refuse fails the test even when our fake would have accepted it.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

SHARED = Path(__file__).resolve().parents[2] / "shared"
REFERENCE = SHARED / "reference"
TOOLS = SHARED / "tools"


def load_contract_module() -> ModuleType | None:
    """The shared contract checker module, or None when ``../shared`` is absent."""
    path = TOOLS / "altinn3_contract.py"
    if not path.is_file():
        return None
    if "altinn3_contract" in sys.modules:
        return sys.modules["altinn3_contract"]
    spec = importlib.util.spec_from_file_location("altinn3_contract", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["altinn3_contract"] = module
    spec.loader.exec_module(module)
    return module


class ContractObserver:
    """Collects every contract violation seen by the fakes; the fixture asserts none at teardown."""

    def __init__(self, contract: object) -> None:
        self._contract = contract
        self.problems: list[str] = []
        self.checked = 0
        self.unchecked = 0

    def __call__(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> None:
        """Judge one request; 'no contract' answers (paths without a spec) count as unchecked.

        A streamed multipart body is not read by the fakes' middleware, and the checker cannot judge
        a multipart request without its body (it fails at random with an empty AssertionError), so
        such requests count as unchecked too.
        """
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        if body is None and content_type.startswith("multipart/"):
            self.unchecked += 1
            return
        problems = self._contract.check_request(  # type: ignore[attr-defined]
            method, url, headers=headers, body=body
        )
        problems = [p for p in problems if not p.startswith("no contract")]
        self.checked += 1
        self.problems.extend(f"{method} {url}: {p}" for p in problems)
