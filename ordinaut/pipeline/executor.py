"""Run a validated pipeline step by step: deterministic, and no I/O of its own.

The caller hands in ``call_tool(ToolCall) -> output`` (the only way out), a ``clock`` and
callbacks; the same inputs give the same calls in the same order. For each step:

1. ``should_cancel()`` true → :class:`Canceled` (checked before every step, bodies included).
2. ``if`` (JMESPath; false, null, ``""``, ``[]``, ``{}`` are falsy, ``0`` is not) → "skipped".
3. ``with`` is rendered (:mod:`ordinaut.pipeline.template`) and checked against the tool's
   input schema; then ``call_tool`` runs with the idempotency key: the rendered
   ``idempotency_key`` template, else ``f"{idempotency_prefix}:{step_path}"`` (just the step
   path when the prefix is empty), so a retried run with the same prefix reuses its keys.
4. The output is checked against the output schema and saved under ``save_as``.
5. ``on_step`` receives a :class:`StepRecord` for every step, failed and skipped ones too.

Failures are :class:`~ordinaut.errors.StepError` whose ``step_id`` is the step path
(``loop[2].send``): template, condition and schema problems are non-retryable and name the
field (``with.text``, ``output.ts``); a ``ToolError`` from ``call_tool`` keeps its
``retryable``/``retry_after``. With ``on_error: continue`` a failed step is recorded and the
run goes on with nothing saved under its ``save_as`` (later ``${steps.x.y || 'n/a'}`` works).
Exceptions that are not ``ToolError`` are recorded as a failed step, then propagate unchanged.

**Suspension.** Just before ``call_tool``, with the rendered and checked arguments and the
idempotency key, the step is shown to ``gate`` (:class:`GateCheck`); a :class:`Suspension`
back stops the pipeline with :class:`Suspended` (no receipt for that step: it did not run).
Its caller records the suspension; when the run is resumed, it runs the pipeline again
with ``done``: the steps that already have a receipt in this attempt (by step path) are not
run again — their recorded status and output stand in (``save_as`` included) — so the run
continues from the step it stopped before. Everything before that step is deterministic
given the same inputs, ``now`` included (the caller passes the first start's ``now``).

``pipeline.foreach`` runs here: items come from ``items_path`` or ``items`` (a list, at most
``limits.max_foreach_items``); each item runs the body with ``item`` bound and its own copy of
``steps``, so body ``save_as`` values are per item; the foreach's ``save_as`` gets one dict of
saved values per item, in item order. With ``max_parallel > 1`` items run in threads (so
``call_tool`` must be thread-safe); every item runs, records reach ``on_step`` from the
calling thread in item order, and the first failing item (by index) decides the error.

:class:`PipelineResult` ``output`` is the output of the last top-level step that succeeded.

**Caps** (:class:`Caps`, filled by the worker from the ``ORDINAUT_MAX_*`` settings) bound what
a run can hold, measured as compact UTF-8 JSON (:mod:`ordinaut.jsonsize`) and checked before
the data goes anywhere: a step's templates build at most ``step_input`` bytes while they are
rendered (:class:`~ordinaut.pipeline.template.Budget`, so ``${steps.x}`` twice in one ``with``
counts twice), the rendered input is at most ``step_input`` before the tool is called, its
output at most ``step_output`` before it is checked or saved, and all inputs and outputs of
the run together (errors included) at most ``run_receipts``. Crossing one fails the step with
:class:`~ordinaut.errors.LimitExceeded` (``limit_exceeded``, never retryable); the data over
the cap is not kept (the step's receipt has no input, or no output).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ordinaut import limits as fixed_limits
from ordinaut.errors import LimitExceeded, OrdinautError, StepError, ToolError
from ordinaut.jsonsize import json_size
from ordinaut.pipeline import template
from ordinaut.pipeline.model import DEFAULT_LIMITS, ForeachStep, Limits, Pipeline, Step, ToolStep
from ordinaut.tools import spec as tool_spec
from ordinaut.tools.spec import ToolCall, ToolSpec
from ordinaut.vocabulary import OnError, ResumeAction, RunStatus

StepStatus = Literal["succeeded", "failed", "skipped"]


@dataclass(frozen=True)
class StepRecord:
    """What one step did; ``input`` is the rendered arguments (``{"items": …}`` for foreach)."""

    step_path: str
    step_id: str
    address: str
    status: StepStatus
    input: Any
    output: Any
    error: str | None
    started_at: datetime
    finished_at: datetime
    idempotency_key: str | None = None  # set once the step got as far as computing it


@dataclass(frozen=True)
class PipelineResult:
    """``output``: the last succeeded top-level step's output; ``saved``: top-level save_as."""

    output: Any
    steps: tuple[StepRecord, ...]
    saved: Mapping[str, Any]


