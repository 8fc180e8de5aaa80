"""Form tasks and the download queue as pure functions: routing of forms, sub-forms and attachments,
Altinn 2's refusals, what a resend still has to upload, and the queue's filters."""

from __future__ import annotations

import base64
from types import MappingProxyType
from typing import Any

import pytest

from proxy.errors import NotFound
from proxy.mapping.forms import (
    attachment_refusal,
    form_task_refusal,
    form_task_uploads,
    main_form,
    pending_uploads,
    route_problems,
    shipment_instance,
)
from proxy.mapping.queue import archive_number, continuation_token, form_xml, queue_item, queue_items
from proxy.mapping.routing import FormRoute, Route

ROUTE = Route(
    "4713",
    "1",
    org="ttd",
    app="legacy-form-4713",
    data_type="skjema",
    data_format_id="5703",
    data_format_version="41235",
    sub_forms=(FormRoute("5704", "41236", "underskjema"),),
    attachment_types=MappingProxyType({"vedlegg": "vedlegg"}),
    default_attachment_type="vedlegg",
)


def _shipment(
    *forms: tuple[str, str, str], attachments: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "service_code": "4713",
        "service_edition": "1",
        "forms": [
            {"data_format_id": i, "data_format_version": v, "data": d, "completed": True} for i, v, d in forms
        ],
        "attachments": attachments or [],
    }


def test_main_form_and_sub_forms_are_routed_to_their_data_types() -> None:
    shipment = _shipment(("5704", "41236", "<Under/>"), ("5703", "41235", "<Skjema/>"))
    assert form_task_refusal(shipment, ROUTE) is None
    main = main_form(shipment, ROUTE)
    assert main is not None
    assert main["data"] == "<Skjema/>"
    [upload] = form_task_uploads(shipment, ROUTE)
    assert (upload["data_type"], upload["file_name"], upload["data"]) == (
        "underskjema",
        "underskjema-1.xml",
        b"<Under/>",
    )
    assert ROUTE.form_format("underskjema") == {"data_format_id": "5704", "data_format_version": "41236"}


@pytest.mark.parametrize(
    ("shipment", "text"),
    [
        (_shipment(("5704", "41236", "<Under/>")), "it holds 0"),
        (_shipment(("5703", "41235", "<Skjema/>"), ("5703", "41235", "<Skjema/>")), "it holds 2"),
        (
            _shipment(
                ("5703", "41235", "<Skjema/>"),
                attachments=[{"file_name": "a.pdf", "type_name": "x", "data": "QQ=="}],
            ),
            "AttachmentTypeName : x",
        ),
        (
            _shipment(
                ("5703", "41235", "<Skjema/>"), attachments=[{"file_name": "a.pdf", "data": "not base64!"}]
            ),
            "not valid base64",
        ),
        (
            _shipment(
                ("5703", "41235", "<Skjema/>"), attachments=[{"file_name": "noextension", "data": "QQ=="}]
            ),
            "extension",
        ),
        (
            _shipment(("5703", "41235", "<!DOCTYPE x [<!ENTITY a 'b'>]><Skjema>&a;</Skjema>")),
            "SchemaValidationError",
        ),
    ],
)
def test_refusals(shipment: dict[str, Any], text: str) -> None:
    refusal = form_task_refusal(shipment, ROUTE)
    assert refusal is not None
    assert text in refusal["text"]


def test_attachment_limits_come_from_the_apps_metadata() -> None:
    metadata = {
        "dataTypes": [
            {"id": "vedlegg", "maxSize": 1, "maxCount": 1, "allowedContentTypes": ["application/pdf"]}
        ]
    }
    one = {"file_name": "a.pdf", "data": base64.b64encode(b"%PDF").decode()}
    assert attachment_refusal(_shipment(attachments=[one]), ROUTE, metadata) is None
    two = attachment_refusal(_shipment(attachments=[one, one]), ROUTE, metadata)
    assert two == {
        "status": "Rejected",
        "text": "Too many attachments of type vedlegg: at most 1 are allowed",
    }
    big = {"file_name": "b.pdf", "data": base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()}
    refusal = attachment_refusal(_shipment(attachments=[big]), ROUTE, metadata)
    assert refusal is not None
    assert "at most 1 MB" in refusal["text"]


def test_a_resend_uploads_only_what_the_instance_lacks() -> None:
    uploads = [
        {"data_type": "vedlegg", "file_name": "a.pdf"},
        {"data_type": "vedlegg", "file_name": "a.pdf"},
        {"data_type": "vedlegg", "file_name": "b.pdf"},
    ]
    instance = {
        "data": [{"dataType": "skjema", "filename": None}, {"dataType": "vedlegg", "filename": "a.pdf"}]
    }
    assert pending_uploads(instance, uploads) == uploads[1:]
    assert pending_uploads(None, uploads) == uploads


def test_the_instance_of_a_shipment_is_found_by_its_key() -> None:
    page = {"instances": [{"id": "1/a", "dataValues": {"legacyShipmentKey": "k1"}}, {"id": "1/b"}]}
    assert shipment_instance(page, "k1") == {"id": "1/a", "dataValues": {"legacyShipmentKey": "k1"}}
    assert shipment_instance(page, "k2") is None


def test_routing_is_checked_against_the_apps_metadata() -> None:
    metadata = {
        "dataTypes": [
            {"id": "skjema", "appLogic": {"classRef": "Skjema"}},
            {"id": "underskjema"},
            {"id": "vedlegg"},
        ]
    }
    assert route_problems(ROUTE, metadata) == [
        "ServiceCode 4713 edition 1 -> ttd/legacy-form-4713: sub_forms 'underskjema' is not a form data type "
        "(it has no data model)"
    ]


def test_queue_filters() -> None:
    assert archive_number(" ar123 ") == "123"
    with pytest.raises(NotFound):
        archive_number("AR12x")
    assert continuation_token("http://x/storage/api/v1/instances?size=2&continuationToken=1%3B2") == "1;2"
    assert continuation_token(None) is None
    pages = [
        {"instances": [{"appId": "ttd/a"}, {"appId": "ttd/other"}]},
        None,
        {"instances": [{"appId": "ttd/a"}] * 3},
    ]
    assert len(queue_items(pages, ["ttd/a"], limit=3)) == 3
    archived = {"status": {"isArchived": True}, "completeConfirmations": [{"stakeholderId": "ttd"}]}
    with pytest.raises(NotFound, match="purged"):
        queue_item(archived, "ttd", "AR1")
    with pytest.raises(NotFound, match="not archived"):
        queue_item({"status": {}}, "ttd", "AR1")
    assert (
        form_xml(b'<a:Skjema xmlns:a="urn:x"><a:B>1</a:B></a:Skjema>', False) == "<Skjema><B>1</B></Skjema>"
    )
    assert form_xml(b'<Skjema xmlns="urn:x"/>', True) == '<Skjema xmlns="urn:x"/>'
