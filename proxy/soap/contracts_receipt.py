"""Legacy request/response types of the receipt operations the mappings implement (for served WSDLs)."""

from __future__ import annotations

from proxy.soap.contracts import OperationContract

CONTRACTS: dict[tuple[str, str], OperationContract] = {}
