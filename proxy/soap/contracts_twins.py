"""One operation declaration, both bindings: the Basic contract and its WS (SOAP 1.2) twin.

Not a service family itself: the ``contracts_<family>`` modules build their contracts with it. A
Basic operation ``{Op}`` carries ``systemUserName``/``systemPassword`` as its first children; its WS
twin (named without "Basic", see :mod:`proxy.soap.catalogue`) takes the same payload without them,
because a WS caller proves itself with a WS-Security UsernameToken. Both answer ``{Op}Response``
holding ``{Op}Result`` of the same type (or nothing, for operations that answer an empty element).
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.soap.contracts import ComplexType, ElementDecl, Field, OperationContract

Key = tuple[str, str]
"""``(service name, operation name)`` as the catalogue spells them."""


@dataclass(frozen=True)
class Signature:
    """An operation's payload and result, independent of binding and operation name."""

    namespace: str
    #: The request children after the credentials (or all of them, on a WS endpoint).
    request: tuple[Field, ...]
    #: The type of ``{Op}Result``; None for an empty ``{Op}Response``.
    result: str | ComplexType | None
    #: The Basic endpoint's credential fields, in front of ``request``.
    credentials: tuple[Field, ...]
    result_nillable: bool = True

    def contract(self, operation: str, *, with_credentials: bool) -> OperationContract:
        """The request/response wrappers of ``operation`` under this signature."""
        request = (*self.credentials, *self.request) if with_credentials else self.request
        result = (
            ()
            if self.result is None
            else (Field(f"{operation}Result", self.result, nillable=self.result_nillable),)
        )
        return OperationContract(
            request=ElementDecl(self.namespace, operation, request),
            response=ElementDecl(self.namespace, f"{operation}Response", result),
        )


def basic_and_ws(signature: Signature, basic: Key, ws: Key | None = None) -> dict[Key, OperationContract]:
    """The contract of the Basic operation ``basic`` and, when given, of its WS twin ``ws``."""
    contracts = {basic: signature.contract(basic[1], with_credentials=True)}
    if ws is not None:
        contracts[ws] = signature.contract(ws[1], with_credentials=False)
    return contracts
