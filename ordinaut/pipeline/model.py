"""The pipeline as frozen values, and the shape check that builds them from a task payload.

A payload is ``{"params": {...}, "pipeline": [step, ...]}``. A step is::

    {"id": "ping", "uses": "telegram-mcp.send_message", "with": {...}, "if": "<JMESPath>",
     "save_as": "sent", "timeout_seconds": 15, "idempotency_key": "<template>",
     "on_error": "fail" | "continue", "retry": {"max_retries": 2, "backoff": "fixed"}}

A ``pipeline.foreach`` step keeps its loop in ``with``: ``items_path`` (JMESPath; a leading
``$.`` is dropped) or ``items`` (a list or a template), ``body`` (steps) and ``max_parallel``.

:func:`parse_payload` checks shape only (types, keys, ranges, ids, nesting, counts) and raises
``ValidationError`` naming the exact field; meaning (tools, references, schemas, JMESPath) is
checked by :mod:`ordinaut.pipeline.validate`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

from ordinaut.errors import ValidationError
from ordinaut.tools.builtin import FOREACH

OnError = Literal["fail", "continue"]
ON_ERROR: tuple[OnError, ...] = ("fail", "continue")
BACKOFFS = ("exponential_jitter", "exponential", "fixed", "none")
STEP_KEYS = frozenset(
    (
        "id",
        "uses",
        "with",
        "if",
        "save_as",
        "timeout_seconds",
        "idempotency_key",
        "on_error",
        "retry",
    )
)
FOREACH_KEYS = frozenset({"items_path", "items", "body", "max_parallel"})
RETRY_KEYS = frozenset({"max_retries", "backoff"})
MAX_TIMEOUT_SECONDS = 3600.0
MAX_RETRIES = 100
MAX_KEY_TEMPLATE = 256
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Limits:
    """Size limits; ``max_depth`` is how deeply foreach bodies may nest (top level = 0)."""

    max_steps: int = 50
    max_foreach_items: int = 1000
    max_depth: int = 3
    max_parallel: int = 16


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class StepRetry:
    """A per-step retry override; ``backoff`` None means the task's strategy."""

    max_retries: int
    backoff: str | None = None


@dataclass(frozen=True)
class Foreach:
    """The loop of a ``pipeline.foreach`` step: exactly one of ``items_path`` / ``items``."""

    items_path: str | None
    items: Any
    body: tuple[Step, ...]
    max_parallel: int = 1


@dataclass(frozen=True)
class Step:
    """One step; ``foreach`` is set exactly when ``uses`` is ``pipeline.foreach``."""

    id: str
    uses: str
    with_: Mapping[str, Any] = field(default_factory=dict)
    if_: str | None = None
    save_as: str | None = None
    timeout_seconds: float | None = None
    idempotency_key: str | None = None
    on_error: OnError = "fail"
    retry: StepRetry | None = None
    foreach: Foreach | None = None


@dataclass(frozen=True)
class Pipeline:
    """A parsed payload. Step ids are unique across the whole pipeline, bodies included."""

    params: Mapping[str, Any]
    steps: tuple[Step, ...]

    def walk(self) -> Iterator[Step]:
        """Every step, depth first, foreach bodies right after their foreach step."""
        yield from _walk(self.steps)

    def find_step(self, step_path: str) -> Step | None:
        """The step named by an id or a step path such as ``loop[2].send``."""
        step_id = step_path.rsplit(".", 1)[-1]
        return next((step for step in self.walk() if step.id == step_id), None)


