"""Form tasks (``SubmitFormTask``): what a shipment becomes in an Altinn 3 app, as mapping filters.

A ``formTaskShipment`` (fields ``forms`` and ``attachments`` as ``mappings/intermediary-inbound.yaml``
reads them) is judged against its routing entry (:class:`proxy.mapping.routing.Route`) and the app's
metadata before anything is written to Altinn 3. A refusal is Altinn 2's answer, a receipt with
ReceiptId 0 (``{"status": ..., "text": ...}``); Altinn 2's wording is kept where it is documented
("Not A Valid Service", "Not A Valid DataFormatId Or DataFormatVersion", "Shipment Already Exists",
the ``SchemaValidationError`` receipt text).

Resends and crashes: the instance carries ``dataValues`` with the shipment's key (caller, reportee,
reference) and a digest of its content, so a resend finds the instance it made (and what it still
lacks) instead of making a second one, and a different shipment under the same reference is told
that it already exists.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import mimetypes
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from proxy.errors import InvalidField, ProxyError
from proxy.mapping.routing import Route
from proxy.soap.xmlsafe import XmlLimits, parse_xml

#: ``dataValues`` names on instances the proxy creates.
SHIPMENT_KEY = "legacyShipmentKey"
SHIPMENT_DIGEST = "legacyShipmentDigest"
#: FormData is parsed with the SOAP limits' depth and element bounds (its size is bounded by the body's).
_FORM_LIMITS = XmlLimits(max_bytes=64 * 1024 * 1024, max_depth=64, max_elements=500_000)
#: A fixed MIME table (Python's built-in one, never the host's ``/etc/mime.types``).
_MIME = mimetypes.MimeTypes(filenames=())


Refusal = dict[str, str]


def _refusal(text: str, status: str = "Rejected") -> Refusal:
    return {"status": status, "text": text}


def mime_type(file_name: object) -> str:
    """The content type of a file name's extension (``application/octet-stream`` when unknown)."""
    found, _ = _MIME.guess_type(str(file_name or ""), strict=False)
    return found or "application/octet-stream"


