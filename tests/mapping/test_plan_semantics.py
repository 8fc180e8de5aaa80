"""One way a plan runs: the plan judges Altinn 3's statuses, so explain, examples and live traffic agree;
a mapping that fails on a request is a located MappingRuntimeError, never a configuration error."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from proxy.altinn3.executor import execute
from proxy.errors import ConfigurationError, InvalidField, MappingRuntimeError, NotFound, ProxyError
from proxy.identity.principal import CallerKind, OrgGrant, Principal
from proxy.mapping import Engine, MappingSet, OperationRequest, Route, RoutingTable
from proxy.mapping.calls import Altinn3Call, Altinn3Response, Recall
from proxy.mapping.tools import explain
from proxy.pipeline.loading import load_mapping_set
from tests.mapping.playbook import Call, Fault, Playbook, Yields
from tests.mapping.test_check import MINIMAL, NS
from tests.shipped import shipped_mappings

RECEIPT_NS = "http://www.altinn.no/services/Intermediary/Receipt/2009/10"
RECEIPT_2015 = "http://schemas.altinn.no/services/Intermediary/Receipt/2015/06"
FILE_ID = "6f1c2b1e-0c55-4f39-a6b5-0a3e4c7d9e01"
CALLER = Principal("eus", CallerKind.END_USER_SYSTEM, orgs={"310000019": OrgGrant("310000019")})
NOW = datetime(2026, 8, 21, 10, 0, tzinfo=UTC)
NOT_FOUND = json.dumps({"title": "Not Found", "status": 404, "traceId": "00-abc"}).encode()


def _broker_receipt() -> OperationRequest:
    body = etree.fromstring(
        f"<GetReceiptBasicV2 xmlns='{RECEIPT_NS}' xmlns:r='{RECEIPT_2015}'><receipt><r:References>"
        "<r:Reference><r:ReferenceType>SendersReference</r:ReferenceType>"
        f"<r:ReferenceValue>{FILE_ID}</r:ReferenceValue></r:Reference></r:References></receipt>"
        "</GetReceiptBasicV2>".encode()
    )
    return OperationRequest("ReceiptExternalBasic", "GetReceiptBasicV2", body, CALLER)


def _engine(mapping_set: MappingSet) -> Engine:
    return Engine(lambda: mapping_set, RoutingTable.of([Route("4712", "1")]), clock=lambda: NOW)


class _Altinn3Answering:
    """A client that answers every call with one response (what the real client returns for a 404)."""

    def __init__(self, response: Altinn3Response) -> None:
        self.response = response
        self.calls: list[Altinn3Call] = []

    async def send(self, call: Altinn3Call) -> Altinn3Response:
        self.calls.append(call)
        return self.response


class _NoMemos:
    """A store that recalls nothing (the file reference is an Altinn 3 transfer id)."""

    async def recall(self, key: object) -> None:
        return None

    async def finish(self, *args: object) -> None:
        return None


def test_the_plan_turns_an_unaccepted_404_into_the_operations_fault() -> None:
    assert (
        Playbook(_engine(shipped_mappings()).start(_broker_receipt()))
        >> Yields(Recall("*", "*", f"broker transfer {FILE_ID}", "transfer_id", durable=True))
        << None
        >> Yields(Recall("*", "*", f"broker manifest {FILE_ID}", "initiated", durable=True))
        << None
        >> Call("GET", f"/broker/api/v1/filetransfer/{FILE_ID}/details")
        << Altinn3Response(404, content=NOT_FOUND)
        >> Fault(NotFound, error_id=30008, message="No receipt matches the search")
    )


async def test_a_canned_404_in_explain_is_the_fault_live_traffic_gives() -> None:
    mapping_set = shipped_mappings()
    response = Altinn3Response(404, content=NOT_FOUND)

    with pytest.raises(ProxyError) as live:
        await execute(
            _engine(mapping_set).start(_broker_receipt()),
            _Altinn3Answering(response),
            store=_NoMemos(),  # type: ignore[arg-type]
        )
    explained = explain(_broker_receipt(), mapping_set, {"transfer": response}, now=NOW)

    assert type(live.value) is NotFound
    assert explained.splitlines()[-1] == (
        f"legacy fault: {type(live.value).__name__} ErrorID {live.value.error_id}: {live.value.message}"
    )
    assert "00-abc" in (live.value.extended or "")  # Altinn's trace id, for the operator


FAILING_STEP = MINIMAL.replace(
    'path: "/correspondence/api/v1/correspondence/{{ fields.text | segment }}"',
    'path: "/correspondence/api/v1/correspondence/{{ 100 // (fields.text | length - 1) | digits }}"',
).replace("<Text>x</Text>", "<Text>xy</Text>")


def _request(text: str) -> OperationRequest:
    body = etree.fromstring(
        f"<GetReporteeElementContextExternalBasic xmlns='{NS}'><Reportee>910000000</Reportee>"
        f"<Text>{text}</Text></GetReporteeElementContextExternalBasic>".encode()
    )
    principal = Principal("vendor", CallerKind.END_USER_SYSTEM, orgs={"910000000": OrgGrant("910000000")})
    return OperationRequest(
        "ContextHandlerExternalBasic", "GetReporteeElementContextExternalBasic", body, principal
    )


def test_an_expression_failing_on_a_request_is_a_mapping_runtime_error_at_its_step(tmp_path: Path) -> None:
    path = tmp_path / "ping.yaml"
    path.write_text(FAILING_STEP)
    engine = _engine(load_mapping_set(tmp_path))  # the example (Text "xy") runs fine

    with pytest.raises(MappingRuntimeError) as raised:
        engine.start(_request("x")).send(None)  # len 1: a division by zero in the step's path

    step_line = next(n for n, line in enumerate(FAILING_STEP.splitlines(), 1) if "- name: lookup" in line)
    assert raised.value.location == f"{path}:{step_line}"
    assert not isinstance(raised.value, ConfigurationError)
    assert isinstance(raised.value.__cause__, Exception)
    assert "ZeroDivisionError" in str(raised.value.__cause__)
    assert "mapping failed" in raised.value.message
    assert "ZeroDivision" not in raised.value.message


def test_an_answer_template_failing_is_located_at_the_answer(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "<t:Count>1</t:Count>", "<t:Count>{{ 1 // (results.lookup.status | length - 5) }}</t:Count>"
    )
    path = tmp_path / "ping.yaml"
    path.write_text(text)
    plan = _engine(load_mapping_set(tmp_path)).start(_request("x"))
    plan.send(None)

    with pytest.raises(MappingRuntimeError) as raised:
        plan.send(Altinn3Response(200, json={"status": "Draft"}))  # 5 letters: a division by zero

    answer_line = next(n for n, line in enumerate(text.splitlines(), 1) if "answer: |" in line)
    assert raised.value.location == f"{path}:{answer_line}"


def test_a_filter_refusing_a_value_stays_the_callers_fault(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "{{ fields.text | segment }}", "{{ fields.text | recipient_urn | segment }}"
    ).replace("<Text>x</Text>", "<Text>910000000</Text>")
    (tmp_path / "ping.yaml").write_text(text)
    assert Playbook(_engine(load_mapping_set(tmp_path)).start(_request("not-a-number"))) >> Fault(
        InvalidField,
        message="Reportee must be an organisation number (9 digits) or a national id (11 digits)",
    )
