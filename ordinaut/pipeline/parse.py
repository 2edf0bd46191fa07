"""From a task payload to a :class:`~ordinaut.pipeline.model.Pipeline`, or one clear error.

:func:`parse_payload` validates the payload with the models, then applies the rules that
span steps and depend on :class:`~ordinaut.pipeline.model.Limits`, in document order:
at most ``max_steps`` steps in all, ids unique across the pipeline (bodies included), a
list ``items`` of at most ``max_foreach_items``, ``max_parallel`` up to the limit, foreach
bodies nested at most ``max_depth`` deep. The JSON Schema states the default limits.

Every failure is a ``ValidationError`` whose field is exact (``payload.pipeline[1].with.
body[0].timeout_seconds``) and whose message names the step (``step 'send': …``, or
``step #2: …`` when its id is the problem) and says what the field must be. Pydantic's own
wording is replaced by ours (:data:`_MUST`), so the error reads the same whatever pydantic
rule caught it (a wrong type, a range, a missing key).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic_core import ErrorDetails

from ordinaut.errors import ValidationError
from ordinaut.pipeline.model import (
    DEFAULT_LIMITS,
    MAX_KEY_TEMPLATE,
    MAX_RETRIES,
    MAX_TIMEOUT_SECONDS,
    NAME_PATTERN,
    NAME_RULE,
    STEP_TAGS,
    Foreach,
    ForeachStep,
    Limits,
    Pipeline,
    Step,
    StepRetry,
    ToolStep,
)
from ordinaut.tools.builtin import FOREACH
from ordinaut.vocabulary import BackoffStrategy, OnError

_NAME = re.compile(NAME_PATTERN)
_FOREACH_ONLY_ON_TOOLS = ("timeout_seconds", "idempotency_key")

# (what the error is in, the key) -> what the key must be; None: the object itself
_MUST: dict[tuple[str, str | None], str] = {
    ("payload", None): "must be an object with 'pipeline' and optional 'params'",
    ("payload", "params"): "'params' must be an object",
    ("payload", "pipeline"): "'pipeline' must be a non-empty list of steps",
    ("step", "id"): f"'id' must be {NAME_RULE}",
    ("step", "uses"): "'uses' must be a tool address such as 'server.tool'",
    ("step", "with"): "'with' must be an object of arguments",
    ("step", "if"): "'if' must be a non-empty JMESPath expression",
    ("step", "save_as"): f"'save_as' must be {NAME_RULE}",
    ("step", "timeout_seconds"): (
        f"'timeout_seconds' must be a number in (0, {MAX_TIMEOUT_SECONDS:g}]"
    ),
    ("step", "idempotency_key"): (
        f"'idempotency_key' must be a string of 1-{MAX_KEY_TEMPLATE} characters"
    ),
    ("step", "on_error"): f"'on_error' must be {' or '.join(repr(str(e)) for e in OnError)}",
    ("retry", None): "'retry' must be an object {max_retries, backoff}",
    ("retry", "max_retries"): f"'max_retries' must be an integer in 0..{MAX_RETRIES}",
    ("retry", "backoff"): f"'backoff' must be one of {', '.join(BackoffStrategy)}",
    ("foreach", None): "'with' must be an object {items_path or items, body, max_parallel}",
    ("foreach", "items_path"): "'items_path' must be a JMESPath expression",
    ("foreach", "items"): "'items' must be a list or a template string",
    ("foreach", "body"): "'body' must be a non-empty list of steps",
    ("foreach", "max_parallel"): "'max_parallel' must be an integer in 1..{max_parallel}",
}


def _keys(model: type[pydantic.BaseModel]) -> str:
    return ", ".join(sorted(f.alias or name for name, f in model.model_fields.items()))


_ALLOWED = {
    "payload": _keys(Pipeline),
    "tool": _keys(ToolStep),
    "foreach_step": _keys(ForeachStep),
    "retry": _keys(StepRetry),
    "foreach": _keys(Foreach),
}


def parse_payload(
    payload: Any, *, field: str = "payload", limits: Limits = DEFAULT_LIMITS
) -> Pipeline:
    """Build a :class:`Pipeline` from a payload, checking shape and limits (see module doc)."""
    try:
        pipeline = Pipeline.model_validate(payload)
    except pydantic.ValidationError as exc:
        raise _translate(exc.errors(include_url=False)[0], payload, field, limits) from None
    for where, message in _over_limits(pipeline, limits, field):
        raise ValidationError(message, field=where)
    return pipeline


def _over_limits(pipeline: Pipeline, limits: Limits, field: str) -> Iterator[tuple[str, str]]:
    """(field, message) for each broken rule that spans steps, in document order."""
    seen: dict[str, str] = {}
    count = 0

    def visit(steps: tuple[Step, ...], where: str, depth: int) -> Iterator[tuple[str, str]]:
        nonlocal count
        for index, step in enumerate(steps):
            here = f"{where}[{index}]"
            named = f"step {step.id!r}: "
            count += 1
            if count > limits.max_steps:
                yield here, f"a pipeline may have at most {limits.max_steps} steps"
            if step.id in seen:
                yield f"{here}.id", f"{named}duplicate step id (first used at {seen[step.id]})"
            seen[step.id] = here
            loop = step.foreach
            if loop is None:
                continue
            if isinstance(loop.items, list) and len(loop.items) > limits.max_foreach_items:
                yield (
                    f"{here}.with.items",
                    f"{named}'items' may hold at most {limits.max_foreach_items} items",
                )
            if loop.max_parallel > limits.max_parallel:
                yield f"{here}.with.max_parallel", named + _must("foreach", "max_parallel", limits)
            if depth + 1 > limits.max_depth:
                yield (
                    f"{here}.with.body",
                    f"{named}{FOREACH} may nest at most {limits.max_depth} levels deep",
                )
            yield from visit(loop.body, f"{here}.with.body", depth + 1)

    yield from visit(pipeline.steps, f"{field}.pipeline", 0)


def _must(kind: str, key: str | None, limits: Limits) -> str:
    return _MUST[kind, key].replace("{max_parallel}", str(limits.max_parallel))


@dataclass(frozen=True)
class _Place:
    """Where a pydantic error is: the field path, the object it is in, the key in it."""

    field: str
    kind: str  # payload | step | foreach | retry
    key: str | None
    step: Any = None  # the raw step it is in, if any
    index: int = 0  # that step's index in its list


def _place(loc: tuple[int | str, ...], payload: Any, field: str) -> _Place:
    """Follow pydantic's ``loc`` through the raw payload (skipping union tags)."""
    parts = iter(loc)
    node, kind, step, index = payload, "payload", None, 0
    for part in parts:
        if kind in ("payload", "foreach") and part in ("pipeline", "body"):
            field, node = f"{field}.{part}", _get(node, part)
            position = next(parts, None)
            if not isinstance(position, int):
                return _Place(field, kind, str(part), step, index)
            field, index = f"{field}[{position}]", position
            node = step = _get(node, position)
            kind = "step"
            if next(parts, None) not in STEP_TAGS:
                return _Place(field, kind, None, step, index)
        elif kind == "step" and part == "with" and _get(step, "uses") == FOREACH:
            field, node, kind = f"{field}.with", _get(node, "with"), "foreach"
        elif kind == "step" and part == "retry":
            field, node, kind = f"{field}.retry", _get(node, "retry"), "retry"
        else:
            return _Place(f"{field}.{part}", kind, str(part), step, index)
    return _Place(field, kind, None, step, index)


