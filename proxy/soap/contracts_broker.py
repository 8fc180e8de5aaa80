"""Legacy request/response types of the broker operations the mappings implement (for served WSDLs).

``BrokerServiceExternalBasic`` (``InitiateBrokerServiceBasic``, ``GetAvailableFilesBasic``,
``CheckIfAvailableFilesBasic``, ``ConfirmDownloadedBasic``) and their WS twins on
``BrokerServiceExternal`` (the same names without "Basic", no system credentials in the body), and
``BrokerServiceExternalBasicStreamed``: ``DownloadFileStreamedBasic`` (credentials in the body, as in
the original) and the message contract ``UploadFileStreamedBasic`` (body ``StreamedPayloadBasicBE``,
answer ``ReceiptExternalStreamedBE``; ``FileName``, ``Reference``, ``Reportee`` and the credentials
are SOAP headers, in the original's order). Streams are ``base64Binary`` (MTOM/XOP on the wire); the file reference, a GUID, and
the file status enumeration are declared as ``string``. Members are in WCF's alphabetical order.
"""

from __future__ import annotations

from proxy.soap.contracts import ComplexType, ElementDecl, Field, HeaderDecl, OperationContract
from proxy.soap.contracts_twins import Signature, basic_and_ws

SERVICE_NS = "http://www.altinn.no/services/ServiceEngine/Broker/2015/06"
DATA_NS = "http://schemas.altinn.no/services/ServiceEngine/Broker/2015/06"
POLL_NS = "http://schemas.altinn.no/services/ServiceEngine/Broker/2020/01"
ARRAYS_NS = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"

_SYSTEM = (Field("systemUserName", min_occurs=1), Field("systemPassword", min_occurs=1))

_FILE = ComplexType(DATA_NS, "File", (Field("CheckSum", nillable=True), Field("FileName", nillable=True)))
_PROPERTY = ComplexType(
    DATA_NS, "Property", (Field("PropertyKey", nillable=True), Field("PropertyValue", nillable=True))
)
_RECIPIENT = ComplexType(DATA_NS, "Recipient", (Field("PartyNumber", nillable=True),))
_MANIFEST = ComplexType(
    DATA_NS,
    "Manifest",
    (
        Field("ExternalServiceCode", nillable=True),
        Field("ExternalServiceEditionCode", "int"),
        Field("FileList", _FILE, nillable=True, list_item="File"),
        Field("PropertyList", _PROPERTY, nillable=True, list_item="Property"),
        Field("Reportee", nillable=True),
        Field("SendersReference", nillable=True),
    ),
)
_INITIATION = ComplexType(
    DATA_NS,
    "BrokerServiceInitiation",
    (
        Field("Manifest", _MANIFEST, nillable=True),
        Field("RecipientList", _RECIPIENT, nillable=True, list_item="Recipient"),
    ),
)
_SEARCH = ComplexType(
    DATA_NS,
    "BrokerServiceSearch",
    (
        Field("ExternalServiceCode", nillable=True),
        Field("ExternalServiceEditionCode", "int"),
        Field("FileStatus"),
        Field("MaxSentDateTime", "dateTime"),
        Field("MinSentDateTime", "dateTime"),
        Field("Reportee", nillable=True),
    ),
)
_AVAILABLE_FILE = ComplexType(
    DATA_NS,
    "BrokerServiceAvailableFile",
    (
        Field("ExternalServiceCode", nillable=True),
        Field("ExternalServiceEditionCode", "int"),
        Field("FileName", nillable=True),
        Field("FileReference"),
        Field("FileSize", "long"),
        Field("FileStatus"),
        Field("IsSftpDownloadOnly", "boolean"),
        Field("ReceiptID", "int"),
        Field("Reportee", nillable=True),
        Field("SendersReference", nillable=True),
        Field("SentDate", "dateTime"),
    ),
)
_AVAILABLE_FILES = ComplexType(
    DATA_NS,
    "BrokerServiceAvailableFileList",
    (Field("BrokerServiceAvailableFile", _AVAILABLE_FILE, nillable=True, repeated=True),),
)
_STRINGS = ComplexType(ARRAYS_NS, "ArrayOfstring", (Field("string", nillable=True, repeated=True),))
_POLL = ComplexType(
    POLL_NS,
    "BrokerServicePoll",
    (
        Field("ExternalServiceCode", nillable=True),
        Field("ExternalServiceEditionCode", "int"),
        Field("Recipients", _STRINGS, nillable=True),
    ),
)
_FILE_AND_REPORTEE = (Field("fileReference", min_occurs=1), Field("reportee", min_occurs=1))

_INITIATE = Signature(
    SERVICE_NS, (Field("brokerServiceInitiation", _INITIATION, min_occurs=1),), "string", _SYSTEM
)
_GET_AVAILABLE = Signature(
    SERVICE_NS, (Field("searchParameters", _SEARCH, min_occurs=1),), _AVAILABLE_FILES, _SYSTEM
)
_CHECK_AVAILABLE = Signature(
    SERVICE_NS, (Field("pollParameters", _POLL, min_occurs=1),), "boolean", _SYSTEM, result_nillable=False
)
_CONFIRM = Signature(SERVICE_NS, _FILE_AND_REPORTEE, None, _SYSTEM)
_DOWNLOAD = Signature(SERVICE_NS, _FILE_AND_REPORTEE, "base64Binary", _SYSTEM, result_nillable=False)

_UPLOAD = OperationContract(
    request=ElementDecl(
        SERVICE_NS, "StreamedPayloadBasicBE", (Field("DataStream", "base64Binary", min_occurs=1),)
    ),
    response=ElementDecl(
        SERVICE_NS,
        "ReceiptExternalStreamedBE",
        (
            Field("LastChanged", nillable=True),
            Field("ParentReceiptId", "int"),
            Field("ReceiptHistory", nillable=True),
            Field("ReceiptId", "int"),
            Field("ReceiptStatusCode", nillable=True),
            Field("ReceiptText", nillable=True),
            Field("ReceiptTypeName", nillable=True),
        ),
    ),
    request_headers=tuple(
        HeaderDecl(SERVICE_NS, name)
        for name in ("FileName", "Reference", "Reportee", "SystemPassword", "SystemUserName")
    ),
)

_BASIC, _WS, _STREAMED = (
    "BrokerServiceExternalBasic",
    "BrokerServiceExternal",
    "BrokerServiceExternalBasicStreamed",
)

CONTRACTS: dict[tuple[str, str], OperationContract] = {
    **basic_and_ws(_INITIATE, (_BASIC, "InitiateBrokerServiceBasic"), (_WS, "InitiateBrokerService")),
    **basic_and_ws(_GET_AVAILABLE, (_BASIC, "GetAvailableFilesBasic"), (_WS, "GetAvailableFiles")),
    **basic_and_ws(_CHECK_AVAILABLE, (_BASIC, "CheckIfAvailableFilesBasic"), (_WS, "CheckIfAvailableFiles")),
    **basic_and_ws(_CONFIRM, (_BASIC, "ConfirmDownloadedBasic"), (_WS, "ConfirmDownloaded")),
    # The streamed endpoint has no WS twin in the catalogue.
    **basic_and_ws(_DOWNLOAD, (_STREAMED, "DownloadFileStreamedBasic")),
    (_STREAMED, "UploadFileStreamedBasic"): _UPLOAD,
}
