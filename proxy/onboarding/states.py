"""The onboarding states of a customer organisation, shared by the commands, the metric and the board."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """Where a customer organisation stands with our system's system user."""

    #: A system user with every right the routed services need; tokens are issued.
    READY = "ready"
    #: A request was sent and waits for the customer's approval.
    PENDING = "pending"
    #: The customer rejected the request (Altinn: Rejected or Denied).
    REJECTED = "rejected"
    #: The request timed out unanswered (Altinn: Timedout).
    EXPIRED = "expired"
    #: No system user: never created, or deleted by the customer (Maskinporten MP-303).
    NO_SYSTEM_USER = "no_system_user"
    #: A system user exists but lacks a right a routed service needs (withdrawn or never given).
    RIGHTS_MISSING = "rights_missing"
    #: Nothing known yet (no call for the organisation since the proxy started).
    UNKNOWN = "unknown"


#: The states in which the organisation cannot be served.
NOT_READY = frozenset(State) - {State.READY, State.UNKNOWN}
