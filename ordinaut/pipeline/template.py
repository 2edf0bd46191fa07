"""Templates: ``${expr}`` in step arguments, where ``expr`` is JMESPath over the run context.

The context has the keys ``params``, ``steps`` (saved step outputs), ``item`` (inside a
foreach body), ``event``, ``run`` and ``now``. Contract of :func:`render`:

* It walks dicts and lists (keys are never templated) and renders every string.
* A string that is exactly one template (``"${steps.cal.items}"``) becomes the value itself,
  keeping its JSON type (number, object, list, bool).
* Inside longer text a value is written as text: strings as they are, everything else as
  compact JSON (``true``, ``3``, ``{"a":1}``; non-ASCII kept as is).
* An expression that yields nothing (missing or null) raises :class:`TemplateError`; it never
  becomes the text "null". Defaults are explicit: ``${params.x || 'none'}`` (JMESPath ``||``
  also replaces ``false``, ``""``, ``[]`` and ``{}``). Literals use backticks: ``${`5`}``.
* ``$${`` writes a literal ``${``.
* A template ends at the first ``}`` outside JMESPath quotes and braces, so multi-select hashes
  and literals containing ``}`` work.

With a :class:`Budget` (the executor gives every step one: its input cap), what the templates
*build* is counted as it is built and stops at the cap with :class:`TooLarge`: interpolated
text, strings made by ``join``/``to_string``/``reverse`` (counted before they are made), and
each list or object that a projection, multi-select, slice, flatten or function creates (one
per element, counted when made). References are not copies and cost nothing here; the
executor measures the rendered value's JSON size afterwards.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jmespath
from jmespath import exceptions as jp_exceptions
from jmespath import functions as jp_functions
from jmespath import visitor as jp_visitor

from ordinaut.errors import OrdinautError
from ordinaut.jsonsize import json_size

_QUOTES = "'\"`"
_FUNCTIONS = frozenset(jp_functions.Functions.FUNCTION_TABLE)


class TemplateError(OrdinautError):
    """A template or JMESPath expression is malformed, fails, or yields nothing."""

    code = "template_error"
    status = 422

    def __init__(self, message: str, *, expression: str, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.expression = expression


class TooLarge(TemplateError):
    """What the templates of one step build passed its :class:`Budget`."""

    code = "limit_exceeded"


class Budget:
    """Bytes the templates of one step may build (see the module docstring); not thread-safe."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0

    @property
    def left(self) -> int:
        """Bytes still allowed."""
        return max(self.limit - self.used, 0)

    def charge(self, size: int, expression: str) -> None:
        """Count ``size`` more bytes; TooLarge once the total passes the limit."""
        self.used += size
        if self.used > self.limit:
            raise TooLarge(
                f"${{{expression}}} builds more than {self.limit} bytes", expression=expression
            )


class _Functions(jp_functions.Functions):  # type: ignore[misc]
    """JMESPath's functions, charging what they build to a Budget."""

    def __init__(self, budget: Budget, expression: str) -> None:
        super().__init__()
        self.budget, self.expression = budget, expression

    def call_function(self, function_name: str, resolved_args: list[Any]) -> Any:
        self.budget.charge(_text_built(function_name, resolved_args, self.budget), self.expression)
        result = super().call_function(function_name, resolved_args)
        made = isinstance(result, (list, dict)) and not any(result is a for a in resolved_args)
        if made and function_name != "merge":  # merge was counted before
            self.budget.charge(len(result), self.expression)
        return result


def _text_built(name: str, args: list[Any], budget: Budget) -> int:
    """What a string-making function (or merge) will build, measured before it runs."""
    if name == "join" and len(args) == 2 and isinstance(args[1], list):
        sep = args[0] if isinstance(args[0], str) else ""
        texts = [item for item in args[1] if isinstance(item, str)]
        return sum(map(len, texts)) + len(sep) * max(len(texts) - 1, 0)
    if name == "to_string" and len(args) == 1 and not isinstance(args[0], str):
        return json_size(args[0], budget.left)
    if name == "reverse" and len(args) == 1 and isinstance(args[0], str):
        return len(args[0])
    if name == "merge":
        return sum(len(arg) for arg in args if isinstance(arg, dict))
    return 0


