"""Issue 15 end to end: ``SubmitFormTaskBasic`` into the Altinn 3 app ``ttd/legacy-form-4713``.

A raw SOAP 1.1 envelope shaped like the documented real one (ALTINN2-API.md section 5.3), and a zeep
client of the proxy's served WSDL; the app/Storage fake is judged by Altinn's contract on every
request. Receipts are read back with ``GetReceiptBasicV2`` from the original ReceiptExternalBasic WSDL.
"""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
import pytest
from lxml import etree

from proxy.cli import check_app_routes
from proxy.sandbox import fixtures
from proxy.sandbox.apps_model import PDF_DATA_TYPE, Instance
from tests.e2e.conftest import World, legacy_client

END_USER = ("demo-eus", "demo-eus-password")
REPORTEE = "310000019"
INBOUND = "/IntermediaryExternal/IntermediaryInboundBasic.svc"
INBOUND_WS = "/IntermediaryExternal/IntermediaryInbound.svc"
RECEIPTS = "/IntermediaryExternal/ReceiptExternalBasic.svc"
NS = "http://www.altinn.no/services/Intermediary/Shipment/IntermediaryInbound/2009/10"
ACTION = f"{NS}/IIntermediaryInboundExternalBasic/SubmitFormTaskBasic"
FORM = '<Skjema xmlns="http://seres.no/xsd/ttd/5703/41235" dataFormatId="5703" dataFormatVersion="41235"><Navn>Test AS</Navn><Beloep>1200</Beloep></Skjema>'
ATTACHMENTS = {"kvittering.pdf": b"%PDF-1.4 kvittering", "notat.txt": "Notat æøå\n".encode()}


def _attachment_xml(name: str, data: bytes, type_name: str = "vedlegg") -> str:
    return (
        f"<ns:Attachment><ns:Name>{escape(name)}</ns:Name><ns:FileName>{escape(name)}</ns:FileName>"
        f"<ns:Encrypted>false</ns:Encrypted><ns:AttachementData>{base64.b64encode(data).decode()}</ns:AttachementData>"
        f"<ns:AttachmentTypeName>{type_name}</ns:AttachmentTypeName></ns:Attachment>"
    )


