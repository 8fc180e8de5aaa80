"""``explain``: the mapping engine for people (wired into ``altinn-proxy`` by the CLI; pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from proxy.errors import ProxyError
from proxy.mapping.calls import (
    AllocateId,
    Altinn3Call,
    Altinn3Response,
    BaseUrls,
    BytesBody,
    CallBatch,
    JsonBody,
    MultipartBody,
    PlanRequest,
    ResolveId,
    StreamBody,
)
from proxy.mapping.dryrun import DryRun, MissingResponse, drive
from proxy.mapping.engine import Authorizer, MappingSet, OperationRequest, default_authorize, run_operation
from proxy.mapping.routing import RoutingTable

_REDACTED_HEADERS = frozenset({"authorization", "cookie", "x-api-key", "ocp-apim-subscription-key"})
_MAX_BODY_CHARS = 2000


def explain(
    request: OperationRequest,
    mapping_set: MappingSet,
    responses: Mapping[str, Altinn3Response] | None = None,
    *,
    routing: RoutingTable | None = None,
    authorize: Authorizer = default_authorize,
    base_urls: BaseUrls | None = None,
    now: datetime | None = None,
) -> str:
    """A readable account of what the proxy would do for ``request``; secrets are never shown.

    Without ``responses`` the plan stops at the first Altinn 3 call that needs an answer.
    """
    urls = base_urls or BaseUrls()
    lines: list[str] = []
    try:
        operation = mapping_set.operation(request.service, request.operation)
    except ProxyError as error:
        return f"no mapping: {error}"
    lines.append(f"operation: {request.service} / {request.operation}  ({operation.where})")
    lines.append(f"mapping set: {mapping_set.digest[:12]}")
    principal = request.principal
    lines.append(f"caller: {principal.caller_id} ({principal.kind.value})")
    identity = operation.identity
    lines.append(
        f"identity: {identity.acts_as}; scopes {' '.join(sorted(identity.scopes))}; "
        f"{'exchanged Altinn token' if identity.exchange else 'Maskinporten token'}"
    )

    dry = DryRun(responses or {})

    def answer(item: PlanRequest) -> Any:
        lines.extend(_describe(item, urls))
        return dry.answer(item)

    plan = run_operation(
        operation, request, routing or RoutingTable(), authorize, lambda: now or datetime.now(UTC)
    )
    try:
        result = drive(plan, answer)
    except MissingResponse as error:
        lines.append(f"(stopped: {error}; pass --responses DIR with {error.step}.json to go on)")
        return "\n".join(lines)
    except ProxyError as error:
        lines.append(f"legacy fault: {type(error).__name__} ErrorID {error.error_id}: {error.message}")
        return "\n".join(lines)
    pretty = etree.tostring(result.element(), pretty_print=True, encoding="unicode")
    lines.append("legacy answer:")
    lines.append(pretty.rstrip())
    return "\n".join(lines)


def _describe(item: PlanRequest, urls: BaseUrls) -> list[str]:
    if isinstance(item, CallBatch):
        out = [f"step {item.step}: {len(item.calls)} calls, at most {item.concurrency} at a time"]
        for call in item.calls:
            out.extend("  " + line for line in _describe_call(call, urls))
        return out
    if isinstance(item, Altinn3Call):
        return [f"step {item.step}:", *("  " + line for line in _describe_call(item, urls))]
    if isinstance(item, AllocateId):
        return [
            f"step {item.step}: allocate a legacy {item.kind} id for {item.guid} (owner {item.owner_org})"
        ]
    if isinstance(item, ResolveId):
        return [f"step {item.step}: resolve legacy {item.kind} id {item.legacy_id} (owner {item.owner_org})"]
    return [repr(item)]


def _describe_call(call: Altinn3Call, urls: BaseUrls) -> list[str]:
    token = call.token
    who = f"system user of {token.system_user_org}" if token.system_user_org else "service owner"
    out = [f"{call.method} {urls.resolve(call)}", f"  token: {who}, scopes {' '.join(sorted(token.scopes))}"]
    for name, value in call.headers:
        shown = "<redacted>" if name.lower() in _REDACTED_HEADERS else value
        out.append(f"  {name}: {shown}")
    body = call.body
    if isinstance(body, JsonBody):
        text = json.dumps(body.value, ensure_ascii=False, indent=2)
        if len(text) > _MAX_BODY_CHARS:
            text = text[:_MAX_BODY_CHARS] + "\n... (truncated)"
        out.extend("  " + line for line in text.splitlines())
    elif isinstance(body, BytesBody):
        out.append(f"  body: <{len(body.data)} bytes of {body.content_type}>")
    elif isinstance(body, MultipartBody):
        out.extend(f"  part {part.name}: <{len(part.value)} chars/bytes>" for part in body.parts)
    elif isinstance(body, StreamBody):
        out.append(f"  body: <streamed {body.content_type} from the legacy request>")
    return out
