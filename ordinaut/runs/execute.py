"""Execution of one run: claim, run the pipeline step by step, finish, plan the retry.

Contracts:

Every write is one statement on an autocommit connection; where several rows change
together they are one statement (a CTE), so each write is all or nothing and costs one
round trip and one commit.

- **Claim** is a conditional UPDATE (``queued → running``, lease owner and ``leased_until``)
  with the ``task.run.started`` event, committed before any step runs. A redelivered or
  duplicate ``execute_run`` message for a run that is running, finished or canceled finds
  nothing to claim and does nothing.
- **Lease**: one keeper thread per process extends ``leased_until`` every third of the
  lease. When the extension fails — the reaper took the run, or the API canceled it (status
  ``canceled``) — or, between steps at most once a second, the run's row no longer says
  ``running``, the pipeline stops before its next step; a run canceled that way ends
  ``canceled`` (the API already wrote that status; the worker leaves it as it is).
- **Step receipts** (``step_result``) are committed before the next step's tool call starts,
  and the last ones with the finish, so a step that completed is on record before anything
  else can happen. A step whose idempotency key already has a
  succeeded receipt is not called again: it is served from that receipt (``cached``), so a
  retried attempt does not repeat side effects. On a first attempt with the default key
  (task, occurrence, step path) there can be no earlier receipt, so no lookup is made.
- **Finish** is a conditional UPDATE guarded by status ``running`` and our lease owner, with
  the last receipts, the ``task.run.<status>`` event and the retry; a run the reaper already
  failed stays failed (its retry is already planned), one the API canceled stays canceled.
- **Retries** are durable: a failed attempt with retries left (the failing step's ``retry``
  override, else the task's ``max_retries`` and ``backoff_strategy``) gets a new due_work row
  at the backoff time, in the finish statement — never a sleep in a worker. Non-retryable
  errors (schema violations, template errors, a tool's 4xx) fail the run at once.
- **Caps**: the pipeline runs under the byte caps of the settings
  (``ORDINAUT_MAX_STEP_INPUT_BYTES``, ``…_OUTPUT_BYTES``, ``ORDINAUT_MAX_RUN_RECEIPT_BYTES``; see
  :mod:`ordinaut.pipeline.executor`): a step crossing one fails as ``limit_exceeded``, which
  is never retried. What is written down holds no secret (receipts, the run's output and
  error, its events: :mod:`ordinaut.tools.redact`), and errors are at most
  ``limits.MAX_ERROR_CHARS`` long.
- **Shutdown**: once a worker's shutdown grace is over (:mod:`ordinaut.runs.shutdown`), a
  run stops before its next step and is handed back: ``failed`` with its receipts, and its
  next attempt due at once.
- **Timeouts**: a step gets ``min(step or tool timeout, time left before the task's
  timeout_seconds)``; running out of the task's time fails the attempt as ``run_timeout``,
  which is retryable like any transient failure.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from ordinaut import jsonsafe
from ordinaut.config import Settings
from ordinaut.errors import OrdinautError, StepError, ToolError, ValidationError
from ordinaut.limits import MAX_ERROR_CHARS
from ordinaut.pipeline.executor import (
    Canceled,
    Caps,
    DoneStep,
    GateCheck,
    StepDropped,
    Suspended,
    Suspension,
    run_pipeline,
)
from ordinaut.pipeline.model import Pipeline
from ordinaut.pipeline.validate import validate_payload
from ordinaut.runs import shutdown, suspension
from ordinaut.runs.lease import Lease, autocommit, reserve
from ordinaut.runs.policies import RunPolicies, rate_limits_of
from ordinaut.runs.receipts import Receipts, RunDb
from ordinaut.runs.retry import next_attempt, plan_retry, retry_event, retry_policy
from ordinaut.runs.scopes import check_tool_scopes
from ordinaut.store import queries
from ordinaut.tools import redact
from ordinaut.tools.builtin import QUIET_HOURS
from ordinaut.tools.guarded import policy_for
from ordinaut.tools.registry import ToolRunner, tools_for_payload
from ordinaut.tools.spec import ToolCall
from ordinaut.vocabulary import OverlapPolicy, RunStatus

log = logging.getLogger("ordinaut.runs")

# between steps, a run that has been going this long re-reads its status (cancel through the
# API); shorter runs rely on their lease heartbeat, so quick pipelines pay no extra query
CANCEL_POLL_SECONDS = 1.0


class RunTimedOut(OrdinautError):
    """The run passed its task's timeout_seconds; it fails and follows the retry policy."""

    code = "run_timeout"


