"""Legacy request/response types of the receipt operations the mappings implement (for served WSDLs).

``GetReceiptBasicV2`` of ``ReceiptAgencyExternalBasic`` and of ``ReceiptExternalBasic`` (end-user systems,
broker receipts), and ``GetReceiptV2``, the WS twin of the latter: a ``ReceiptSearch`` in, a ``Receipt``
(namespace ``.../Receipt/2015/06``) out, members in WCF's alphabetical order. Enumerations are
declared as ``string``; the mapping emits their legacy members.
"""

from __future__ import annotations

from proxy.soap.contracts import ComplexType, Field, OperationContract
from proxy.soap.contracts_twins import Signature, basic_and_ws

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

_GET_RECEIPT_V2 = Signature(
    SERVICE_NS,
    (Field("receipt", _RECEIPT_SEARCH, min_occurs=1),),
    _RECEIPT,
    credentials=(Field("systemUserName", min_occurs=1), Field("systemPassword", min_occurs=1)),
)

CONTRACTS: dict[tuple[str, str], OperationContract] = {
    **basic_and_ws(
        _GET_RECEIPT_V2, ("ReceiptExternalBasic", "GetReceiptBasicV2"), ("ReceiptExternal", "GetReceiptV2")
    ),
    # The agency endpoint has no WS twin in the catalogue.
    **basic_and_ws(_GET_RECEIPT_V2, ("ReceiptAgencyExternalBasic", "GetReceiptBasicV2")),
}
