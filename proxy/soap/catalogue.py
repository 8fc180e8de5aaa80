"""Every Altinn 2 SOAP service the proxy answers: paths, bindings, namespaces and operations.

The names come from the stored Altinn 2 WSDLs (``tests/soap/test_catalogue.py`` proves every Basic
WSDL's operations and SOAPActions are here). Where only EC/EC2 WSDLs survive, the Basic names follow
the documented pattern ``{Op}Basic``/``{Op}BasicV2`` and the Basic paths the documented
``/{Area}/{Service}Basic.svc``. WS (wsHttpBinding, SOAP 1.2) twins use the Basic names without
``Basic`` (``InsertCorrespondenceBasicV2`` -> ``InsertCorrespondenceV2``), as the one stored WS WSDL
shows. EC/EC2/AEC endpoints need WS-SecureConversation and are not served.

Invariants: SOAPAction is ``{namespace}/{interface}/{operation}``; the request element is the
operation name and the response element ``{operation}Response``, both in the service namespace.
Every service has ``Test``. This table is data: it says which services and operations exist, so an
unmapped one still answers ``Test``, serves a WSDL and is counted as untranslated. What a *mapped*
operation looks like (message-contract elements, header credentials, MTOM payloads) is declared
once, in its mapping file's ``contract``, and applied by :mod:`proxy.soap.surface`; only unmapped
message contracts (``SubmitAttachmentStreamedBasic``) are spelled out here, so that their
dispatch by body element finds them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from proxy.soap.envelope import SoapVersion
from proxy.soap.names import CONTRACT_BASE_NS, XName


class Binding(StrEnum):
    """How an endpoint speaks."""

    BASIC = "basic"  # basicHttpBinding, SOAP 1.1, text/xml + SOAPAction
    BASIC_STREAMED = "basic_streamed"  # basicHttpBinding with MTOM, SOAP 1.1
    WS = "ws"  # wsHttpBinding, SOAP 1.2, WS-Security UsernameToken

    @property
    def soap_version(self) -> SoapVersion:
        """The SOAP version this binding accepts."""
        return SoapVersion.SOAP12 if self is Binding.WS else SoapVersion.SOAP11


class CredentialPlacement(StrEnum):
    """Where an operation's legacy credentials travel."""

    NONE = "none"  # Test, or credentials nested in the payload the operation interprets itself
    BODY = "body"  # systemUserName/systemPassword as the operation element's first children
    HEADER = "header"  # SystemUserName/SystemPassword as SOAP headers (message contracts)
    WSSE = "wsse"  # WS-Security UsernameToken (PasswordText)


class Streaming(StrEnum):
    """Whether an operation moves a binary stream (MTOM on the wire, or inline base64)."""

    NONE = "none"
    UPLOAD = "upload"
    DOWNLOAD = "download"


@dataclass(frozen=True)
class Operation:
    """One operation of one service endpoint."""

    name: str
    soap_action: str
    request_element: XName
    response_element: XName
    credentials: CredentialPlacement
    streaming: Streaming = Streaming.NONE
    #: Local name of the element carrying the binary payload of a streamed operation.
    stream_element: str | None = None
    #: The WS-Addressing action of the reply (``{namespace}/{interface}/{operation}Response``).
    reply_action: str = ""
    #: The WS-Addressing action of an AltinnFault reply.
    fault_action: str = ""