class _HandBack(Exception):
    """The worker's shutdown grace is over: stop before the next step, give the run back."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one execute_run call.

    ``status`` is the run's final status, or ``ignored`` when the run was not ours to run
    (not queued any more) or ``lost`` when our lease was taken away mid-run.
    """

    run_id: uuid.UUID
    status: str
    retry_at: datetime | None = None
    wake_dispatch: bool = False


@dataclass(frozen=True)
class _Result:
    """How the pipeline ended, before it is written down."""

    status: RunStatus
    output: Any = None
    error: str | None = None
    retryable: bool = False
    retry_after: float | None = None
    failed_step: str | None = None
    handed_back: bool = False
    suspension: Suspension | None = None


def execute_run(
    engine: Engine,
    settings: Settings,
    run_id: uuid.UUID,
    owner: str,
    *,
    sleep: Callable[[float], None],
    clock: Callable[[], datetime],
    reserved: Sequence[uuid.UUID] = (),
) -> Outcome:
    """Run one queued run to a final state (or do nothing if it is not queued).

    ``clock`` is the time for timeouts, the pipeline's ``${now}`` and retry backoff; ``sleep``
    how a tool waits out a ``Retry-After`` inside a step. ``reserved`` are runs of the same
    message, waiting their turn: their reservation (see :func:`reserve`) is extended with this
    run's lease.
    """
    base_engine, engine = engine, autocommit(engine)
    with contextlib.ExitStack() as stack:
        conn, claimed = _claim(stack, engine, run_id, owner, settings.lease_seconds)
        db = RunDb(engine, conn)
        if claimed is None:
            log.info(
                "run %s not claimed: no longer queued, or refused (its owner is revoked)",
                run_id,
                extra={"run_id": str(run_id)},
            )
            return Outcome(run_id, "ignored")
        if claimed.pipeline_now is None:  # the ${now} of this run, kept if it is suspended
            claimed = replace(claimed, pipeline_now=clock())
        tools = tools_for_payload(conn, claimed.payload)
        log.info(
            "run %s started task=%s attempt=%d",
            run_id,
            claimed.task_id,
            claimed.attempt,
            extra={
                "run_id": str(run_id),
                "task_id": str(claimed.task_id),
                "attempt": claimed.attempt,
            },
        )
        deadline = (
            claimed.started_at + timedelta(seconds=claimed.timeout_seconds)
            if claimed.timeout_seconds
            else None
        )
        runner = ToolRunner(tools, sleep=sleep, clock=clock, egress=policy_for(settings))
        redactor = redact.redactor_for(runner.environ)
        receipts = Receipts(db, claimed, redactor)
        rules = RunPolicies(base_engine, settings.namespace, claimed, db.connection)
        pipeline: Pipeline | None = None
        with Lease(engine, run_id, owner, settings.lease_seconds, reserved) as lease:
            try:
                rules.limits = rate_limits_of(settings)
                pipeline = validate_payload(claimed.payload, tools)
                check_tool_scopes(conn, claimed.created_by, pipeline, tools)
            except OrdinautError as exc:
                result = _Result(RunStatus.FAILED, error=exc.message)
            else:
                result = _run_pipeline(
                    db,
                    claimed,
                    pipeline,
                    tools,
                    runner,
                    lease,
                    deadline,
                    receipts,
                    clock,
                    caps(settings),
                    rules,
                )
        result = _scrubbed(result, redactor)
        if result.suspension is not None:
            return _suspend(db, claimed, owner, result.suspension, receipts, clock)
        return _finish(db, settings, claimed, owner, result, receipts, pipeline, clock())


def caps(settings: Settings) -> Caps:
    """The executor's byte caps from the settings."""
    return Caps(
        step_input=settings.max_step_input_bytes,
        step_output=settings.max_step_output_bytes,
        run_receipts=settings.max_run_receipt_bytes,
    )


