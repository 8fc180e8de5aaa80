"""Prometheus metrics of legacy identity (default registry; every label has a closed set of values)."""

from __future__ import annotations

from prometheus_client import Counter

from proxy.observability.labels import closed, product

SCOPES = ("user", "address")

AUTHENTICATIONS = closed(
    Counter(
        "altinn_proxy_identity_authentications_total",
        "Legacy authentication decisions.",
        ["method", "outcome"],
    ),
    product(("password", "api_key", "certificate"), ("success", "failure", "locked")),
)
THROTTLED = closed(
    Counter(
        "altinn_proxy_identity_throttled_total",
        "Authentication attempts delayed because of earlier failures.",
        ["scope"],
    ),
    product(SCOPES),
)
LOCKOUTS = closed(
    Counter(
        "altinn_proxy_identity_lockouts_total",
        "Lockouts started after repeated authentication failures.",
        ["scope"],
    ),
    product(SCOPES),
)
AUTHORIZATIONS = closed(
    Counter(
        "altinn_proxy_identity_authorizations_total",
        "Reportee and service-owner authorization decisions.",
        ["outcome"],
    ),
    product(("allowed", "denied", "invalid_reportee", "person_signature_required")),
)
SPOOFED_CERTIFICATE_HEADERS = Counter(
    "altinn_proxy_identity_spoofed_certificate_headers_total",
    "Client-certificate headers received from a peer that is not a trusted proxy (ignored).",
)
CREDENTIAL_RELOADS = closed(
    Counter(
        "altinn_proxy_identity_credential_reloads_total",
        "Reloads of the credentials file.",
        ["outcome"],
    ),
    product(("loaded", "refused")),
)
