"""Legacy request/response types of the end-user correspondence operations the mappings implement.

Only EC/EC2 WSDLs survive for ``CorrespondenceExternal`` and ``ReporteeElementList``; the Basic
operations take the same data contracts with ``systemUserName``/``systemPassword`` (and, for the
inbox, the person fields) in front; their WS twins (``GetReporteeElementListV2``,
``GetCorrespondenceForEndUserSystemV2``, ``SaveCorrespondenceConfirmation``,
``ArchiveCorrespondenceForEndUserSystem``) take the same bodies without the system credentials, which
travel as a WS-Security UsernameToken. Enumerations are declared as ``string``: the values the
mappings emit are the legacy enumeration members. Members are in WCF's alphabetical order.
"""

from __future__ import annotations

from proxy.soap.contracts import ComplexType, Field, OperationContract
from proxy.soap.contracts_twins import Signature, basic_and_ws

LIST_NS = "http://www.altinn.no/services/ServiceEngine/ReporteeElementList/2009/10"
LIST_TYPES_NS = "http://www.altinn.no/services/ServiceEngine/ReporteeElementList/2010/10"
SEARCH_NS = "http://schemas.altinn.no/services/Archive/ReporteeArchive/2009/10"
ARRAYS_NS = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
CORRESPONDENCE_NS = "http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10"
CORRESPONDENCE_TYPES_NS = "http://schemas.altinn.no/services/ServiceEngine/Correspondence/2010/10"
LINK_NS = "http://schemas.altinn.no/services/ServiceEngine/Correspondence/2009/10"
RECEIPT_NS = "http://schemas.altinn.no/services/Intermediary/Receipt/2009/10"

_SYSTEM = (
    Field("systemUserName", min_occurs=1, nillable=True),
    Field("systemPassword", min_occurs=1, nillable=True),
)
_PERSON = (
    Field("userSSN", nillable=True),
    Field("userPassword", nillable=True),
    Field("userPinCode", nillable=True),
    Field("authMethod", nillable=True),
)


def _nillable(*names: str, type: str = "string") -> tuple[Field, ...]:
    return tuple(Field(name, type, nillable=True) for name in names)


ARRAY_OF_STRING = ComplexType(ARRAYS_NS, "ArrayOfstring", (Field("string", nillable=True, repeated=True),))

EXTERNAL_SEARCH = ComplexType(
    SEARCH_NS,
    "ExternalSearchBEV2",
    (
        Field("ArchiveReference", nillable=True),
        Field("CaseID", "int"),
        Field("CollectionPages", "boolean"),
        Field("EDialogue", "boolean"),
        Field("FromDate", "dateTime", nillable=True),
        Field("Reportee", nillable=True),
        Field("SearchName", nillable=True),
        Field("SearchString", nillable=True),
        Field("SentAndArchived", "boolean"),
        Field("ServiceCodeList", ARRAY_OF_STRING, nillable=True),
        Field("ServiceOwnerCode", nillable=True),
        Field("ToBeProcessed", "boolean"),
        Field("ToBeProcessedByOthers", "boolean"),
        Field("ToDate", "dateTime", nillable=True),
    ),
)

REPORTEE_ELEMENT = ComplexType(
    LIST_TYPES_NS,
    "ReporteeElementBEV2",
    (
        Field("AllowDelete", "boolean"),
        Field("AllowNewCopy", "boolean"),
        Field("Altinn1ArchiveUnitId", "long", nillable=True),
        Field("Altinn1FormCode", "int", nillable=True),
        Field("Altinn1FormId", "int", nillable=True),
        Field("Altinn1FormInstanceID", "long", nillable=True),
        Field("Altinn1FormORNo", "long", nillable=True),
        Field("Altinn1ParticipantID", nillable=True),
        Field("Altinn1ReferenceType", "int", nillable=True),
        Field("Altinn1WorkflowProcessId", "long", nillable=True),
        Field("ArchiveId", "int", nillable=True),
        Field("ArchiveReference", nillable=True),
        Field("CaseID", "int"),
        Field("CorrespondenceStatus"),
        Field("DueDate", "dateTime", nillable=True),
        Field("EndUserSystemID", "int"),
        Field("ExternalServiceCode", nillable=True),
        Field("IsCaseArchived", "boolean"),
        Field("IsMatched", "boolean"),
        Field("LastChangeType"),
        Field("LastChangedBy", nillable=True),
        Field("LastChangedByID", "int"),
        Field("LastChangedDate", "dateTime"),
        Field("Notice", nillable=True),
        Field("ParentCaseName", nillable=True),
        Field("ReporteeElementId", "int"),
        Field("ReporteeElementOwner", "int"),
        Field("ReporteeElementType"),
        Field("ReporteeName", nillable=True),
        Field("RoleRequirement"),
        Field("RoleRequirementAltinn1Element", nillable=True),
        Field("SEReporteeElementID", "int"),
        Field("ServiceEditionVersion", "int"),
        Field("ServiceOwner", "int"),
        Field("ServiceOwnerCode", nillable=True),
        Field("ServiceOwnerDescription", nillable=True),
        Field("Status"),
        Field("StatusName", nillable=True),
        Field("TaskStatus"),
        Field("Title", nillable=True),
    ),
)
REPORTEE_ELEMENT_LIST = ComplexType(
    LIST_TYPES_NS,
    "ReporteeElementBEV2List",
    (Field("ReporteeElementBEV2", REPORTEE_ELEMENT, nillable=True, repeated=True),),
)

