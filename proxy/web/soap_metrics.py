"""Prometheus metrics of the SOAP front (default registry; labels come from the catalogue only)."""

from __future__ import annotations

from prometheus_client import Counter

from proxy.errors import ProxyError
from proxy.observability.labels import Known, closed, product
from proxy.soap.catalogue import default_catalogue

#: The ``kind`` of a fault no :class:`ProxyError` explains.
UNEXPECTED = "unexpected"


def fault_kinds() -> list[str]:
    """Every ``kind`` a SOAP fault can be counted under: each error class's, and ``unexpected``."""
    kinds = {UNEXPECTED}
    pending: list[type[ProxyError]] = [ProxyError]
    while pending:
        error = pending.pop()
        kinds.add(error.kind)
        pending.extend(error.__subclasses__())
    return sorted(kinds)


def _catalogued_operations(_: Known) -> list[tuple[str, str]]:
    return [
        (service.name, operation.name)
        for service in default_catalogue().services
        for operation in service.operations
    ]


SOAP_REQUESTS = Counter(
    "altinn_proxy_soap_requests_total",
    "SOAP requests answered, by legacy service, operation and outcome (ok or fault).",
    ["service", "operation", "outcome"],
)
SOAP_FAULTS = closed(
    Counter(
        "altinn_proxy_soap_faults_total",
        "SOAP faults sent, by error kind (proxy.errors ProxyError.kind, or 'unexpected').",
        ["kind"],
    ),
    lambda _: product(fault_kinds()),
)
SOAP_UNTRANSLATED = closed(
    Counter(
        "altinn_proxy_soap_untranslated_total",
        "Calls of known Altinn 2 operations that this proxy does not translate to Altinn 3.",
        ["service", "operation"],
    ),
    _catalogued_operations,
)
