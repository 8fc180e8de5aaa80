"""Jinja2, sandboxed, as the one expression and template language of mapping files.

Invariants:
* Everything is compiled at load; the request path only calls compiled code.
* Two ``ImmutableSandboxedEnvironment`` instances with ``StrictUndefined``: ``VALUES`` (no escaping)
  for URLs, query values and JSON bodies, and ``XML`` (autoescape, ``None`` renders as nothing) for
  answer templates. A mapping cannot reach Python internals or mutate what it is given.
* A string that is exactly one ``{{ expression }}`` keeps the expression's native type (list, dict,
  None, bytes); a string mixing text and ``{{ }}`` renders to a string; anything else is a literal.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from proxy.broker.manifest import shim_download
from proxy.broker.references import initialised_from, own_manifest
from proxy.broker.zipcheck import require_zip
from proxy.errors import InvalidField, ProxyError
from proxy.mapping import forms, queue
from proxy.mapping.fastpath import fast_expression, fast_template
from proxy.mapping.notifications import notification_block

#: Altinn 2 served Norwegian local time; a WCF ``xs:dateTime`` without offset means Oslo time.
LEGACY_ZONE = ZoneInfo("Europe/Oslo")

_LCID_TO_ISO = {"1044": "nb", "2068": "nn", "1033": "en", "1083": "se"}
_ISO_TO_LCID = {iso: lcid for lcid, iso in _LCID_TO_ISO.items()}


def xs_to_iso(value: str | None) -> str | None:
    """A WCF ``xs:dateTime`` (offset optional, Oslo time when absent) as ISO 8601 in UTC (``...Z``)."""
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidField(f"not an xs:dateTime: {value[:40]!r}") from None
    # ``parsed.astimezone(UTC)`` (Oslo wall time for a naive value), computed as wall time minus the
    # offset: the same instant without building two aware datetimes (a third of the cost).
    offset = LEGACY_ZONE.utcoffset(parsed) if parsed.tzinfo is None else parsed.utcoffset()
    utc = parsed.replace(tzinfo=None) - offset if offset else parsed.replace(tzinfo=None)
    return utc.isoformat(timespec="milliseconds") + "Z"


def iso_to_xs(value: str | None) -> str | None:
    """An ISO 8601 timestamp as Altinn 2's WCF wrote ``xs:dateTime``: Oslo local time, no offset, ms."""
    if value is None or value == "":
        return None
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(LEGACY_ZONE).replace(tzinfo=None).isoformat(timespec="milliseconds")


def b64decode(value: str | None) -> bytes:
    """Decode a base64 element (whitespace allowed, as MTOM-less clients wrap lines)."""
    if not value:
        return b""
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidField("an attachment's Data is not valid base64") from None


def lcid_to_iso(value: str | None, default: str = "nb") -> str:
    """Altinn 2 ``LanguageCode`` (1044, 2068, 1033) as an ISO 639-1 code."""
    return _LCID_TO_ISO.get((value or "").strip(), default)


def iso_to_lcid(value: str | None, default: str = "1044") -> str:
    """An ISO 639-1 code as the Altinn 2 ``LanguageCode``."""
    return _ISO_TO_LCID.get((value or "").strip(), default)


def recipient_urn(value: str | None) -> str:
    """An Altinn 2 reportee (9-digit org number or 11-digit national id) as an Altinn 3 party URN."""
    text = (value or "").strip()
    if re.fullmatch(r"\d{9}", text):
        return f"urn:altinn:organization:identifier-no:{text}"
    if re.fullmatch(r"\d{11}", text):
        return f"urn:altinn:person:identifier-no:{text}"
    raise InvalidField("Reportee must be an organisation number (9 digits) or a national id (11 digits)")


def org_urn(value: str | None) -> str:
    """An organisation number as ``urn:altinn:organization:identifier-no:...``."""
    return f"urn:altinn:organization:identifier-no:{(value or '').strip()}"


