"""OData query options of Altinn 2's REST lists: ``$top``, ``$skip`` and ``$filter`` (pure, no I/O).

Altinn 2 (ASP.NET Web API OData) accepted a small part of OData v3 that clients really used:
comparisons ``eq ne gt ge lt le`` of a property with a literal (``'text'``, ``DateTime'2018-01-22T00:00:00'``,
numbers, ``true``/``false``, ``null``), combined with ``and``, ``or``, ``not`` and parentheses. Lists
were cut at 50 items per page whatever ``$top`` asked for.

Invariants: :func:`parse_query` is total over its input (every malformed option is a
:class:`~proxy.errors.MalformedRequest` naming what is wrong, never another exception), and it runs
before any Altinn 3 call. Text comparisons ignore case, as Altinn 2's database did. A timestamp
without an offset is Norwegian local time on both sides (Altinn 2's JSON wrote them so).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from proxy.errors import MalformedRequest

PAGE_SIZE = 50
#: Altinn 2 served Norwegian local time.
LEGACY_ZONE = ZoneInfo("Europe/Oslo")
MAX_FILTER_LENGTH = 2000
_MAX_DEPTH = 32

Predicate = Callable[[Mapping[str, Any]], bool]

_TOKEN = re.compile(
    r"\s*(?:(?P<datetime>(?i:datetime(?:offset)?)'(?P<dt>[^']*)')"
    r"|'(?P<text>(?:[^']|'')*)'"
    r"|(?P<number>-?\d+(?:\.\d+)?)(?![\w.])"
    r"|(?P<paren>[()])"
    r"|(?P<word>[A-Za-z_][\w/]*))"
)
_COMPARISONS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})


@dataclass(frozen=True)
class Query:
    """The paging and filter a list request asked for."""

    top: int = PAGE_SIZE
    skip: int = 0
    filter: Predicate | None = None

    def page(self, items: Sequence[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], bool]:
        """The items of this page, and whether more match after it (the list was cut)."""
        matching = [item for item in items if self.filter is None or self.filter(item)]
        rest = matching[self.skip :]
        return rest[: self.top], len(rest) > self.top


def parse_query(options: Mapping[str, str], fields: Iterable[str]) -> Query:
    """The OData options of ``options`` (names as sent, any case); ``$filter`` may name only ``fields``."""
    lowered = {name.lower(): value for name, value in options.items()}
    top = _count(lowered, "$top", PAGE_SIZE)
    skip = _count(lowered, "$skip", 0)
    source = lowered.get("$filter")
    predicate = None
    if source is not None and source.strip():
        if len(source) > MAX_FILTER_LENGTH:
            raise MalformedRequest(f"$filter is longer than {MAX_FILTER_LENGTH} characters")
        predicate = _Parser(source, {name.lower(): name for name in fields}).parse()
    return Query(top=min(top, PAGE_SIZE), skip=skip, filter=predicate)


def _count(options: Mapping[str, str], name: str, default: int) -> int:
    value = options.get(name)
    if value is None or value == "":
        return default
    if not value.strip().isdigit() or len(value.strip()) > 9:
        raise MalformedRequest(f"{name} must be a whole number of 0 or more, not {value[:20]!r}")
    return int(value)


class _Parser:
    """Recursive descent over ``or`` < ``and`` < ``not`` < comparison / parentheses."""

    def __init__(self, source: str, fields: Mapping[str, str]) -> None:
        self._tokens = _tokenize(source)
        self._position = 0
        self._fields = fields
        self._depth = 0

    def parse(self) -> Predicate:
        predicate = self._or()
        if self._position != len(self._tokens):
            raise _bad(f"unexpected {self._tokens[self._position][1]!r}")
        return predicate

    def _peek_word(self) -> str | None:
        if self._position < len(self._tokens) and self._tokens[self._position][0] == "word":
            return str(self._tokens[self._position][1]).lower()
        return None

    def _take(self) -> tuple[str, Any]:
        if self._position >= len(self._tokens):
            raise _bad("the expression ends too early")
        token = self._tokens[self._position]
        self._position += 1
        return token

    def _or(self) -> Predicate:
        left = self._and()
        while self._peek_word() == "or":
            self._position += 1
            right = self._and()
            left = _either(left, right)
        return left

    def _and(self) -> Predicate:
        left = self._not()
        while self._peek_word() == "and":
            self._position += 1
            right = self._not()
            left = _both(left, right)
        return left

    def _not(self) -> Predicate:
        if self._peek_word() == "not":
            self._position += 1
            inner = self._not()
            return lambda item: not inner(item)
        return self._primary()

    def _primary(self) -> Predicate:
        kind, value = self._take()
        if (kind, value) == ("paren", "("):
            self._depth += 1
            if self._depth > _MAX_DEPTH:
                raise _bad("parentheses are nested too deeply")
            inner = self._or()
            if self._position >= len(self._tokens) or self._take() != ("paren", ")"):
                raise _bad("a '(' is not closed")
            self._depth -= 1
            return inner
        if kind != "word":
            raise _bad(f"expected a property name, found {value!r}")
        field = self._fields.get(str(value).lower())
        if field is None:
            allowed = ", ".join(sorted(self._fields.values()))
            raise _bad(f"cannot filter on {value!r}; the properties are {allowed}")
        operator = self._take()
        if operator[0] != "word" or str(operator[1]).lower() not in _COMPARISONS:
            raise _bad(f"expected eq, ne, gt, ge, lt or le after {field}, found {operator[1]!r}")
        return _comparison(field, str(operator[1]).lower(), self._literal())

    def _literal(self) -> Any:
        kind, value = self._take()
        if kind in ("text", "datetime", "number"):
            return value
        if kind == "word" and str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        if kind == "word" and str(value).lower() == "null":
            return None
        raise _bad(
            f"expected a value ('text', DateTime'...', a number, true, false or null), found {value!r}"
        )


def _tokenize(source: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    position = 0
    while position < len(source):
        if source[position:].strip() == "":
            break
        found = _TOKEN.match(source, position)
        if found is None:
            raise _bad(f"cannot read {source[position : position + 20].strip()!r}")
        position = found.end()
        if found.group("datetime") is not None:
            tokens.append(("datetime", _timestamp(found.group("dt"))))
        elif found.group("text") is not None:
            tokens.append(("text", found.group("text").replace("''", "'")))
        elif found.group("number") is not None:
            tokens.append(("number", float(found.group("number"))))
        elif found.group("paren") is not None:
            tokens.append(("paren", found.group("paren")))
        else:
            tokens.append(("word", found.group("word")))
    if not tokens:
        raise _bad("the expression is empty")
    return tokens


def _timestamp(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise _bad(f"{text[:40]!r} is not a date and time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=LEGACY_ZONE)
    return parsed.astimezone(UTC)


def _either(left: Predicate, right: Predicate) -> Predicate:
    return lambda item: left(item) or right(item)


def _both(left: Predicate, right: Predicate) -> Predicate:
    return lambda item: left(item) and right(item)


def _comparison(field: str, operator: str, literal: Any) -> Predicate:
    def compare(item: Mapping[str, Any]) -> bool:
        value = _comparable(item.get(field), literal)
        wanted = literal.lower() if isinstance(literal, str) else literal
        if operator == "eq":
            return bool(value == wanted)
        if operator == "ne":
            return bool(value != wanted)
        if value is None or wanted is None:
            return False
        try:
            if operator == "gt":
                return bool(value > wanted)
            if operator == "ge":
                return bool(value >= wanted)
            if operator == "lt":
                return bool(value < wanted)
            return bool(value <= wanted)
        except TypeError:
            return False

    return compare


def _comparable(value: Any, literal: Any) -> Any:
    """``value`` (from an item) in the type of ``literal``; None when it cannot be."""
    if value is None:
        return None
    if isinstance(literal, datetime):
        try:
            return _timestamp(str(value))
        except MalformedRequest:
            return None
    if isinstance(literal, bool):
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if isinstance(literal, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    return str(value).lower()


def _bad(reason: str) -> MalformedRequest:
    return MalformedRequest(f"The $filter is not valid: {reason}")
