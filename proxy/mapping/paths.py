"""Altinn 3 call paths whose parameters cannot change the path's shape.

A legacy field that becomes part of an Altinn 3 URL is hostile input: ``../../correspondence`` as a
broker file reference must not send the caller's token to another API. So a call path is not a free
template. Each ``/``-separated segment is either literal text or exactly one typed parameter::

    path: "/broker/api/v1/filetransfer/{{ fields.reference | guid }}/download"

Invariants:
* Every parameter declares its type as its last filter: ``guid`` (a UUID in its 8-4-4-4-12 form),
  ``digits`` (a non-negative integer) or ``segment`` (any text of at most 200 characters that is not
  ``.`` or ``..``). A path with an untyped or partial-segment parameter does not load.
* A parameter's value is validated against its type, then percent-encoded with nothing left safe,
  so it is exactly one segment: a rendered path has the template's literal segments at the same
  places and never contains ``?``, ``#``, ``%2F``-decoded slashes or dot segments.
* A value that breaks its type is a fault before any call: :class:`InvalidField` when the value
  comes from the caller's request (``fields``/``vars``), :class:`UpstreamError` when it comes from
  what Altinn 3 answered earlier.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from jinja2 import nodes

from proxy.errors import InvalidField, ProxyError, UpstreamError
from proxy.mapping.expressions import GUID_PATTERN, VALUES, ExpressionError, Names, compile_expression

MAX_SEGMENT_LENGTH = 200
_PARAMETER = re.compile(r"^\{\{(?P<expr>.*)\|\s*(?P<type>guid|digits|segment)\s*\}\}$", re.DOTALL)
_DIGITS = re.compile(r"[0-9]{1,18}")
_CALLER_NAMES = frozenset({"fields", "vars"})


def _guid(text: str) -> str | None:
    return text.lower() if GUID_PATTERN.fullmatch(text) else None


def _digits(text: str) -> str | None:
    return text if _DIGITS.fullmatch(text) else None


def _segment(text: str) -> str | None:
    if text in ("", ".", "..") or len(text) > MAX_SEGMENT_LENGTH:
        return None
    return text


_TYPES: dict[str, tuple[Callable[[str], str | None], str]] = {
    "guid": (_guid, "a GUID"),
    "digits": (_digits, "a whole number"),
    "segment": (_segment, f"text of 1 to {MAX_SEGMENT_LENGTH} characters"),
}


@dataclass(frozen=True)
class PathParameter:
    """One typed ``{{ expression | type }}`` segment."""

    source: str
    type_name: str
    evaluate: Callable[[Mapping[str, Any]], Any]
    from_caller: bool

    def render(self, context: Mapping[str, Any]) -> str:
        """The value as one percent-encoded segment, or a fault when it breaks its type."""
        value = self.evaluate(context)
        text = "" if value is None else str(value).strip()
        check, described = _TYPES[self.type_name]
        valid = check(text)
        if valid is None:
            raise self._refusal(f"{self.source} must be {described}, not {text[:40]!r}")
        return quote(valid, safe="")

    def _refusal(self, message: str) -> ProxyError:
        if self.from_caller:
            return InvalidField(message)
        return UpstreamError(f"Altinn 3 answered a value the proxy cannot use in a URL: {message}")


class CallPath:
    """A compiled call path; calling it renders the path for one context."""

    __slots__ = ("parts", "source")

    def __init__(self, source: str, parts: tuple[str | PathParameter, ...]) -> None:
        self.source = source
        self.parts = parts

    @property
    def parameters(self) -> tuple[PathParameter, ...]:
        """The typed parameters, in order."""
        return tuple(part for part in self.parts if isinstance(part, PathParameter))

    def __call__(self, context: Mapping[str, Any]) -> str:
        """The path with every parameter validated and encoded as one segment."""
        return "/".join(part if isinstance(part, str) else part.render(context) for part in self.parts)


def compile_path(source: str, names: Names) -> CallPath:
    """Compile a call path (see the module docstring); :class:`ExpressionError` says what is wrong."""
    if "{%" in source or "{#" in source:
        raise ExpressionError("a call path takes {{ }} parameters only, no {% %} blocks or comments")
    parts: list[str | PathParameter] = []
    for segment in _segments(source):
        if "{{" not in segment and "}}" not in segment:
            if "?" in segment or "#" in segment or segment in (".", ".."):
                raise ExpressionError(f"a call path segment may not be {segment!r} (use query: for ?)")
            parts.append(segment)
            continue
        found = _PARAMETER.match(segment)
        if found is None or "{{" in found.group("expr") or "}}" in found.group("expr"):
            raise ExpressionError(
                f"path segment {segment!r} must be exactly one parameter ending in its type, "
                "e.g. {{ fields.reference | guid }} (types: guid, digits, segment)"
            )
        expr = found.group("expr").strip()
        evaluate = compile_expression(expr, names)
        parts.append(PathParameter(expr, found.group("type"), evaluate, _reads_caller_input(expr)))
    return CallPath(source, tuple(parts))


def _segments(source: str) -> list[str]:
    """``source`` split at each ``/`` outside ``{{ }}`` (an expression may divide)."""
    segments, start, depth, index = [], 0, 0, 0
    while index < len(source):
        if source.startswith("{{", index):
            depth, index = depth + 1, index + 2
        elif source.startswith("}}", index) and depth:
            depth, index = depth - 1, index + 2
        elif source[index] == "/" and not depth:
            segments.append(source[start:index])
            start = index = index + 1
        else:
            index += 1
    return [*segments, source[start:]]


def _reads_caller_input(expr: str) -> bool:
    tree = VALUES.parse(f"{{{{ {expr} }}}}")
    return any(name.name in _CALLER_NAMES for name in tree.find_all(nodes.Name))
