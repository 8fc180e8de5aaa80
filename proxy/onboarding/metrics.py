"""The onboarding state of each configured customer organisation, as a Prometheus gauge.

``altinn_proxy_onboarding_state{org, state}`` is 1 for the organisation's current state and 0 for the
others. Organisation numbers are a label here on purpose: they come from the credentials file (a
bounded, operator-made list, never from a request), and "which customer is not ready" is the question
the alert answers. Every (org, state) child is created when the organisation is configured, so that
``changes()`` and ``increase()`` see the first transition.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Gauge

from proxy.onboarding.states import State

ONBOARDING_STATE = Gauge(
    "altinn_proxy_onboarding_state",
    "1 for the onboarding state each configured customer organisation is in (system user, rights).",
    ["org", "state"],
)


def show(org: str, current: State) -> None:
    """Set ``org``'s children: 1 for ``current``, 0 for every other state."""
    for state in State:
        ONBOARDING_STATE.labels(org, str(state)).set(1.0 if state is current else 0.0)


def precreate(orgs: Iterable[str]) -> None:
    """Create every (org, state) child for ``orgs`` at ``unknown``."""
    for org in orgs:
        show(org, State.UNKNOWN)