def _scrubbed(result: _Result, redactor: redact.Redactor) -> _Result:
    """``result`` with no secret in its output or error, and its error at most MAX_ERROR_CHARS."""
    error = None if result.error is None else redactor.bounded(result.error, MAX_ERROR_CHARS)
    stop = result.suspension
    if stop is not None:
        stop = replace(stop, input=redactor.value(stop.input))
    return replace(result, output=redactor.value(result.output), error=error, suspension=stop)


def _storable(output: Any, step_path: str) -> Any:
    """A tool's answer, if PostgreSQL can store it: a NUL, a lone surrogate or a NaN in it
    fails the step (not retryable: the same call gives the same answer), where storing the
    receipt would otherwise fail the whole run's bookkeeping."""
    try:
        jsonsafe.check_json(output, "output")
    except ValidationError as exc:
        raise ToolError(
            f"step {step_path!r}: the tool's answer cannot be stored: {exc.field}: {exc.message}"
        ) from None
    return output


def _claim(
    stack: contextlib.ExitStack, engine: Engine, run_id: uuid.UUID, owner: str, lease: float
) -> tuple[Connection, queries.ClaimedRun | None]:
    """Claim on a pooled connection (kept open on ``stack`` for the whole run).

    Pooled connections are not pinged on every checkout (see :mod:`ordinaut.store.engine`):
    one the server dropped since its last use (a database restart) fails the claim, is
    discarded by the pool, and the claim is tried once more on a fresh connection. Had the
    first claim reached the server, the second finds the run taken (``None``): the run is
    then ours but unattended, and the reaper retries it once its lease runs out.
    """
    for attempt in (1, 2):
        conn = stack.enter_context(engine.connect())
        try:
            return conn, queries.claim_run(conn, run_id, owner, lease)
        except DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise
            log.warning("run %s: database connection lost; claiming again", run_id)
    raise AssertionError("unreachable")


