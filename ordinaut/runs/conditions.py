"""Condition tasks: a check on a cadence; the pipeline runs on a false → true edge.

A condition task has ``schedule_kind: "condition"``, its cadence in ``schedule_expr`` (a
cron line or an RRULE) and ``condition: {"uses", "with", "when"}``. At each tick of the
cadence the check calls the tool ``uses`` with ``with`` (templates may read ``params`` and
``now``), then evaluates the JMESPath ``when`` over the tool's output. Then, in one
transaction with the task row locked:

- a failed check (tool error, bad output) leaves the state as it was: no firing;
- false → the state becomes false;
- true after true → nothing (it fires on the edge, not while the condition holds);
- true after false (or after no check yet) → the pipeline's due_work is written (trigger
  ``condition``, the check's output as ``${event.output}``), unless the last firing was less
  than ``cooldown_seconds`` ago — then the state becomes true without firing, so it fires
  again only after the condition has been false once more.

Every check is recorded (``condition_check``: result, whether it fired and why; ``GET
/tasks/{id}/checks``). The maintenance pass notices due checks and asks a runs worker
(``ordinaut.check``: checks call tools, which must not hold up dispatch) to make them, at
most about one maintenance period (1 to 5 s) after their tick; then dispatch applies the
task's overlap, concurrency and dedupe rules to the run like any other. A tick missed while
nothing ran is not made up: the next check is the first tick after now. The next tick is
claimed and moved before the tool is called, so two workers never check the same tick; a
worker that dies during the call loses that one check.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from ordinaut.config import Settings
from ordinaut.errors import OrdinautError
from ordinaut.jsonsize import json_size
from ordinaut.limits import MAX_ERROR_CHARS
from ordinaut.pipeline.executor import run_pipeline
from ordinaut.pipeline.template import search, truthy
from ordinaut.pipeline.validate import validate_payload
from ordinaut.runs.scopes import check_tool_scopes
from ordinaut.scheduling.recurrence import parse_schedule
from ordinaut.store import queries
from ordinaut.tools.guarded import policy_for
from ordinaut.tools.registry import ToolRunner, load_tools
from ordinaut.tools.spec import ToolSpec
from ordinaut.vocabulary import TaskStatus

log = logging.getLogger("ordinaut.runs")

CHECK_BATCH = 20
OUTPUT_CAP = 64 * 1024  # bytes of a check's output kept in its record


def decide(
    previous: bool | None,
    result: bool | None,
    *,
    fired_at: datetime | None,
    cooldown_seconds: int | None,
    now: datetime,
) -> tuple[bool, bool | None, str]:
    """(fires, the new state, why) for one check (pure; see the module docstring)."""
    if result is None:
        return False, previous, "check failed: state unchanged, nothing fired"
    if not result:
        return False, False, "condition is false"
    if previous:
        return False, True, "still true: fires only when it turns true"
    if (
        cooldown_seconds
        and fired_at is not None
        and now - fired_at < timedelta(seconds=cooldown_seconds)
    ):
        return (
            False,
            True,
            f"turned true within cooldown_seconds ({cooldown_seconds}) of the last firing",
        )
    return True, True, "turned true: the pipeline is queued"


def _capped(output: Any) -> Any:
    size = json_size(output, OUTPUT_CAP)
    return output if size <= OUTPUT_CAP else {"truncated": True, "bytes": size}


def run_check(
    engine: Engine,
    due: queries.DueCheck,
    tools: dict[str, ToolSpec],
    settings: Settings,
    clock: Callable[[], datetime],
) -> tuple[bool | None, Any, str | None]:
    """Call the check's tool and judge its output: (verdict, output, error)."""
    condition = due.condition if isinstance(due.condition, dict) else {}
    params = due.payload.get("params", {}) if isinstance(due.payload, dict) else {}
    step = {"id": "condition", "uses": condition.get("uses"), "with": condition.get("with", {})}
    try:
        pipeline = validate_payload({"params": params, "pipeline": [step]}, tools)
        with engine.connect() as conn:  # the owner must still hold the tool's scopes
            check_tool_scopes(conn, due.created_by, pipeline, tools)
        runner = ToolRunner(tools, sleep=time.sleep, clock=clock, egress=policy_for(settings))
        result = run_pipeline(
            pipeline,
            tools=tools,
            call_tool=lambda call: runner.call(call, timeout=call.timeout_seconds),
            context={},
            clock=clock,
            idempotency_prefix=f"{due.id}:check:{due.scheduled_for.isoformat()}",
        )
        output = result.output
        verdict = truthy(search(str(condition.get("when")), output))
    except OrdinautError as exc:
        return None, None, exc.message[:MAX_ERROR_CHARS]
    except Exception as exc:  # a bug must not stop every other task's checks
        log.exception("condition task %s: check failed unexpectedly", due.id)
        return None, None, repr(exc)[:MAX_ERROR_CHARS]
    return verdict, _capped(output), None


def check_due(
    engine: Engine, settings: Settings, clock: Callable[[], datetime], *, limit: int = CHECK_BATCH
) -> int:
    """Run the checks that are due (up to ``limit``); returns how many fired."""
    now = clock()
    with engine.begin() as conn:
        due = queries.claim_due_checks(conn, now, limit)
        if not due:
            return 0
        moves: list[tuple[uuid.UUID, datetime | None]] = []
        for d in due:
            try:
                schedule = parse_schedule(
                    "condition", d.schedule_expr, d.timezone, created_at=d.created_at
                )
                moves.append((d.id, schedule.next_after(now)))
            except OrdinautError as exc:  # a stored cadence that no longer parses
                log.error("condition task %s: cadence cannot be computed: %s", d.id, exc.message)
                moves.append((d.id, None))
        queries.advance_checks(conn, moves)
        tools = dict(load_tools(conn))
    fired = 0
    for d in due:
        verdict, output, error = run_check(engine, d, tools, settings, clock)
        checked_at = clock()
        with engine.begin() as conn:
            state = queries.lock_condition_state(conn, d.id)
            if state is None or state.status is not TaskStatus.ACTIVE:
                continue  # paused or canceled while its tool was called
            fires, new_state, reason = decide(
                state.condition_state,
                verdict,
                fired_at=state.condition_fired_at,
                cooldown_seconds=state.cooldown_seconds,
                now=checked_at,
            )
            queries.record_check(
                conn,
                task_id=d.id,
                scheduled_for=d.scheduled_for,
                checked_at=checked_at,
                result=verdict,
                state=new_state,
                fired=fires,
                reason=reason if error is None else f"{reason}: {error}",
                output=output,
                error=error,
                priority=d.priority,
            )
        fired += fires
    if fired:
        log.info("condition checks: %d of %d fired", fired, len(due))
    return fired