# node types whose result is a list or object made by the interpreter (not a reference)
_BUILDS = frozenset(
    {
        "multi_select_list",
        "multi_select_dict",
        "projection",
        "value_projection",
        "filter_projection",
        "flatten",
        "slice",
    }
)


class _Interpreter(jp_visitor.TreeInterpreter):  # type: ignore[misc]
    """JMESPath's interpreter, charging every list or object it makes to a Budget."""

    def __init__(self, budget: Budget, expression: str) -> None:
        super().__init__(jmespath.Options(custom_functions=_Functions(budget, expression)))
        self.budget, self.expression = budget, expression

    def visit(self, node: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        result = super().visit(node, *args, **kwargs)
        if node["type"] in _BUILDS and isinstance(result, (list, dict)):
            self.budget.charge(len(result), self.expression)
        return result


@dataclass(frozen=True)
class Expr:
    """One ``${...}`` in a string; ``text`` is the JMESPath expression."""

    text: str


Segment = str | Expr


def _skip_quoted(text: str, start: int) -> int:
    quote, i = text[start], start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i + 1
        i += 1
    raise TemplateError(f"unterminated {quote} in template", expression=text)


def _expr_end(text: str, start: int) -> int:
    depth, i = 0, start
    while i < len(text):
        char = text[i]
        if char in _QUOTES:
            i = _skip_quoted(text, i)
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    raise TemplateError("template '${' has no closing '}'", expression=text[start:])


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> tuple[Segment, ...]:
    """Split ``text`` into literal strings and :class:`Expr` (escapes already resolved)."""
    segments: list[Segment] = []
    literal: list[str] = []
    i = 0
    while (dollar := text.find("$", i)) != -1:
        literal.append(text[i:dollar])
        if text.startswith("$${", dollar):
            literal.append("${")
            i = dollar + 3
        elif text.startswith("${", dollar):
            end = _expr_end(text, dollar + 2)
            expression = text[dollar + 2 : end].strip()
            if not expression:
                raise TemplateError("empty template '${}'", expression="")
            if text_so_far := "".join(literal):
                segments.append(text_so_far)
            literal = []
            segments.append(Expr(expression))
            i = end + 1
        else:
            literal.append("$")
            i = dollar + 1
    literal.append(text[i:])
    if (rest := "".join(literal)) or not segments:
        segments.append(rest)
    return tuple(segments)


def _pitfalls(node: Mapping[str, Any]) -> Iterator[str]:
    """Valid JMESPath that cannot be what the author meant."""
    kind = node.get("type")
    if kind == "function_expression" and node["value"] not in _FUNCTIONS:
        yield f"unknown function {node['value']}()"
    if kind == "subexpression" and node["children"][0]["type"] == "not_expression":
        yield (
            "'!' binds tighter than '.', so '!a.b' reads '(!a).b', which is always null; "
            "wrap the path in parentheses: '!(a.b)'"
        )
    for child in node.get("children", ()):
        yield from _pitfalls(child)


@functools.lru_cache(maxsize=4096)
def compile_expr(expr: str) -> Any:
    """Compile a JMESPath expression; TemplateError (with the reason) if it is invalid."""
    try:
        compiled = jmespath.compile(expr)
    except jp_exceptions.JMESPathError as exc:
        reason = " ".join(str(exc).split())
        raise TemplateError(f"invalid JMESPath {expr!r}: {reason}", expression=expr) from None
    for problem in _pitfalls(compiled.parsed):
        raise TemplateError(f"invalid JMESPath {expr!r}: {problem}", expression=expr)
    return compiled


def search(expr: str, context: Mapping[str, Any], budget: Budget | None = None) -> Any:
    """Evaluate ``expr`` on ``context``; None when it yields nothing; TemplateError if it fails.

    With a ``budget``, what the evaluation builds is charged to it (TooLarge past its limit).
    """
    compiled = compile_expr(expr)
    try:
        if budget is None:
            return compiled.search(context)
        return _Interpreter(budget, expr).visit(compiled.parsed, context)
    except (jp_exceptions.JMESPathError, TypeError) as exc:
        # TypeError: jmespath compares with Python's operators, so "two" > `1` raises it
        reason = " ".join(str(exc).split())
        raise TemplateError(f"${{{expr}}} failed: {reason}", expression=expr) from None


def evaluate(expr: str, context: Mapping[str, Any], budget: Budget | None = None) -> Any:
    """Evaluate one template expression; nothing (missing or null) is a TemplateError."""
    value = search(expr, context, budget)
    if value is None:
        raise TemplateError(
            f"${{{expr}}} resolved to nothing (missing or null); "
            f"give a default with ${{{expr} || 'default'}} if that is expected",
            expression=expr,
        )
    return value


def truthy(value: Any) -> bool:
    """JMESPath truthiness: false, null, ``""``, ``[]`` and ``{}`` are false; ``0`` is true."""
    if value is None or value is False:
        return False
    return not (isinstance(value, (str, list, dict)) and not value)


def as_text(value: Any) -> str:
    """A value as it appears inside text: strings as is, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def render(value: Any, context: Mapping[str, Any], budget: Budget | None = None) -> Any:
    """Render every template in ``value`` (see the module docstring for the rules)."""
    if isinstance(value, str):
        segments = parse(value)
        if len(segments) == 1 and isinstance(segments[0], Expr):
            return evaluate(segments[0].text, context, budget)
        return "".join(
            _interpolate(seg.text, context, budget) if isinstance(seg, Expr) else seg
            for seg in segments
        )
    if isinstance(value, Mapping):
        return {key: render(item, context, budget) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [render(item, context, budget) for item in value]
    return value


def _interpolate(expr: str, context: Mapping[str, Any], budget: Budget | None) -> str:
    """One template inside longer text, as text; its size is charged before it is written."""
    value = evaluate(expr, context, budget)
    if budget is not None:
        size = len(value) if isinstance(value, str) else json_size(value, budget.left)
        budget.charge(size, expr)
    return as_text(value)


def find_templates(value: Any, suffix: str = "") -> list[tuple[str, str]]:
    """Every ``(field suffix, expression)`` in ``value``, e.g. ``(".to[0]", "params.to")``.

    A malformed template raises TemplateError whose ``field`` is the suffix where it is.
    """
    found: list[tuple[str, str]] = []
    if isinstance(value, str):
        try:
            segments = parse(value)
        except TemplateError as exc:
            raise TemplateError(exc.message, expression=exc.expression, field=suffix) from None
        found.extend((suffix, seg.text) for seg in segments if isinstance(seg, Expr))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            found.extend(find_templates(item, f"{suffix}.{key}"))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found.extend(find_templates(item, f"{suffix}[{index}]"))
    return found


def has_templates(value: Any) -> bool:
    """True if any string in ``value`` contains a ``${...}`` template."""
    return bool(find_templates(value))


def _head(node: Mapping[str, Any]) -> tuple[str, ...]:
    kind = node["type"]
    if kind == "field":
        return (node["value"],)
    if kind == "subexpression":
        head: tuple[str, ...] = ()
        for child in node["children"]:
            head += _head(child)
            if child["type"] != "field":
                break
        return head
    if kind in ("index_expression", "projection", "value_projection", "filter_projection"):
        return _head(node["children"][0])
    return ()


_SAME_SCOPE_FIRST_CHILD = frozenset(
    {"index_expression", "projection", "value_projection", "filter_projection", "pipe"}
)
_SAME_SCOPE_ALL_CHILDREN = frozenset(
    {
        "flatten",
        "not_expression",
        "or_expression",
        "and_expression",
        "comparator",
        "multi_select_list",
        "multi_select_dict",
        "key_val_pair",
        "function_expression",
    }
)


def _root_paths(node: Mapping[str, Any]) -> Iterator[tuple[str, ...]]:
    kind = node["type"]
    if kind == "field":
        yield (node["value"],)
    elif kind == "subexpression":
        first = node["children"][0]
        if first["type"] == "field":
            yield _head(node)
        else:
            yield from _root_paths(first)
    elif kind in _SAME_SCOPE_FIRST_CHILD:
        yield from _root_paths(node["children"][0])
    elif kind in _SAME_SCOPE_ALL_CHILDREN:
        for child in node["children"]:
            yield from _root_paths(child)


def root_paths(expr: str) -> list[tuple[str, ...]]:
    """The leading field paths ``expr`` reads from the context, e.g. ``[("steps", "cal")]``.

    Only names looked up on the context itself count: in ``a[?b > `1`].c`` that is ``a``;
    ``b`` and ``c`` are read from the elements of ``a``.
    """
    return list(_root_paths(compile_expr(expr).parsed))