@dataclass(frozen=True)
class Service:
    """A legacy SOAP endpoint: one contract interface on one binding at one or more paths."""

    name: str
    family: str
    binding: Binding
    paths: tuple[str, ...]
    namespace: str
    interface: str
    operations: tuple[Operation, ...]
    _by_name: Mapping[str, Operation] = field(init=False, repr=False, compare=False)
    _by_action: Mapping[str, Operation] = field(init=False, repr=False, compare=False)
    _by_element: Mapping[XName, Operation] = field(init=False, repr=False, compare=False)
    #: Operations by the local name of their request element, where that local name is unique.
    _by_local: Mapping[str, Operation] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_action: dict[str, Operation] = {}
        by_element: dict[XName, Operation] = {}
        by_local: dict[str, list[Operation]] = {}
        for op in self.operations:
            by_action.setdefault(op.soap_action, op)  # the first operation wins, as a scan would find it
            by_element.setdefault(op.request_element, op)
            by_local.setdefault(op.request_element.local, []).append(op)
        unique_local = {local: ops[0] for local, ops in by_local.items() if len(ops) == 1}
        object.__setattr__(self, "_by_name", MappingProxyType({op.name: op for op in self.operations}))
        object.__setattr__(self, "_by_action", MappingProxyType(by_action))
        object.__setattr__(self, "_by_element", MappingProxyType(by_element))
        object.__setattr__(self, "_by_local", MappingProxyType(unique_local))

    @property
    def soap_version(self) -> SoapVersion:
        """The SOAP version this endpoint accepts."""
        return self.binding.soap_version

    def operation(self, name: str) -> Operation | None:
        """The operation called ``name``, or None."""
        return self._by_name.get(name)

    def by_action(self, soap_action: str) -> Operation | None:
        """The operation with this SOAPAction (exact), or None."""
        return self._by_action.get(soap_action)

    def by_element(self, element: XName) -> Operation | None:
        """The operation whose request element is ``element``; lenient on namespace when unique."""
        return self._by_element.get(element) or self._by_local.get(element.local)


TEST_OPERATION_NAME = "Test"


def _test_operation(service_ns: str) -> Operation:
    return Operation(
        name=TEST_OPERATION_NAME,
        soap_action=f"{CONTRACT_BASE_NS}/IAltinnContractBase/Test",
        request_element=XName(CONTRACT_BASE_NS, "Test"),
        response_element=XName(CONTRACT_BASE_NS, "TestResponse"),
        credentials=CredentialPlacement.NONE,
        reply_action=f"{CONTRACT_BASE_NS}/IAltinnContractBase/TestResponse",
        fault_action=f"{CONTRACT_BASE_NS}/IAltinnContractBase/TestAltinnFaultFault",
    )


@dataclass(frozen=True)
class _Op:
    """A compact operation declaration; the rest is derived from the service."""

    name: str
    request: str | None = None  # message-contract request element (local name)
    response: str | None = None  # message-contract response element (local name)
    credentials: CredentialPlacement | None = None
    streaming: Streaming = Streaming.NONE
    stream_element: str | None = None


def _ops(names: str) -> tuple[_Op, ...]:
    return tuple(_Op(name) for name in names.split())


@dataclass(frozen=True)
class _Family:
    """One legacy service family: a Basic endpoint and optionally a WS twin."""

    family: str
    area: str
    basic_name: str
    namespace: str
    interface: str
    operations: tuple[_Op, ...]
    streamed: bool = False
    default_credentials: CredentialPlacement = CredentialPlacement.BODY
    #: WS twin: (service name, operation names or None to derive them from the Basic names).
    ws: tuple[str, tuple[str, ...] | None] | None = None
    ws_interface: str | None = None
    #: Only a WS endpoint exists (no Basic endpoint).
    ws_only: bool = False


def _operation(service_ns: str, interface: str, spec: _Op, default: CredentialPlacement) -> Operation:
    base = f"{service_ns}/{interface}/{spec.name}"
    return Operation(
        name=spec.name,
        soap_action=base,
        request_element=XName(service_ns, spec.request or spec.name),
        response_element=XName(service_ns, spec.response or f"{spec.name}Response"),
        credentials=spec.credentials or default,
        streaming=spec.streaming,
        stream_element=spec.stream_element,
        reply_action=f"{base}Response",
        fault_action=f"{base}AltinnFaultFault",
    )


def _service(
    name: str,
    family: str,
    binding: Binding,
    area: str,
    namespace: str,
    interface: str,
    ops: Iterable[Operation],
) -> Service:
    return Service(
        name=name,
        family=family,
        binding=binding,
        paths=(f"/{area}/{name}.svc",),
        namespace=namespace,
        interface=interface,
        operations=(_test_operation(namespace), *ops),
    )


def _ws_name(basic_operation: str) -> str:
    return basic_operation.replace("Basic", "", 1)


