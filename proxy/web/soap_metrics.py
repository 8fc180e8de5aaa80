"""Prometheus metrics of the SOAP front (default registry; labels come from the catalogue only)."""

from __future__ import annotations

from prometheus_client import Counter

SOAP_REQUESTS = Counter(
    "altinn_proxy_soap_requests_total",
    "SOAP requests answered, by legacy service, operation and outcome (ok or fault).",
    ["service", "operation", "outcome"],
)
SOAP_FAULTS = Counter(
    "altinn_proxy_soap_faults_total",
    "SOAP faults sent, by error kind (proxy.errors ProxyError.kind, or 'unexpected').",
    ["kind"],
)
SOAP_UNTRANSLATED = Counter(
    "altinn_proxy_soap_untranslated_total",
    "Calls of known Altinn 2 operations that this proxy does not translate to Altinn 3.",
    ["service", "operation"],
)
