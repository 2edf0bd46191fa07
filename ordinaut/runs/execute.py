"""Execution of one run: claim, run the pipeline step by step, finish, plan the retry.

The claim is a conditional UPDATE (queued → running with a lease), so a redelivered or
duplicate ``execute_run`` message for a run that is running, finished or canceled does
nothing. While the pipeline runs, a heartbeat thread extends the lease; if the lease is
lost (reaped, or the run canceled) the pipeline stops between steps. Every step's receipt is
committed as it finishes, and a step whose idempotency key already succeeded is not called
again, so a retried run does not repeat side effects. A failed run with retries left gets a
new due_work row at the backoff time — a durable retry, never a sleep in a worker.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine, Row

from ordinaut.config import Settings
from ordinaut.errors import OrdinautError, StepError, ToolError
from ordinaut.pipeline.executor import Canceled, StepRecord, ToolCall, run_pipeline
from ordinaut.pipeline.validate import validate_payload
from ordinaut.runs.backoff import BackoffStrategy, retry_delay
from ordinaut.runs.states import RunStatus, Trigger
from ordinaut.store import queries
from ordinaut.tools.registry import ToolRunner, load_tools

log = logging.getLogger("ordinaut.runs")


def utcnow() -> datetime:
    return datetime.now(UTC)


class RunTimedOut(OrdinautError):
    """The run passed its task's timeout_seconds; it fails and follows the retry policy."""

    code = "run_timeout"


@dataclass(frozen=True)
class Outcome:
    """What happened to one execute_run call."""

    run_id: uuid.UUID
    status: str  # "ignored" when the run was not ours to run
    retry_at: datetime | None = None
    wake_dispatch: bool = False


class _Lease:
    """Keeps a run's lease alive from a background thread until stopped."""

    def __init__(self, engine: Engine, run_id: uuid.UUID, owner: str, seconds: int) -> None:
        self.engine, self.run_id, self.owner, self.seconds = engine, run_id, owner, seconds
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{run_id}", daemon=True)

    def __enter__(self) -> _Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                with self.engine.begin() as conn:
                    alive = queries.extend_lease(
                        conn, self.run_id, self.owner, utcnow() + timedelta(seconds=self.seconds)
                    )
            except Exception:  # a blip in the database must not kill the run; retry next beat
                log.warning("lease extension failed", extra={"run_id": str(self.run_id)})
                continue
            if not alive:
                self.lost.set()
                return


def execute_run(
    engine: Engine,
    settings: Settings,
    run_id: uuid.UUID,
    owner: str,
    *,
    sleep: Callable[[float], None],
) -> Outcome:
    """Run one queued run to a final state (or do nothing if it is not queued)."""
    now = utcnow()
    with engine.begin() as conn:
        claimed = queries.claim_run(
            conn, run_id, owner, now + timedelta(seconds=settings.lease_seconds)
        )
        if claimed is None:
            return Outcome(run_id, "ignored")
        queries.emit(conn, [("task.run.started", _event(claimed, "running"))])
        tools = load_tools(conn)
    log.info("run started", extra={"run_id": str(run_id), "attempt": claimed.attempt})

    deadline = (
        claimed.started_at + timedelta(seconds=claimed.timeout_seconds)
        if claimed.timeout_seconds
        else None
    )
    runner = ToolRunner(tools, sleep=sleep, clock=utcnow)
    with _Lease(engine, run_id, owner, settings.lease_seconds) as lease:
        status, output, error, retryable, retry_after = _run_pipeline(
            engine, claimed, tools, runner, lease, deadline
        )
    return _finish(engine, settings, claimed, owner, status, output, error, retryable, retry_after)


