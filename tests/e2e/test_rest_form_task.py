"""Legacy REST form submission end to end: ``POST /api/{who}/messages`` with a message of Type FormTask
into the Altinn 3 app ``ttd/legacy-form-4713``, over HTTPS with the demo enterprise certificate.

The app/Storage fake is judged by Altinn's contract on every request; the receipt is read back over
SOAP with ``GetReceiptBasicV2`` (the same store as ``SubmitFormTaskBasic``).
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from proxy.sandbox import fixtures
from proxy.sandbox.apps_model import PDF_DATA_TYPE, Instance
from proxy.sandbox.world import SandboxKeys
from proxy.settings import Settings
from tests.e2e.conftest import legacy_client
from tests.e2e.rest_world import EUS, RestWorld, rest_world
from tests.e2e.test_form_submission import ATTACHMENTS, FORM, RECEIPTS

ORG = EUS[1]
PATH = f"/api/{ORG}/messages"


def message(
    *,
    form: str = FORM,
    service: tuple[str, str] = fixtures.FORM_SERVICE,
    data_format: tuple[str, str] = fixtures.FORM_DATA_FORMAT,
    attachments: dict[str, bytes] | None = None,
    attachment_type: str = "vedlegg",
    type_name: str = "FormTask",
) -> dict[str, Any]:
    """A FormTask message as Altinn 2's REST documentation shows it (ServiceEdition a number)."""
    items = ATTACHMENTS if attachments is None else attachments
    return {
        "Type": type_name,
        "ServiceCode": service[0],
        "ServiceEdition": int(service[1]),
        "_embedded": {
            "forms": [
                {
                    "Type": "MainForm",
                    "DataFormatId": data_format[0],
                    "DataFormatVersion": data_format[1],
                    "FormData": form,
                }
            ],
            "attachments": [
                {
                    "FileName": name,
                    "Name": name,
                    "AttachmentType": attachment_type,
                    "Data": base64.b64encode(data).decode(),
                }
                for name, data in items.items()
            ],
        },
    }


def live(world: RestWorld) -> list[Instance]:
    """The instances the fake app holds (not deleted)."""
    return [i for i in world.fakes.apps.instances.values() if not i.hard_deleted]


@pytest.fixture
def adjust() -> Callable[[Settings], Settings]:
    """Settings changes of a test (none by default)."""
    return lambda settings: settings


@pytest.fixture
async def world(
    tmp_path: Path, altinn3_contract: Any, sandbox_keys: SandboxKeys, adjust: Callable[[Settings], Settings]
) -> AsyncIterator[RestWorld]:
    """The proxy on HTTPS (REST) and HTTP (SOAP) in front of the fakes."""
    async with rest_world(tmp_path, altinn3_contract, sandbox_keys, adjust=adjust) as running:
        yield running


async def test_a_form_task_is_submitted_archived_and_its_receipt_is_the_soap_sides(
    world: RestWorld, reference: os.PathLike[str]
) -> None:
    async with world.client(EUS) as client, client.request("POST", PATH, json=message()) as response:
        assert response.status == 201, await response.text()
        location = response.headers["Location"]
        created = await response.json()
    message_id = created["MessageId"]
    assert location == f"{world.url}/api/{ORG}/messages/{message_id}"
    assert created["_links"]["self"]["href"] == location
    assert created["Type"] == "FormTask"
    assert created["Status"] == "Sendt og arkivert"
    assert (created["ServiceCode"], created["ServiceEdition"]) == ("4713", 1)
    assert created["ArchiveReference"].startswith("AR")

    [instance] = live(world)
    assert instance.process_ended is not None
    assert instance.org_number == ORG
    assert sorted(e.data_type for e in instance.data) == sorted(
        ["skjema", "vedlegg", "vedlegg", PDF_DATA_TYPE]
    )
    stored = {
        e.filename: world.fakes.apps.files.path_for(e.id).read_bytes()
        for e in instance.data
        if e.data_type == "vedlegg"
    }
    assert stored == ATTACHMENTS
    form = next(e for e in instance.data if e.data_type == "skjema")
    assert world.fakes.apps.files.path_for(form.id).read_bytes() == FORM.encode()

    # The same message again (a client's retry) is the same submission: the first answer, no new instance.
    async with world.client(EUS) as client, client.request("POST", PATH, json=message()) as response:
        assert response.status == 201
        assert response.headers["Location"] == location
        assert (await response.json())["MessageId"] == message_id
    assert len(live(world)) == 1

    def read_receipt() -> Any:
        client = legacy_client(
            Path(reference) / "altinn2/ReceiptExternal/Basic/ReceiptExternalBasic.wsdl",
            world.http_url + RECEIPTS,
        )
        return client.GetReceiptBasicV2("demo-eus", "demo-eus-password", {"ReceiptId": int(message_id)})

    receipt = await asyncio.to_thread(read_receipt)
    assert receipt.ReceiptStatus == "OK"
    assert receipt.ReceiptType == "FormTask"
    references = {r.ReferenceType: r.ReferenceValue for r in receipt.References.Reference}
    assert references["ArchiveReference"] == created["ArchiveReference"]