def _expand(spec: _Family) -> Iterator[Service]:
    if not spec.ws_only:
        binding = Binding.BASIC_STREAMED if spec.streamed else Binding.BASIC
        ops = (
            _operation(spec.namespace, spec.interface, op, spec.default_credentials) for op in spec.operations
        )
        yield _service(spec.basic_name, spec.family, binding, spec.area, spec.namespace, spec.interface, ops)
    if spec.ws is not None:
        ws_name, ws_ops = spec.ws
        interface = spec.ws_interface or spec.interface.replace("Basic", "")
        names = ws_ops if ws_ops is not None else tuple(_ws_name(op.name) for op in spec.operations)
        ops = (_operation(spec.namespace, interface, _Op(n), CredentialPlacement.WSSE) for n in names)
        yield _service(ws_name, spec.family, Binding.WS, spec.area, spec.namespace, interface, ops)


_H = CredentialPlacement.HEADER
_N = CredentialPlacement.NONE

_FAMILIES: tuple[_Family, ...] = (
    # --- end-user systems (ALTINN2-API.md section 3) ---
    _Family(
        "SystemAuthentication",
        "AuthenticationExternal",
        "SystemAuthentication",
        "http://www.altinn.no/services/Authentication/SystemAuthentication/2009/10",
        "ISystemAuthenticationExternal",
        (_Op("GetAuthenticationChallenge", credentials=_N),),
    ),
    _Family(
        "IntermediaryInbound",
        "IntermediaryExternal",
        "IntermediaryInboundBasic",
        "http://www.altinn.no/services/Intermediary/Shipment/IntermediaryInbound/2009/10",
        "IIntermediaryInboundExternalBasic",
        _ops(
            "SubmitFormTaskBasic UpdateFormDataBasic CompleteAndSignShipmentBasic GetAltinnSubmissionStatusBasic"
        ),
        ws=("IntermediaryInbound", None),
    ),
    _Family(
        "IntermediaryInboundStreamed",
        "IntermediaryExternal",
        "IntermediaryInboundBasicStreamed",
        "http://www.altinn.no/services/Intermediary/Shipment/IntermediaryInbound/2013/06",
        "IIntermediaryInboundExternalBasicStreamed",
        (
            _Op(
                "SubmitAttachmentStreamedBasic",
                request="StreamedAttachmentBasicBE",
                response="ReceiptExternalStreamedBE",
                credentials=_H,
                streaming=Streaming.UPLOAD,
                stream_element="dataStream",
            ),
        ),
        streamed=True,
    ),
    _Family(
        "ReceiptExternal",
        "IntermediaryExternal",
        "ReceiptExternalBasic",
        "http://www.altinn.no/services/Intermediary/Receipt/2009/10",
        "IReceiptExternalBasic",
        _ops(
            "GetReceiptBasic GetReceiptBasicV2 GetReceiptListBasic GetReceiptListBasicV2 SaveReceiptBasic"
            " UpdateReceiptBasic"
        ),
        ws=("ReceiptExternal", None),
    ),
    _Family(
        "CorrespondenceExternal",
        "ServiceEngineExternal",
        "CorrespondenceExternalBasic",
        "http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10",
        "ICorrespondenceExternalBasic",
        _ops(
            "GetCorrespondenceForEndUserSystemBasicV2 SaveCorrespondenceConfirmationBasic"
            " DeleteCorrespondenceBasic ArchiveCorrespondenceForEndUserSystemBasic"
        ),
        ws=("CorrespondenceExternal", None),
    ),
    _Family(
        "ReporteeElementList",
        "ServiceEngineExternal",
        "ReporteeElementListExternalBasic",
        "http://www.altinn.no/services/ServiceEngine/ReporteeElementList/2009/10",
        "IReporteeElementListExternalBasic",
        _ops(
            "GetReporteeElementListBasicV2 GetFormSetElementsBasicV2 GetFormSetDataBasic"
            " GetCorrespondenceListForReporteeBasic GetCorrespondenceListForArchiveRefBasic"
            " DeleteReporteeElementBasic"
        ),
        ws=("ReporteeElementListExternal", None),
    ),
    _Family(
        "ReporteeArchiveExternal",
        "ArchiveExternal",
        "ReporteeArchiveExternalBasic",
        "http://www.altinn.no/services/Archive/ReporteeArchive/2009/10",
        "IReporteeArchiveExternalBasic",
        _ops(
            "GetArchivedFormTaskBasicV2 GetAttachmentDataBasicV2 GetArchivedLookupBasic"
            " GetArchivedCorrespondenceBasic"
        ),
    ),
    _Family(
        "ReporteeArchiveExternalStreamed",
        "ArchiveExternal",
        "ReporteeArchiveExternalStreamedBasic",
        "http://www.altinn.no/services/Archive/ReporteeArchive/2013/06",
        "IReporteeArchiveExternalStreamedBasic",
        (_Op("GetAttachmentDataStreamedBasic", streaming=Streaming.DOWNLOAD),),
        streamed=True,
    ),
    _Family(
        "BrokerServiceExternal",
        "ServiceEngineExternal",
        "BrokerServiceExternalBasic",
        "http://www.altinn.no/services/ServiceEngine/Broker/2015/06",
        "IBrokerServiceExternalBasic",
        _ops(
            "InitiateBrokerServiceBasic GetAvailableFilesBasic CheckIfAvailableFilesBasic ConfirmDownloadedBasic"
        ),
        ws=("BrokerServiceExternal", None),
    ),
    _Family(
        "BrokerServiceExternalStreamed",
        "ServiceEngineExternal",
        "BrokerServiceExternalBasicStreamed",
        "http://www.altinn.no/services/ServiceEngine/Broker/2015/06",
        "IBrokerServiceExternalBasicStreamed",
        _ops("UploadFileStreamedBasic DownloadFileStreamedBasic"),
        streamed=True,
    ),
    _Family(
        "ServiceMetaData",
        "ServiceEngineExternal",
        "ServiceMetaDataExternalBasic",
        "http://www.altinn.no/services/ServiceEngine/ServiceMetaData/2009/10",
        "IServiceMetaDataExternalBasic",
        _ops("GetAvailableServicesBasicV2 GetAvailableServicesBasicV3 GetFormTaskSchemaDefinitionsBasic"),
        ws=("ServiceMetaDataExternal", None),
    ),
    _Family(
        "WorkflowService",
        "ServiceEngineExternal",
        "WorkflowServiceExternalBasic",
        "http://www.altinn.no/services/ServiceEngine/Workflow/2009/10",
        "IWorkflowServiceExternalBasic",
        _ops(
            "DoSendingInActionBasic DoSigningBasic GetAvailableActionsBasicV2"
            " GetNextWorkflowStateTypeInProcessFlowBasicV2 GetProcessDetailsBasicV2 GetProcessDetailsBasicV3"
            " GetSigningTextExternal SetBackToFormFillingBasic PrepareUserControlledSigningBasic"
            " GetProcessStepIDForParallelSigningBasic"
        ),
        ws=("WorkflowServiceExternal", None),
    ),
    _Family(
        "PreFillEUSExternal",
        "ServiceEngineExternal",
        "PreFillEUSExternalBasic",
        "http://www.altinn.no/services/ServiceEngine/PreFill/2009/10",
        "IPreFillEUSExternalBasic",
        _ops("GetPrefillDataBasic GetPrefillDataBasicV2"),
    ),
    _Family(
        "Case",
        "ServiceEngineExternal",
        "CaseExternalBasic",
        "http://www.altinn.no/services/ServiceEngine/Case/2009/10",
        "ICaseExternalBasic",
        _ops("GetCaseListExternalBasic InstantiateCollaborationExternalBasic ArchiveCaseExternalBasic"),
    ),
    _Family(
        "LookUpExternal",
        "ServiceEngineExternal",
        "LookUpExternalBasic",
        "http://www.altinn.no/services/ServiceEngine/LookUp/2016/02",
        "ILookUpExternalBasic",
        _ops("ExecuteLookUpBasic"),
    ),
    _Family(
        "KeyManagement",
        "ArchiveExternal",
        "KeyManagementExternalBasic",
        "http://www.altinn.no/services/Archive/KeyManagement/2010/10",
        "IKeyManagementExternalBasic",
        _ops("GetCertificatesBasic"),
    ),
    _Family(
        "ArchiveCommonExternal",
        "ArchiveExternal",
        "ArchiveCommonExternalBasic",
        "http://www.altinn.no/services/Archive/ArchiveCommon/2010/10",
        "IArchiveCommonExternalBasic",
        _ops("GetPaymentInformationBasic"),
    ),
    # --- service owners (ALTINN2-API.md section 4) ---
    _Family(
        "CorrespondenceAgencyExternal",
        "ServiceEngineExternal",
        "CorrespondenceAgencyExternalBasic",
        "http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10",
        "ICorrespondenceAgencyExternalBasic",
        _ops(
            "CreateSimpleCorrespondenceServiceBasic GetCorrespondenceStatusDetailsBasic"
            " GetCorrespondenceStatusDetailsBasicV2 GetCorrespondenceStatusDetailsBasicV3"
            " GetCorrespondenceStatusHistoryBasic InsertCorrespondenceBasic InsertCorrespondenceBasicV2"
        ),
        ws=(
            "CorrespondenceAgencyExternal",
            (
                "CreateSimpleCorrespondenceService",
                "GetCorrespondenceStatusDetails",
                "GetCorrespondenceStatusDetailsV2",
                "GetCorrespondenceStatusDetailsV3",
                "InsertCorrespondence",
                "InsertCorrespondenceV2",
            ),
        ),
    ),
    _Family(
        "NotificationAgencyExternal",
        "ServiceEngineExternal",
        "NotificationAgencyExternalBasic",
        "http://www.altinn.no/services/ServiceEngine/Notification/2010/10",
        "INotificationAgencyExternalBasic",
        _ops(
            "SendStandaloneNotificationBasic SendStandaloneNotificationBasicV2 SendStandaloneNotificationBasicV3"
        ),
    ),
    _Family(
        "ReceiptAgencyExternal",
        "IntermediaryExternal",
        "ReceiptAgencyExternalBasic",
        "http://www.altinn.no/services/Intermediary/Receipt/2009/10",
        "IReceiptAgencyExternalBasic",
        _ops(
            "GetReceiptBasic GetReceiptBasicV2 GetReceiptListBasic GetReceiptListBasicV2 SaveReceiptBasic"
            " UpdateReceiptBasic"
        ),
    ),
    _Family(
        "DownloadQueueExternal",
        "ArchiveExternal",
        "DownloadQueueExternalBasic",
        "http://www.altinn.no/services/Archive/DownloadQueue/2012/08",
        "IDownloadQueueExternalBasic",
        _ops("GetArchivedFormTaskBasicDQ GetDownloadQueueItems PurgeItem GetFormSetPdfBasic"),
    ),
    _Family(
        "ServiceOwnerArchiveExternal",
        "ArchiveExternal",
        "ServiceOwnerArchiveExternalBasic",
        "http://www.altinn.no/services/Archive/ServiceOwnerArchive/2009/10",
        "IServiceOwnerArchiveExternalBasic",
        _ops(
            "GetArchivedFormTaskBasic GetArchivedFormTaskBasicV2 GetArchiveShipmentStatusExternalBasic"
            " GetArchiveShipmentStatusExternalBasicV2"
        ),
    ),
    _Family(
        "ServiceOwnerArchiveExternalStreamed",
        "ArchiveExternal",
        "ServiceOwnerArchiveExternalStreamedBasic",
        "http://www.altinn.no/services/Archive/ServiceOwnerArchive/2013/06",
        "IServiceOwnerArchiveExternalStreamedBasic",
        (_Op("GetAttachmentDataStreamedBasic", streaming=Streaming.DOWNLOAD),),
        streamed=True,
    ),
    _Family(
        "ArchiveCommonAgencyExternal",
        "ArchiveExternal",
        "ArchiveCommonAgencyExternalBasic",
        "http://www.altinn.no/services/Archive/ArchiveCommon/2010/10",
        "IArchiveCommonAgencyExternalBasic",
        _ops("GetServiceOwnerArchiveReporteeElementsBasicV2"),
    ),
    _Family(
        "PreFill",
        "ServiceEngineExternal",
        "PreFillBasic",
        "http://www.altinn.no/services/ServiceEngine/PreFill/2009/10",
        "IPreFillExternalBasic",
        _ops("SubmitAndInstantiatePrefilledFormTaskBasic SubmitPrefilledFormTasksBasic"),
    ),
    _Family(
        "Subscription",
        "ServiceEngineExternal",
        "SubscriptionBasic",
        "http://www.altinn.no/services/ServiceEngine/Subscription/2009/10",
        "ISubscriptionExternalBasic",
        _ops("SubmitSubscriptionBasic"),
    ),
    _Family(
        "RegisterSRRAgencyExternal",
        "RegisterExternal",
        "RegisterSRRAgencyExternalBasic",
        "http://www.altinn.no/services/Register/SRR/2015/06",
        "IRegisterSRRAgencyExternalBasic",
        _ops("GetRightsBasic AddRightsBasic DeleteRightsBasic"),
    ),
    _Family(
        "AuthorizationAdministration",
        "AuthorizationExternal",
        "AdministrationExternalBasic",
        "http://www.altinn.no/services/Authorization/Administration/2012/11",
        "IAuthorizationAdministrationExternal",
        (),
        ws=(
            "AdministrationExternal",
            ("GetReportees", "GetReporteeByTempKey", "GetRoles", "LogConsentUsage"),
        ),
        ws_only=True,
    ),
    _Family(
        "AuthorizationDecisionPointExternal",
        "AuthorizationExternal",
        "AuthorizationDecisionPointExternalBasic",
        "http://www.altinn.no/services/Authorization/DecisionPoint/2010/10",
        "IAuthorizationDecisionPointExternal",
        (),
        ws=("AuthorizationDecisionPointExternal", ("AuthorizeAccessExternal",)),
        ws_only=True,
    ),
    _Family(
        "CaseAgencySystem",
        "ServiceEngineExternal",
        "CaseAgencySystemExternalBasic",
        "http://www.altinn.no/services/ServiceEngine/Case/2010/10",
        "ICaseAgencySystemExternalBasic",
        _ops(
            "GetCaseListAgencySystemBasic InstantiateCollaborationAgencySystemBasic"
            " NotifyEventAgencySystemBasic SetNoticeAgencySystemBasic"
        ),
    ),
    _Family(
        "ContextHandler",
        "ServiceEngineExternal",
        "ContextHandlerExternalBasic",
        "http://www.altinn.no/services/ServiceEngine/ContextHandler/2014/10",
        "IContextHandlerExternalBasic",
        _ops("GetReporteeElementContextExternalBasic"),
    ),
)


