"""What a handler of a dispatched SOAP call receives and returns (the front's contract with the pipeline)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from proxy.identity.principal import Principal
from proxy.soap.encode import SoapReply
from proxy.soap.request import SoapCall


@dataclass(frozen=True)
class SoapContext:
    """What a handler knows about the call beyond the SOAP message."""

    request_id: str
    principal: Principal | None
    remote: str | None


OperationHandler = Callable[[SoapCall, SoapContext], Awaitable[SoapReply]]
