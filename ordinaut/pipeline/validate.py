"""Creation-time validation: a bad pipeline is refused before it is stored.

:func:`validate_payload` = :func:`ordinaut.pipeline.parse.parse_payload` (shape, limits) plus
these checks of meaning, each failing with a ``ValidationError`` that names the step in its
message and the exact field (``payload.pipeline[2].with.text``):

* ``uses`` names a tool in ``tools`` (``pipeline.foreach`` is always known);
* ``if``, ``items_path`` and every template compile as JMESPath, calling known functions only;
* every expression reads only ``params``, ``steps``, ``item``, ``event``, ``run`` or ``now``;
* ``${steps.X…}`` needs a step that runs earlier with ``save_as: X`` (inside a foreach body:
  earlier body steps, or steps before the foreach; body results are not visible after it);
* ``${item}`` appears only inside a foreach body;
* arguments that are already literal match the tool's input schema. Values holding a template
  are unknown until run time, so errors about them (or about containers holding them, except
  for shape keywords such as ``required`` and ``additionalProperties``) wait for the executor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from ordinaut.errors import ValidationError
from ordinaut.pipeline import template
from ordinaut.pipeline.model import DEFAULT_LIMITS, ForeachStep, Limits, Pipeline, Step
from ordinaut.pipeline.parse import parse_payload
from ordinaut.tools import spec as tool_spec
from ordinaut.tools.spec import ToolSpec

__all__ = ["ROOTS", "Limits", "validate_payload"]

_Fail = Callable[[str, str], NoReturn]

ROOTS = ("params", "steps", "item", "event", "run", "now")

# Keywords whose verdict on a container does not depend on the values inside it.
_SHAPE_KEYWORDS = frozenset(
    {
        "type",
        "required",
        "dependentRequired",
        "additionalProperties",
        "propertyNames",
        "minProperties",
        "maxProperties",
        "minItems",
        "maxItems",
    }
)


@dataclass(frozen=True)
class _Scope:
    saved: frozenset[str]  # save_as names readable here
    later: Mapping[str, str]  # save_as name -> id of a step at this level that runs later
    per_item: Mapping[str, str]  # save_as name inside some foreach body -> that foreach's id
    in_foreach: bool


def validate_payload(
    payload: Any,
    tools: Mapping[str, ToolSpec],
    *,
    field: str = "payload",
    limits: Limits = DEFAULT_LIMITS,
) -> Pipeline:
    """Parse and check a task payload; every problem is a ValidationError naming its field."""
    pipeline = parse_payload(payload, field=field, limits=limits)
    per_item = {
        body_step.save_as: step.id
        for step in pipeline.walk()
        if step.foreach is not None
        for body_step in step.foreach.body
        if body_step.save_as
    }
    _Checker(tools, per_item).steps(pipeline.steps, f"{field}.pipeline", frozenset(), False)
    return pipeline


class _Checker:
    def __init__(self, tools: Mapping[str, ToolSpec], per_item: Mapping[str, str]) -> None:
        self.tools = tools
        self.per_item = per_item

    def steps(
        self, steps: tuple[Step, ...], where: str, saved: frozenset[str], in_foreach: bool
    ) -> None:
        for index, step in enumerate(steps):
            later = {s.save_as: s.id for s in reversed(steps[index:]) if s.save_as}
            scope = _Scope(saved, later, self.per_item, in_foreach)
            self.step(step, f"{where}[{index}]", scope)
            if step.save_as:
                saved = saved | {step.save_as}

    def step(self, step: Step, where: str, scope: _Scope) -> None:
        def fail(message: str, suffix: str) -> NoReturn:
            raise ValidationError(f"step {step.id!r}: {message}", field=f"{where}{suffix}")

        if step.if_ is not None and (problem := _expr_problem(step.if_, "condition", scope)):
            fail(problem, ".if")
        if isinstance(step, ForeachStep):
            loop = step.foreach
            if loop.items_path is None:
                _check_templates(loop.items, ".with.items", scope, fail)
            elif problem := _expr_problem(loop.items_path, "items_path", scope):
                fail(problem, ".with.items_path")
            self.steps(loop.body, f"{where}.with.body", scope.saved, True)
            return
        if step.idempotency_key is not None:
            _check_templates(step.idempotency_key, ".idempotency_key", scope, fail)
        tool = self.tools.get(step.uses)
        if tool is None:
            fail(f"unknown tool {step.uses!r}", ".uses")
        _check_templates(step.with_, ".with", scope, fail)
        _check_literal_args(step.with_, tool, fail)


def _check_templates(value: Any, suffix: str, scope: _Scope, fail: _Fail) -> None:
    try:
        found = template.find_templates(value, suffix)
    except template.TemplateError as exc:
        fail(exc.message, exc.field or suffix)
    for where, expr in found:
        if problem := _expr_problem(expr, "template", scope):
            fail(problem, where)


def _expr_problem(expr: str, kind: str, scope: _Scope) -> str | None:
    """What is wrong with one expression (``kind``: template, condition, items_path), if any."""
    what = f"template ${{{expr}}}" if kind == "template" else f"{kind} {expr!r}"
    try:
        paths = template.root_paths(expr)
    except template.TemplateError as exc:
        return f"{what}: {exc.message}"
    for path in paths:
        root = path[0]
        if root not in ROOTS:
            return f"{what} reads {root!r}; expressions may read only {', '.join(ROOTS)}"
        if root == "item" and not scope.in_foreach:
            return f"{what} uses 'item' outside a pipeline.foreach body"
        if root == "steps" and len(path) > 1 and path[1] not in scope.saved:
            return f"{what} {_unsaved(path[1], scope)}"
    return None


def _unsaved(name: str, scope: _Scope) -> str:
    message = f"refers to {name!r}, which no earlier step saves (save_as)"
    if name in scope.later:
        return f"{message}; step {scope.later[name]!r} saves it but runs later"
    if name in scope.per_item:
        foreach = scope.per_item[name]
        return f"{message}; it is saved per item inside foreach {foreach!r} (read its save_as)"
    return message


def _literal_view(value: Any) -> Any:
    """``value`` with escapes resolved in template-free strings (templates left as written)."""
    if isinstance(value, str):
        return value if template.has_templates(value) else template.render(value, {})
    if isinstance(value, Mapping):
        return {key: _literal_view(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_literal_view(item) for item in value]
    return value


def _known(error: Any, args: Mapping[str, Any]) -> bool:
    """Whether a schema error is about values already known (no template involved)."""
    node: Any = args
    for part in error.absolute_path:
        node = node[part]
    if not template.has_templates(node):
        return True
    return not isinstance(node, str) and error.validator in _SHAPE_KEYWORDS


def _check_literal_args(args: Mapping[str, Any], tool: ToolSpec, fail: _Fail) -> None:
    view = _literal_view(args)
    errors = [e for e in tool_spec.iter_violations(view, tool.input_schema) if _known(e, args)]
    violation = tool_spec.best_violation(errors)
    if violation is not None:
        where = tool_spec.join_field("with", violation.path)
        fail(
            f"{where} violates the input schema of {tool.address}: {violation.reason}", f".{where}"
        )