@dataclass(frozen=True)
class Caps:
    """Byte caps on a run's data (see the module docstring), each with the setting it comes from."""

    step_input: int = fixed_limits.DEFAULT_MAX_STEP_INPUT_BYTES
    step_output: int = fixed_limits.DEFAULT_MAX_STEP_OUTPUT_BYTES
    run_receipts: int = fixed_limits.DEFAULT_MAX_RUN_RECEIPT_BYTES


INPUT_SETTING = "ORDINAUT_MAX_STEP_INPUT_BYTES"
OUTPUT_SETTING = "ORDINAUT_MAX_STEP_OUTPUT_BYTES"
RECEIPTS_SETTING = "ORDINAUT_MAX_RUN_RECEIPT_BYTES"


class Canceled(OrdinautError):
    """The run was canceled between steps."""

    code = "canceled"
    status = 409


class StepDropped(OrdinautError):
    """Raised by ``call_tool`` to skip a step without calling it (quiet hours ``drop``): the
    step is recorded ``skipped`` with the message as its reason, and the run goes on."""

    code = "dropped"


@dataclass(frozen=True)
class GateCheck:
    """A tool step about to be called, shown to the ``gate``: the rendered arguments are
    exactly what the tool would receive."""

    step: ToolStep
    tool: ToolSpec
    step_path: str
    args: Any
    idempotency_key: str


@dataclass(frozen=True)
class Suspension:
    """A run stops before ``step_path`` and waits in ``status`` (one of
    :data:`ordinaut.vocabulary.SUSPENDED`) for ``reason``; at ``resume_at`` (None: only
    when someone acts) ``on_resume`` happens."""

    status: RunStatus
    step_path: str
    input: Any
    reason: str
    resume_at: datetime | None = None
    on_resume: ResumeAction = ResumeAction.RESUME


class Suspended(Exception):
    """The pipeline stopped before a step because a gate said so."""

    def __init__(self, suspension: Suspension) -> None:
        super().__init__(suspension.reason)
        self.suspension = suspension


Gate = Callable[[GateCheck], Suspension | None]
"""Decides, before each tool call, whether the run suspends there (None: go ahead)."""


def no_gate(check: GateCheck) -> Suspension | None:
    """The gate that never stops a run."""
    return None


@dataclass(frozen=True)
class DoneStep:
    """A step this attempt already completed before it was suspended: its receipt stands."""

    status: StepStatus
    output: Any


Emit = Callable[[StepRecord], None]


