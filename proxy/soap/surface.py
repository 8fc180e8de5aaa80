"""What the SOAP front serves: the catalogue with every mapped operation's declared contract applied.

The catalogue (:mod:`proxy.soap.catalogue`) names every Altinn 2 service and operation; a mapping's
contract says what one of those operations really looks like. :meth:`Surface.of` derives, from the
contract alone, what dispatch needs: the request and response elements, where the credentials
travel (a WS endpoint: WS-Security; a ``SystemUserName`` header: message-contract headers; a
``systemUserName`` body child: the body) and which child is a streamed MTOM payload. Operations
without a contract keep the catalogue's conventions; they answer "not translated".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from proxy.soap.catalogue import Binding, Catalogue, CredentialPlacement, Operation, Service, Streaming
from proxy.soap.contracts import ContractRegistry, OperationContract

#: ``systemName`` is the Altinn quirk of ``GetFormSetPdfBasic`` (see :mod:`proxy.soap.credentials`).
_CREDENTIAL_NAMES = frozenset({"systemusername", "systemname"})


@dataclass(frozen=True, eq=False)
class Surface:
    """The services as served, and the contracts their WSDLs describe (one per mapping set)."""

    catalogue: Catalogue
    contracts: ContractRegistry

    @classmethod
    def of(cls, catalogue: Catalogue, contracts: ContractRegistry) -> Surface:
        """``catalogue`` with each operation that has a contract in ``contracts`` derived from it."""
        unknown = [key for key in contracts if _find(catalogue, *key) is None]
        if unknown:
            service, operation = unknown[0]
            raise ValueError(f"{operation} of {service} is not in the catalogue")
        services = (
            dataclasses.replace(
                service,
                operations=tuple(
                    contracted(service, op, contract)
                    if (contract := contracts.get(service.name, op.name)) is not None
                    else op
                    for op in service.operations
                ),
            )
            for service in catalogue
        )
        return cls(Catalogue(services), contracts)


def _find(catalogue: Catalogue, service: str, operation: str) -> Operation | None:
    found = catalogue.by_name(service)
    return None if found is None else found.operation(operation)


def contracted(service: Service, operation: Operation, contract: OperationContract) -> Operation:
    """``operation`` as ``contract`` declares it (elements, credential placement, streaming)."""
    upload = contract.stream_field("request")
    download = contract.stream_field("response")
    return dataclasses.replace(
        operation,
        request_element=contract.request_name,
        response_element=contract.response_name,
        credentials=credential_placement(service.binding, contract),
        streaming=Streaming.UPLOAD if upload else Streaming.DOWNLOAD if download else Streaming.NONE,
        stream_element=upload.name if upload else None,
    )


def credential_placement(binding: Binding, contract: OperationContract) -> CredentialPlacement:
    """Where a caller of ``contract`` on ``binding`` sends its system user name and password."""
    if binding is Binding.WS:
        return CredentialPlacement.WSSE
    if any(header.name.lower() in _CREDENTIAL_NAMES for header in contract.request_headers):
        return CredentialPlacement.HEADER
    if any(item.name.lower() in _CREDENTIAL_NAMES for item in contract.request.fields):
        return CredentialPlacement.BODY
    return CredentialPlacement.NONE