def _run_pipeline(
    engine: Engine,
    claimed: Row[Any],
    tools: Mapping[str, Any],
    runner: ToolRunner,
    lease: _Lease,
    deadline: datetime | None,
) -> tuple[RunStatus, Any, str | None, bool, float | None]:
    """(status, output, error, retryable, retry_after) of the pipeline."""
    prefix = f"{claimed.task_id}:{claimed.scheduled_for.isoformat()}"

    def call_tool(call: ToolCall) -> Any:
        with engine.connect() as conn:
            hit, cached = queries.cached_step_output(conn, call.idempotency_key)
        if hit:
            return cached
        timeout = call.timeout_seconds
        if deadline is not None:
            remaining = (deadline - utcnow()).total_seconds()
            if remaining <= 0:
                raise RunTimedOut("run timed out (task timeout_seconds) before this step")
            timeout = min(timeout, remaining)
        return runner.call(call, timeout=timeout)

    def on_step(record: StepRecord) -> None:
        with engine.begin() as conn:
            queries.insert_step_result(conn, _step_row(claimed, record))

    def should_cancel() -> bool:
        if lease.lost.is_set():
            return True
        if deadline is not None and utcnow() >= deadline:
            raise RunTimedOut("run timed out (task timeout_seconds)")
        return False

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
        "now": utcnow().isoformat(),
    }
    try:
        pipeline = validate_payload(claimed.payload, tools)
        result = run_pipeline(
            pipeline,
            tools=tools,
            call_tool=call_tool,
            context=context,
            clock=utcnow,
            on_step=on_step,
            should_cancel=should_cancel,
            idempotency_prefix=prefix,
        )
    except Canceled:
        return RunStatus.CANCELED, None, "canceled between steps", False, None
    except RunTimedOut as exc:
        return RunStatus.FAILED, None, exc.message, True, None
    except ToolError as exc:
        return RunStatus.FAILED, None, exc.message, exc.retryable, exc.retry_after
    except OrdinautError as exc:
        return RunStatus.FAILED, None, exc.message, False, None
    except Exception as exc:  # a bug in a tool adapter: fail the run, keep the worker alive
        log.exception("run crashed", extra={"run_id": str(claimed.id)})
        return RunStatus.FAILED, None, f"internal error: {exc!r}", True, None
    return RunStatus.SUCCEEDED, result.output, None, False, None


def _finish(
    engine: Engine,
    settings: Settings,
    claimed: Row[Any],
    owner: str,
    status: RunStatus,
    output: Any,
    error: str | None,
    retryable: bool,
    retry_after: float | None,
) -> Outcome:
    retry_at: datetime | None = None
    with engine.begin() as conn:
        if status is RunStatus.CANCELED and queries.run_status(conn, claimed.id) != "running":
            # canceled through the API: the run row already says so
            return Outcome(claimed.id, "canceled", wake_dispatch=True)
        done = queries.finish_run(
            conn, claimed.id, owner, status=status.value, output=output, error=error
        )
        if done is None:
            return Outcome(claimed.id, "ignored")
        events: list[tuple[str, Mapping[str, Any]]] = [
            (f"task.run.{status.value}", _event(claimed, status.value, error=error))
        ]
        if status is RunStatus.FAILED and retryable and claimed.attempt <= claimed.max_retries:
            retry_at = plan_retry(
                conn,
                settings,
                claimed,
                BackoffStrategy(claimed.backoff_strategy),
                retry_after=retry_after,
            )
        queries.emit(conn, events)
    log.info(
        "run finished",
        extra={"run_id": str(claimed.id), "status": status.value, "attempt": claimed.attempt},
    )
    # a freed concurrency slot or a prompt retry should not wait for the next periodic dispatch
    wake = bool(claimed.concurrency_key) or claimed.overlap_policy == "queue" or bool(retry_at)
    return Outcome(claimed.id, status.value, retry_at=retry_at, wake_dispatch=wake)


def plan_retry(
    conn: Any,
    settings: Settings,
    run: Row[Any],
    strategy: BackoffStrategy,
    *,
    retry_after: float | None = None,
) -> datetime:
    """Insert the due_work row for the next attempt of ``run``; returns when it may start."""
    delay = retry_delay(
        strategy,
        run.attempt,
        base=settings.backoff_base_seconds,
        cap=settings.backoff_cap_seconds,
        seed=str(run.id),
        retry_after=retry_after,
    )
    not_before = utcnow() + timedelta(seconds=delay)
    queries.insert_due_work(
        conn,
        [
            {
                "task_id": run.task_id,
                "run_at": run.scheduled_for,
                "not_before": not_before,
                "trigger": Trigger.RETRY.value,
                "attempt": run.attempt + 1,
                "priority": run.priority,
                "event": run.event,
            }
        ],
    )
    return not_before


def _step_row(claimed: Row[Any], record: StepRecord) -> dict[str, Any]:
    return {
        "run_id": claimed.id,
        "step_path": record.step_path,
        "step_id": record.step_id,
        "address": record.address,
        "status": record.status,
        "attempt": claimed.attempt,
        "idempotency_key": record.idempotency_key,
        "input": record.input,
        "output": record.output,
        "error": record.error,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
    }


def _event(row: Row[Any], status: str, *, error: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "run_id": str(row.id),
        "task_id": str(row.task_id),
        "attempt": row.attempt,
        "status": status,
    }
    if error:
        event["error"] = error
    return event


__all__ = ["Outcome", "StepError", "execute_run", "plan_retry"]
