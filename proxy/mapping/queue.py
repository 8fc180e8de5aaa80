"""The service owner's download queue over Altinn 3 Storage, as mapping filters.

The queue is the service owner's completed instances of the apps routed to legacy services that it
has not confirmed (``excludeConfirmedBy``), oldest first, read one Storage page (at most 500) at a
time with the continuation token. An item is named by its ArchiveReference, ``AR`` and the legacy id
of kind ``archive_reference`` of the instance (owned by the service owner, so the submitter's receipt
and the queue show the same string); purging it is Storage's confirm-download.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lxml import etree

from proxy.errors import InvalidField, NotFound, ProxyError
from proxy.mapping.routing import Route
from proxy.soap.xmlsafe import XmlLimits, parse_xml

#: At most this many items per GetDownloadQueueItems, as Altinn 2 answered.
QUEUE_LIMIT = 500
#: Attachments up to this size are sent inline (as Altinn 2 did); larger ones only listed.
INLINE_LIMIT = 30 * 1024 * 1024
PDF_DATA_TYPE = "ref-data-as-pdf"
_FORM_LIMITS = XmlLimits(max_bytes=64 * 1024 * 1024, max_depth=64, max_elements=500_000)


def archive_number(reference: object) -> str:
    """The legacy id in an ArchiveReference (``AR123`` or ``123``), or Altinn 2's not-found fault."""
    text = "" if reference is None else str(reference).strip()
    digits = text[2:] if text[:2].upper() == "AR" else text
    if not digits.isdigit():
        raise NotFound(f"There is no item with ArchiveReference {text[:40]!r} in the download queue")
    return digits


def continuation_token(next_url: object) -> str | None:
    """The ``continuationToken`` of a Storage ``next`` link, or None on the last page."""
    if not next_url:
        return None
    found = parse_qs(urlsplit(str(next_url)).query).get("continuationToken")
    return found[0] if found else None


def queue_items(
    pages: Iterable[Mapping[str, Any] | None], app_ids: Sequence[str], limit: int = QUEUE_LIMIT
) -> list[Mapping[str, Any]]:
    """The instances of the pages, in order, of the routed apps only, at most ``limit``."""
    wanted = set(app_ids)
    items: list[Mapping[str, Any]] = []
    for page in pages:
        for instance in (page or {}).get("instances") or []:
            if instance.get("appId") in wanted:
                items.append(instance)
                if len(items) == limit:
                    return items
    return items


def queue_item(instance: Mapping[str, Any], owner: object, archive_reference: object) -> Mapping[str, Any]:
    """The instance while it is in ``owner``'s download queue (archived, not yet confirmed by it),
    else Altinn 2's fault: purged (confirmed) or never completed."""
    confirmed = any(
        str(c.get("stakeholderId", "")).lower() == str(owner).lower()
        for c in instance.get("completeConfirmations") or []
    )
    if confirmed:
        raise NotFound(f"The item {archive_reference} has been purged from the download queue")
    if not (instance.get("status") or {}).get("isArchived"):
        raise NotFound(f"The item {archive_reference} is not archived yet and is not in the download queue")
    return instance


def instance_path(instance: Mapping[str, Any]) -> str:
    """``{partyId}/{instanceGuid}`` of a Storage instance."""
    return str(instance.get("id", ""))


def _reportee(instance: Mapping[str, Any]) -> tuple[str, str]:
    owner = instance.get("instanceOwner") or {}
    if owner.get("organisationNumber"):
        return str(owner["organisationNumber"]), "Organisation"
    if owner.get("personNumber"):
        return str(owner["personNumber"]), "Person"
    return str(owner.get("username") or owner.get("partyId") or ""), "Selfregistereduser"


def reportee_id(instance: Mapping[str, Any]) -> str:
    """The instance owner as Altinn 2 named a reportee (organisation or national identity number)."""
    return _reportee(instance)[0]


def reportee_type(instance: Mapping[str, Any]) -> str:
    """``Organisation``, ``Person`` or ``Selfregistereduser``."""
    return _reportee(instance)[1]


def archived_at(instance: Mapping[str, Any]) -> str | None:
    """When the instance was archived (its process ended)."""
    return (instance.get("status") or {}).get("archived") or (instance.get("process") or {}).get("ended")


