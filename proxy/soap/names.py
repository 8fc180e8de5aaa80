"""XML names and namespaces of the Altinn 2 SOAP world."""

from __future__ import annotations

from dataclasses import dataclass

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XS_NS = "http://www.w3.org/2001/XMLSchema"
XML_NS = "http://www.w3.org/XML/1998/namespace"
XOP_NS = "http://www.w3.org/2004/08/xop/include"
WSA10_NS = "http://www.w3.org/2005/08/addressing"
#: The pre-standard WS-Addressing namespace some WCF clients still send.
WSA200408_NS = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSSE_PASSWORD_TEXT = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"  # noqa: S105
)
#: Namespace of ``Test``/``TestResponse`` (IAltinnContractBase), shared by every service.
CONTRACT_BASE_NS = "http://www.altinn.no/services/2009/10"
#: Namespace of the ``AltinnFault`` detail.
FAULT_NS = "http://www.altinn.no/services/common/fault/2009/10"


@dataclass(frozen=True, order=True)
class XName:
    """A namespace-qualified XML name."""

    namespace: str
    local: str

    @property
    def clark(self) -> str:
        """The name in lxml's ``{namespace}local`` notation."""
        return f"{{{self.namespace}}}{self.local}" if self.namespace else self.local

    @classmethod
    def from_clark(cls, tag: str) -> XName:
        """Parse ``{namespace}local`` (or a bare local name)."""
        if tag.startswith("{"):
            namespace, _, local = tag[1:].partition("}")
            return cls(namespace, local)
        return cls("", tag)

    def __str__(self) -> str:
        return self.clark