def _run_pipeline(
    db: RunDb,
    claimed: queries.ClaimedRun,
    pipeline: Pipeline,
    tools: Mapping[str, Any],
    runner: ToolRunner,
    lease: Lease,
    deadline: datetime | None,
    receipts: Receipts,
    clock: Callable[[], datetime],
    caps: Caps,
    rules: RunPolicies,
) -> _Result:
    """Run the pipeline; every way it can end becomes a _Result."""
    prefix = f"{claimed.task_id}:{claimed.scheduled_for.isoformat()}"
    first_attempt = claimed.attempt <= 1

    def lookup(key: str) -> tuple[bool, Any]:
        if first_attempt and key.startswith(f"{prefix}:"):
            return False, None  # no earlier attempt: no receipt can have this key
        with db.connection() as conn:
            return queries.cached_step_output(conn, claimed.task_id, key)

    def call_tool(call: ToolCall) -> Any:
        receipts.flush()  # earlier steps are on record before this step's side effect
        hit, cached = lookup(call.idempotency_key)
        if hit:
            receipts.served(call.idempotency_key)
            log.info(
                "run %s step %s served from receipt key=%s",
                claimed.id,
                call.step_path,
                call.idempotency_key,
                extra={"run_id": str(claimed.id), "step_id": call.step_path},
            )
            return cached
        if call.address == QUIET_HOURS:
            return rules.quiet_answer(call.args, clock())
        skipped = rules.skip_reason(call)
        if skipped is not None:
            raise StepDropped(skipped)
        call = replace(call, args=rules.call_args(call))
        timeout = call.timeout_seconds
        if deadline is not None:
            remaining = (deadline - clock()).total_seconds()
            if remaining <= 0:
                raise RunTimedOut("run timed out (task timeout_seconds) before this step")
            timeout = min(timeout, remaining)
        try:
            output = runner.call(call, timeout=timeout)
        except ToolError:
            if deadline is not None and clock() >= deadline:
                raise RunTimedOut(
                    f"run timed out (task timeout_seconds) in step {call.step_path!r}"
                ) from None
            raise
        finally:
            rules.release(call)
        rules.after_call(call, output, clock())
        return _storable(output, call.step_path)

    polled = [time.monotonic()]

    def should_cancel() -> bool:
        if shutdown.hand_back_due(time.monotonic()):
            raise _HandBack
        if lease.lost.is_set():
            return True
        if deadline is not None and clock() >= deadline:
            raise RunTimedOut("run timed out (task timeout_seconds)")
        # a cancel through the API shows at the next heartbeat; between steps, look sooner
        if time.monotonic() - polled[0] >= CANCEL_POLL_SECONDS:
            polled[0] = time.monotonic()
            with db.connection() as conn:
                if queries.run_status(conn, claimed.id) != RunStatus.RUNNING:
                    lease.lost.set()
                    return True
        return False

    gates = suspension.gate_for(claimed, clock)

    def gate(check: GateCheck) -> Suspension | None:
        # a step an earlier attempt already completed is served from its receipt: no gate
        if lookup(check.idempotency_key)[0]:
            return None
        return gates(check) or rules.gate(check, clock())

    done: dict[str, DoneStep] = {}
    if claimed.suspended_at is not None:  # resumed: the steps before the stop stand
        with db.connection() as conn:
            for path, (status, output) in queries.done_steps(
                conn, claimed.id, claimed.attempt
            ).items():
                done[path] = DoneStep(status, output)  # type: ignore[arg-type]
    context = {
        "params": (claimed.payload or {}).get("params", {}),
        "steps": {},
        "run": {
            "id": str(claimed.id),
            "task_id": str(claimed.task_id),
            "attempt": claimed.attempt,
            "scheduled_for": claimed.scheduled_for.isoformat(),
            "trigger": claimed.trigger,
        },
        "event": claimed.event or {},
        "now": (claimed.pipeline_now or clock()).isoformat(),  # fixed across a suspension
    }
    try:
        result = run_pipeline(
            pipeline,
            tools=tools,
            call_tool=call_tool,
            context=context,
            clock=clock,
            on_step=receipts.add,
            should_cancel=should_cancel,
            idempotency_prefix=prefix,
            caps=caps,
            gate=gate,
            done=done,
        )
    except Suspended as stop:
        return _Result(stop.suspension.status, suspension=stop.suspension)
    except Canceled:
        return _Result(RunStatus.CANCELED, error="canceled between steps")
    except _HandBack:
        return _Result(RunStatus.FAILED, error=shutdown.HANDED_BACK, handed_back=True)
    except RunTimedOut as exc:
        return _Result(RunStatus.FAILED, error=exc.message, retryable=True)
    except StepError as exc:
        return _Result(
            RunStatus.FAILED,
            error=exc.message,
            retryable=exc.retryable,
            retry_after=exc.retry_after,
            failed_step=exc.step_id,
        )
    except ToolError as exc:
        return _Result(
            RunStatus.FAILED,
            error=exc.message,
            retryable=exc.retryable,
            retry_after=exc.retry_after,
        )
    except OrdinautError as exc:
        return _Result(RunStatus.FAILED, error=exc.message)
    except Exception as exc:  # a bug in a tool adapter: fail the attempt, keep the worker alive
        log.exception("run %s crashed", claimed.id, extra={"run_id": str(claimed.id)})
        return _Result(RunStatus.FAILED, error=f"internal error: {exc!r}", retryable=True)
    return _Result(RunStatus.SUCCEEDED, output=result.output)


