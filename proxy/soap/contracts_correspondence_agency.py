"""Legacy request/response types of the correspondence agency operations the mappings implement.

Declared for ``InsertCorrespondenceBasicV2``, ``GetCorrespondenceStatusDetailsBasicV3`` and
``GetCorrespondenceStatusHistoryBasic`` on the Basic endpoint and for the WS twins of the first two
(``InsertCorrespondenceV2``, ``GetCorrespondenceStatusDetailsV3``, the same bodies without
``systemUserName``/``systemPassword``). ``GetCorrespondenceStatusHistoryBasic`` is a WCF message
contract: its body elements are ``CorrespondenceStatusHistoryRequest``/``Result`` and its credentials
are the ``SystemPassword``/``SystemUserName`` SOAP headers (bound in that order, as in the original).
Requests declare the members the mappings read; answers are declared in the namespaces and order
the mappings emit, which are the original WSDL's. Enumerations are declared as ``string``.
"""

from __future__ import annotations

from proxy.soap.contracts import ComplexType, ElementDecl, Field, HeaderDecl, OperationContract
from proxy.soap.contracts_receipt import RECEIPT_EXTERNAL
from proxy.soap.contracts_twins import Signature, basic_and_ws

SERVICE_NS = "http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10"
INSERT_NS = "http://schemas.altinn.no/services/ServiceEngine/Correspondence/2010/10"
LINK_NS = "http://schemas.altinn.no/services/ServiceEngine/Correspondence/2009/10"
ATTACHMENT_NS = "http://www.altinn.no/services/ServiceEngine/ReporteeElementList/2010/10"
STATUS_NS = "http://schemas.altinn.no/services/ServiceEngine/Correspondence/2016/02"
STATUS_ITEM_NS = "http://schemas.altinn.no/services/ServiceEngine/Correspondence/2014/10"
ARRAYS_NS = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"

_SYSTEM = (Field("systemUserName", min_occurs=1), Field("systemPassword", min_occurs=1))

_BINARY_ATTACHMENT = ComplexType(
    ATTACHMENT_NS,
    "BinaryAttachmentV2",
    (
        Field("DestinationType"),
        Field("FileName", nillable=True),
        Field("FunctionType"),
        Field("Name", nillable=True),
        Field("Encrypted", "boolean"),
        Field("Data", "base64Binary", nillable=True),
        Field("SendersReference", nillable=True),
    ),
)
_ATTACHMENTS = ComplexType(
    INSERT_NS,
    "AttachmentsV2",
    (Field("BinaryAttachments", _BINARY_ATTACHMENT, nillable=True, list_item="BinaryAttachmentV2"),),
)
_CONTENT = ComplexType(
    INSERT_NS,
    "ExternalContentV2",
    (
        Field("LanguageCode", nillable=True),
        Field("MessageTitle", nillable=True),
        Field("MessageSummary", nillable=True),
        Field("MessageBody", nillable=True),
        Field("Attachments", _ATTACHMENTS, nillable=True),
    ),
)
_URL_LINK = ComplexType(
    LINK_NS, "UrlLink", (Field("LinkURL", nillable=True), Field("LinkText", nillable=True))
)
_REPLY_OPTION = ComplexType(LINK_NS, "ReplyOption", (Field("URL", _URL_LINK, nillable=True),))
_INSERT = ComplexType(
    INSERT_NS,
    "InsertCorrespondenceV2",
    (
        Field("ServiceCode", nillable=True),
        Field("ServiceEdition", nillable=True),
        Field("Reportee", nillable=True),
        Field("Content", _CONTENT, nillable=True),
        Field("VisibleDateTime", "dateTime"),
        Field("AllowSystemDeleteDateTime", "dateTime", nillable=True),
        Field("DueDateTime", "dateTime"),
        Field("ReplyOptions", _REPLY_OPTION, nillable=True, list_item="ReplyOption"),
        Field("MessageSender", nillable=True),
    ),
)
_INSERT_FIELDS = (
    Field("SystemUserCode", min_occurs=1),
    Field("ExternalShipmentReference", min_occurs=1),
    Field("Correspondence", _INSERT, min_occurs=1),
)