def _walk(steps: tuple[Step, ...]) -> Iterator[Step]:
    for step in steps:
        yield step
        if step.foreach is not None:
            yield from _walk(step.foreach.body)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Parser:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.count = 0
        self.seen: dict[str, str] = {}

    def steps(self, raw: Any, where: str, depth: int) -> tuple[Step, ...]:
        if not isinstance(raw, list) or not raw:
            raise ValidationError("must be a non-empty list of steps", field=where)
        return tuple(self.step(item, f"{where}[{i}]", i, depth) for i, item in enumerate(raw))

    def step(self, raw: Any, where: str, index: int, depth: int) -> Step:
        if not isinstance(raw, Mapping):
            raise ValidationError(f"step #{index} must be an object", field=where)
        self.count += 1
        if self.count > self.limits.max_steps:
            raise ValidationError(
                f"a pipeline may have at most {self.limits.max_steps} steps", field=where
            )
        step_id = raw.get("id")
        if not isinstance(step_id, str) or not _NAME.fullmatch(step_id):
            raise ValidationError(
                f"step #{index}: 'id' must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'",
                field=f"{where}.id",
            )
        fail = _Failer(step_id, where)
        if unknown := sorted(set(raw) - STEP_KEYS, key=str):
            fail(
                f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(STEP_KEYS))})",
                f".{unknown[0]}",
            )
        if step_id in self.seen:
            fail(f"duplicate step id (first used at {self.seen[step_id]})", ".id")
        self.seen[step_id] = where
        uses = raw.get("uses")
        if not isinstance(uses, str) or not uses:
            fail("'uses' must be a tool address such as 'server.tool'", ".uses")
        with_ = raw.get("with", {})
        if not isinstance(with_, Mapping):
            fail("'with' must be an object of arguments", ".with")
        if_ = raw.get("if")
        if if_ is not None and (not isinstance(if_, str) or not if_.strip()):
            fail("'if' must be a non-empty JMESPath expression", ".if")
        save_as = raw.get("save_as")
        if save_as is not None and (not isinstance(save_as, str) or not _NAME.fullmatch(save_as)):
            fail("'save_as' must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'", ".save_as")
        timeout = raw.get("timeout_seconds")
        if timeout is not None and (
            not _is_number(timeout) or not 0 < timeout <= MAX_TIMEOUT_SECONDS
        ):
            fail(
                f"'timeout_seconds' must be a number in (0, {MAX_TIMEOUT_SECONDS:g}]",
                ".timeout_seconds",
            )
        key = raw.get("idempotency_key")
        if key is not None and (not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_TEMPLATE):
            fail(
                f"'idempotency_key' must be a string of 1-{MAX_KEY_TEMPLATE} characters",
                ".idempotency_key",
            )
        on_error = raw.get("on_error", "fail")
        if on_error not in ON_ERROR:
            fail("'on_error' must be 'fail' or 'continue'", ".on_error")
        foreach = None
        if uses == FOREACH:
            for name in ("timeout_seconds", "idempotency_key"):
                if name in raw:
                    fail(
                        f"{name!r} is not allowed on pipeline.foreach (set it on body steps)",
                        f".{name}",
                    )
            foreach = self.foreach(with_, fail, f"{where}.with", depth)
        return Step(
            id=step_id,
            uses=uses,
            with_=dict(with_),
            if_=if_,
            save_as=save_as,
            timeout_seconds=None if timeout is None else float(timeout),
            idempotency_key=key,
            on_error=on_error,
            retry=self.retry(raw.get("retry"), fail),
            foreach=foreach,
        )

    def retry(self, raw: Any, fail: _Failer) -> StepRetry | None:
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            fail("'retry' must be an object {max_retries, backoff}", ".retry")
        if unknown := sorted(set(raw) - RETRY_KEYS, key=str):
            fail(
                f"unknown key {unknown[0]!r} in 'retry' (allowed: backoff, max_retries)",
                f".retry.{unknown[0]}",
            )
        count: Any = raw.get("max_retries")
        if not _is_int(count) or not 0 <= count <= MAX_RETRIES:
            fail(f"'max_retries' must be an integer in 0..{MAX_RETRIES}", ".retry.max_retries")
        backoff = raw.get("backoff")
        if backoff is not None and backoff not in BACKOFFS:
            fail(f"'backoff' must be one of {', '.join(BACKOFFS)}", ".retry.backoff")
        return StepRetry(max_retries=count, backoff=backoff)

    def foreach(self, raw: Mapping[str, Any], fail: _Failer, where: str, depth: int) -> Foreach:
        if unknown := sorted(set(raw) - FOREACH_KEYS, key=str):
            allowed = ", ".join(sorted(FOREACH_KEYS))
            fail(
                f"unknown key {unknown[0]!r} for pipeline.foreach (allowed: {allowed})",
                f".with.{unknown[0]}",
            )
        if ("items_path" in raw) == ("items" in raw):
            fail("pipeline.foreach needs exactly one of 'items_path' and 'items'", ".with")
        items_path = raw.get("items_path")
        if "items_path" in raw:
            if not isinstance(items_path, str) or not items_path.strip():
                fail("'items_path' must be a JMESPath expression", ".with.items_path")
            items_path = items_path.strip().removeprefix("$.")
        items = raw.get("items")
        if "items" in raw:
            if not isinstance(items, (list, str)):
                fail("'items' must be a list or a template string", ".with.items")
            if isinstance(items, list) and len(items) > self.limits.max_foreach_items:
                fail(
                    f"'items' may hold at most {self.limits.max_foreach_items} items", ".with.items"
                )
        parallel = raw.get("max_parallel", 1)
        if not _is_int(parallel) or not 1 <= parallel <= self.limits.max_parallel:
            fail(
                f"'max_parallel' must be an integer in 1..{self.limits.max_parallel}",
                ".with.max_parallel",
            )
        if depth + 1 > self.limits.max_depth:
            fail(
                f"pipeline.foreach may nest at most {self.limits.max_depth} levels deep",
                ".with.body",
            )
        body = self.steps(raw.get("body"), f"{where}.body", depth + 1)
        return Foreach(items_path=items_path, items=items, body=body, max_parallel=parallel)


class _Failer:
    """Raises ValidationError for one step: the message names the step, the field is exact."""

    def __init__(self, step_id: str, where: str) -> None:
        self.step_id = step_id
        self.where = where

    def __call__(self, message: str, suffix: str) -> NoReturn:
        raise ValidationError(f"step {self.step_id!r}: {message}", field=f"{self.where}{suffix}")


def parse_payload(
    payload: Any, *, field: str = "payload", limits: Limits = DEFAULT_LIMITS
) -> Pipeline:
    """Build a :class:`Pipeline` from a payload, checking shape only (see module docstring)."""
    if not isinstance(payload, Mapping):
        raise ValidationError(
            "must be an object with 'pipeline' and optional 'params'", field=field
        )
    unknown = sorted(set(payload) - {"params", "pipeline"}, key=str)
    if unknown:
        raise ValidationError(
            f"unknown key {unknown[0]!r} (allowed: params, pipeline)", field=f"{field}.{unknown[0]}"
        )
    params = payload.get("params", {})
    if not isinstance(params, Mapping):
        raise ValidationError("'params' must be an object", field=f"{field}.params")
    steps = _Parser(limits).steps(payload.get("pipeline"), f"{field}.pipeline", 0)
    return Pipeline(params=dict(params), steps=steps)