class Catalogue:
    """Lookup of services by legacy path, matched case-insensitively as IIS did."""

    def __init__(self, services: Iterable[Service]) -> None:
        self.services: tuple[Service, ...] = tuple(services)
        by_path: dict[str, Service] = {}
        by_name: dict[str, Service] = {}
        for service in self.services:
            if service.name in by_name:
                raise ValueError(f"duplicate SOAP service name {service.name}")
            by_name[service.name] = service
            for path in service.paths:
                key = path.lower()
                if key in by_path:
                    raise ValueError(f"two SOAP services claim the path {path}")
                by_path[key] = service
        self._by_path = MappingProxyType(by_path)
        self._by_name = MappingProxyType(by_name)

    def for_path(self, path: str) -> Service | None:
        """The service at ``path`` (case-insensitive, trailing slash tolerated), or None."""
        return self._by_path.get(path.rstrip("/").lower())

    def by_name(self, name: str) -> Service | None:
        """The service called ``name`` (e.g. ``CorrespondenceAgencyExternalBasic``), or None."""
        return self._by_name.get(name)

    def __iter__(self) -> Iterator[Service]:
        return iter(self.services)

    def __len__(self) -> int:
        return len(self.services)


def default_catalogue() -> Catalogue:
    """The catalogue of every Altinn 2 SOAP service the proxy knows."""
    return Catalogue(service for spec in _FAMILIES for service in _expand(spec))
