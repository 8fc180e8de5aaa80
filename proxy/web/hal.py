"""HAL documents as Altinn 2's REST API served them: content negotiation, JSON and XML encodings (pure).

A mapping's answer is a plain HAL document (``_links`` with ``href`` paths such as ``/api/my/messages``,
``_embedded`` lists, properties). :func:`absolute_links` puts the proxy's own base URL in front of
every path, as Altinn 2 answered absolute links. The XML form is WebApi.Hal's ``application/hal+xml``:
a ``resource`` element (``rel``, ``href``) per resource, a ``link`` element per link, an element per
property; ``application/xml`` is answered the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lxml import etree

HAL_JSON = "application/hal+json"
HAL_XML = "application/hal+xml"
JSON = "application/json"
XML = "application/xml"
_OFFERED = (HAL_JSON, JSON, HAL_XML, XML)


def negotiate(accept: str | None) -> str:
    """The media type to answer with for an ``Accept`` header (``application/hal+json`` by default).

    Web API answered its default formatter for anything it could not serve, so this never refuses.
    """
    best, best_quality = HAL_JSON, 0.0
    for position, item in enumerate((accept or "").split(",")):
        media, _, parameters = item.strip().partition(";")
        media = media.strip().lower()
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media in _OFFERED and quality > best_quality:
            best, best_quality = media, quality - position * 1e-6
    return best


def absolute_links(document: Any, base_url: str) -> Any:
    """``document`` with every ``href`` that is a path (``/api/...``) made absolute under ``base_url``."""
    if isinstance(document, list):
        return [absolute_links(item, base_url) for item in document]
    if not isinstance(document, Mapping):
        return document
    result = {}
    for key, value in document.items():
        if key == "href" and isinstance(value, str) and value.startswith("/"):
            result[key] = base_url + value
        else:
            result[key] = absolute_links(value, base_url)
    return result


def encode(document: Any, media_type: str) -> bytes:
    """``document`` in ``media_type`` (one that :func:`negotiate` gives)."""
    if media_type in (HAL_XML, XML):
        root = _resource("self", document if isinstance(document, Mapping) else {"value": document})
        return etree.tostring(root, xml_declaration=True, encoding="utf-8")
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _resource(rel: str, resource: Mapping[str, Any]) -> etree._Element:
    links = resource.get("_links") or {}
    element = etree.Element("resource", rel=rel)
    self_link = links.get("self") if isinstance(links, Mapping) else None
    if isinstance(self_link, Mapping) and self_link.get("href"):
        element.set("href", str(self_link["href"]))
    if isinstance(links, Mapping):
        for name, link in links.items():
            for one in link if isinstance(link, list) else [link]:
                if name != "self" and isinstance(one, Mapping) and one.get("href") is not None:
                    etree.SubElement(element, "link", rel=name, href=str(one["href"]))
    for name, value in resource.items():
        if name not in ("_links", "_embedded"):
            _property(element, name, value)
    embedded = resource.get("_embedded") or {}
    if isinstance(embedded, Mapping):
        for name, items in embedded.items():
            for item in items if isinstance(items, list) else [items]:
                if isinstance(item, Mapping):
                    element.append(_resource(name, item))
    return element


def _property(parent: etree._Element, name: str, value: Any) -> None:
    child = etree.SubElement(parent, name if _is_name(name) else "property")
    if value is None:
        return
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _property(child, str(key), inner)
    elif isinstance(value, list):
        for inner in value:
            _property(child, "item", inner)
    elif isinstance(value, bool):
        child.text = "true" if value else "false"
    else:
        child.text = str(value)


def _is_name(name: str) -> bool:
    return (
        bool(name) and (name[0].isalpha() or name[0] == "_") and all(c.isalnum() or c in "_-." for c in name)
    )