def _get(node: Any, key: str | int) -> Any:
    if isinstance(key, int):
        return node[key] if isinstance(node, list) and 0 <= key < len(node) else None
    return node.get(key) if isinstance(node, Mapping) else None


def _translate(error: ErrorDetails, payload: Any, field: str, limits: Limits) -> ValidationError:
    """Our ValidationError for pydantic's first error: exact field, the step, our words."""
    place = _place(tuple(error["loc"]), payload, field)
    kind, key = place.kind, place.key
    if error["type"].startswith("pipeline_"):
        message = error["msg"]
    elif error["type"] == "extra_forbidden":
        message = _unknown(place)
    elif kind == "step" and key is None:
        return ValidationError(f"step #{place.index} must be an object", field=place.field)
    elif (kind, key) in _MUST:
        message = _must(kind, key, limits)
    else:  # not reached by any payload we know of; still a 422, never a 500
        message = f"{key or kind}: {error['msg']}"
    if kind == "payload":
        return ValidationError(message, field=place.field)
    return ValidationError(f"{_label(place)}: {message}", field=place.field)


def _unknown(place: _Place) -> str:
    key = place.key
    if place.kind == "step" and key in _FOREACH_ONLY_ON_TOOLS:
        return f"{key!r} is not allowed on {FOREACH} (set it on body steps)"
    if place.kind == "step":
        allowed = _ALLOWED["foreach_step" if _get(place.step, "uses") == FOREACH else "tool"]
        return f"unknown key {key!r} (allowed: {allowed})"
    where = {"retry": " in 'retry'", "foreach": f" for {FOREACH}"}.get(place.kind, "")
    return f"unknown key {key!r}{where} (allowed: {_ALLOWED[place.kind]})"


def _label(place: _Place) -> str:
    step_id = _get(place.step, "id")
    if isinstance(step_id, str) and _NAME.match(step_id):
        return f"step {step_id!r}"
    return f"step #{place.index}"