def remap_keys(records: object, names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Records (dicts) with keys renamed by ``names``; other keys and None values are dropped."""
    if not records:
        return []
    return [
        {new: record[old] for old, new in names.items() if record.get(old) is not None}
        for record in records  # type: ignore[attr-defined]
        if isinstance(record, Mapping)
    ]


def to_dict(records: object, key: str, value: str) -> dict[str, Any] | None:
    """``{record[key]: record[value]}`` over records with a key (None values become ""); None when empty."""
    if not records:
        return None
    result = {
        str(record[key]): "" if record.get(value) is None else str(record[value])
        for record in records  # type: ignore[attr-defined]
        if isinstance(record, Mapping) and record.get(key) is not None
    }
    return result or None


def b64encode(value: bytes | str | None) -> str:
    """Bytes (or text, as UTF-8) as base64 for an inline ``xs:base64Binary`` element."""
    if value is None:
        return ""
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return base64.b64encode(data).decode("ascii")


def resource_urn(value: str | None) -> str:
    """An Altinn 3 resource id as ``urn:altinn:resource:...`` (Dialogporten's ``serviceResource``)."""
    text = (value or "").strip()
    return text if text.startswith("urn:altinn:resource:") else f"urn:altinn:resource:{text}"


#: The namespace of the proxy's name-based UUIDs (``uuid5`` filter); changing it changes every key.
PROXY_UUID_NAMESPACE = uuid.UUID("6f1d5a52-3c55-5d8e-9b0e-2f7a1c4e8d31")


_NAMESPACE_BYTES = PROXY_UUID_NAMESPACE.bytes


def uuid5(value: object) -> str:
    """A stable UUID for ``value`` (e.g. Altinn 3's ``idempotentKey`` from a legacy reference).

    ``str(uuid.uuid5(PROXY_UUID_NAMESPACE, value))`` (RFC 4122 version 5), without building the
    ``UUID`` object in between: a third of the cost, once or twice per request.
    """
    name = "" if value is None else str(value)
    digest = bytearray(
        hashlib.sha1(_NAMESPACE_BYTES + name.encode("utf-8"), usedforsecurity=False).digest()[:16]
    )
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


#: A GUID in its 8-4-4-4-12 hex form (either case).
GUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def as_guid(value: object) -> str | None:
    """``value`` as a lower-case GUID, or none when it is none (e.g. to key a memo by a caller's reference)."""
    text = "" if value is None else str(value).strip()
    return text.lower() if GUID_PATTERN.fullmatch(text) else None


def new_guid() -> str:
    """A fresh random UUID (e.g. a reference the proxy hands out before Altinn 3 has an id)."""
    return str(uuid.uuid4())


def from_json(value: str | None, what: str = "the value") -> Any:
    """JSON text (e.g. a REST query parameter such as ``brokerServiceDescription``) as plain values."""
    if value is None or str(value).strip() == "":
        return None
    try:
        return json.loads(str(value))
    except ValueError as error:
        raise InvalidField(f"{what} is not valid JSON: {error}") from None


def xml_escape(value: object) -> str:
    """Text escaped for XML character data and attribute values."""
    return escape("" if value is None else str(value), {'"': "&quot;"})


def _finalize_xml(value: object) -> object:
    return "" if value is None else value


def _environment(*, xml: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=xml,
        finalize=_finalize_xml if xml else None,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        xs_to_iso=xs_to_iso,
        iso_to_xs=iso_to_xs,
        b64decode=b64decode,
        b64encode=b64encode,
        resource_urn=resource_urn,
        lcid_to_iso=lcid_to_iso,
        iso_to_lcid=iso_to_lcid,
        recipient_urn=recipient_urn,
        org_urn=org_urn,
        xml_escape=xml_escape,
        remap_keys=remap_keys,
        to_dict=to_dict,
        uuid5=uuid5,
        as_guid=as_guid,
        notification_block=notification_block,
        from_json=from_json,
        broker_manifest=shim_download,
        broker_require_zip=require_zip,
        broker_own_manifest=own_manifest,
        broker_initialised_from=initialised_from,
        **forms.FILTERS,
        **queue.FILTERS,
    )
    env.globals["new_guid"] = new_guid
    return env


VALUES = _environment(xml=False)
XML = _environment(xml=True)

#: Names every expression may use; ``item``/``index`` and step-specific names are added per place.
BASE_NAMES = frozenset(
    {"fields", "vars", "results", "identity", "route", "routing", "caller_orgs", "now", "streams"}
)


class ExpressionError(Exception):
    """An expression or template does not compile or refers to something undefined."""


class ExpressionFailure(Exception):
    """Evaluating a compiled expression or template raised: a mapping bug this request revealed.

    A :class:`proxy.errors.ProxyError` raised on purpose (a filter refusing a value) is not one.
    """

    def __init__(self, source: str, cause: Exception) -> None:
        super().__init__(f"{type(cause).__name__}: {cause} (in {source.strip()[:120]!r})")
        self.source = source


def guarded(source: str, evaluate: Callable[[Mapping[str, Any]], Any]) -> Callable[[Mapping[str, Any]], Any]:
    """``evaluate`` with any failure but a deliberate proxy error reported as :class:`ExpressionFailure`."""

    def run(context: Mapping[str, Any]) -> Any:
        try:
            return evaluate(context)
        except ProxyError:
            raise
        except Exception as error:
            raise ExpressionFailure(source, error) from error

    return run


class Names:
    """What an expression at one place of a mapping may refer to."""

    def __init__(
        self,
        fields: frozenset[str],
        vars_: frozenset[str],
        results: frozenset[str],
        extra: frozenset[str] = frozenset(),
    ) -> None:
        self.fields = fields
        self.vars = vars_
        self.results = results
        self.extra = extra

    def check(self, tree: nodes.Node) -> None:
        """Raise :class:`ExpressionError` for an unknown variable, field, var or step result."""
        assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
        # ``loop`` is Jinja's own variable inside a ``{% for %}``.
        loops = {"loop"} if any(True for _ in tree.find_all(nodes.For)) else set()
        allowed = BASE_NAMES | self.extra | assigned | loops | set(VALUES.globals)
        for name in tree.find_all(nodes.Name):
            if name.ctx == "load" and name.name not in allowed:
                raise ExpressionError(f"undefined variable {name.name!r}")
        for getter in tree.find_all((nodes.Getattr, nodes.Getitem)):
            target = getter.node  # type: ignore[attr-defined]  # both node types have .node
            if not isinstance(target, nodes.Name) or target.ctx != "load":
                continue
            if isinstance(getter, nodes.Getattr):
                key: object = getter.attr
            elif isinstance(getter, nodes.Getitem) and isinstance(getter.arg, nodes.Const):
                key = getter.arg.value
            else:
                continue
            known = {"fields": self.fields, "vars": self.vars, "results": self.results}.get(target.name)
            if known is not None and key not in known:
                what = {"fields": "field", "vars": "var", "results": "step result (of an earlier step)"}
                raise ExpressionError(f"undefined {what[target.name]} {target.name}.{key}")


class Value:
    """A compiled YAML value: literal, native expression, or string template."""

    __slots__ = ("_evaluate", "is_literal", "source")

    def __init__(self, source: str, evaluate: Callable[[Mapping[str, Any]], Any], literal: bool) -> None:
        self.source = source
        self._evaluate = evaluate
        self.is_literal = literal

    def __call__(self, context: Mapping[str, Any]) -> Any:
        """Evaluate against ``context`` (a failure is an :class:`ExpressionFailure`)."""
        try:
            return self._evaluate(context)
        except ProxyError:
            raise
        except Exception as error:
            raise ExpressionFailure(self.source, error) from error


_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)


def compile_value(source: Any, names: Names) -> Value | Any:
    """Compile a scalar: a string with ``{{`` becomes a :class:`Value`; other scalars stay as they are."""
    if not isinstance(source, str) or ("{{" not in source and "{%" not in source):
        return source
    single = _SINGLE_EXPRESSION.match(source)
    try:
        if single is not None and "}}" not in single.group("expr") and "{%" not in source:
            expr = single.group("expr")
            names.check(VALUES.parse(f"{{{{ {expr} }}}}"))
            compiled = VALUES.compile_expression(expr, undefined_to_none=False)
            jinja = _keywords(compiled)
            return Value(source, fast_expression(VALUES, expr, jinja) or jinja, literal=False)
        names.check(VALUES.parse(source))
        template = VALUES.from_string(source)
        return Value(source, fast_template(VALUES, source, template.render) or template.render, literal=False)
    except TemplateSyntaxError as error:
        raise ExpressionError(f"expression does not compile: {error.message}") from None


def _keywords(compiled: Callable[..., Any]) -> Callable[[Mapping[str, Any]], Any]:
    """A Jinja ``compile_expression`` result called with a context mapping."""
    return lambda context: compiled(**context)


def compile_expression(source: str, names: Names) -> Value:
    """Compile a condition or reference: ``{{ x }}`` or a bare ``x`` (both evaluate natively)."""
    single = _SINGLE_EXPRESSION.match(source)
    expr = single.group("expr") if single is not None else source
    try:
        names.check(VALUES.parse(f"{{{{ {expr} }}}}"))
        jinja = _keywords(VALUES.compile_expression(expr, undefined_to_none=False))
        evaluate = fast_expression(VALUES, expr, jinja) or jinja
    except TemplateSyntaxError as error:
        raise ExpressionError(f"expression does not compile: {error.message}") from None
    return Value(source, evaluate, literal=False)


def compile_xml_template(source: str, names: Names) -> Callable[[Mapping[str, Any]], str]:
    """Compile an answer template (XML autoescape) and check the names it uses."""
    try:
        names.check(XML.parse(source))
        render = XML.from_string(source).render
        return guarded(source, fast_template(XML, source, render) or render)
    except TemplateSyntaxError as error:
        raise ExpressionError(
            f"template does not compile (template line {error.lineno}): {error.message}"
        ) from None
