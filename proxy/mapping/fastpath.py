"""Plain-Python evaluators for the simple Jinja expressions and templates that mappings mostly use.

Why: a compiled Jinja expression builds a fresh runtime ``Context`` on every call (~15 µs), and one
legacy request evaluates twenty or more of them. Most are attribute paths with a filter or an ``or``
default (``{{ fields.title or '' }}``, ``{{ fields.language | lcid_to_iso }}``). Each is translated
once, at load time, into the source of one Python function (``fields.title or ''`` becomes roughly
``context['fields']['title'] or ''``), compiled with :func:`compile`: one call per evaluation instead
of one per node. Nothing changes for the mapping author.

Invariants:
* Jinja stays the language and the reference: an expression is translated only when every node of
  its syntax tree is one of the kinds handled in :meth:`_Source.expression`; anything else (tests,
  slices, blocks, filters or calls that want the environment or context) gets no fast path.
* Attribute and item access go through the sandboxed environment's own ``getattr``/``getitem``,
  except a plain ``dict`` key that is not also a ``dict`` attribute name, which is exactly what the
  sandbox would return, and an attribute whose safety the sandbox already judged for the object's
  type (:func:`_attribute_reader`). Calls are checked with the sandbox's ``is_safe_callable`` first.
* Wherever Jinja would produce an ``Undefined`` (a missing name, key or attribute), the fast
  evaluator gives up with :class:`_Miss` and the original Jinja code evaluates the expression, so
  strict-undefined errors, sandbox refusals and their messages are Jinja's own.
* The generated source names no value from the mapping: constants, filters and helpers are bound
  in the function's globals under generated names; only identifiers Jinja's parser accepted and
  ``repr`` of plain strings appear in it.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator, Mapping
from keyword import iskeyword
from typing import Any

from jinja2 import filters as jinja_filters
from jinja2 import nodes
from jinja2.runtime import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment
from jinja2.utils import _PassArg
from markupsafe import escape

Evaluate = Callable[[Mapping[str, Any]], Any]

_DICT_ATTRIBUTES = frozenset(dir(dict))
_COMPARISONS = {"eq": "==", "ne": "!=", "lt": "<", "lteq": "<=", "gt": ">", "gteq": ">=", "in": "in"}
_COMPARISONS["notin"] = "not in"


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


def fast_expression(
    env: SandboxedEnvironment, source: str, fallback: Evaluate | None = None
) -> Evaluate | None:
    """A plain-Python evaluator of the expression ``source``, or None when it is not simple.

    With ``fallback`` (Jinja's own evaluator) it is ``with_fallback(fast, fallback)`` in one function.
    """
    template = env.parse(f"{{{{ {source} }}}}")
    body = template.body
    if len(body) != 1 or not isinstance(body[0], nodes.Output) or len(body[0].nodes) != 1:
        return None
    code = _Source(env)
    try:
        return code.function(code.expression(body[0].nodes[0]), source, fallback)
    except _Unsupported:
        return None


def fast_template(
    env: SandboxedEnvironment, source: str, fallback: Evaluate | None = None
) -> Evaluate | None:
    """A plain-Python renderer of a template made only of text and simple ``{{ }}`` expressions.

    Each value goes through the environment's ``finalize`` and, with autoescape, ``escape``, as Jinja's
    generated code does; text between expressions is copied as Jinja's lexer left it. ``fallback`` as
    for :func:`fast_expression`.
    """
    template = env.parse(source)
    if not template.body:
        return lambda context: ""
    if len(template.body) != 1 or not isinstance(template.body[0], nodes.Output):
        return None
    if env.autoescape not in (True, False):
        return None  # autoescape decided per template name: not worth a fast path
    code = _Source(env)
    convert = code.bind(escape if env.autoescape else str)
    finalize = None if env.finalize is None else code.bind(env.finalize)
    parts: list[str] = []
    try:
        for node in template.body[0].nodes:
            if isinstance(node, nodes.TemplateData):
                parts.append(code.bind(node.data))
                continue
            value = code.expression(node)
            parts.append(f"{convert}({value if finalize is None else f'{finalize}({value})'})")
    except _Unsupported:
        return None
    return code.function(f"''.join(({', '.join(parts)},))", source, fallback)


class _Source:
    """The Python source of one evaluator under construction, and the values its globals bind."""

    def __init__(self, env: SandboxedEnvironment) -> None:
        self.env = env
        self.globals: dict[str, Any] = {"_miss": _miss}
        self._temporaries = 0

    def bind(self, value: Any) -> str:
        """A generated global name for ``value``."""
        name = f"_g{len(self.globals)}"
        self.globals[name] = value
        return name

    def temporary(self) -> str:
        """A fresh local name (for a walrus: a value tested, then used, without evaluating it twice)."""
        self._temporaries += 1
        return f"_t{self._temporaries}"

    def function(self, expression: str, origin: str, fallback: Evaluate | None) -> Evaluate:
        """Compile ``def evaluate(context): return <expression>`` (``fallback(context)`` on a miss)."""
        source = f"def evaluate(context):\n    return {expression}\n"
        if fallback is not None:
            jinja = self.bind(fallback)
            source = (
                f"def evaluate(context):\n    try:\n        return {expression}\n"
                f"    except {self.bind(_Miss)}:\n        return {jinja}(context)\n"
            )
        namespace = dict(self.globals)
        exec(compile(source, f"<mapping expression {origin[:60]!r}>", "exec"), namespace)  # noqa: S102
        evaluate: Evaluate = namespace["evaluate"]
        return evaluate

    def expression(self, node: nodes.Node) -> str:
        """Python source evaluating ``node`` against ``context``; :class:`_Unsupported` when not simple."""
        if isinstance(node, nodes.Const):
            return self.bind(node.value)
        if isinstance(node, nodes.Name) and node.ctx == "load":
            key = repr(node.name)
            return f"(context[{key}] if {key} in context else _miss())"
        if isinstance(node, nodes.Getattr):
            return self._getattr(self.expression(node.node), node.attr)
        if isinstance(node, nodes.Getitem):
            if isinstance(node.arg, nodes.Slice):
                raise _Unsupported
            reader = self.bind(_item_reader(self.env))
            return f"{reader}({self.expression(node.node)}, {self.expression(node.arg)})"
        if isinstance(node, nodes.Filter):
            return self._filter(node)
        if isinstance(node, nodes.Call):
            return self._call(node)
        if isinstance(node, nodes.Or):
            return f"({self.expression(node.left)} or {self.expression(node.right)})"
        if isinstance(node, nodes.And):
            return f"({self.expression(node.left)} and {self.expression(node.right)})"
        if isinstance(node, nodes.Not):
            return f"(not {self.expression(node.node)})"
        if isinstance(node, nodes.CondExpr) and node.expr2 is not None:
            test, then, otherwise = (self.expression(n) for n in (node.test, node.expr1, node.expr2))
            return f"({then} if {test} else {otherwise})"
        if isinstance(node, nodes.Compare):
            chain = [self.expression(node.expr)]
            for operand in node.ops:
                if operand.op not in _COMPARISONS:
                    raise _Unsupported
                chain += [_COMPARISONS[operand.op], self.expression(operand.expr)]
            return f"({' '.join(chain)})"
        if isinstance(node, nodes.Concat) and self.env.autoescape is False:
            # Jinja's ``~`` without autoescape is ``str_join``: ``"".join(map(str, items))``.
            items = "".join(f"str({self.expression(item)}), " for item in node.nodes)
            return f"''.join(({items}))"
        if isinstance(node, nodes.Test):
            # Only ``is none``: the tests that matter for Undefined (defined, undefined...) stay Jinja's.
            if node.name != "none" or node.args or node.kwargs or node.dyn_args or node.dyn_kwargs:
                raise _Unsupported
            return f"({self.expression(node.node)} is None)"
        if isinstance(node, nodes.List):
            return f"[{''.join(f'{self.expression(item)}, ' for item in node.items)}]"
        if isinstance(node, nodes.Tuple) and node.ctx == "load":
            return f"({''.join(f'{self.expression(item)}, ' for item in node.items)})"
        if isinstance(node, nodes.Dict):
            pairs = (f"{self.expression(pair.key)}: {self.expression(pair.value)}, " for pair in node.items)
            return f"{{{''.join(pairs)}}}"
        raise _Unsupported

    def _getattr(self, target: str, attribute: str) -> str:
        reader = self.bind(_attribute_reader(self.env, attribute))
        if attribute in _DICT_ATTRIBUTES:
            return f"{reader}({target})"
        key, value = repr(attribute), self.temporary()
        return f"({value}[{key}] if type({value} := {target}) is dict and {key} in {value} else {reader}({value}))"

    def _arguments(self, node: nodes.Filter | nodes.Call) -> str:
        """``, a, b, key=c``: the positional arguments, then the keyword ones, in Jinja's order."""
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise _Unsupported
        positional = "".join(f", {self.expression(arg)}" for arg in node.args)
        if any(not str(keyword.key).isidentifier() or iskeyword(str(keyword.key)) for keyword in node.kwargs):
            raise _Unsupported  # not a Python keyword argument
        return positional + "".join(
            f", {keyword.key}={self.expression(keyword.value)}" for keyword in node.kwargs
        )

    def _filter(self, node: nodes.Filter) -> str:
        if node.name in _SELECT_ATTRIBUTE and self.env.filters.get(node.name) is _SELECT_ATTRIBUTE[node.name]:
            return self._select_attribute(node)
        function = self.env.filters.get(node.name)
        if node.node is None or function is None or _PassArg.from_obj(function) is not None:
            raise _Unsupported
        return f"{self.bind(function)}({self.expression(node.node)}{self._arguments(node)})"

    def _select_attribute(self, node: nodes.Filter) -> str:
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
        select = _selector(self.env, arguments[0].value, keep=node.name == "selectattr")
        return f"{self.bind(select)}({self.expression(node.node)})"

    def _call(self, node: nodes.Call) -> str:
        check, call = self.bind(_callable_check(self.env)), self.bind(_call_function)
        # The callee is judged before any argument is evaluated, as Jinja's sandbox does.
        return f"{call}({check}({self.expression(node.node)}){self._arguments(node)})"


def _miss() -> Any:
    raise _Miss


#: Jinja's own filters that :meth:`_Source._select_attribute` reproduces (only when the environment has them).
_SELECT_ATTRIBUTE = {"selectattr": jinja_filters.do_selectattr, "rejectattr": jinja_filters.do_rejectattr}


def _selector(env: SandboxedEnvironment, attribute: str, *, keep: bool) -> Callable[[Any], Iterator[Any]]:
    def select(items: Any) -> Iterator[Any]:
        if not items:
            return
        for item in items:
            value = env.getitem(item, attribute)
            if isinstance(value, Undefined):
                raise _Miss
            if bool(value) is keep:
                yield item

    return select


def _item_reader(env: SandboxedEnvironment) -> Callable[[Any, Any], Any]:
    def read(obj: Any, argument: Any) -> Any:
        value = env.getitem(obj, argument)
        if isinstance(value, Undefined):
            raise _Miss
        return value

    return read


#: The sandbox's own attribute check, when the environment has not replaced it: it depends only on
#: the object's type and the attribute's name (for every stock environment of Jinja 3).
_STOCK_SAFETY = {SandboxedEnvironment.is_safe_attribute, ImmutableSandboxedEnvironment.is_safe_attribute}
#: Values the sandbox looks at itself (``str.format`` and its kin are wrapped, not returned).
_METHODS = (types.MethodType, types.BuiltinMethodType)


def _attribute_reader(env: SandboxedEnvironment, attribute: str) -> Callable[[Any], Any]:
    """``obj.attribute`` as the sandbox's ``getattr`` gives it, or :class:`_Miss` for an Undefined.

    The sandbox's verdict on the attribute is remembered per type of object (it depends on nothing
    else), so a dataclass's field costs one ``getattr`` after the first time. Methods, names with an
    underscore and environments with their own ``is_safe_attribute`` always go through the sandbox.
    """
    safe_types: set[type] = set()
    remember = type(env).is_safe_attribute in _STOCK_SAFETY and not attribute.startswith("_")

    def read(obj: Any) -> Any:
        if type(obj) in safe_types:
            try:
                value = getattr(obj, attribute)
            except AttributeError:
                pass
            else:
                if not isinstance(value, _METHODS):
                    return value
        value = env.getattr(obj, attribute)
        if isinstance(value, Undefined):
            raise _Miss
        if remember and env.is_safe_attribute(obj, attribute, value):
            safe_types.add(type(obj))
        return value

    return read


def _callable_check(env: SandboxedEnvironment) -> Callable[[Any], Any]:
    """The callee if Jinja's sandbox would call it plainly, else :class:`_Miss`.

    For a Python function or a method of one, with the stock ``is_safe_callable``, the markers the
    sandbox looks for (``unsafe_callable``, ``alters_data``, ``jinja_pass_arg``) can only be in the
    function's ``__dict__``: read there, without three failing attribute lookups.
    """
    stock = type(env).is_safe_callable is SandboxedEnvironment.is_safe_callable

    def check(function: Any) -> Any:
        target = function.__func__ if type(function) is types.MethodType else function
        if stock and type(target) is types.FunctionType:
            markers = target.__dict__
            if (
                markers.get("unsafe_callable", False)
                or markers.get("alters_data", False)
                or markers.get("jinja_pass_arg") is not None
            ):
                raise _Miss
            return function
        if (
            not env.is_safe_callable(function)
            or _PassArg.from_obj(function) is not None
            or _PassArg.from_obj(type(function).__call__) is not None
        ):
            raise _Miss  # Jinja refuses it (or passes it a context): let Jinja do exactly that
        return function

    return check


def _call_function(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, **kwargs)
    except StopIteration:
        raise _Miss from None  # Jinja turns this into an Undefined
