"""Shared helpers for mapping tests: run a plan against canned answers and judge each call."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lxml import etree

from proxy.mapping.calls import Altinn3Call, BaseUrls, BytesBody, CallBatch, JsonBody, PlanRequest
from proxy.mapping.dryrun import drive
from proxy.mapping.engine import Plan

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
BASE = BaseUrls(platform="https://platform.tt02.altinn.no")


def canonical(xml: bytes | etree._Element) -> bytes:
    """C14N 2.0 with insignificant whitespace removed (element order is kept, so it is checked)."""
    element = etree.fromstring(xml) if isinstance(xml, bytes) else xml
    return str(etree.canonicalize(element, strip_text=True)).encode()


def wire(call: Altinn3Call) -> tuple[str, str, dict[str, str], bytes | None]:
    """What the client would send (method, absolute URL, headers, body; octet streams as None)."""
    headers = dict(call.headers)
    body: bytes | None = None
    if isinstance(call.body, JsonBody):
        headers["Content-Type"] = "application/json"
        body = json.dumps(call.body.value).encode()
    elif isinstance(call.body, BytesBody):
        headers["Content-Type"] = call.body.content_type
    return call.method, BASE.resolve(call), headers, body


def run(plan: Plan, answer: Callable[[PlanRequest], Any], observer: Any) -> tuple[Any, list[PlanRequest]]:
    """Drive ``plan``; every Altinn 3 call is judged by ``observer`` (the contract)."""
    seen: list[PlanRequest] = []

    def judged(request: PlanRequest) -> Any:
        seen.append(request)
        calls = request.calls if isinstance(request, CallBatch) else (request,)
        for call in calls:
            if isinstance(call, Altinn3Call):
                observer(*wire(call))
        return answer(request)

    return drive(plan, judged), seen
