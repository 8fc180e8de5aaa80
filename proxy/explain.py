"""``altinn-proxy explain``: what the proxy would do with a saved legacy SOAP request.

The request file is parsed by the same hardened SOAP parser as live traffic; the caller's
credentials are checked against the configured credentials file (so the identity resolution shown
is the real one); the mapping engine then runs against canned responses instead of Altinn 3. Nothing
is sent anywhere, and no secret is printed.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from lxml import etree

from proxy.errors import ProxyError, UnknownOperation
from proxy.identity.authenticator import Authenticator
from proxy.identity.credentials import CredentialStore
from proxy.mapping.calls import Altinn3Response, BaseUrls
from proxy.mapping.engine import OperationRequest
from proxy.mapping.tools import explain
from proxy.pipeline import authorize_reportee, routing_table
from proxy.pipeline.loading import load_mapping_set
from proxy.settings import Settings
from proxy.soap.catalogue import TEST_OPERATION_NAME, Catalogue, Service
from proxy.soap.envelope import SoapVersion
from proxy.soap.names import XName
from proxy.soap.request import SoapCall, parse_request
from proxy.soap.xmlsafe import parse_xml


def find_service(body: bytes, endpoint: str | None, catalogue: Catalogue) -> Service:
    """The catalogued service for ``endpoint``, or the one whose operation the body's element names."""
    if endpoint:
        service = catalogue.for_path(endpoint)
        if service is None:
            raise UnknownOperation(f"there is no Altinn 2 SOAP service at {endpoint}")
        return service
    root = parse_xml(body)
    version = SoapVersion.for_namespace(etree.QName(root).namespace or "")
    operation_elements = [child for child in root if etree.QName(child).localname == "Body"]
    if version is None or not operation_elements or len(operation_elements[0]) == 0:
        raise UnknownOperation("the file is not a SOAP envelope with an operation in its Body")
    element = XName.from_clark(operation_elements[0][0].tag)
    for service in catalogue:
        operation = service.by_element(element)
        if (
            service.soap_version is version
            and operation is not None
            and operation.name != TEST_OPERATION_NAME
        ):
            return service
    raise UnknownOperation(f"no catalogued service has an operation {element.local}; pass --endpoint PATH")


async def explain_request(
    settings: Settings, request_file: Path, responses_dir: Path | None, endpoint: str | None
) -> str:
    """The readable plan (and, with canned responses, the legacy answer) for ``request_file``."""
    body = await asyncio.to_thread(request_file.read_bytes)
    mapping_set = await asyncio.to_thread(load_mapping_set, settings.mappings_dir)
    service = find_service(body, endpoint, mapping_set.surface.catalogue)
    call: SoapCall = parse_request(
        service, content_type=service.soap_version.content_type, soap_action=None, body=body
    )
    lines = [f"endpoint: {service.paths[0]} ({service.binding.value}, SOAP {service.soap_version.value})"]
    if call.credentials is None:
        return "\n".join(
            [*lines, "caller: the request carries no credentials: it would be refused (ErrorID 989)"]
        )
    credentials = await asyncio.to_thread(CredentialStore, settings.identity.credentials_file)
    authenticator = Authenticator(credentials)
    try:
        principal = await authenticator.authenticate(call.credentials, "explain")
    except ProxyError as error:
        return "\n".join([*lines, f"caller {call.credentials.username!r}: refused: {error}"])
    responses = await asyncio.to_thread(load_responses, responses_dir) if responses_dir is not None else None
    request = OperationRequest(service.name, call.operation.name, call.body, principal)
    plan = explain(
        request,
        mapping_set,
        responses,
        routing=routing_table(settings),
        authorize=authorize_reportee,
        base_urls=BaseUrls(settings.altinn.platform, settings.altinn.apps_url or BaseUrls.apps),
    )
    return "\n".join([*lines, plan])


def load_responses(directory: Path) -> dict[str, Altinn3Response]:
    """Canned responses for ``explain --responses DIR``: ``<step>.json`` holds the JSON answer of a step,
    ``<step>.bin`` its bytes; ``<step>.status`` (optional) a status code other than 200."""
    responses: dict[str, Altinn3Response] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix not in (".json", ".bin"):
            continue
        status_file = path.with_suffix(".status")
        status = int(status_file.read_text().strip()) if status_file.exists() else 200
        if path.suffix == ".json":
            responses[path.stem] = Altinn3Response(
                status, {"Content-Type": "application/json"}, json.loads(path.read_text())
            )
        else:
            responses[path.stem] = Altinn3Response(
                status, {"Content-Type": "application/octet-stream"}, content=path.read_bytes()
            )
    return responses
