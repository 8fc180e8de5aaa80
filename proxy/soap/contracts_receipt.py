"""Legacy request/response types of the receipt operations the mappings implement (for served WSDLs).

``GetReceiptBasicV2`` of ``ReceiptAgencyExternalBasic`` and of ``ReceiptExternalBasic`` (end-user systems,
broker receipts): a ``ReceiptSearch`` in, a ``Receipt``
(namespace ``.../Receipt/2015/06``) out, members in WCF's alphabetical order. Enumerations are
declared as ``string``; the mapping emits their legacy members.
"""

from __future__ import annotations

from proxy.soap.contracts import ComplexType, ElementDecl, Field, OperationContract

SERVICE_NS = "http://www.altinn.no/services/Intermediary/Receipt/2009/10"
RECEIPT_2015_NS = "http://schemas.altinn.no/services/Intermediary/Receipt/2015/06"
#: ``ReceiptExternal`` (what InsertCorrespondence and other submissions answer) lives here.
RECEIPT_2009_NS = "http://schemas.altinn.no/services/Intermediary/Receipt/2009/10"

_REFERENCE_2015 = ComplexType(
    RECEIPT_2015_NS, "Reference", (Field("ReferenceType"), Field("ReferenceValue", nillable=True))
)
_RECEIPT_SEARCH = ComplexType(
    RECEIPT_2015_NS,
    "ReceiptSearch",
    (
        Field("ReceiptId", "int"),
        Field("References", _REFERENCE_2015, nillable=True, list_item="Reference"),
    ),
)
_RECEIPT = ComplexType(
    RECEIPT_2015_NS,
    "Receipt",
    (
        Field("LastChanged", "dateTime"),
        Field("ParentReceiptId", "int"),
        Field("ReceiptHistory", nillable=True),
        Field("ReceiptId", "int"),
        Field("ReceiptStatus"),
        Field("ReceiptTemplate", nillable=True),
        Field("ReceiptText", nillable=True),
        Field("ReceiptType"),
        Field("References", _REFERENCE_2015, nillable=True, list_item="Reference"),
        Field("SubReceipts", nillable=True),
    ),
)

_REFERENCE_2009 = ComplexType(
    RECEIPT_2009_NS, "Reference", (Field("ReferenceTypeName"), Field("ReferenceValue", nillable=True))
)
RECEIPT_EXTERNAL = ComplexType(
    RECEIPT_2009_NS,
    "ReceiptExternal",
    (
        Field("LastChanged", "dateTime"),
        Field("ParentReceiptId", "int"),
        Field("ReceiptHistory", nillable=True),
        Field("ReceiptId", "int"),
        Field("ReceiptStatusCode"),
        Field("ReceiptText", nillable=True),
        Field("ReceiptTypeName"),
        Field("References", _REFERENCE_2009, nillable=True, list_item="Reference"),
        Field("SubReceipts", nillable=True),
    ),
)
"""The ``ReceiptExternal`` answer type, shared with the correspondence agency contracts."""

_GET_RECEIPT_V2 = OperationContract(
    request=ElementDecl(
        SERVICE_NS,
        "GetReceiptBasicV2",
        (
            Field("systemUserName", min_occurs=1),
            Field("systemPassword", min_occurs=1),
            Field("receipt", _RECEIPT_SEARCH, min_occurs=1),
        ),
    ),
    response=ElementDecl(
        SERVICE_NS,
        "GetReceiptBasicV2Response",
        (Field("GetReceiptBasicV2Result", _RECEIPT, nillable=True),),
    ),
)

CONTRACTS: dict[tuple[str, str], OperationContract] = {
    ("ReceiptExternalBasic", "GetReceiptBasicV2"): _GET_RECEIPT_V2,
    ("ReceiptAgencyExternalBasic", "GetReceiptBasicV2"): OperationContract(
        request=ElementDecl(
            SERVICE_NS,
            "GetReceiptBasicV2",
            (
                Field("systemUserName", min_occurs=1),
                Field("systemPassword", min_occurs=1),
                Field("receipt", _RECEIPT_SEARCH, min_occurs=1),
            ),
        ),
        response=ElementDecl(
            SERVICE_NS,
            "GetReceiptBasicV2Response",
            (Field("GetReceiptBasicV2Result", _RECEIPT, nillable=True),),
        ),
    ),
}
