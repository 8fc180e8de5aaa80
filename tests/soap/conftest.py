"""A SOAP front on a real loopback socket, with trivial handlers of the tests' own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from lxml import etree

from proxy.identity.principal import CallerKind, LegacyCredentials, Principal
from proxy.soap.contracts import ElementDecl, Field, OperationContract
from proxy.soap.encode import SoapReply
from proxy.soap.handler import SoapContext
from proxy.soap.request import SoapCall
from proxy.soap.surface import Surface
from proxy.soap.xmlsafe import XmlLimits
from proxy.web.soap import SoapConfig, add_soap_routes
from tests.shipped import shipped_surface

CORR_NS = "http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10"
BROKER_NS = "http://www.altinn.no/services/ServiceEngine/Broker/2015/06"
# A file ending in a newline: MTOM readers that trim a part (zeep does, when told "binary") lose it.
DOWNLOAD_BLOCKS = (*(bytes([index]) * 70_001 for index in range(4)), b"end\n\r\n")

#: A small operation contract of the tests' own, served in the generated WSDL.
ECHO_CONTRACT = OperationContract(
    request=ElementDecl(
        CORR_NS,
        "InsertCorrespondenceBasicV2",
        (Field("systemUserName", nillable=True), Field("systemPassword", nillable=True), Field("text")),
    ),
    response=ElementDecl(
        CORR_NS, "InsertCorrespondenceBasicV2Response", (Field("InsertCorrespondenceBasicV2Result"),)
    ),
)


@dataclass
class Recorder:
    """What the test handlers saw."""

    calls: list[SoapCall] = field(default_factory=list)
    uploads: list[bytes] = field(default_factory=list)
    principals: list[Principal | None] = field(default_factory=list)


def echo_surface() -> Surface:
    """The shipped services, with the echo contract in place of ``InsertCorrespondenceBasicV2``'s."""
    shipped = shipped_surface()
    return Surface.of(
        shipped.catalogue,
        shipped.contracts.with_contract(
            "CorrespondenceAgencyExternalBasic", "InsertCorrespondenceBasicV2", ECHO_CONTRACT
        ),
    )


def make_app(recorder: Recorder, *, max_bytes: int = 2 * 1024 * 1024) -> web.Application:
    """The app under test: echo, upload-counting and download handlers, a fake authenticator."""

    async def echo(call: SoapCall, context: SoapContext) -> SoapReply:
        recorder.calls.append(call)
        recorder.principals.append(context.principal)
        text = "".join(call.body.itertext()) if call.body is not None else ""
        response = etree.Element(call.operation.response_element.clark, nsmap={None: CORR_NS})
        etree.SubElement(response, f"{{{CORR_NS}}}{call.operation.name}Result").text = text[-200:]
        return SoapReply(response)

    async def upload(call: SoapCall, context: SoapContext) -> SoapReply:
        recorder.calls.append(call)
        assert call.attachment is not None
        received = bytearray()
        async for chunk in call.attachment:
            received += chunk
        recorder.uploads.append(bytes(received))
        response = etree.Element(f"{{{BROKER_NS}}}ReceiptExternalStreamedBE", nsmap={None: BROKER_NS})
        etree.SubElement(response, f"{{{BROKER_NS}}}ReceiptText").text = f"{len(received)} bytes"
        return SoapReply(response)

    async def download(call: SoapCall, context: SoapContext) -> SoapReply:
        recorder.calls.append(call)

        async def payload() -> AsyncIterator[bytes]:
            for block in DOWNLOAD_BLOCKS:
                yield block

        response = etree.Element(f"{{{BROKER_NS}}}DownloadFileStreamedBasicResponse", nsmap={None: BROKER_NS})
        etree.SubElement(response, f"{{{BROKER_NS}}}DownloadFileStreamedBasicResult")
        return SoapReply(response, stream=payload())

    async def boom(call: SoapCall, context: SoapContext) -> SoapReply:
        raise RuntimeError("secret internal detail")

    async def authenticate(credentials: LegacyCredentials, call: SoapCall, peer: str | None) -> Principal:
        from proxy.errors import AuthenticationFailed

        if credentials.password != "s3cret":
            raise AuthenticationFailed("wrong system user name or password")
        return Principal(caller_id=credentials.username, kind=CallerKind.SERVICE_OWNER)

    surface = echo_surface()
    config = SoapConfig(
        limits=XmlLimits(max_bytes=max_bytes),
        max_attachment_bytes=10 * 1024 * 1024,
    )
    app = web.Application()
    add_soap_routes(
        app,
        handlers={
            ("CorrespondenceAgencyExternalBasic", "GetCorrespondenceStatusHistoryBasic"): echo,
            ("CorrespondenceAgencyExternalBasic", "InsertCorrespondenceBasicV2"): echo,
            ("CorrespondenceAgencyExternal", "InsertCorrespondenceV2"): echo,
            ("CorrespondenceAgencyExternalBasic", "CreateSimpleCorrespondenceServiceBasic"): boom,
            ("BrokerServiceExternalBasicStreamed", "UploadFileStreamedBasic"): upload,
            ("BrokerServiceExternalBasicStreamed", "DownloadFileStreamedBasic"): download,
        },
        config=config,
        authenticate=authenticate,
        surface=lambda: surface,
    )
    return app


@pytest.fixture
def recorder() -> Recorder:
    """What the handlers saw."""
    return Recorder()


@pytest.fixture
async def server(aiohttp_server, recorder: Recorder) -> TestServer:  # type: ignore[no-untyped-def]
    """The SOAP front on 127.0.0.1."""
    await asyncio.to_thread(shipped_surface)  # compiled off the loop, once
    served: TestServer = await aiohttp_server(make_app(recorder))
    return served
