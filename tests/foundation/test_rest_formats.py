"""The legacy REST front's pure parts: OData query options and HAL encodings."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from proxy.errors import MalformedRequest
from proxy.web import hal
from proxy.web.odata import PAGE_SIZE, parse_query

FIELDS = ("Status", "ServiceOwner", "CreatedDate", "ServiceEdition", "Archived")
ITEMS = [
    {"Status": "Ulest", "ServiceOwner": "ttd", "CreatedDate": "2026-01-02T10:00:00.000", "ServiceEdition": 1},
    {"Status": "Lest", "ServiceOwner": "skd", "CreatedDate": "2026-02-02T10:00:00.000", "ServiceEdition": 2},
    {
        "Status": "Bekreftet",
        "ServiceOwner": "TTD",
        "CreatedDate": "2026-03-02T10:00:00+01:00",
        "ServiceEdition": 3,
    },
]


def _matching(source: str) -> list[str]:
    query = parse_query({"$filter": source}, FIELDS)
    page, _ = query.page(ITEMS)
    return [item["Status"] for item in page]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("ServiceOwner eq 'ttd'", ["Ulest", "Bekreftet"]),  # text ignores case, as Altinn 2's database
        ("serviceowner ne 'TTD'", ["Lest"]),  # property names too
        ("CreatedDate gt DateTime'2026-01-31T00:00:00'", ["Lest", "Bekreftet"]),
        ("CreatedDate le datetime'2026-03-02T10:00:00'", ["Ulest", "Lest", "Bekreftet"]),
        ("ServiceEdition ge 2 and not (Status eq 'Lest')", ["Bekreftet"]),
        ("Status eq 'Ulest' or Status eq 'Lest' and ServiceEdition eq 2", ["Ulest", "Lest"]),
        ("Archived eq null", ["Ulest", "Lest", "Bekreftet"]),
        ("Status eq 'it''s'", []),
    ],
)
def test_filters_as_altinn_2_read_them(source: str, expected: list[str]) -> None:
    assert _matching(source) == expected


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"$top": "-1"}, "$top must be a whole number"),
        ({"$skip": "ten"}, "$skip must be a whole number"),
        ({"$filter": "Colour eq 'red'"}, "cannot filter on 'Colour'"),
        ({"$filter": "Status like 'x'"}, "expected eq, ne, gt, ge, lt or le"),
        ({"$filter": "Status eq"}, "ends too early"),
        ({"$filter": "(Status eq 'x'"}, "is not closed"),
        ({"$filter": "Status eq 'x')"}, "unexpected ')'"),
        ({"$filter": "CreatedDate gt DateTime'yesterday'"}, "is not a date and time"),
        ({"$filter": "Status eq 'x' ~"}, "cannot read '~'"),
        ({"$filter": "(" * 40 + "Status eq 'x'" + ")" * 40}, "nested too deeply"),
    ],
)
def test_bad_options_say_what_is_wrong(options: dict[str, str], reason: str) -> None:
    with pytest.raises(MalformedRequest) as raised:
        parse_query(options, FIELDS)
    assert reason in raised.value.message


def test_pages_are_cut_at_fifty_and_say_when_more_match() -> None:
    items = [{"Status": str(n)} for n in range(120)]
    first, more = parse_query({}, FIELDS).page(items)
    assert (len(first), more) == (PAGE_SIZE, True)
    asked, more = parse_query({"$TOP": "500", "$skip": "100"}, FIELDS).page(items)
    assert ([i["Status"] for i in asked], more) == ([str(n) for n in range(100, 120)], False)
    few, more = parse_query({"$top": "2"}, FIELDS).page(items)
    assert (len(few), more) == (2, True)


@given(st.text(max_size=80))
def test_any_filter_text_parses_or_is_refused_cleanly(source: str) -> None:
    try:
        query = parse_query({"$filter": source}, FIELDS)
    except MalformedRequest:
        return
    query.page(ITEMS)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, hal.HAL_JSON),
        ("*/*", hal.HAL_JSON),
        ("application/hal+xml", hal.HAL_XML),
        ("application/xml;q=0.5, application/json", hal.JSON),
        ("text/html, application/xml;q=0.9", hal.XML),
        ("image/png", hal.HAL_JSON),
    ],
)
def test_content_negotiation(accept: str | None, expected: str) -> None:
    assert hal.negotiate(accept) == expected


DOCUMENT = {
    "_links": {"self": {"href": "/api/my/messages"}, "next": {"href": "https://elsewhere/x"}},
    "Count": 1,
    "_embedded": {
        "messages": [
            {
                "MessageId": "7",
                "Subject": "a < b & c",
                "Read": True,
                "Tags": ["x", None],
                "_links": {
                    "self": {"href": "/api/my/messages/7"},
                    "attachment": [{"href": "/a/1", "name": "f"}],
                },
            }
        ]
    },
}


def test_links_become_absolute_and_both_encodings_carry_the_same_document() -> None:
    document = hal.absolute_links(DOCUMENT, "https://proxy.example")
    assert document["_links"]["self"]["href"] == "https://proxy.example/api/my/messages"
    assert document["_links"]["next"]["href"] == "https://elsewhere/x"
    assert json.loads(hal.encode(document, hal.HAL_JSON)) == document

    root = etree.fromstring(hal.encode(document, hal.HAL_XML))
    assert (root.tag, root.get("rel"), root.get("href")) == (
        "resource",
        "self",
        "https://proxy.example/api/my/messages",
    )
    assert root.find("link").attrib == {"rel": "next", "href": "https://elsewhere/x"}
    [message] = root.findall("resource")
    assert (message.get("rel"), message.get("href")) == (
        "messages",
        "https://proxy.example/api/my/messages/7",
    )
    assert message.findtext("Subject") == "a < b & c"
    assert message.findtext("Read") == "true"
    assert [item.text for item in message.find("Tags")] == ["x", None]
    assert message.find("link[@rel='attachment']").get("href") == "https://proxy.example/a/1"