def envelope(
    reference: str,
    *,
    form: str = FORM,
    service: tuple[str, str] = fixtures.FORM_SERVICE,
    data_format: tuple[str, str] = fixtures.FORM_DATA_FORMAT,
    attachments: dict[str, bytes] | None = None,
    attachment_xml: str | None = None,
    completed: bool = True,
    reportee: str = REPORTEE,
    credentials: tuple[str, str] = END_USER,
) -> bytes:
    """A SubmitFormTaskBasic envelope as the documented real one: every child in the operation
    namespace, FormData as CDATA, the six authentication fields first."""
    items = attachments if attachments is not None else ATTACHMENTS
    attached = (
        attachment_xml
        if attachment_xml is not None
        else "".join(_attachment_xml(n, d) for n, d in items.items())
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns="{NS}">
  <soapenv:Header/>
  <soapenv:Body>
    <ns:SubmitFormTaskBasic>
      <ns:systemUserName>{credentials[0]}</ns:systemUserName>
      <ns:systemPassword>{credentials[1]}</ns:systemPassword>
      <ns:userSSN/><ns:userPassword/><ns:userPinCode/><ns:authMethod/>
      <ns:formTaskShipment>
        <ns:Reportee>{reportee}</ns:Reportee>
        <ns:ExternalShipmentReference>{reference}</ns:ExternalShipmentReference>
        <ns:FormTasks>
          <ns:ServiceCode>{service[0]}</ns:ServiceCode>
          <ns:ServiceEdition>{service[1]}</ns:ServiceEdition>
          <ns:Forms>
            <ns:Form>
              <ns:Completed>{str(completed).lower()}</ns:Completed>
              <ns:DataFormatId>{data_format[0]}</ns:DataFormatId>
              <ns:DataFormatVersion>{data_format[1]}</ns:DataFormatVersion>
              <ns:EndUserSystemReference>1</ns:EndUserSystemReference>
              <ns:ParentReference>0</ns:ParentReference>
              <ns:FormData><![CDATA[{form}]]></ns:FormData>
            </ns:Form>
          </ns:Forms>
        </ns:FormTasks>
        <ns:Attachments>{attached}</ns:Attachments>
      </ns:formTaskShipment>
    </ns:SubmitFormTaskBasic>
  </soapenv:Body>
</soapenv:Envelope>""".encode()


async def post(world: World, body: bytes) -> tuple[int, etree._Element]:
    """POST one SOAP 1.1 envelope; the HTTP status and the parsed answer."""
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{ACTION}"'}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
        session.post(world.proxy_url + INBOUND, data=io.BytesIO(body), headers=headers) as response,
    ):
        return response.status, etree.fromstring(await response.read())


def receipt_of(answer: etree._Element) -> dict[str, Any]:
    """The ReceiptExternalBE of an answer as a dict (references as a type → value dict)."""
    result = answer.find(".//{*}SubmitFormTaskBasicResult")
    assert result is not None, etree.tostring(answer)
    receipt: dict[str, Any] = {etree.QName(child).localname: child.text for child in result}
    receipt["References"] = {
        ref.findtext("{*}ReferenceTypeName"): ref.findtext("{*}ReferenceValue")
        for ref in result.iterfind("{*}References/{*}ReferenceBE")
    }
    return receipt


def live(world: World) -> list[Instance]:
    """The instances the fake app holds (not deleted)."""
    return [i for i in world.fakes.apps.instances.values() if not i.hard_deleted]


async def submitted(world: World, reference: str, **options: Any) -> dict[str, Any]:
    status, answer = await post(world, envelope(reference, **options))
    assert status == 200, etree.tostring(answer)
    return receipt_of(answer)


async def test_a_raw_envelope_submits_the_form_and_attachments_and_a_resend_changes_nothing(
    world: World, reference: Path
) -> None:
    receipt = await submitted(world, "shipment-1")

    assert receipt["ReceiptStatusCode"] == "OK", receipt
    assert receipt["ReceiptTypeName"] == "FormTask"
    archive = receipt["References"]["ArchiveReference"]
    assert archive.startswith("AR")
    assert archive[2:].isdigit()
    assert receipt["References"]["ExternalShipmentReference"] == "shipment-1"
    assert int(receipt["ReceiptId"]) > 0
    assert archive in receipt["ReceiptText"]
    [instance] = live(world)
    assert instance.process_ended is not None
    assert instance.org_number == REPORTEE
    kinds = sorted(element.data_type for element in instance.data)
    assert kinds == sorted(["skjema", "vedlegg", "vedlegg", PDF_DATA_TYPE])
    stored = {
        element.filename: world.fakes.apps.files.path_for(element.id).read_bytes()
        for element in instance.data
        if element.data_type == "vedlegg"
    }
    assert stored == ATTACHMENTS
    form = next(e for e in instance.data if e.data_type == "skjema")
    assert world.fakes.apps.files.path_for(form.id).read_bytes() == FORM.encode()

    again = await submitted(world, "shipment-1")
    assert again == receipt
    assert len(live(world)) == 1

    def read_receipts() -> tuple[Any, Any]:
        client = legacy_client(
            reference / "altinn2/ReceiptExternal/Basic/ReceiptExternalBasic.wsdl", world.proxy_url + RECEIPTS
        )
        by_id = client.GetReceiptBasicV2(*END_USER, {"ReceiptId": int(receipt["ReceiptId"])})
        by_reference = client.GetReceiptBasicV2(
            *END_USER,
            {
                "References": {
                    "Reference": [
                        {"ReferenceType": "ExternalShipmentReference", "ReferenceValue": "shipment-1"}
                    ]
                }
            },
        )
        return by_id, by_reference

    by_id, by_reference = await asyncio.to_thread(read_receipts)
    for found in (by_id, by_reference):
        assert found.ReceiptId == int(receipt["ReceiptId"])
        assert found.ReceiptStatus == "OK"
        assert found.ReceiptType == "FormTask"
        refs = {r.ReferenceType: r.ReferenceValue for r in found.References.Reference}
        assert refs["ArchiveReference"] == archive


async def test_a_zeep_client_of_the_served_wsdl_submits_on_basic_and_ws(world: World) -> None:
    from zeep import Client
    from zeep.transports import Transport
    from zeep.wsse.username import UsernameToken

    def shipment(reference: str) -> dict[str, Any]:
        return {
            "Reportee": REPORTEE,
            "ExternalShipmentReference": reference,
            "FormTasks": {
                "ServiceCode": "4713",
                "ServiceEdition": 1,
                "Forms": {
                    "Form": [
                        {
                            "Completed": True,
                            "DataFormatId": "5703",
                            "DataFormatVersion": 41235,
                            "FormData": FORM,
                        }
                    ]
                },
            },
            "Attachments": {
                "Attachment": [
                    {"Name": name, "FileName": name, "AttachementData": data, "AttachmentTypeName": "vedlegg"}
                    for name, data in ATTACHMENTS.items()
                ]
            },
        }

    def submit() -> tuple[Any, Any]:
        transport = Transport(timeout=30, operation_timeout=30)
        basic = Client(world.proxy_url + INBOUND + "?wsdl", transport=transport)
        ws = Client(
            world.proxy_url + INBOUND_WS + "?wsdl", transport=transport, wsse=UsernameToken(*END_USER)
        )
        return (
            basic.service.SubmitFormTaskBasic(*END_USER, None, None, None, None, shipment("zeep-basic")),
            ws.service.SubmitFormTask(formTaskShipment=shipment("zeep-ws")),
        )

    basic, ws = await asyncio.to_thread(submit)
    for receipt in (basic, ws):
        assert receipt.ReceiptStatusCode == "OK"
        assert receipt.ReceiptId > 0
        refs = {r.ReferenceTypeName: r.ReferenceValue for r in receipt.References.ReferenceBE}
        assert refs["ArchiveReference"].startswith("AR")
    assert len(live(world)) == 2
    assert all(len([e for e in i.data if e.data_type == "vedlegg"]) == 2 for i in live(world))


async def test_completed_false_leaves_the_form_in_the_data_task(world: World) -> None:
    receipt = await submitted(world, "til-utfylling", completed=False)
    assert receipt["ReceiptStatusCode"] == "OK"
    assert "til utfylling" in receipt["ReceiptText"]
    [instance] = live(world)
    assert instance.current_task is not None
    assert instance.current_task.task_type == "data"


async def test_a_failure_after_the_instance_was_made_is_finished_by_the_resend(world: World) -> None:
    world.fakes.apps.outages["next"] = [503, 503, 503, 503]
    status, answer = await post(world, envelope("outage-1"))
    assert status == 500
    assert answer.findtext(".//{*}ErrorID") is not None
    [made] = live(world)
    assert made.process_ended is None
    assert len(made.data) == 3

    world.fakes.apps.outages["next"] = []
    receipt = await submitted(world, "outage-1")
    assert receipt["ReceiptStatusCode"] == "OK"
    [instance] = live(world)
    assert instance is made
    assert instance.process_ended is not None
    assert len([e for e in instance.data if e.data_type == "vedlegg"]) == 2


async def test_a_resend_after_the_attachments_were_cut_short_uploads_only_what_is_missing(
    world: World,
) -> None:
    world.fakes.apps.outages["add_data"] = [503] * 8
    status, _ = await post(world, envelope("cut-short"))
    assert status == 500
    [made] = live(world)
    assert [e.data_type for e in made.data] == ["skjema"]
    world.fakes.apps.outages["add_data"] = []
    receipt = await submitted(world, "cut-short")
    assert receipt["ReceiptStatusCode"] == "OK"
    assert sorted(e.filename or "" for e in made.data if e.data_type == "vedlegg") == sorted(ATTACHMENTS)


def _refused(receipt: dict[str, Any], status: str, text: str) -> None:
    assert receipt["ReceiptStatusCode"] == status, receipt
    assert receipt["ReceiptText"] == text
    assert receipt["ReceiptId"] == "0"
    assert receipt["ReceiptTypeName"] == "NotSet"


@pytest.mark.parametrize(
    ("options", "status", "text"),
    [
        (
            {"service": ("9999", "1")},
            "Rejected",
            "Not A Valid Service :; ServiceCode : 9999; ServiceEdition : 1",
        ),
        (
            {"data_format": ("5703", "1")},
            "Rejected",
            "Not A Valid DataFormatId Or DataFormatVersion; DataFormatId : 5703, DataFormatVersion : 1",
        ),
        ({"reportee": "310000027"}, "Rejected", "Invalid reportee"),
        (
            {"attachment_xml": _attachment_xml("a.pdf", b"%PDF", type_name="ukjent")},
            "Rejected",
            "Not A Valid AttachmentTypeName; AttachmentTypeName : ukjent",
        ),
        (
            {"attachments": {"program.exe": b"MZ"}},
            "Rejected",
            "Attachment program.exe has content type application/octet-stream, which attachments of type "
            "vedlegg may not have (allowed: application/pdf, image/png, image/jpeg, text/plain, text/xml, application/xml)",
        ),
    ],
)
async def test_bad_input_gets_altinn_2s_receipt_before_any_write(
    world: World, options: dict[str, Any], status: str, text: str
) -> None:
    _refused(await submitted(world, "bad-1", **options), status, text)
    assert live(world) == []


async def test_form_data_that_is_not_xml_is_a_schema_validation_error(world: World) -> None:
    receipt = await submitted(world, "bad-xml", form="<Skjema><Navn>open")
    assert receipt["ReceiptStatusCode"] == "ValidationFailed"
    assert receipt["ReceiptText"].startswith("Error: <SchemaValidationError>FormData is not well-formed XML:")
    assert receipt["ReceiptText"].endswith(":  Error path: Form 1 (DataFormatId 5703)")
    assert live(world) == []


async def test_an_attachment_over_the_data_types_size_limit_is_refused(world: World) -> None:
    limit = fixtures.ATTACHMENT_MAX_MB * 1024 * 1024
    receipt = await submitted(world, "too-big", attachments={"stor.pdf": b"x" * (limit + 1)})
    _refused(
        receipt,
        "Rejected",
        f"Attachment stor.pdf is {limit + 1} bytes; attachments of type vedlegg may be at most "
        f"{fixtures.ATTACHMENT_MAX_MB} MB",
    )
    assert live(world) == []


async def test_a_form_the_app_model_refuses_leaves_nothing(world: World) -> None:
    receipt = await submitted(world, "wrong-root", form="<Annet/>")
    assert receipt["ReceiptStatusCode"] == "ValidationFailed"
    assert receipt["ReceiptText"].startswith(
        "Error: <SchemaValidationError>The form does not match the data model of ttd/legacy-form-4713"
    )
    assert live(world) == []


async def test_the_apps_validation_issues_are_the_receipt_and_the_instance_is_removed(world: World) -> None:
    bad = FORM.replace("1200", "-5")
    receipt = await submitted(world, "negative", form=bad)
    _refused(receipt, "ValidationFailed", "Validation failed: Beløp kan ikke være negativt")
    assert live(world) == []
    fixed = await submitted(world, "negative")
    assert fixed["ReceiptStatusCode"] == "OK"


async def test_another_shipment_under_the_same_reference_already_exists(world: World) -> None:
    assert (await submitted(world, "taken"))["ReceiptStatusCode"] == "OK"
    other = await submitted(world, "taken", form=FORM.replace("1200", "1300"))
    _refused(other, "Rejected", "Shipment Already Exists : ::External Shipment Reference : taken")
    assert len(live(world)) == 1


async def test_the_same_reference_for_another_reportee_is_another_shipment(world: World) -> None:
    first = await submitted(world, "shared")
    second = await submitted(
        world, "shared", reportee="310000027", credentials=("demo-eus2", "demo-eus2-password")
    )
    assert first["ReceiptStatusCode"] == second["ReceiptStatusCode"] == "OK"
    assert first["References"]["ArchiveReference"] != second["References"]["ArchiveReference"]
    assert len(live(world)) == 2


async def test_check_online_judges_the_routing_by_the_apps_metadata(world: World) -> None:
    assert await check_app_routes(world.settings) == []
    [route] = world.settings.routing.apps
    broken = route.model_copy(update={"data_type": "nope", "default_attachment_type": "skjema"})
    settings = world.settings.model_copy(
        update={"routing": world.settings.routing.model_copy(update={"apps": (broken,)})}
    )
    assert await check_app_routes(settings) == [
        "ServiceCode 4713 edition 1 -> ttd/legacy-form-4713: data_type 'nope' is not a data type of the app",
        "ServiceCode 4713 edition 1 -> ttd/legacy-form-4713: default_attachment_type 'skjema' is a form "
        "data type, not one for attachments",
    ]
