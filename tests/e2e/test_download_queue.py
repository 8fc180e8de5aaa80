"""Issue 16 end to end: the service owner's download queue over Altinn 3 Storage.

``demo-eus`` submits form 4713/1 (``SubmitFormTaskBasic``); ``demo-so``, with a zeep client built from
the ORIGINAL ``DownloadQueueExternalBasic.wsdl``, lists it under the submitter's ArchiveReference,
fetches it, gets its PDF, purges it. The app/Storage fake is judged by Altinn's contract throughout.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
import zeep.exceptions

from proxy.sandbox import fixtures
from proxy.sandbox.apps_model import Instance
from proxy.sandbox.world import sandbox_apps
from tests.e2e.conftest import World, legacy_client
from tests.e2e.test_form_submission import ATTACHMENTS, FORM, submitted

SERVICE_OWNER = ("demo-so", "demo-so-password")
QUEUE = "/ArchiveExternal/DownloadQueueExternalBasic.svc"
QUEUE_WSDL = "altinn2/DownloadQueueExternal/Basic/DownloadQueueExternalBasic.wsdl"


def _queue(reference: Path, world: World) -> Any:
    return legacy_client(reference / QUEUE_WSDL, world.proxy_url + QUEUE)


def _items(queue: Any, service_code: str | None = "4713") -> list[Any]:
    return list(queue.GetDownloadQueueItems(*SERVICE_OWNER, service_code) or [])


def _fault(call: Any) -> str:
    with pytest.raises(zeep.exceptions.Fault) as raised:
        call()
    detail = raised.value.detail
    return "" if detail is None else str(detail.findtext(".//{*}AltinnErrorMessage"))


async def test_a_submitted_form_is_listed_fetched_and_purged_by_the_service_owner(
    world: World, reference: Path
) -> None:
    receipt = await submitted(world, "dq-1")
    archive = receipt["References"]["ArchiveReference"]

    def service_owner() -> dict[str, Any]:
        queue = _queue(reference, world)
        listed = _items(queue)
        everything = _items(queue, None)
        task = queue.GetArchivedFormTaskBasicDQ(*SERVICE_OWNER, archive, 1044, False)
        with_namespace = queue.GetArchivedFormTaskBasicDQ(*SERVICE_OWNER, archive, 1044, True)
        pdf = queue.GetFormSetPdfBasic(*SERVICE_OWNER, archive, 1044, None, None)
        purged = queue.PurgeItem(*SERVICE_OWNER, archive)
        after = _items(queue)
        again = _fault(lambda: queue.PurgeItem(*SERVICE_OWNER, archive))
        unknown = _fault(lambda: queue.GetArchivedFormTaskBasicDQ(*SERVICE_OWNER, "AR999999", 1044, False))
        return locals()

    seen = await asyncio.to_thread(service_owner)

    [item] = seen["listed"]
    assert item.ArchiveReference == archive
    assert item.ReporteeID == "310000019"
    assert item.ReporteeType == "Organisation"
    assert item.ServiceCode == "4713"
    assert item.ServiceEditionCode == 1
    assert [i.ArchiveReference for i in seen["everything"]] == [archive]

    task = seen["task"]
    assert task.ArchiveReference == archive
    assert task.Reportee == "310000019"
    assert (task.ServiceCode, task.ServiceEditionCode) == ("4713", "1")
    [form] = task.Forms.ArchivedFormDQBE
    assert (form.DataFormatID, form.DataFormatVersionID) == ("5703", 41235)
    assert form.FormData.startswith("<Skjema dataFormatId=")
    assert "xmlns" not in form.FormData
    assert seen["with_namespace"].Forms.ArchivedFormDQBE[0].FormData == FORM
    attachments = {a.FileName: a.AttachmentData for a in task.Attachments.ArchivedAttachmentDQBE}
    assert attachments == ATTACHMENTS
    assert task.AttachmentsInResponse == 2
    assert all(a.AttachmentTypeName == "vedlegg" for a in task.Attachments.ArchivedAttachmentDQBE)
    assert seen["pdf"].startswith(b"%PDF")

    assert seen["purged"] == "OK"
    assert seen["after"] == []
    assert "purged" in seen["again"]
    assert "AR999999" in seen["unknown"] or "no archive_reference" in seen["unknown"]
    [instance] = [i for i in world.fakes.apps.instances.values() if not i.hard_deleted]
    assert [who for who, _ in instance.confirmations] == ["ttd"]


def _archived(world: World, number: int) -> Instance:
    """An instance completed in Altinn 3 directly (never through the proxy), archived at ``number``."""
    app = sandbox_apps()["ttd/legacy-form-4713"]
    moment = 1_700_000_000.0 + number
    instance = Instance(
        guid=uuid.uuid4(),
        app=world.fakes.apps.apps[app.app_id],
        party_id=fixtures.PARTY_IDS["310000019"],
        org_number="310000019",
        created=moment,
        created_by="direct",
        data_values={},
        last_changed=moment,
        task_index=None,
        process_started=moment,
        task_started=moment,
        process_ended=moment,
        order=number,
    )
    world.fakes.apps.instances[instance.guid] = instance
    return instance


async def test_1200_waiting_submissions_come_500_at_a_time_oldest_first(
    world: World, reference: Path
) -> None:
    made = [_archived(world, number) for number in range(1200)]

    def first_pages() -> tuple[list[str], list[str], list[str]]:
        queue = _queue(reference, world)
        first = [i.ArchiveReference for i in _items(queue)]
        again = [i.ArchiveReference for i in _items(queue)]
        for instance in made[:500]:  # the service owner confirms the first 500 in Storage
            instance.confirmations.append(("ttd", 1_800_000_000.0))
        second = [i.ArchiveReference for i in _items(queue)]
        return first, again, second

    first, again, second = await asyncio.to_thread(first_pages)
    assert len(first) == 500
    assert first == again  # an instance made in Altinn 3 directly keeps the reference it first got
    assert len(second) == 500
    assert not set(first) & set(second)

    def fetch(archive: str) -> Any:
        return _queue(reference, world).GetArchivedFormTaskBasicDQ(*SERVICE_OWNER, archive, 1044, False)

    oldest = await asyncio.to_thread(fetch, second[0])
    assert oldest.ArchiveReference == second[0]


async def test_a_form_set_without_pdf_and_a_foreign_reference_are_faults(
    world: World, reference: Path
) -> None:
    instance = _archived(world, 1)

    def call() -> tuple[str, str]:
        queue = _queue(reference, world)
        [item] = _items(queue)
        no_pdf = _fault(
            lambda: queue.GetFormSetPdfBasic(*SERVICE_OWNER, item.ArchiveReference, 1044, None, None)
        )
        bad = _fault(lambda: queue.PurgeItem(*SERVICE_OWNER, "not-a-reference"))
        return no_pdf, bad

    no_pdf, bad = await asyncio.to_thread(call)
    assert "no PDF" in no_pdf
    assert "not-a-reference" in bad
    assert instance.confirmations == []