CORRESPONDENCE = ComplexType(
    CORRESPONDENCE_TYPES_NS,
    "CorrespondenceV2",
    (
        Field("AllowForwarding", "boolean"),
        Field("ArchiveReference", nillable=True),
        Field("AuthenticatedUser", "int", nillable=True),
        Field("CaseID", "int", nillable=True),
        Field("ConfirmationDate", "dateTime", nillable=True),
        Field("CorrespondenceID", "int"),
        Field("CorrespondenceName", nillable=True),
        Field("CorrespondenceStatus"),
        *_nillable(
            "CorrespondenceSubject",
            "CorrespondenceSummary",
            "CorrespondenceTitle",
            "CorrespondenceTxt",
            "CustomMessageData",
        ),
        Field("DateSent", "dateTime"),
        Field("Description", nillable=True),
        Field("DueDate", "dateTime", nillable=True),
        Field("ExternalSystemReference", nillable=True),
        Field("Header", nillable=True),
        Field("IsConfirmationNeeded", "boolean"),
        Field("LanguageID"),
        Field("Reportee", "int"),
        Field("SentBy", nillable=True),
        Field("SentTo", "int"),
        Field("UserID", "int", nillable=True),
    ),
)
ATTACHMENT = ComplexType(
    LIST_TYPES_NS,
    "AttachmentBEV2",
    (
        Field("AttachmentData", "base64Binary", nillable=True),
        Field("AttachmentFunctionTypeID"),
        Field("AttachmentID", "int"),
        Field("AttachmentName", nillable=True),
        Field("AttachmentTypeID"),
        Field("CreatedByUserID", "int"),
        Field("CreatedDateTime", "dateTime"),
        Field("DestinationType"),
        Field("FileName", nillable=True),
        Field("IsAddedAfterFormFillin", "boolean"),
        Field("IsAssociatedToFormSet", "boolean"),
        Field("IsEncrypted", "boolean"),
        Field("ReporteeElementID", "int"),
        Field("SendersReference", nillable=True),
    ),
)
ATTACHMENT_LIST = ComplexType(
    LIST_TYPES_NS, "AttachmentBEV2List", (Field("AttachmentBEV2", ATTACHMENT, nillable=True, repeated=True),)
)
LINK = ComplexType(
    LINK_NS, "CorrespondenceLink", (Field("LinkText", nillable=True), Field("LinkURL", nillable=True))
)
LINK_LIST = ComplexType(
    LINK_NS, "CorrespondenceLinkBEList", (Field("CorrespondenceLink", LINK, nillable=True, repeated=True),)
)
NOTIFICATION_LIST = ComplexType(CORRESPONDENCE_TYPES_NS, "InternalNotificationBEList", ())
FOR_END_USER_SYSTEM = ComplexType(
    CORRESPONDENCE_TYPES_NS,
    "CorrespondenceForEndUserSystemV2",
    (
        Field("Correspondence", CORRESPONDENCE, nillable=True),
        Field("CorrespondenceAttachments", ATTACHMENT_LIST, nillable=True),
        Field("CorrespondenceLinks", LINK_LIST, nillable=True),
        Field("CorrespondenceNotifications", NOTIFICATION_LIST, nillable=True),
    ),
)
RECEIPT = ComplexType(
    RECEIPT_NS,
    "Receipt",
    (
        Field("LastChanged", "dateTime"),
        Field("ParentReceiptId", "int"),
        Field("ReceiptHistory", nillable=True),
        Field("ReceiptId", "int"),
        Field("ReceiptStatusCode"),
        Field("ReceiptTemplate", nillable=True),
        Field("ReceiptText", nillable=True),
        Field("ReceiptTypeName"),
        Field("References", nillable=True),
        Field("SubReceipts", nillable=True),
    ),
)

_ELEMENT_ID = (Field("reporteeElementID", "int", min_occurs=1),)
_LIST_BASIC, _LIST_WS = "ReporteeElementListExternalBasic", "ReporteeElementListExternal"
_CORRESPONDENCE_BASIC, _CORRESPONDENCE_WS = "CorrespondenceExternalBasic", "CorrespondenceExternal"

_INBOX = Signature(
    LIST_NS,
    (*_PERSON, Field("searchBE", EXTERNAL_SEARCH, nillable=True), Field("languageID", "int")),
    REPORTEE_ELEMENT_LIST,
    credentials=_SYSTEM,
)
_READ = Signature(
    CORRESPONDENCE_NS,
    (Field("correspondenceID", "int", min_occurs=1), Field("languageID", "int")),
    FOR_END_USER_SYSTEM,
    credentials=_SYSTEM,
)
_CONFIRM = Signature(CORRESPONDENCE_NS, _ELEMENT_ID, None, credentials=_SYSTEM)
_ARCHIVE = Signature(CORRESPONDENCE_NS, _ELEMENT_ID, RECEIPT, credentials=_SYSTEM)

CONTRACTS: dict[tuple[str, str], OperationContract] = {
    **basic_and_ws(
        _INBOX, (_LIST_BASIC, "GetReporteeElementListBasicV2"), (_LIST_WS, "GetReporteeElementListV2")
    ),
    **basic_and_ws(
        _READ,
        (_CORRESPONDENCE_BASIC, "GetCorrespondenceForEndUserSystemBasicV2"),
        (_CORRESPONDENCE_WS, "GetCorrespondenceForEndUserSystemV2"),
    ),
    **basic_and_ws(
        _CONFIRM,
        (_CORRESPONDENCE_BASIC, "SaveCorrespondenceConfirmationBasic"),
        (_CORRESPONDENCE_WS, "SaveCorrespondenceConfirmation"),
    ),
    **basic_and_ws(
        _ARCHIVE,
        (_CORRESPONDENCE_BASIC, "ArchiveCorrespondenceForEndUserSystemBasic"),
        (_CORRESPONDENCE_WS, "ArchiveCorrespondenceForEndUserSystem"),
    ),
}