def run_pipeline(
    pipeline: Pipeline,
    *,
    tools: Mapping[str, ToolSpec],
    call_tool: Callable[[ToolCall], Any],
    context: Mapping[str, Any],
    clock: Callable[[], datetime],
    on_step: Callable[[StepRecord], None] = lambda r: None,
    should_cancel: Callable[[], bool] = lambda: False,
    idempotency_prefix: str = "",
    limits: Limits = DEFAULT_LIMITS,
    caps: Caps = Caps(),
    gate: Gate = no_gate,
    done: Mapping[str, DoneStep] | None = None,
) -> PipelineResult:
    """Run ``pipeline``; ``context`` gives ``event``, ``run`` and optionally ``now``/``params``.

    ``now`` defaults to ``clock()`` at the start (ISO 8601) and ``params`` to the pipeline's.
    ``gate`` may suspend the run before a tool call (:class:`Suspended`); ``done`` are the
    steps (by path) a resumed run completed before it was suspended: they are not run again.
    """
    ctx: dict[str, Any] = {"params": dict(pipeline.params), "event": None, "run": None}
    ctx.update(context)
    now = ctx.get("now")
    if now is None:
        now = clock()
    ctx["now"] = now.isoformat() if isinstance(now, datetime) else now
    ctx["steps"] = {}
    ctx.pop("item", None)
    records: list[StepRecord] = []

    def emit(record: StepRecord) -> None:
        records.append(record)
        on_step(record)

    runner = _Runner(tools, call_tool, clock, should_cancel, idempotency_prefix, limits, caps)
    runner.gate, runner.done = gate, done or {}
    saved: dict[str, Any] = {}
    output = runner.run_steps(pipeline.steps, ctx, "", emit, saved)
    return PipelineResult(output=output, steps=tuple(records), saved=saved)


def _json_type(value: Any) -> str:
    names = {bool: "boolean", str: "string", list: "array", dict: "object", type(None): "null"}
    return names.get(type(value), "number" if isinstance(value, (int, float)) else "value")


class _Outcome:
    """What a step got as far as it went (filled in as it runs)."""

    input: Any = None
    output: Any = None
    key: str | None = None


class _Tally:
    """Bytes of input and output the run's receipts hold so far, against ``Caps.run_receipts``."""

    def __init__(self, cap: int) -> None:
        self.cap, self.total = cap, 0
        self._lock = threading.Lock()  # parallel foreach items add from their threads

    def add(self, size: int, path: str, field: str) -> None:
        """Count ``size`` more bytes, or LimitExceeded (counting nothing) if that passes the cap."""
        with self._lock:
            if self.total + size > self.cap:
                raise LimitExceeded(
                    path,
                    f"{field} ({size} bytes) would take the run's receipts past the run cap of "
                    f"{self.cap} bytes ({RECEIPTS_SETTING})",
                    field=field,
                )
            self.total += size

    def count(self, size: int) -> None:
        """Count ``size`` bytes that are kept whatever the cap (a failed step's error); past
        the cap, the next :meth:`add` fails."""
        with self._lock:
            self.total += size


