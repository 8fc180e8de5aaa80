"""Plan tests as a playbook (after mitmproxy's ``Playbook``): the whole conversation, compared at once.

A plan is a generator: it yields requests (Altinn 3 calls, store look-ups) and receives replies. A
playbook writes down what the plan should yield, what is fed back, and how the plan ends::

    assert (
        Playbook(engine.start(request))
        >> Call("GET", "/broker/api/v1/filetransfer/x/details")   # the plan yields this...
        << Altinn3Response(404)                                    # ...and receives this
        >> Fault(NotFound, error_id=30008)                         # then it ends like this
    )

``>>`` adds an expectation, ``<<`` the reply to the last one (an exception instance is thrown into
the plan, as the executor does with a network failure). With ``observer`` (the ``altinn3_contract``
fixture), every Altinn 3 call the plan yields is also judged by Altinn's published contract. Evaluating the playbook runs the plan and
renders both conversations as text, each actual event projected onto what its expectation names;
any difference fails with a unified diff of the two transcripts, never "element 3 differs".
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from proxy.errors import ProxyError
from proxy.mapping.calls import Altinn3Call, CallBatch, LegacyAnswer, PlanRequest
from proxy.mapping.engine import Plan
from tests.mapping.helpers import wire


@dataclass(frozen=True)
class _Ended:
    answer: LegacyAnswer


@dataclass(frozen=True)
class _Raised:
    error: BaseException


Event = PlanRequest | _Ended | _Raised | None
"""What the plan did next: yielded a request, ended with an answer or an error (None: nothing more)."""


class Expectation:
    """One line (or a few) of the expected conversation."""

    def expected(self) -> list[str]:
        """The transcript lines this expectation stands for."""
        raise NotImplementedError

    def actual(self, event: Event) -> list[str]:
        """The transcript lines of what happened, projected onto what this expectation names."""
        return [_describe(event)]


def _describe(event: Event) -> str:
    if event is None:
        return "(the plan ended here)"
    if isinstance(event, _Ended):
        return "answer: " + _canonical(event.answer.xml)
    if isinstance(event, _Raised):
        error = event.error
        error_id = getattr(error, "error_id", None)
        return f"fault {type(error).__name__} ErrorID {error_id}: {error}"
    if isinstance(event, Altinn3Call):
        return f"{event.method} {event.path}"
    if isinstance(event, CallBatch):
        return f"batch of {len(event.calls)}: " + ", ".join(f"{c.method} {c.path}" for c in event.calls)
    return repr(event)


def _canonical(xml: bytes | str) -> str:
    element = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    return str(etree.canonicalize(element, strip_text=True))


@dataclass(frozen=True)
class Call(Expectation):
    """An Altinn 3 call; ``query``/``json``/``scopes`` are compared only when given."""

    method: str
    path: str
    query: Sequence[tuple[str, str]] | None = None
    json: Any = None
    scopes: frozenset[str] | None = None

    def expected(self) -> list[str]:
        return self._lines(self.method, self.path, self.query, self.json, self.scopes)

    def actual(self, event: Event) -> list[str]:
        if not isinstance(event, Altinn3Call):
            return [_describe(event)]
        body = getattr(event.body, "value", None)
        return self._lines(
            event.method,
            event.path,
            None if self.query is None else event.query,
            None if self.json is None else body,
            None if self.scopes is None else event.token.scopes,
        )

    @staticmethod
    def _lines(method: str, path: str, query: Any, body: Any, scopes: Any) -> list[str]:
        lines = [f"{method} {path}"]
        if query is not None:
            lines.append(f"  query: {list(map(tuple, query))}")
        if scopes is not None:
            lines.append(f"  scopes: {sorted(scopes)}")
        if body is not None:
            lines.extend("  " + line for line in json.dumps(body, indent=2, sort_keys=True).splitlines())
        return lines


@dataclass(frozen=True)
class Batch(Expectation):
    """A ``foreach`` fan-out: the calls, in order."""

    calls: tuple[Call, ...]

    def expected(self) -> list[str]:
        return [f"batch of {len(self.calls)}:", *(line for call in self.calls for line in call.expected())]

    def actual(self, event: Event) -> list[str]:
        if not isinstance(event, CallBatch):
            return [_describe(event)]
        lines = [f"batch of {len(event.calls)}:"]
        for index, call in enumerate(event.calls):
            lines.extend(self.calls[index].actual(call) if index < len(self.calls) else [_describe(call)])
        return lines


@dataclass(frozen=True)
class Yields(Expectation):
    """Any other request (a store look-up, a peek), compared by value."""

    request: PlanRequest

    def expected(self) -> list[str]:
        return [repr(self.request)]

    def actual(self, event: Event) -> list[str]:
        return [repr(event) if isinstance(event, type(self.request)) else _describe(event)]


@dataclass(frozen=True)
class Answer(Expectation):
    """The plan ends with this legacy answer (compared after C14N without insignificant whitespace)."""

    xml: str

    def expected(self) -> list[str]:
        return ["answer: " + _canonical(self.xml)]


@dataclass(frozen=True)
class Fault(Expectation):
    """The plan ends with this error; ``error_id``/``message`` are compared when given."""

    error: type[BaseException]
    error_id: int | None = None
    message: str | None = None

    def expected(self) -> list[str]:
        return [self._line(self.error.__name__, self.error_id, self.message)]

    def actual(self, event: Event) -> list[str]:
        if not isinstance(event, _Raised):
            return [_describe(event)]
        error = event.error
        return [
            self._line(
                type(error).__name__,
                None if self.error_id is None else getattr(error, "error_id", None),
                None if self.message is None else str(error),
            )
        ]

    @staticmethod
    def _line(name: str, error_id: int | None, message: str | None) -> str:
        line = f"fault {name}"
        if error_id is not None:
            line += f" ErrorID {error_id}"
        return line + (f": {message}" if message is not None else "")


_NO_REPLY = object()


@dataclass
class Playbook:
    """The expected conversation with one plan (see the module docstring)."""

    plan: Plan
    observer: Callable[..., None] | None = None
    expectations: list[Expectation] = field(default_factory=list)
    replies: list[Any] = field(default_factory=list)

    def __rshift__(self, expectation: Expectation) -> Playbook:
        self.expectations.append(expectation)
        self.replies.append(_NO_REPLY)
        return self

    def __lshift__(self, reply: Any) -> Playbook:
        assert self.expectations, "a reply needs an expectation (>>) before it"
        self.replies[-1] = reply
        return self

    def __bool__(self) -> bool:
        expected: list[str] = []
        actual: list[str] = []
        reply: Any = None
        ended = False
        for expectation, next_reply in zip(self.expectations, self.replies, strict=True):
            event = None if ended else self._next(reply)
            ended = ended or isinstance(event, _Ended | _Raised)
            expected.extend(expectation.expected())
            actual.extend(expectation.actual(event))
            reply = next_reply
        if not ended:
            leftover = self._next(reply)
            if leftover is not None:
                actual.append("unexpected: " + _describe(leftover))
        self.plan.close()
        if expected != actual:
            diff = difflib.unified_diff(expected, actual, "expected", "actual", lineterm="")
            raise AssertionError("the plan's conversation differs:\n" + "\n".join(diff))
        return True

    def _next(self, reply: Any) -> Event:
        try:
            if isinstance(reply, BaseException):
                event = self.plan.throw(reply)
            else:
                event = self.plan.send(None if reply is _NO_REPLY else reply)
        except StopIteration as stop:
            return _Ended(stop.value)
        except ProxyError as error:
            return _Raised(error)
        if self.observer is not None:
            for call in event.calls if isinstance(event, CallBatch) else (event,):
                if isinstance(call, Altinn3Call):
                    self.observer(*wire(call))
        return event