_FILTER = ComplexType(
    STATUS_NS,
    "CorrespondenceStatusFilterV3",
    (
        Field("CreatedAfterDate", "dateTime", nillable=True),
        Field("CreatedBeforeDate", "dateTime", nillable=True),
        Field("CurrentStatus"),
        Field("Reportee", nillable=True),
        Field("SendersReference", nillable=True),
        Field("ServiceCode", min_occurs=1, nillable=True),
        Field("ServiceEditionCode", "int", min_occurs=1),
    ),
)
_STATUS_CHANGE = ComplexType(
    STATUS_ITEM_NS, "StatusChangeV2", (Field("StatusDate", "dateTime"), Field("StatusType"))
)
_STATUS = ComplexType(
    STATUS_ITEM_NS,
    "StatusV2",
    (
        Field("CorrespondenceID", "int"),
        Field("CreatedDate", "dateTime"),
        Field("Notifications", nillable=True),
        Field("Reportee", nillable=True),
        Field("SendersReference", nillable=True),
        Field("StatusChanges", _STATUS_CHANGE, nillable=True, list_item="StatusChangeV2"),
    ),
)
# The list is in the 2016/02 result but its items are 2014/10 elements: a named list type whose
# item repeats, not a wrapper (whose items would take the wrapper's namespace).
_STATUS_LIST = ComplexType(
    STATUS_ITEM_NS, "ArrayOfStatusV2", (Field("StatusV2", _STATUS, nillable=True, repeated=True),)
)
_STATUS_INFORMATION = ComplexType(
    STATUS_NS,
    "CorrespondenceStatusInformation",
    (
        Field("CorrespondenceStatusDetailsList", _STATUS_LIST, nillable=True),
        Field("LimitReached", "boolean"),
    ),
)
_STATUS_RESULT = ComplexType(
    STATUS_NS,
    "CorrespondenceStatusResultV3",
    (
        Field("CorrespondenceStatusInformation", _STATUS_INFORMATION, nillable=True),
        Field("SdpStatusInformation", nillable=True),
        Field("ServiceCode", nillable=True),
        Field("ServiceEditionCode", "int"),
    ),
)


_SENDERS_REFERENCES = ComplexType(
    ARRAYS_NS, "ArrayOfstring", (Field("string", nillable=True, repeated=True),)
)
_STATUS_HISTORY = OperationContract(
    request=ElementDecl(
        SERVICE_NS,
        "CorrespondenceStatusHistoryRequest",
        (Field("CorrespondenceSendersReferences", _SENDERS_REFERENCES, nillable=True),),
    ),
    response=ElementDecl(
        SERVICE_NS,
        "CorrespondenceStatusHistoryResult",
        (
            Field("CorrespondenceStatusInformation", _STATUS_INFORMATION, nillable=True),
            Field("SdpStatusInformation", nillable=True),
        ),
    ),
    request_headers=(HeaderDecl(SERVICE_NS, "SystemPassword"), HeaderDecl(SERVICE_NS, "SystemUserName")),
)


_BASIC = "CorrespondenceAgencyExternalBasic"
_WS = "CorrespondenceAgencyExternal"
_INSERT_V2 = Signature(SERVICE_NS, _INSERT_FIELDS, RECEIPT_EXTERNAL, credentials=_SYSTEM)
_STATUS_DETAILS_V3 = Signature(
    SERVICE_NS, (Field("filterCriteria", _FILTER, min_occurs=1),), _STATUS_RESULT, credentials=_SYSTEM
)

CONTRACTS: dict[tuple[str, str], OperationContract] = {
    **basic_and_ws(_INSERT_V2, (_BASIC, "InsertCorrespondenceBasicV2"), (_WS, "InsertCorrespondenceV2")),
    **basic_and_ws(
        _STATUS_DETAILS_V3,
        (_BASIC, "GetCorrespondenceStatusDetailsBasicV3"),
        (_WS, "GetCorrespondenceStatusDetailsV3"),
    ),
    # A message contract, and the catalogue has no WS twin of it.
    (_BASIC, "GetCorrespondenceStatusHistoryBasic"): _STATUS_HISTORY,
}