class _Runner:
    def __init__(
        self,
        tools: Mapping[str, ToolSpec],
        call_tool: Callable[[ToolCall], Any],
        clock: Callable[[], datetime],
        should_cancel: Callable[[], bool],
        prefix: str,
        limits: Limits,
        caps: Caps,
    ) -> None:
        self.tools, self.call_tool, self.clock = tools, call_tool, clock
        self.should_cancel, self.prefix, self.limits = should_cancel, prefix, limits
        self.caps, self.tally = caps, _Tally(caps.run_receipts)
        self.gate: Gate = no_gate
        self.done: Mapping[str, DoneStep] = {}

    def run_steps(
        self,
        steps: tuple[Step, ...],
        ctx: dict[str, Any],
        prefix: str,
        emit: Emit,
        saved: dict[str, Any],
    ) -> Any:
        """Run ``steps`` in order; saves go to ``ctx["steps"]`` and ``saved``."""
        output = None
        for step in steps:
            status, result = self.run_step(step, ctx, f"{prefix}{step.id}", emit)
            if status == "succeeded":
                output = result
                if step.save_as:
                    ctx["steps"][step.save_as] = saved[step.save_as] = result
        return output

    def run_step(
        self, step: Step, ctx: dict[str, Any], path: str, emit: Emit
    ) -> tuple[StepStatus, Any]:
        if self.should_cancel():
            raise Canceled(f"run canceled before step {path!r}")
        prior = self.done.get(path)
        if prior is not None:  # completed before the run was suspended: its receipt stands
            return prior.status, prior.output
        started, outcome = self.clock(), _Outcome()

        def record(status: StepStatus, error: str | None = None) -> None:
            if error is not None:  # kept up to MAX_ERROR_CHARS: it counts, as the data does
                self.tally.count(min(len(error), fixed_limits.MAX_ERROR_CHARS))
            emit(
                StepRecord(
                    path,
                    step.id,
                    step.uses,
                    status,
                    outcome.input,
                    outcome.output,
                    error,
                    started,
                    self.clock(),
                    outcome.key,
                )
            )

        try:
            if step.if_ is not None and not template.truthy(
                self.search(step.if_, ctx, path, "if", template.Budget(self.caps.step_input))
            ):
                record("skipped")
                return "skipped", None
            if isinstance(step, ForeachStep):
                results = self.foreach(step, ctx, path, emit, outcome)
                outcome.output = self.accept(results, path, "output")
            else:
                outcome.output = self.call(step, ctx, path, outcome)
        except StepDropped as exc:
            record("skipped", exc.message)
            return "skipped", None
        except ToolError as exc:
            error = _as_step_error(exc, path)
            record("failed", error.message)
            if step.on_error is OnError.CONTINUE:
                return "failed", None
            if error is exc:
                raise
            raise error from exc
        except (Canceled, Suspended):
            raise
        except Exception as exc:
            record("failed", f"{type(exc).__name__}: {exc}")
            raise
        record("succeeded")
        return "succeeded", outcome.output

    def search(
        self, expr: str, ctx: Mapping[str, Any], path: str, field: str, budget: template.Budget
    ) -> Any:
        try:
            return template.search(expr, ctx, budget)
        except template.TooLarge as exc:
            raise _built_too_much(path, field, exc, budget) from None
        except template.TemplateError as exc:
            raise StepError(path, f"{field}: {exc.message}", field=field) from None

    def render(
        self, value: Any, ctx: Mapping[str, Any], path: str, field: str, budget: template.Budget
    ) -> Any:
        try:
            return template.render(value, ctx, budget)
        except template.TemplateError as exc:
            where = next(
                (w for w, e in template.find_templates(value, field) if e == exc.expression), field
            )
            if isinstance(exc, template.TooLarge):
                raise _built_too_much(path, where, exc, budget) from None
            raise StepError(path, f"{where}: {exc.message}", field=where) from None

    def accept(self, value: Any, path: str, field: str) -> Any:
        """``value`` as a step's input (``field`` ``with``…) or output, once it is within the caps.

        Over the step cap, or past the run's receipts cap, it is LimitExceeded and the value
        is dropped here: nothing keeps it, so the step's receipt does not hold it either.
        """
        output = field == "output"
        cap = self.caps.step_output if output else self.caps.step_input
        size = json_size(value, cap)
        if size > cap:
            what, setting = ("output", OUTPUT_SETTING) if output else ("input", INPUT_SETTING)
            raise LimitExceeded(
                path,
                f"{field} is larger than the step {what} cap of {cap} bytes ({setting})",
                field=field,
            )
        self.tally.add(size, path, field)
        return value

    def call(self, step: ToolStep, ctx: dict[str, Any], path: str, outcome: _Outcome) -> Any:
        tool = self.tools.get(step.uses)
        if tool is None:
            raise StepError(path, f"unknown tool {step.uses!r}", field="uses")
        budget = template.Budget(self.caps.step_input)
        rendered = self.render(step.with_, ctx, path, "with", budget)
        args = outcome.input = self.accept(rendered, path, "with")
        violation = tool_spec.first_violation(args, tool.input_schema)
        if violation is not None:
            raise _contract_error(path, "input", tool.address, violation)
        if step.idempotency_key is not None:
            field = "idempotency_key"
            key = template.as_text(self.render(step.idempotency_key, ctx, path, field, budget))
            self.tally.add(len(key), path, field)
        else:
            key = f"{self.prefix}:{path}" if self.prefix else path
        outcome.key = key
        suspension = self.gate(GateCheck(step, tool, path, args, key))
        if suspension is not None:
            raise Suspended(suspension)
        output = self.call_tool(
            ToolCall(
                address=tool.address,
                args=copy.deepcopy(args),
                step_id=step.id,
                step_path=path,
                idempotency_key=key,
                timeout_seconds=step.timeout_seconds or tool.timeout_seconds,
            )
        )
        outcome.output = self.accept(output, path, "output")
        violation = tool_spec.first_violation(output, tool.output_schema)
        if violation is not None:
            raise _contract_error(path, "output", tool.address, violation)
        return output

    def items(self, step: ForeachStep, ctx: dict[str, Any], path: str) -> list[Any]:
        loop = step.foreach
        budget = template.Budget(self.caps.step_input)
        if loop.items_path is not None:
            field = "with.items_path"
            items = self.search(loop.items_path, ctx, path, field, budget)
            if items is None:
                raise StepError(
                    path, f"{field}: {loop.items_path!r} resolved to nothing", field=field
                )
        else:
            field = "with.items"
            items = self.render(loop.items, ctx, path, field, budget)
        if not isinstance(items, list):
            raise StepError(
                path, f"{field}: items must be an array, got {_json_type(items)}", field=field
            )
        if len(items) > self.limits.max_foreach_items:
            raise StepError(
                path,
                f"{field}: {len(items)} items, over the limit of {self.limits.max_foreach_items}",
                field=field,
            )
        self.accept(items, path, field)
        return items

    def foreach(
        self, step: ForeachStep, ctx: dict[str, Any], path: str, emit: Emit, outcome: _Outcome
    ) -> list[Any]:
        loop = step.foreach
        items = self.items(step, ctx, path)
        outcome.input = {"items": items}

        def run_item(index: int, item: Any, item_emit: Emit) -> dict[str, Any]:
            item_ctx = {**ctx, "item": item, "steps": dict(ctx["steps"])}
            saved: dict[str, Any] = {}
            self.run_steps(loop.body, item_ctx, f"{path}[{index}].", item_emit, saved)
            return saved

        if loop.max_parallel == 1 or len(items) < 2:
            return [run_item(index, item, emit) for index, item in enumerate(items)]
        with ThreadPoolExecutor(max_workers=min(loop.max_parallel, len(items))) as pool:
            futures = [
                pool.submit(_buffered, run_item, index, item) for index, item in enumerate(items)
            ]
            results: list[Any] = []
            first_error: Exception | None = None
            for future in futures:
                records, saved, error = future.result()
                for record in records:
                    emit(record)
                if first_error is None:
                    first_error = error
                results.append(saved)
        if first_error is not None:
            raise first_error
        return results


