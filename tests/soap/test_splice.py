"""A mapped answer's bytes are spliced into the envelope: the same bytes lxml would have written."""

from __future__ import annotations

import pytest
from lxml import etree

from proxy.soap.catalogue import default_catalogue
from proxy.soap.encode import SoapReply, encode_reply, spliceable
from proxy.soap.request import SoapCall, parse_request

NS = "http://www.altinn.no/services/ServiceEngine/Correspondence/2009/10"
WSA = "http://www.w3.org/2005/08/addressing"
ANSWER = (
    f'\n<InsertCorrespondenceV2Response xmlns="{NS}">\n'
    '  <InsertCorrespondenceV2Result xmlns:a="http://schemas.altinn.no/services/Intermediary/Receipt/2009/10"'
    ' xmlns:i="http://www.w3.org/2001/XMLSchema-instance">\n'
    '    <a:ReceiptHistory i:nil="true"/>\n    <a:ReceiptId>42</a:ReceiptId>\n'
    "    <a:ReceiptText>Tom &amp; Jerry &lt;AS&gt; \u00e6\u00f8\u00e5</a:ReceiptText>\n"
    "  </InsertCorrespondenceV2Result>\n</InsertCorrespondenceV2Response>\n"
)


def _call(*, soap12: bool, message_id: str | None = None) -> SoapCall:
    name = "CorrespondenceAgencyExternal" if soap12 else "CorrespondenceAgencyExternalBasic"
    operation = "InsertCorrespondenceV2" if soap12 else "InsertCorrespondenceBasicV2"
    service = default_catalogue().by_name(name)
    assert service is not None
    envelope = (
        "http://www.w3.org/2003/05/soap-envelope" if soap12 else "http://schemas.xmlsoap.org/soap/envelope/"
    )
    header = (
        f'<s:Header><a:MessageID xmlns:a="{WSA}">{message_id}</a:MessageID></s:Header>' if message_id else ""
    )
    body = (
        f'<s:Envelope xmlns:s="{envelope}">{header}<s:Body><{operation} xmlns="{NS}"/></s:Body></s:Envelope>'
    )
    content_type = "application/soap+xml; charset=utf-8" if soap12 else "text/xml; charset=utf-8"
    action = None if soap12 else f'"{NS}/ICorrespondenceAgencyExternalBasic/{operation}"'
    return parse_request(service, content_type=content_type, soap_action=action, body=body.encode())


@pytest.mark.parametrize(
    ("soap12", "message_id"),
    [(False, None), (True, None), (True, "urn:uuid:6c1f0b6e-0d5e-4a47-9a53-6d0f3f1e2a10")],
)
def test_spliced_bytes_equal_the_serialised_tree(soap12: bool, message_id: str | None) -> None:
    call = _call(soap12=soap12, message_id=message_id)
    answer = ANSWER.encode()

    spliced = encode_reply(call, SoapReply(None, xml=answer))
    serialised = encode_reply(call, SoapReply(etree.fromstring(answer)))

    assert spliced.body == serialised.body
    assert spliced.content_type == serialised.content_type
    assert etree.fromstring(spliced.body).find(f".//{{{NS}}}InsertCorrespondenceV2Response") is not None


@pytest.mark.parametrize(
    "text",
    [
        "line one\r\nline two",  # a parser turns CR LF into LF: lxml's way keeps what it means
        "a leading comment",
    ],
)
def test_what_cannot_be_spliced_takes_the_parsing_path(text: str) -> None:
    call = _call(soap12=False)
    answer = f'<R xmlns="{NS}"><T>{text}</T></R>'.encode()
    if text == "a leading comment":
        answer = b"<!-- generated -->" + answer
    assert not spliceable(answer.strip())

    spliced = encode_reply(call, SoapReply(None, xml=answer))

    assert spliced.body == encode_reply(call, SoapReply(etree.fromstring(answer))).body


def test_a_forbidden_character_is_never_sent() -> None:
    answer = f'<R xmlns="{NS}"><T>bell \x07</T></R>'.encode()
    assert not spliceable(answer)

    with pytest.raises(etree.XMLSyntaxError):
        encode_reply(_call(soap12=False), SoapReply(None, xml=answer))


def test_a_reply_carries_either_an_element_or_bytes() -> None:
    with pytest.raises(ValueError, match="either"):
        SoapReply(None)
    with pytest.raises(ValueError, match="either"):
        SoapReply(etree.fromstring(b"<a/>"), xml=b"<a/>")
