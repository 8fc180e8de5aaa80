"""What a token is asked for: the cache key of the token provider and the seam its users depend on.

Everything that makes two tokens differ is in :class:`TokenRequest`; the provider keeps one cache
entry per distinct value (plus the client and environment it was built for).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class TokenRequest:
    """One kind of token.

    ``system_user_org`` set: a system-user token for that customer org (``authorization_details``
    ``urn:altinn:systemuser``, with ``external_ref`` when configured). Unset: a plain token for the
    client's own organisation (a service owner). ``exchange``: trade the Maskinporten token for an
    Altinn token at ``/authentication/api/v1/exchange/maskinporten``.
    """

    scopes: frozenset[str]
    system_user_org: str | None = None
    external_ref: str | None = None
    exchange: bool = True

    @property
    def kind(self) -> str:
        """A bounded label for metrics: ``system_user`` or ``service_owner``, plus ``_exchanged``."""
        base = "system_user" if self.system_user_org else "service_owner"
        return f"{base}_exchanged" if self.exchange else base


class TokenSource(Protocol):
    """What outbound Altinn 3 calls need from the token provider."""

    async def token(self, request: TokenRequest) -> str:
        """A valid bearer token for ``request`` (cached, refreshed ahead of expiry)."""
        ...

    def invalidate(self, request: TokenRequest, token: str) -> None:
        """Forget ``token`` for ``request`` (after Altinn 3 answered 401 to it)."""
        ...
