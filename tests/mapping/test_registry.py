"""Hot reload: a valid change swaps atomically, a broken one is refused, traffic never fails."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from lxml import etree

from proxy.identity.principal import CallerKind, OrgGrant, Principal
from proxy.mapping import Engine, OperationRequest, RoutingTable
from proxy.mapping.calls import Altinn3Response
from proxy.mapping.dryrun import DryRun, drive
from proxy.mapping.metrics import MAPPING_SET
from proxy.pipeline import MappingRegistry
from tests.mapping.test_check import MINIMAL, NS

VENDOR = Principal("vendor", CallerKind.END_USER_SYSTEM, orgs={"910000000": OrgGrant("910000000")})
SERVICE, OPERATION = "ContextHandlerExternalBasic", "GetReporteeElementContextExternalBasic"
BODY = etree.fromstring(
    f'<{OPERATION} xmlns="{NS}"><Reportee>910000000</Reportee><Text>x</Text></{OPERATION}>'
)
RESPONSES = {"lookup": Altinn3Response(200, json={"status": "Published"})}


def _version(text: str) -> str:
    return text.replace("{{ results.lookup.status }}", "{{ results.lookup.status }}-v2")


async def _no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def _answer_text(engine: Engine) -> str:
    answer = drive(engine.start(OperationRequest(SERVICE, OPERATION, BODY, VENDOR)), DryRun(RESPONSES).answer)
    return _status(answer.element())


def _status(answer: etree._Element) -> str:
    return answer.findtext(".//{urn:test:types}Status") or ""


async def test_hot_reload_under_load_swaps_atomically_and_refuses_a_broken_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mapping = tmp_path / "ping.yaml"
    mapping.write_text(MINIMAL)
    registry = await MappingRegistry.open(tmp_path, sleep=_no_sleep)
    engine = Engine(registry.current, RoutingTable())
    first_hash = registry.active_hash
    served: list[str] = []
    errors: list[BaseException] = []
    stop = asyncio.Event()

    async def client() -> None:
        while not stop.is_set():
            try:
                served.append(_answer_text(engine))
            except Exception as error:  # counted: the test demands none
                errors.append(error)
            await asyncio.sleep(0)

    # A plan started before the swap must finish on the set it started with.
    in_flight = engine.start(OperationRequest(SERVICE, OPERATION, BODY, VENDOR))
    first_call = next(in_flight)

    clients = [asyncio.create_task(client()) for _ in range(8)]
    await asyncio.sleep(0)

    mapping.write_text(_version(MINIMAL))
    assert await registry.reload() is True
    second_hash = registry.active_hash
    assert second_hash != first_hash

    with caplog.at_level(logging.ERROR, logger="proxy.mapping"):
        mapping.write_text(_version(MINIMAL).replace("      scopes:", "      scopez:"))
        assert await registry.reload() is False
        assert await registry.reload() is False  # same broken content: not re-validated, still refused
    assert registry.active_hash == second_hash
    assert any("refused" in record.message and "scopez" in record.message for record in caplog.records)
    assert any("scopez" in line for line in registry.readiness()["refused_change"])  # type: ignore[attr-defined]

    for _ in range(20):
        await asyncio.sleep(0)
    stop.set()
    await asyncio.gather(*clients)

    assert errors == []
    assert served
    assert served[-1] == "Published-v2"
    assert set(served) <= {"Published", "Published-v2"}

    with pytest.raises(StopIteration) as finished:
        in_flight.send(Altinn3Response(200, json={"status": "Published"}))
    assert _status(finished.value.value.element()) == "Published"
    assert first_call.path == "/correspondence/api/v1/correspondence/x"

    mapping.write_text(MINIMAL)
    assert await registry.reload() is True
    assert registry.active_hash == first_hash
    assert MAPPING_SET.labels(hash=first_hash[:12])._value.get() == 1


async def test_watch_polls_with_the_injected_sleep(tmp_path: Path) -> None:
    mapping = tmp_path / "ping.yaml"
    mapping.write_text(MINIMAL)
    polls = 0
    changed = asyncio.Event()

    async def sleep(_: float) -> None:
        nonlocal polls
        polls += 1
        if polls == 2:
            mapping.write_text(_version(MINIMAL))
        if polls == 4:
            changed.set()
        await asyncio.sleep(0)

    registry = await MappingRegistry.open(tmp_path, sleep=sleep)
    before = registry.active_hash
    watcher = asyncio.create_task(registry.watch())
    await changed.wait()
    watcher.cancel()
    with pytest.raises(asyncio.CancelledError):
        await watcher
    assert registry.active_hash != before
