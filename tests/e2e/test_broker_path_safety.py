"""A broker file reference cannot steer the proxy to another Altinn 3 path (through the real server).

``fileReference`` becomes part of the broker URL. A traversal such as
``../../../../correspondence/api/v1/correspondence`` once made the proxy call the correspondence API
with the caller's token; now every such value is an Altinn fault and no Altinn 3 call is made.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from tests.e2e.conftest import RecordingObserver, World, fault_fields, legacy_client
from tests.e2e.test_broker import (
    BASIC,
    RECIPIENT,
    SENDER,
    STREAMED,
    _initiate,
    _upload,
    _wsdls,
)

HOSTILE_REFERENCES = [
    "../../../../correspondence/api/v1/correspondence",
    "..%2F..%2Fcorrespondence",
    "x?fileTransferId=1",
    "x#download",
    "x;v=1",
    "A" * 4000,
]


async def test_hostile_file_references_are_faults_and_call_nothing(
    world: World, observer: RecordingObserver, reference: os.PathLike[str]
) -> None:
    import zeep.exceptions

    basic_wsdl, streamed_wsdl = _wsdls(reference)

    def scenario() -> list[tuple[str, dict[str, str]]]:
        basic = legacy_client(basic_wsdl, world.proxy_url + BASIC)
        streamed = legacy_client(streamed_wsdl, world.proxy_url + STREAMED)
        _initiate(basic, SENDER, RECIPIENT[2], "ref-path")  # a real transfer exists
        observer.requests.clear()
        user, password, org = RECIPIENT
        faults = []
        for hostile in HOSTILE_REFERENCES:
            calls: list[tuple[str, Callable[[], Any]]] = [
                ("download", partial(streamed.DownloadFileStreamedBasic, user, password, hostile, org)),
                ("confirm", partial(basic.ConfirmDownloadedBasic, user, password, hostile, org)),
                ("upload", partial(_upload, streamed, SENDER, hostile, b"PK\x05\x06" + bytes(18))),
            ]
            for name, call in calls:
                with pytest.raises(zeep.exceptions.Fault) as refused:
                    call()
                faults.append((name, fault_fields(refused.value)))
        return faults

    faults = await asyncio.to_thread(scenario)

    assert len(faults) == 3 * len(HOSTILE_REFERENCES)
    for name, fields in faults:
        assert fields["ErrorID"] == "30001", (name, fields)
        message = fields["AltinnErrorMessage"]
        assert "fields.reference" in message, (name, fields)
        assert "must be a GUID" in message, (name, fields)
        assert len(fields["AltinnErrorMessage"]) < 300
    altinn3_calls = [url for _, url in observer.requests if "/api/v1/" in url]
    assert altinn3_calls == []