def _built_too_much(
    path: str, field: str, exc: template.TooLarge, budget: template.Budget
) -> LimitExceeded:
    return LimitExceeded(
        path,
        f"{field}: {exc.message}, over the step input cap of {budget.limit} bytes "
        f"({INPUT_SETTING})",
        field=field,
    )


def _as_step_error(exc: ToolError, path: str) -> StepError:
    if isinstance(exc, StepError):
        return exc
    retryable, retry_after = exc.retryable, exc.retry_after
    return StepError(
        path, exc.message, retryable=retryable, retry_after=retry_after, field=exc.field
    )


def _contract_error(
    path: str, kind: Literal["input", "output"], address: str, violation: tool_spec.SchemaViolation
) -> StepError:
    where = tool_spec.join_field("with" if kind == "input" else "output", violation.path)
    message = f"{where} violates the {kind} schema of {address}: {violation.reason}"
    return StepError(path, message, field=where)


def _buffered(
    run_item: Callable[[int, Any, Emit], dict[str, Any]], index: int, item: Any
) -> tuple[list[StepRecord], dict[str, Any], Exception | None]:
    """Run one item in a worker thread, keeping its records for the calling thread."""
    records: list[StepRecord] = []
    try:
        return records, run_item(index, item, records.append), None
    except Exception as exc:
        return records, {}, exc
