"""Plain-Python evaluators for the simple Jinja expressions and templates that mappings mostly use.

Why: a compiled Jinja expression builds a fresh runtime ``Context`` on every call (~15 µs), and one
legacy request evaluates twenty or more of them. Most are attribute paths with a filter or an ``or``
default (``{{ fields.title or '' }}``, ``{{ fields.language | lcid_to_iso }}``), which a tree of
closures evaluates in about a microsecond. Nothing changes for the mapping author.

Invariants:
* Jinja stays the language and the reference: an expression is translated only when every node of
  its syntax tree is one of the kinds handled in :func:`_compile`; anything else (tests, slices,
  blocks, filters or calls that want the environment or context) gets no fast path.
* Attribute and item access go through the sandboxed environment's own ``getattr``/``getitem``,
  except a plain ``dict`` key that is not also a ``dict`` attribute name, which is exactly what the
  sandbox would return. Calls are checked with the sandbox's ``is_safe_callable`` first.
* Wherever Jinja would produce an ``Undefined`` (a missing name, key or attribute), the fast
  evaluator gives up with :class:`_Miss` and the original Jinja code evaluates the expression, so
  strict-undefined errors, sandbox refusals and their messages are Jinja's own.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from jinja2 import filters as jinja_filters
from jinja2 import nodes
from jinja2.runtime import Undefined
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import _PassArg
from markupsafe import escape

Evaluate = Callable[[Mapping[str, Any]], Any]

_DICT_ATTRIBUTES = frozenset(dir(dict))
_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "lteq": operator.le,
    "gt": operator.gt,
    "gteq": operator.ge,
    "in": lambda left, right: left in right,
    "notin": lambda left, right: left not in right,
}


class _Miss(Exception):
    """Jinja would see an Undefined here: let Jinja evaluate the whole expression."""


class _Unsupported(Exception):
    """A node kind this module does not translate."""


def with_fallback(fast: Evaluate | None, jinja: Evaluate) -> Evaluate:
    """``fast`` where it can answer, ``jinja`` where it cannot (or ``jinja`` alone without ``fast``)."""
    if fast is None:
        return jinja

    def evaluate(context: Mapping[str, Any]) -> Any:
        try:
            return fast(context)
        except _Miss:
            return jinja(context)

    return evaluate


def fast_expression(env: SandboxedEnvironment, source: str) -> Evaluate | None:
    """A plain-Python evaluator of the expression ``source``, or None when it is not simple."""
    template = env.parse(f"{{{{ {source} }}}}")
    body = template.body
    if len(body) != 1 or not isinstance(body[0], nodes.Output) or len(body[0].nodes) != 1:
        return None
    try:
        return _compile(env, body[0].nodes[0])
    except _Unsupported:
        return None


def fast_template(env: SandboxedEnvironment, source: str) -> Evaluate | None:
    """A plain-Python renderer of a template made only of text and simple ``{{ }}`` expressions.

    Each value goes through the environment's ``finalize`` and, with autoescape, ``escape``, as Jinja's
    generated code does; text between expressions is copied as Jinja's lexer left it.
    """
    template = env.parse(source)
    if not template.body:
        return lambda context: ""
    if len(template.body) != 1 or not isinstance(template.body[0], nodes.Output):
        return None
    parts: list[str | Evaluate] = []
    try:
        for node in template.body[0].nodes:
            if isinstance(node, nodes.TemplateData):
                parts.append(node.data)
            else:
                parts.append(_compile(env, node))
    except _Unsupported:
        return None
    if env.autoescape not in (True, False):
        return None  # autoescape decided per template name: not worth a fast path
    convert: Callable[[Any], str] = escape if env.autoescape else str
    finalize: Callable[[Any], Any] | None = env.finalize

    def render(context: Mapping[str, Any]) -> str:
        out = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
            else:
                value = part(context)
                if finalize is not None:
                    value = finalize(value)
                out.append(convert(value))
        return "".join(out)

    return render


def _compile(env: SandboxedEnvironment, node: nodes.Node) -> Evaluate:
    if isinstance(node, nodes.Const):
        value = node.value
        return lambda context: value
    if isinstance(node, nodes.Name) and node.ctx == "load":
        return _name(node.name)
    if isinstance(node, nodes.Getattr):
        return _getattr(env, _compile(env, node.node), node.attr)
    if isinstance(node, nodes.Getitem):
        if isinstance(node.arg, nodes.Slice):
            raise _Unsupported
        return _getitem(env, _compile(env, node.node), _compile(env, node.arg))
    if isinstance(node, nodes.Filter):
        return _filter(env, node)
    if isinstance(node, nodes.Call):
        return _call(env, node)
    if isinstance(node, nodes.Or):
        left, right = _compile(env, node.left), _compile(env, node.right)
        return lambda context: left(context) or right(context)
    if isinstance(node, nodes.And):
        left, right = _compile(env, node.left), _compile(env, node.right)
        return lambda context: left(context) and right(context)
    if isinstance(node, nodes.Not):
        inner = _compile(env, node.node)
        return lambda context: not inner(context)
    if isinstance(node, nodes.CondExpr) and node.expr2 is not None:
        test, then, otherwise = (_compile(env, n) for n in (node.test, node.expr1, node.expr2))
        return lambda context: then(context) if test(context) else otherwise(context)
    if isinstance(node, nodes.Compare):
        return _compare(env, node)
    if isinstance(node, nodes.Concat) and env.autoescape is False:
        # Jinja's ``~`` without autoescape is ``str_join``: ``"".join(map(str, items))``.
        items = [_compile(env, item) for item in node.nodes]
        return lambda context: "".join([str(item(context)) for item in items])
    if isinstance(node, nodes.Test):
        return _test(env, node)
    if isinstance(node, nodes.List):
        items = [_compile(env, item) for item in node.items]
        return lambda context: [item(context) for item in items]
    if isinstance(node, nodes.Tuple) and node.ctx == "load":
        elements = [_compile(env, item) for item in node.items]
        return lambda context: tuple(item(context) for item in elements)
    if isinstance(node, nodes.Dict):
        pairs = [(_compile(env, pair.key), _compile(env, pair.value)) for pair in node.items]
        return lambda context: {key(context): value(context) for key, value in pairs}
    raise _Unsupported


def _name(name: str) -> Evaluate:
    def evaluate(context: Mapping[str, Any]) -> Any:
        try:
            return context[name]
        except KeyError:
            raise _Miss from None

    return evaluate


def _getattr(env: SandboxedEnvironment, target: Evaluate, attribute: str) -> Evaluate:
    plain_key = attribute not in _DICT_ATTRIBUTES

    def evaluate(context: Mapping[str, Any]) -> Any:
        obj = target(context)
        if plain_key and type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                raise _Miss from None
        value = env.getattr(obj, attribute)
        if isinstance(value, Undefined):
            raise _Miss
        return value

    return evaluate


def _getitem(env: SandboxedEnvironment, target: Evaluate, argument: Evaluate) -> Evaluate:
    def evaluate(context: Mapping[str, Any]) -> Any:
        value = env.getitem(target(context), argument(context))
        if isinstance(value, Undefined):
            raise _Miss
        return value

    return evaluate


def _arguments(
    env: SandboxedEnvironment, node: nodes.Filter | nodes.Call
) -> tuple[list[Evaluate], list[tuple[str, Evaluate]]]:
    if node.dyn_args is not None or node.dyn_kwargs is not None:
        raise _Unsupported
    args = [_compile(env, arg) for arg in node.args]
    kwargs = [(str(keyword.key), _compile(env, keyword.value)) for keyword in node.kwargs]
    return args, kwargs


def _filter(env: SandboxedEnvironment, node: nodes.Filter) -> Evaluate:
    if node.name in _SELECT_ATTRIBUTE and env.filters.get(node.name) is _SELECT_ATTRIBUTE[node.name]:
        return _select_attribute(env, node)
    function = env.filters.get(node.name)
    if node.node is None or function is None or _PassArg.from_obj(function) is not None:
        raise _Unsupported
    target = _compile(env, node.node)
    args, kwargs = _arguments(env, node)

    def evaluate(context: Mapping[str, Any]) -> Any:
        value = target(context)
        return function(value, *(arg(context) for arg in args), **{key: arg(context) for key, arg in kwargs})

    return evaluate


#: Jinja's own filters that :func:`_select_attribute` reproduces (only when the environment has them).
_SELECT_ATTRIBUTE = {"selectattr": jinja_filters.do_selectattr, "rejectattr": jinja_filters.do_rejectattr}


def _select_attribute(env: SandboxedEnvironment, node: nodes.Filter) -> Evaluate:
    """``selectattr('name')`` / ``rejectattr('name')`` without a test: Jinja's lazy filter, by item truth.

    As Jinja: each item's attribute through the environment's ``getitem``, kept when true (selectattr)
    or false (rejectattr), a generator over a true sequence. An item without the attribute gives
    :class:`_Miss` (Jinja would see an Undefined) when the generator is consumed, inside the
    same fast evaluation, so Jinja then evaluates the whole expression.
    """
    arguments = node.args
    if (
        node.node is None
        or len(arguments) != 1
        or node.kwargs
        or node.dyn_args is not None
        or node.dyn_kwargs is not None
        or not isinstance(arguments[0], nodes.Const)
        or not isinstance(arguments[0].value, str)
        or "." in arguments[0].value
        or arguments[0].value.isdigit()
    ):
        raise _Unsupported
    target = _compile(env, node.node)
    attribute: str = arguments[0].value
    keep = node.name == "selectattr"

    def select(items: Any) -> Iterator[Any]:
        if not items:
            return
        for item in items:
            value = env.getitem(item, attribute)
            if isinstance(value, Undefined):
                raise _Miss
            if bool(value) is keep:
                yield item

    return lambda context: select(target(context))


def _test(env: SandboxedEnvironment, node: nodes.Test) -> Evaluate:
    # Only ``is none``: the tests that matter for Undefined (defined, undefined...) stay Jinja's.
    if node.name != "none" or node.args or node.kwargs or node.dyn_args or node.dyn_kwargs:
        raise _Unsupported
    target = _compile(env, node.node)
    return lambda context: target(context) is None


def _call(env: SandboxedEnvironment, node: nodes.Call) -> Evaluate:
    target = _compile(env, node.node)
    args, kwargs = _arguments(env, node)

    def evaluate(context: Mapping[str, Any]) -> Any:
        function = target(context)
        if (
            not env.is_safe_callable(function)
            or _PassArg.from_obj(function) is not None
            or _PassArg.from_obj(type(function).__call__) is not None
        ):
            raise _Miss  # Jinja refuses it (or passes it a context): let Jinja do exactly that
        try:
            return function(*(arg(context) for arg in args), **{key: arg(context) for key, arg in kwargs})
        except StopIteration:
            raise _Miss from None  # Jinja turns this into an Undefined

    return evaluate


def _compare(env: SandboxedEnvironment, node: nodes.Compare) -> Evaluate:
    first = _compile(env, node.expr)
    chain = []
    for operand in node.ops:
        compare = _COMPARISONS.get(operand.op)
        if compare is None:
            raise _Unsupported
        chain.append((compare, _compile(env, operand.expr)))

    def evaluate(context: Mapping[str, Any]) -> Any:
        left = first(context)
        result: Any = True
        for compare, right_of in chain:
            right = right_of(context)
            result = compare(left, right)
            if not result:
                return result
            left = right
        return result

    return evaluate
