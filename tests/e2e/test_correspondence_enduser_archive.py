"""Archiving a correspondence from an end-user system sets the Dialogporten system label ``Archive``."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from tests.e2e.conftest import World, legacy_client
from tests.e2e.test_correspondence_flow import (
    AGENCY,
    CORRESPONDENCE,
    END_USER,
    INBOX,
    _agency_wsdl,
    _inbox,
    _insert,
)


async def test_archive_moves_the_dialog_to_the_archive(world: World, reference: os.PathLike[str]) -> None:
    agency = await asyncio.to_thread(legacy_client, _agency_wsdl(reference), world.proxy_url + AGENCY)
    await asyncio.to_thread(_insert, agency, "archive-1", END_USER[2])
    world.fakes.correspondence.publish_due()
    inbox: Any = await asyncio.to_thread(
        legacy_client, world.proxy_url + INBOX + "?wsdl", world.proxy_url + INBOX
    )
    (item,) = await asyncio.to_thread(_inbox, inbox, END_USER)
    client: Any = await asyncio.to_thread(
        legacy_client, world.proxy_url + CORRESPONDENCE + "?wsdl", world.proxy_url + CORRESPONDENCE
    )

    receipt = await asyncio.to_thread(
        client.ArchiveCorrespondenceForEndUserSystemBasic, *END_USER[:2], item.ReporteeElementId
    )

    assert receipt.ReceiptStatusCode == "OK"
    (dialog,) = world.fakes.dialogporten.dialogs.values()
    assert "Archive" in dialog.system_labels
    (listed,) = await asyncio.to_thread(_inbox, inbox, END_USER)
    assert listed.Status == "Archive"