def _finish(
    db: RunDb,
    settings: Settings,
    claimed: queries.ClaimedRun,
    owner: str,
    result: _Result,
    receipts: Receipts,
    pipeline: Pipeline | None,
    now: datetime,
) -> Outcome:
    """Write the final state, the last receipts, the events and the retry in one statement."""
    if result.handed_back:
        return _hand_back(db, claimed, owner, receipts)
    status = result.status.value
    events: list[tuple[str, Mapping[str, Any]]] = [
        (f"task.run.{status}", _event(claimed, status, error=result.error))
    ]
    retry: dict[str, Any] | None = None
    if result.status is RunStatus.FAILED and result.retryable:
        max_retries, strategy = retry_policy(claimed, pipeline, result.failed_step)
        if claimed.attempt <= max_retries:
            retry = next_attempt(
                settings, claimed, strategy, now=now, retry_after=result.retry_after
            )
            events.append(retry_event(claimed, retry))
    # a run holding a concurrency slot or blocking its task's next occurrence frees it now
    frees_slot = bool(claimed.concurrency_key) or claimed.overlap_policy is OverlapPolicy.QUEUE
    with db.connection() as conn:
        moved = queries.finish_run(
            conn,
            claimed.id,
            owner,
            status=result.status,
            output=result.output,
            error=result.error,
            events=events,
            steps=receipts.take(),
            retry=retry,
        )
        if not moved:
            # canceled through the API, or reaped after our lease expired: the row says which
            now_status = queries.run_status(conn, claimed.id) or "lost"
            log.warning(
                "run %s ended as %s: the lease was taken away",
                claimed.id,
                now_status,
                extra={"run_id": str(claimed.id), "status": now_status},
            )
            ended = now_status if now_status == RunStatus.CANCELED else "lost"
            return Outcome(claimed.id, ended, wake_dispatch=frees_slot)
    retry_at: datetime | None = retry["not_before"] if retry else None
    log.info(
        "run %s %s attempt=%d%s%s",
        claimed.id,
        status,
        claimed.attempt,
        f" retry_at={retry_at.isoformat()}" if retry_at else "",
        f" error={result.error!r}" if result.error else "",
        extra={
            "run_id": str(claimed.id),
            "task_id": str(claimed.task_id),
            "status": status,
            "attempt": claimed.attempt,
            "latency_ms": round((now - claimed.started_at).total_seconds() * 1000, 1),
        },
    )
    wake = frees_slot or (retry_at is not None and retry_at <= now)
    return Outcome(claimed.id, status, retry_at=retry_at, wake_dispatch=wake)


def _suspend(
    db: RunDb,
    claimed: queries.ClaimedRun,
    owner: str,
    stop: Suspension,
    receipts: Receipts,
    clock: Callable[[], datetime],
) -> Outcome:
    """Stop the run before a step (see :mod:`ordinaut.runs.suspension`): it waits holding
    no lease, slot or guard; the receipts of the steps before are written with the move."""
    now = clock()
    with db.connection() as conn:
        moved = queries.suspend_run(
            conn,
            claimed.id,
            owner,
            status=stop.status,
            step_path=stop.step_path,
            step_input=stop.input,
            reason=stop.reason,
            resume_at=stop.resume_at,
            action=stop.on_resume,
            pipeline_now=claimed.pipeline_now or claimed.started_at,
            steps=receipts.take(),
        )
        if not moved:
            now_status = queries.run_status(conn, claimed.id) or "lost"
            ended = now_status if now_status == RunStatus.CANCELED else "lost"
            return Outcome(claimed.id, ended)
    log.info(
        "run %s %s before step %s%s",
        claimed.id,
        stop.status.value,
        stop.step_path,
        f" resume_at={stop.resume_at.isoformat()}" if stop.resume_at else "",
        extra={"run_id": str(claimed.id), "task_id": str(claimed.task_id)},
    )
    frees_slot = bool(claimed.concurrency_key) or claimed.overlap_policy is not OverlapPolicy.ALLOW
    due = stop.resume_at is not None and stop.resume_at <= now
    return Outcome(claimed.id, stop.status.value, wake_dispatch=frees_slot or due)


def _hand_back(db: RunDb, claimed: queries.ClaimedRun, owner: str, receipts: Receipts) -> Outcome:
    """Give the run back at a step boundary: failed, receipts kept, next attempt due now."""
    with db.connection() as conn:
        planned = queries.hand_back_run(
            conn, claimed.id, owner, error=shutdown.HANDED_BACK, steps=receipts.take()
        )
    if planned is None:  # the lease keeper (or a cancel) took it first and said so
        return Outcome(claimed.id, "lost")
    log.warning(
        "run %s handed back between steps attempt=%d%s",
        claimed.id,
        claimed.attempt,
        ", next attempt due now" if planned else "",
        extra={"run_id": str(claimed.id), "task_id": str(claimed.task_id)},
    )
    return Outcome(claimed.id, "handed_back", wake_dispatch=planned)


def _event(row: queries.ClaimedRun, status: str, *, error: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "run_id": str(row.id),
        "task_id": str(row.task_id),
        "attempt": row.attempt,
        "status": status,
    }
    if error:
        event["error"] = error
    return event


__all__ = [
    "Outcome",
    "RunTimedOut",
    "execute_run",
    "next_attempt",
    "plan_retry",
    "reserve",
    "retry_policy",
]