async def test_complete_false_leaves_the_form_for_filling_in(world: RestWorld) -> None:
    async with world.client(EUS) as client:
        created = await client.json("POST", "/api/my/messages?complete=false", status=201, json=message())
    assert created["Status"] == "Utfylling"
    assert "ArchiveReference" not in created
    [instance] = live(world)
    assert instance.process_ended is None


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (message(service=("9999", "1")), "Not A Valid Service :; ServiceCode : 9999; ServiceEdition : 1"),
        (
            message(data_format=("5703", "1")),
            "Not A Valid DataFormatId Or DataFormatVersion; DataFormatId : 5703, DataFormatVersion : 1",
        ),
        (message(attachment_type="ukjent"), "Not A Valid AttachmentTypeName; AttachmentTypeName : ukjent"),
        (
            message(type_name="Correspondence"),
            "Only a message of Type FormTask can be posted; this one has Type Correspondence",
        ),
        (
            message(form="<Skjema><Navn>open"),
            "Error: <SchemaValidationError>FormData is not well-formed XML:",
        ),
    ],
)
async def test_bad_input_is_altinn_2s_error_and_nothing_reaches_altinn_3(
    world: RestWorld, altinn3_contract: Any, body: dict[str, Any], text: str
) -> None:
    calls = altinn3_contract.checked
    async with world.client(EUS) as client:
        problem = await client.json("POST", PATH, status=400, json=body)
    assert problem["ErrorCode"] == 30001
    assert problem["ErrorMessage"].startswith(text)
    assert altinn3_contract.checked == calls, "a refused message must not reach Altinn 3"
    assert live(world) == []


async def test_a_reportee_the_caller_may_not_act_for_is_refused_before_any_call(
    world: RestWorld, altinn3_contract: Any
) -> None:
    calls = altinn3_contract.checked
    async with world.client(EUS) as client:
        problem = await client.json("POST", "/api/310000027/messages", status=403, json=message())
        missing = await client.json("POST", PATH, status=400, json={"Type": "FormTask"})
    assert set(problem) == {"ErrorCode", "ErrorMessage"}
    assert set(missing) == {"ErrorCode", "ErrorMessage"}
    assert altinn3_contract.checked == calls
    assert live(world) == []


async def test_the_apps_validation_issues_are_the_error_and_the_instance_is_removed(world: RestWorld) -> None:
    async with world.client(EUS) as client:
        problem = await client.json("POST", PATH, status=400, json=message(form=FORM.replace("1200", "-5")))
        assert problem == {
            "ErrorCode": 30001,
            "ErrorMessage": "Validation failed: Beløp kan ikke være negativt",
        }
        assert live(world) == []
        await client.json("POST", PATH, status=201, json=message())
    assert len(live(world)) == 1


def _small_limits(settings: Settings) -> Settings:
    limits = settings.limits.model_copy(
        update={"max_body_bytes": 64 * 1024, "body_read_timeout_seconds": 0.5}
    )
    return settings.model_copy(update={"limits": limits})


@pytest.mark.parametrize("adjust", [_small_limits])
async def test_a_body_over_the_limit_and_a_stalled_body_get_the_legacy_error_shape(
    world: RestWorld, altinn3_contract: Any
) -> None:
    calls = altinn3_contract.checked
    big = message(attachments={"stor.pdf": b"%PDF" + bytes(128 * 1024)})
    async with world.client(EUS) as client:
        problem = await client.json("POST", PATH, status=413, json=big)
    assert set(problem) == {"ErrorCode", "ErrorMessage"}

    context = ssl.create_default_context(cafile=str(world.tls.ca))
    context.load_cert_chain(*world.tls.client_certificate(*EUS))
    host, port = world.url.removeprefix("https://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), ssl=context)
    try:
        writer.write(
            f"POST {PATH}?ForceEIAuthentication HTTP/1.1\r\nHost: {host}\r\nApiKey: {fixtures.REST_API_KEY}\r\n"
            'Content-Type: application/hal+json\r\nContent-Length: 1000\r\n\r\n{"Type": "FormTask"'.encode()
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 30)
        rest = await asyncio.wait_for(reader.read(65536), 30)
    finally:
        writer.close()
    assert status_line.split()[1] == b"408", status_line
    assert b'"ErrorCode"' in rest
    assert altinn3_contract.checked == calls
    assert live(world) == []