def shipment_metadata(instance: Mapping[str, Any]) -> list[dict[str, str]]:
    """The instance's data values as key/value pairs, without the proxy's own bookkeeping."""
    values = instance.get("dataValues") or {}
    return [{"key": k, "value": str(v)} for k, v in sorted(values.items()) if not k.startswith("legacy")]


def form_elements(instance: Mapping[str, Any], route: Route | None) -> list[dict[str, Any]]:
    """The instance's forms (main form first) with their DataFormatId/DataFormatVersion."""
    forms = []
    for element in instance.get("data") or []:
        form = None if route is None else route.form_format(element.get("dataType"))
        if form is not None:
            forms.append({**form, "id": element["id"], "main": element.get("dataType") == route.data_type})  # type: ignore[union-attr]
    return sorted(forms, key=lambda item: not item["main"])


def attachment_elements(instance: Mapping[str, Any], route: Route | None) -> list[dict[str, Any]]:
    """The instance's other data elements (not forms, not the app's PDF), each with ``inline`` when
    small enough to be sent in the answer."""
    found = []
    for element in instance.get("data") or []:
        data_type = element.get("dataType")
        if data_type == PDF_DATA_TYPE or (route is not None and route.form_format(data_type) is not None):
            continue
        found.append(
            {
                "id": element["id"],
                "data_type": data_type,
                "type_name": (route.attachment_type_name(data_type) if route else None) or data_type,
                "file_name": element.get("filename") or f"{element['id']}.bin",
                "content_type": element.get("contentType") or "application/octet-stream",
                "size": int(element.get("size") or 0),
                "inline": int(element.get("size") or 0) <= INLINE_LIMIT,
            }
        )
    return found


def pdf_element(instance: Mapping[str, Any], archive_reference: object) -> Mapping[str, Any]:
    """The PDF the app made of the form set, or Altinn 2's fault when there is none."""
    for element in instance.get("data") or []:
        if element.get("dataType") == PDF_DATA_TYPE:
            return dict(element)
    raise NotFound(f"There is no PDF of the form set with ArchiveReference {archive_reference}")


def attachment_instance(resolved: Mapping[str, Any], attachment_id: object) -> str:
    """The instance GUID an attachment id was listed under (its registry parent), or Altinn 2's fault."""
    parent = resolved.get("parent")
    if not parent:
        raise NotFound(
            f"Attachment {attachment_id} is not known with its form task: fetch the form task with "
            "GetArchivedFormTaskBasicDQ again, then ask for the attachment"
        )
    return str(parent)


def attachment_element(instance: Mapping[str, Any], guid: object, attachment_id: object) -> Mapping[str, Any]:
    """The instance's data element ``guid``, or Altinn 2's fault when it no longer exists."""
    for element in instance.get("data") or []:
        if str(element.get("id", "")).lower() == str(guid).lower():
            return dict(element)
    raise NotFound(f"Attachment {attachment_id} no longer exists in its form task")


def form_xml(data: bytes | None, include_namespace: object) -> str:
    """A form as XML text; without its namespaces unless ``include_namespace`` is true."""
    raw = data or b""
    if include_namespace is True or str(include_namespace).lower() == "true":
        return raw.decode("utf-8-sig")
    try:
        root = parse_xml(raw, _FORM_LIMITS)
    except ProxyError as error:
        raise InvalidField(f"a stored form is not XML: {error.message}") from None
    for element in root.iter():
        if isinstance(element.tag, str):
            element.tag = etree.QName(element).localname
    etree.cleanup_namespaces(root)
    return etree.tostring(root, encoding="unicode")


FILTERS = {
    "archive_number": archive_number,
    "continuation_token": continuation_token,
    "queue_items": queue_items,
    "queue_item": queue_item,
    "instance_path": instance_path,
    "reportee_id": reportee_id,
    "reportee_type": reportee_type,
    "archived_at": archived_at,
    "shipment_metadata": shipment_metadata,
    "form_elements": form_elements,
    "attachment_elements": attachment_elements,
    "pdf_element": pdf_element,
    "attachment_instance": attachment_instance,
    "attachment_element": attachment_element,
    "form_xml": form_xml,
}
"""The filters this module gives mapping expressions."""
