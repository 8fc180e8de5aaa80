"""Issue 3: zeep clients built from the proxy's OWN served WSDLs see and call every mapped operation.

The operations come from the live mapping set of the running proxy, so a mapping added later is
covered (or this test fails) without editing it. Each service of that set, on its own binding (Basic
SOAP 1.1 with body credentials, WS SOAP 1.2 with a WS-Security UsernameToken, BasicStreamed), is then
pinged with ``Test`` and called once for real against the sandbox world with a call that needs no earlier state; a call that
Altinn answers with an AltinnFault must arrive as a fault zeep parses, with the documented ErrorID.
WCF message contracts carry their credentials (and an upload its FileName/Reference/Reportee) as SOAP
headers: the served WSDL describes them, so the same clients call those operations with
``_soapheaders``, in a broker round trip and a status history after a send.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from proxy.app import SERVICES
from proxy.mapping.schema import LegacySide
from proxy.sandbox.broker_model import FileTransferStatus
from proxy.soap.catalogue import CredentialPlacement, Operation, Service, default_catalogue
from proxy.soap.contracts import OperationContract
from tests.e2e.conftest import World

SERVICE_OWNER = ("demo-so", "demo-so-password")
END_USER = ("demo-eus", "demo-eus-password")
REPORTEE = "310000019"


@dataclass(frozen=True)
class Live:
    """A mapped operation as the running proxy serves it."""

    legacy: LegacySide
    service: Service
    operation: Operation
    contract: OperationContract

    @property
    def binding(self) -> str:
        return self.service.binding.value


def _live_operations(world: World) -> list[Live]:
    mapping_set = world.app[SERVICES].mappings.current()
    live = []
    for compiled in mapping_set.operations.values():
        if compiled.contract is None:
            continue  # a legacy REST operation has no WSDL
        service = mapping_set.surface.catalogue.by_name(compiled.legacy.service)
        assert service is not None
        operation = service.operation(compiled.legacy.operation)
        assert operation is not None
        live.append(Live(compiled.legacy, service, operation, compiled.contract))
    return live


def _endpoint(legacy: LegacySide) -> str:
    """The path the mapping serves the operation at (the catalogue's, when it names none)."""
    service = default_catalogue().by_name(legacy.service)
    assert service is not None, legacy.service
    return legacy.endpoint or service.paths[0]


def _served_client(url: str, credentials: tuple[str, str] | None = None) -> Any:
    """A zeep client from the proxy's own ``?wsdl`` (with a UsernameToken for WS endpoints)."""
    import zeep
    from zeep.transports import Transport
    from zeep.wsse.username import UsernameToken

    wsse = UsernameToken(*credentials) if credentials is not None else None
    return zeep.Client(url + "?wsdl", transport=Transport(timeout=30, operation_timeout=30), wsse=wsse)


@dataclass(frozen=True)
class Described:
    """What a served WSDL says about one operation, as zeep understood it."""

    soap_version: str
    request_element: str
    request_members: tuple[str, ...]
    response_element: str
    response_members: tuple[str, ...]
    #: The SOAP header elements (local names) the binding declares for the request.
    request_headers: tuple[str, ...]


def _members(element: Any) -> tuple[str, ...]:
    return tuple(name for name, _ in element.type.elements)


def _headers(message: Any) -> tuple[str, ...]:
    return tuple(element.qname.localname for _, element in message.header.type.elements)


def _describe(url: str, operations: list[str]) -> dict[str, Described]:
    client = _served_client(url)
    port = next(iter(next(iter(client.wsdl.services.values())).ports.values()))
    found = {}
    for name in operations:
        operation = port.binding.get(name)
        found[name] = Described(
            soap_version=type(port.binding).__name__,
            request_element=operation.input.body.qname.text,
            request_members=_members(operation.input.body),
            response_element=operation.output.body.qname.text,
            response_members=_members(operation.output.body),
            request_headers=_headers(operation.input),
        )
    return found


def _describe_all(proxy_url: str, operations: list[Live]) -> dict[tuple[str, str], Described]:
    by_endpoint: dict[str, list[str]] = defaultdict(list)
    for live in operations:
        by_endpoint[_endpoint(live.legacy)].append(live.legacy.operation)
    described = {}
    for endpoint, names in by_endpoint.items():
        for name, description in _describe(proxy_url + endpoint, names).items():
            described[(endpoint, name)] = description
    return described


async def test_every_mapped_operation_is_described_with_its_types_in_the_served_wsdl(world: World) -> None:
    operations = _live_operations(world)
    described = await asyncio.to_thread(_describe_all, world.proxy_url, operations)

    assert {live.binding for live in operations} == {"basic", "basic_streamed", "ws"}
    for live in operations:
        legacy = live.legacy
        found = described[(_endpoint(legacy), legacy.operation)]
        assert found.soap_version == ("Soap12Binding" if live.binding == "ws" else "Soap11Binding")
        assert found.request_element == live.contract.request_name.clark
        assert found.response_element == live.contract.response_name.clark
        assert found.request_members, f"{legacy.operation}: the served request element is an empty shell"
        # GetFormSetPdfBasic names its user ``systemName``, as the original does.
        members = {"systemUserName" if m == "systemName" else m for m in found.request_members}
        credentials_in_body = {"systemUserName", "systemPassword"} & members
        credentials_in_headers = {"SystemUserName", "SystemPassword"} & set(found.request_headers)
        # WS callers authenticate with a UsernameToken; Basic ones in the body, or in SOAP headers
        # for WCF message contracts: the served WSDL must say where, or zeep cannot send them.
        placement = live.operation.credentials
        if placement is CredentialPlacement.HEADER:
            assert credentials_in_headers == {"SystemUserName", "SystemPassword"}, legacy.operation
            assert not credentials_in_body
        elif placement is CredentialPlacement.BODY:
            assert credentials_in_body == {"systemUserName", "systemPassword"}, legacy.operation
            assert not found.request_headers
        else:
            assert not credentials_in_body
            assert not found.request_headers
    described_headers = {name: found.request_headers for (_, name), found in described.items()}
    assert described_headers["UploadFileStreamedBasic"] == (
        "FileName",
        "Reference",
        "Reportee",
        "SystemPassword",
        "SystemUserName",
    )
    assert described_headers["GetCorrespondenceStatusHistoryBasic"] == ("SystemPassword", "SystemUserName")


def _fault(call: Callable[[], Any]) -> str | None:
    import zeep.exceptions

    with pytest.raises(zeep.exceptions.Fault) as raised:
        call()
    detail = raised.value.detail
    return None if detail is None else detail.findtext(".//{*}ErrorID")


def _status_criteria() -> dict[str, Any]:
    return {"ServiceCode": "4711", "ServiceEditionCode": 1, "Reportee": REPORTEE}


def _poll() -> dict[str, Any]:
    return {
        "ExternalServiceCode": "4712",
        "ExternalServiceEditionCode": 1,
        "Recipients": {"string": [REPORTEE]},
    }


def _inbox() -> dict[str, Any]:
    return {"Reportee": REPORTEE, "ServiceCodeList": {"string": ["4711"]}}


UNKNOWN_ID = 987_654_321


def _unknown_form_service() -> dict[str, Any]:
    return {
        "Reportee": REPORTEE,
        "ExternalShipmentReference": "coverage",
        "FormTasks": {"ServiceCode": "9999", "ServiceEdition": 1},
    }


# One call per (service, binding), needing no earlier state: (caller, call on the zeep service proxy).
CALLS: dict[str, tuple[tuple[str, str], Callable[[Any, tuple[str, str]], Any]]] = {
    "CorrespondenceAgencyExternalBasic": (
        SERVICE_OWNER,
        lambda s, c: s.GetCorrespondenceStatusDetailsBasicV3(*c, _status_criteria()),
    ),
    "CorrespondenceAgencyExternal": (
        SERVICE_OWNER,
        lambda s, c: s.GetCorrespondenceStatusDetailsV3(_status_criteria()),
    ),
    "ReporteeElementListExternalBasic": (
        END_USER,
        lambda s, c: s.GetReporteeElementListBasicV2(*c, searchBE=_inbox(), languageID=1044),
    ),
    "ReporteeElementListExternal": (
        END_USER,
        lambda s, c: s.GetReporteeElementListV2(searchBE=_inbox(), languageID=1044),
    ),
    "CorrespondenceExternalBasic": (
        END_USER,
        lambda s, c: _fault(lambda: s.GetCorrespondenceForEndUserSystemBasicV2(*c, UNKNOWN_ID, 1044)),
    ),
    "CorrespondenceExternal": (
        END_USER,
        lambda s, c: _fault(lambda: s.GetCorrespondenceForEndUserSystemV2(UNKNOWN_ID, 1044)),
    ),
    "BrokerServiceExternalBasic": (END_USER, lambda s, c: s.CheckIfAvailableFilesBasic(*c, _poll())),
    "BrokerServiceExternal": (END_USER, lambda s, c: s.CheckIfAvailableFiles(_poll())),
    "BrokerServiceExternalBasicStreamed": (
        END_USER,
        lambda s, c: _fault(lambda: s.DownloadFileStreamedBasic(*c, str(uuid.uuid4()), REPORTEE)),
    ),
    "ReceiptAgencyExternalBasic": (
        SERVICE_OWNER,
        lambda s, c: _fault(lambda: s.GetReceiptBasicV2(*c, {"ReceiptId": UNKNOWN_ID})),
    ),
    "ReceiptExternalBasic": (
        END_USER,
        lambda s, c: _fault(lambda: s.GetReceiptBasicV2(*c, {"ReceiptId": UNKNOWN_ID})),
    ),
    "ReceiptExternal": (END_USER, lambda s, c: _fault(lambda: s.GetReceiptV2({"ReceiptId": UNKNOWN_ID}))),
    "IntermediaryInboundBasic": (
        END_USER,
        lambda s, c: s.SubmitFormTaskBasic(*c, None, None, None, None, _unknown_form_service()),
    ),
    "IntermediaryInbound": (
        END_USER,
        lambda s, c: s.SubmitFormTask(formTaskShipment=_unknown_form_service()),
    ),
    "DownloadQueueExternalBasic": (SERVICE_OWNER, lambda s, c: s.GetDownloadQueueItems(*c, "4713")),
    "ServiceOwnerArchiveExternalStreamedBasic": (
        SERVICE_OWNER,
        lambda s, c: _fault(lambda: s.GetAttachmentDataStreamedBasic(*c, UNKNOWN_ID)),
    ),
}


def _call_every_service(
    proxy_url: str, endpoints: dict[str, tuple[str, str]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    answers, pings = {}, {}
    for service, (endpoint, binding) in sorted(endpoints.items()):
        credentials, call = CALLS[service]
        client = _served_client(proxy_url + endpoint, credentials if binding == "ws" else None)
        pings[service] = client.service.Test()
        answers[service] = call(client.service, credentials)
    return answers, pings


async def test_a_client_of_the_served_wsdl_calls_every_service_on_every_binding(world: World) -> None:
    endpoints = {
        live.legacy.service: (_endpoint(live.legacy), live.binding) for live in _live_operations(world)
    }
    assert set(CALLS) == set(endpoints), "every mapped service needs a call case here"

    answers, pings = await asyncio.to_thread(_call_every_service, world.proxy_url, endpoints)

    assert pings == dict.fromkeys(endpoints)  # every Test answered an empty TestResponse

    for service in ("CorrespondenceAgencyExternalBasic", "CorrespondenceAgencyExternal"):
        assert answers[service].ServiceCode == "4711"
        assert answers[service].ServiceEditionCode == 1
    for service in ("ReporteeElementListExternalBasic", "ReporteeElementListExternal"):
        assert list(answers[service] or []) == []
    for service in ("BrokerServiceExternalBasic", "BrokerServiceExternal"):
        assert answers[service] is False
    assert answers["CorrespondenceExternalBasic"] == answers["CorrespondenceExternal"] == "30002"
    assert answers["BrokerServiceExternalBasicStreamed"] == "40212"
    for service in ("ReceiptAgencyExternalBasic", "ReceiptExternalBasic", "ReceiptExternal"):
        assert answers[service] == "30008"
    assert list(answers["DownloadQueueExternalBasic"] or []) == []
    assert answers["ServiceOwnerArchiveExternalStreamedBasic"] == "30002"
    for service in ("IntermediaryInboundBasic", "IntermediaryInbound"):
        assert answers[service].ReceiptStatusCode == "Rejected"
        assert answers[service].ReceiptText.startswith("Not A Valid Service")


SENDER = ("demo-eus", "demo-eus-password", "310000019")
RECIPIENT = ("demo-eus2", "demo-eus2-password", "310000027")
BROKER_BASIC = "/ServiceEngineExternal/BrokerServiceExternalBasic.svc"
BROKER_STREAMED = "/ServiceEngineExternal/BrokerServiceExternalBasicStreamed.svc"
AGENCY_BASIC = "/ServiceEngineExternal/CorrespondenceAgencyExternalBasic.svc"


def _broker_search(org: str, status: str) -> dict[str, Any]:
    return {
        "ExternalServiceCode": "4712",
        "ExternalServiceEditionCode": 1,
        "FileStatus": status,
        "Reportee": org,
    }


async def test_a_broker_round_trip_through_the_served_wsdls_with_upload_headers(world: World) -> None:
    payload = bytes(range(256)) * 257  # zeep sends it inline as base64, which the proxy accepts

    def send() -> tuple[str, Any]:
        basic = _served_client(world.proxy_url + BROKER_BASIC).service
        streamed = _served_client(world.proxy_url + BROKER_STREAMED).service
        user, password, org = SENDER
        initiation = {
            "Manifest": {
                "ExternalServiceCode": "4712",
                "ExternalServiceEditionCode": 1,
                "FileList": {"File": [{"FileName": "served.zip"}]},
                "Reportee": org,
                "SendersReference": "served-wsdl",
            },
            "RecipientList": {"Recipient": [{"PartyNumber": RECIPIENT[2]}]},
        }
        file_reference: str = basic.InitiateBrokerServiceBasic(user, password, initiation)
        headers = {
            "FileName": "served.zip",
            "Reference": file_reference,
            "Reportee": org,
            "SystemPassword": password,
            "SystemUserName": user,
        }
        return file_reference, streamed.UploadFileStreamedBasic(DataStream=payload, _soapheaders=headers)

    file_reference, receipt = await asyncio.to_thread(send)
    assert (receipt.ReceiptId, receipt.ReceiptStatusCode) == (0, "OK")
    assert file_reference in receipt.ReceiptText
    broker = world.fakes.broker
    await broker.wait_until(
        lambda: all(t.status is FileTransferStatus.PUBLISHED for t in broker.transfers.values())
    )

    def receive() -> tuple[list[Any], bytes, list[Any]]:
        basic = _served_client(world.proxy_url + BROKER_BASIC).service
        streamed = _served_client(world.proxy_url + BROKER_STREAMED).service
        user, password, org = RECIPIENT
        listed = list(basic.GetAvailableFilesBasic(user, password, _broker_search(org, "Uploaded")) or [])
        data: bytes = streamed.DownloadFileStreamedBasic(user, password, file_reference, org)
        basic.ConfirmDownloadedBasic(user, password, file_reference, org)
        downloaded = list(
            basic.GetAvailableFilesBasic(user, password, _broker_search(org, "Downloaded")) or []
        )
        return listed, data, downloaded

    listed, data, downloaded = await asyncio.to_thread(receive)
    assert [(f.FileReference, f.FileName, f.FileSize) for f in listed] == [
        (file_reference, "served.zip", len(payload))
    ]
    assert listed[0].Reportee == SENDER[2]
    assert data == payload
    assert [(f.FileReference, f.FileStatus) for f in downloaded] == [(file_reference, "Downloaded")]


async def test_status_history_through_the_served_wsdl_with_credential_headers(world: World) -> None:
    user, password = SERVICE_OWNER

    def scenario() -> Any:
        agency = _served_client(world.proxy_url + AGENCY_BASIC).service
        correspondence = {
            "ServiceCode": "4711",
            "ServiceEdition": "1",
            "Reportee": REPORTEE,
            "Content": {"LanguageCode": "1044", "MessageTitle": "Served", "MessageBody": "Melding"},
            "VisibleDateTime": "2026-01-01T00:00:00",
        }
        agency.InsertCorrespondenceBasicV2(user, password, "TTD_DEMO", "served-history", correspondence)
        return agency.GetCorrespondenceStatusHistoryBasic(
            CorrespondenceSendersReferences={"string": ["served-history", "never-sent"]},
            _soapheaders={"SystemUserName": user, "SystemPassword": password},
        )

    result = await asyncio.to_thread(scenario)

    listed = result.CorrespondenceStatusInformation.CorrespondenceStatusDetailsList.StatusV2
    assert [(item.SendersReference, item.Reportee) for item in listed] == [("served-history", REPORTEE)]
    assert listed[0].CorrespondenceID > 0
    assert [change.StatusType for change in listed[0].StatusChanges.StatusChangeV2] == ["Created"]


async def test_status_history_credentials_in_the_served_headers_are_checked(world: World) -> None:
    user, _ = SERVICE_OWNER

    def call() -> str | None:
        agency = _served_client(world.proxy_url + AGENCY_BASIC).service
        return _fault(
            lambda: agency.GetCorrespondenceStatusHistoryBasic(
                CorrespondenceSendersReferences={"string": ["x"]},
                _soapheaders={"SystemUserName": user, "SystemPassword": "not-the-password"},
            )
        )

    assert await asyncio.to_thread(call) == "989"