def digest(value: object) -> str:
    """A SHA-256 (hex) of ``value`` as canonical JSON: the same shipment always gives the same text."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _forms(fields: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [form for form in fields.get("forms") or [] if form is not None]


def _attachments(fields: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [item for item in fields.get("attachments") or [] if item is not None]


def main_form(fields: Mapping[str, Any], route: Route) -> Mapping[str, Any] | None:
    """The shipment's main form (the first form of the route's main data type), or None."""
    for form in _forms(fields):
        if route.form_type(form.get("data_format_id"), form.get("data_format_version")) == route.data_type:
            return form
    return None


def form_task_refusal(fields: Mapping[str, Any], route: Route | None) -> Refusal | None:
    """Altinn 2's refusal of a shipment that no app call can fix, or None when it may go on.

    Checks, in Altinn 2's order: the service, each form's data format, exactly one main form, each
    form's XML, each attachment's type name, file name and data.
    """
    if route is None or route.org is None or route.app is None:
        return _refusal(
            f"Not A Valid Service :; ServiceCode : {fields.get('service_code')}; "
            f"ServiceEdition : {fields.get('service_edition')}"
        )
    forms = _forms(fields)
    for form in forms:
        if route.form_type(form.get("data_format_id"), form.get("data_format_version")) is None:
            return _refusal(
                "Not A Valid DataFormatId Or DataFormatVersion; "
                f"DataFormatId : {form.get('data_format_id')}, DataFormatVersion : {form.get('data_format_version')}"
            )
    mains = [
        f
        for f in forms
        if route.form_type(f.get("data_format_id"), f.get("data_format_version")) == route.data_type
    ]
    if len(mains) != 1:
        return _refusal(
            "Not A Valid DataFormatId Or DataFormatVersion; the shipment must hold exactly one main form "
            f"(DataFormatId : {route.data_format_id}, DataFormatVersion : {route.data_format_version}), "
            f"it holds {len(mains)}"
        )
    for number, form in enumerate(forms, 1):
        problem = _xml_problem(form.get("data"))
        if problem is not None:
            return _refusal(
                f"Error: <SchemaValidationError>{problem}</SchemaValidationError> :  Error path: Form {number} "
                f"(DataFormatId {form.get('data_format_id')})",
                status="ValidationFailed",
            )
    for item in _attachments(fields):
        name = item.get("file_name")
        if route.attachment_type(item.get("type_name")) is None:
            return _refusal(f"Not A Valid AttachmentTypeName; AttachmentTypeName : {item.get('type_name')}")
        if not name or "." not in str(name):
            return _refusal(
                f"Attachment {item.get('name') or ''} needs a FileName with an extension (e.g. report.pdf)"
            )
        if not item.get("data"):
            return _refusal(f"Attachment {name} has no AttachementData")
        if _decoded(item.get("data")) is None:
            return _refusal(f"The AttachementData of attachment {name} is not valid base64")
    return None


def refuse(refusal: Mapping[str, Any]) -> None:
    """Raise Altinn 2's refusal of a form task as the caller's error (the legacy REST front answers it
    with ``400`` and ``{"ErrorCode": 30001, "ErrorMessage": <the receipt's text>}``)."""
    raise InvalidField(str(refusal.get("text") or "The form task was refused"))


def _decoded(data: object) -> bytes | None:
    """Base64 text as bytes (whitespace ignored), or None when it is not base64."""
    try:
        return base64.b64decode("".join(str(data or "").split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _xml_problem(text: object) -> str | None:
    if text is None or str(text).strip() == "":
        return "FormData is empty"
    try:
        parse_xml(str(text).encode("utf-8"), _FORM_LIMITS)
    except ProxyError as error:
        return f"FormData is not well-formed XML: {error.message}"
    return None


def attachment_refusal(
    fields: Mapping[str, Any], route: Route, metadata: Mapping[str, Any] | None
) -> Refusal | None:
    """Altinn 2's refusal of an attachment the app would refuse (its data type's size limit, allowed
    content types and count), judged by the app's metadata before any instance is made."""
    types = {t.get("id"): t for t in (metadata or {}).get("dataTypes") or [] if isinstance(t, Mapping)}
    counts: Counter[str] = Counter()
    for item in _attachments(fields):
        data_type = route.attachment_type(item.get("type_name")) or ""
        spec = types.get(data_type)
        name = item.get("file_name")
        if spec is None:
            return _refusal(
                f"Attachment {name}: the app {route.org}/{route.app} has no data type {data_type}; "
                "the proxy's routing of this service is wrong"
            )
        size = len(_decoded(item.get("data")) or b"")
        max_mb = spec.get("maxSize")
        if isinstance(max_mb, int) and size > max_mb * 1024 * 1024:
            return _refusal(
                f"Attachment {name} is {size} bytes; attachments of type {data_type} may be at most {max_mb} MB"
            )
        allowed = [str(t).lower() for t in spec.get("allowedContentTypes") or []]
        content_type = mime_type(name)
        if allowed and content_type not in allowed and "application/octet-stream" not in allowed:
            return _refusal(
                f"Attachment {name} has content type {content_type}, which attachments of type {data_type} "
                f"may not have (allowed: {', '.join(allowed)})"
            )
        counts[data_type] += 1
        max_count = spec.get("maxCount")
        if isinstance(max_count, int) and max_count > 0 and counts[data_type] > max_count:
            return _refusal(f"Too many attachments of type {data_type}: at most {max_count} are allowed")
    return None


def _disposition(file_name: str) -> str:
    fallback = file_name.encode("ascii", "replace").decode("ascii").replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name)}"


def form_task_uploads(fields: Mapping[str, Any], route: Route) -> list[dict[str, Any]]:
    """Every data element to add after the instance is made (the main form goes with the instance):
    sub-forms as XML, attachments decoded; each with ``data_type``, ``file_name``, ``content_type``,
    ``disposition`` and ``data``."""
    uploads: list[dict[str, Any]] = []
    main = main_form(fields, route)
    for number, form in enumerate(_forms(fields), 1):
        if form is main:
            continue
        data_type = route.form_type(form.get("data_format_id"), form.get("data_format_version"))
        file_name = f"{data_type}-{number}.xml"
        uploads.append(
            {
                "data_type": data_type,
                "file_name": file_name,
                "content_type": "application/xml",
                "disposition": _disposition(file_name),
                "data": str(form.get("data") or "").encode("utf-8"),
            }
        )
    for item in _attachments(fields):
        file_name = str(item.get("file_name"))
        uploads.append(
            {
                "data_type": route.attachment_type(item.get("type_name")),
                "file_name": file_name,
                "content_type": mime_type(file_name),
                "disposition": _disposition(file_name),
                "data": _decoded(item.get("data")) or b"",
            }
        )
    return uploads


def pending_uploads(instance: Mapping[str, Any] | None, uploads: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The uploads the instance does not hold yet (by data type and file name, counting duplicates):
    all of them for a new instance, what a crash left out for a found one."""
    present: Counter[tuple[str, str]] = Counter(
        (str(e.get("dataType")), str(e.get("filename"))) for e in (instance or {}).get("data") or []
    )
    pending = []
    for upload in uploads:
        key = (str(upload["data_type"]), str(upload["file_name"]))
        if present[key] > 0:
            present[key] -= 1
        else:
            pending.append(upload)
    return pending


def shipment_instance(query: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    """The instance of a Storage query answer that the shipment ``key`` made, or None."""
    for instance in (query or {}).get("instances") or []:
        if ((instance or {}).get("dataValues") or {}).get(SHIPMENT_KEY) == key:
            return dict(instance)
    return None


def route_problems(route: Route, metadata: Mapping[str, Any]) -> list[str]:
    """Why an app route does not fit the app's metadata (``check --online``); [] when it does."""
    types = {t.get("id"): t for t in metadata.get("dataTypes") or [] if isinstance(t, Mapping)}
    where = f"ServiceCode {route.service_code} edition {route.service_edition} -> {route.org}/{route.app}"
    problems = []
    forms = [("data_type", route.data_type)] + [("sub_forms", sub.data_type) for sub in route.sub_forms]
    for setting, name in forms:
        found = types.get(name)
        if found is None:
            problems.append(f"{where}: {setting} {name!r} is not a data type of the app")
        elif not (found.get("appLogic") or {}).get("classRef"):
            problems.append(f"{where}: {setting} {name!r} is not a form data type (it has no data model)")
    attachments = [("attachment_types", name) for name in route.attachment_types.values()]
    if route.default_attachment_type:
        attachments.append(("default_attachment_type", route.default_attachment_type))
    for setting, name in attachments:
        found = types.get(name)
        if found is None:
            problems.append(f"{where}: {setting} {name!r} is not a data type of the app")
        elif (found.get("appLogic") or {}).get("classRef"):
            problems.append(f"{where}: {setting} {name!r} is a form data type, not one for attachments")
    return problems


FILTERS = {
    "mime_type": mime_type,
    "digest": digest,
    "main_form": main_form,
    "form_task_refusal": form_task_refusal,
    "refuse": refuse,
    "attachment_refusal": attachment_refusal,
    "form_task_uploads": form_task_uploads,
    "pending_uploads": pending_uploads,
    "shipment_instance": shipment_instance,
}
"""The filters this module gives mapping expressions."""
