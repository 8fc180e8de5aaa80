"""SOAP header blocks as request fields, for WCF message contracts (the streamed services).

A streamed operation such as ``UploadFileStreamedBasic`` carries its metadata (FileName, Reference,
Reportee) as SOAP headers and only the binary payload in the body. Mapping field paths are
relative to the operation element, so the front presents such a call as one element: a shallow
copy of the body element with copies of the header blocks appended as children. The binary payload
is not copied (it travels as the call's attachment stream); credentials are left out.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from lxml import etree

_CREDENTIAL_NAMES = frozenset({"systemusername", "systempassword", "security"})


def with_header_fields(body: etree._Element, headers: Iterable[etree._Element]) -> etree._Element:
    """``body``'s element with its structured or small children and the non-credential headers (copies).

    A structured child (e.g. the ``CorrespondenceSendersReferences`` list of a status history
    request) is kept; a large text leaf (a payload) is not.
    """
    view = etree.Element(body.tag, nsmap=body.nsmap)  # type: ignore[arg-type]
    for child in body:
        if isinstance(child.tag, str) and (len(child) > 0 or len(child.text or "") <= 4096):
            view.append(copy.deepcopy(child))
    for header in headers:
        if not isinstance(header.tag, str):
            continue
        if etree.QName(header).localname.lower() in _CREDENTIAL_NAMES:
            continue
        view.append(copy.deepcopy(header))
    return view
