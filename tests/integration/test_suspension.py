"""Suspension against real PostgreSQL, in process: a run stops before a gated step holding
nothing, and resumes from that step without running the earlier ones again.

Runs are dispatched for real, executed with ``execute_run`` as a worker would and resumed
with ``resume_due`` as the dispatch task does (the Celery shell is exercised by
``tests/acceptance/test_approvals.py``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.config import Settings
from ordinaut.runs import dispatch as dispatching
from ordinaut.runs import suspension
from ordinaut.runs.dispatch import QueuedRun
from ordinaut.store import queries
from ordinaut.vocabulary import ResumeAction, RunStatus
from tests.integration.test_dispatch import NS, add_due, make_task
from tests.integration.test_execute import execute, pipeline, queue_run, run_row, steps_of, topics

FIRST = {"id": "first", "uses": "builtin.echo", "with": {"n": 1}, "save_as": "one"}
GATED = {
    "id": "gated",
    "uses": "builtin.echo",
    "with": {"from_first": "${steps.one.n}", "at": "${now}"},
    "approval": "required",
}
LAST = {"id": "last", "uses": "builtin.echo", "with": {"done": True}}


class Published:
    """A publish function that remembers what it was given."""

    def __init__(self) -> None:
        self.runs: list[QueuedRun] = []

    def __call__(self, runs: Sequence[QueuedRun]) -> None:
        self.runs.extend(runs)


def resume(
    engine: Engine, now: datetime | None = None
) -> tuple[suspension.ResumeResult, Published]:
    published = Published()
    result = suspension.resume_due(engine, NS, now or datetime.now(UTC), published)
    return result, published


def approve(engine: Engine, run_id: uuid.UUID) -> bool:
    with engine.begin() as conn:
        return queries.request_resume(conn, run_id, ResumeAction.APPROVE, at=datetime.now(UTC))


def test_a_gated_step_suspends_the_run_holding_nothing(engine: Engine, settings: Settings) -> None:
    run_id = queue_run(engine, pipeline(FIRST, GATED, LAST), concurrency_key="k")
    outcome = execute(engine, settings, run_id)
    run = run_row(engine, run_id)
    assert outcome.status == "waiting_approval" and outcome.wake_dispatch
    assert run.status == "waiting_approval" and run.leased_until is None
    assert run.suspended_step == "gated" and run.resume_at is None
    assert run.suspended_input == {"from_first": 1, "at": run.pipeline_now.isoformat()}
    assert "waits for approval" in run.suspend_reason
    assert [s.step_id for s in steps_of(engine, run_id)] == ["first"]
    assert topics(engine)[-1] == "task.run.waiting_approval"
    with engine.connect() as conn:  # no concurrency slot, no overlap guard
        assert queries.open_runs_by_key(conn, ["k"]) == {}
        assert queries.tasks_with_open_runs(conn, [run.task_id]) == set()
    # nothing is due until someone decides
    result, published = resume(engine, datetime.now(UTC) + timedelta(days=1))
    assert result.queued == [] and published.runs == []


def test_approval_resumes_from_the_gated_step(engine: Engine, settings: Settings) -> None:
    run_id = queue_run(engine, pipeline(FIRST, GATED, LAST))
    execute(engine, settings, run_id)
    suspended_input = run_row(engine, run_id).suspended_input
    assert approve(engine, run_id)
    assert not approve(engine, run_id)  # decided once
    result, published = resume(engine)
    assert [q.id for q in published.runs] == [run_id] == [q.id for q in result.queued]
    run = run_row(engine, run_id)
    assert run.status == "queued" and run.approved_steps == ["gated"] and run.resume_at is None
    assert run.published_at is not None
    outcome = execute(engine, settings, run_id)
    assert outcome.status == "succeeded"
    steps = steps_of(engine, run_id)
    # the first step is not run again: one receipt, from before the stop
    assert [(s.step_id, s.cached) for s in steps] == [
        ("first", False),
        ("gated", False),
        ("last", False),
    ]
    assert steps[1].input == suspended_input  # exactly what was shown for approval
    assert "task.run.resumed" in topics(engine)


def test_a_second_gate_stops_the_resumed_run_again(engine: Engine, settings: Settings) -> None:
    second = {**LAST, "approval": "required"}
    run_id = queue_run(engine, pipeline(FIRST, GATED, second))
    execute(engine, settings, run_id)
    approve(engine, run_id)
    resume(engine)
    assert execute(engine, settings, run_id).status == "waiting_approval"
    run = run_row(engine, run_id)
    assert run.suspended_step == "last" and run.approved_steps == ["gated"]
    assert [s.step_id for s in steps_of(engine, run_id)] == ["first", "gated"]


def test_a_timed_out_approval_is_rejected_by_default(engine: Engine, settings: Settings) -> None:
    gated = {**GATED, "approval_timeout_seconds": 1}
    run_id = queue_run(engine, pipeline(FIRST, gated))
    execute(engine, settings, run_id)
    run = run_row(engine, run_id)
    assert run.resume_action == "reject" and run.resume_at is not None
    result, _ = resume(engine)
    assert result.canceled == []  # not yet
    time.sleep(1.1)
    result, published = resume(engine)
    assert result.canceled == [run_id] and published.runs == []
    run = run_row(engine, run_id)
    assert run.status == "canceled" and "not given in time" in run.reason
    assert topics(engine)[-1] == "task.run.canceled"


def test_on_timeout_approve_resumes(engine: Engine, settings: Settings) -> None:
    gated = {**GATED, "approval_timeout_seconds": 1, "on_timeout": "approve"}
    run_id = queue_run(engine, pipeline(FIRST, gated, LAST))
    execute(engine, settings, run_id)
    result, _ = resume(engine, datetime.now(UTC) + timedelta(seconds=2))
    assert [q.id for q in result.queued] == [run_id]
    assert execute(engine, settings, run_id).status == "succeeded"


def test_a_resume_waits_for_a_free_concurrency_slot(engine: Engine, settings: Settings) -> None:
    run_id = queue_run(engine, pipeline(FIRST, GATED), concurrency_key="k")
    execute(engine, settings, run_id)
    with engine.begin() as conn:  # another run of the key takes the only slot meanwhile
        other = make_task(conn, pipeline(FIRST), concurrency_key="k")
        add_due(conn, other, datetime.now(UTC) - timedelta(seconds=1))
    other_run = queue_run_of(engine)
    approve(engine, run_id)
    result, _ = resume(engine)
    assert result.queued == [] and result.waiting == 1
    assert run_row(engine, run_id).status == "waiting_approval"
    assert execute(engine, settings, other_run).status == "succeeded"
    result, _ = resume(engine)
    assert [q.id for q in result.queued] == [run_id]


def queue_run_of(engine: Engine) -> uuid.UUID:
    (queued,) = dispatching.dispatch_batch(engine, NS, datetime.now(UTC), 10).queued
    return queued.id


def test_a_step_from_a_tool_that_requires_approval_gates(
    engine: Engine, settings: Settings
) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO tool (address, transport, endpoint, input_schema, output_schema,"
                " requires_approval) VALUES ('svc.send', 'http', 'http://127.0.0.1:9/x',"
                " '{}', '{}', true)"
            )
        )
    step: dict[str, Any] = {"id": "send", "uses": "svc.send", "with": {"to": "me"}}
    run_id = queue_run(engine, pipeline(FIRST, step))
    assert execute(engine, settings, run_id).status == RunStatus.WAITING_APPROVAL
    run = run_row(engine, run_id)
    assert run.suspended_step == "send" and run.suspended_input == {"to": "me"}
    assert "tool 'svc.send'" in run.suspend_reason


def test_a_paused_tasks_run_resumes_only_once_the_task_does(
    engine: Engine, settings: Settings
) -> None:
    run_id = queue_run(engine, pipeline(FIRST, GATED))
    execute(engine, settings, run_id)
    approve(engine, run_id)
    task_id = run_row(engine, run_id).task_id
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE task SET status = 'paused' WHERE id = :t"), {"t": task_id})
        assert not queries.backlog(
            conn, datetime.now(UTC), stale_before=T_PAST, republish_before=T_PAST
        ).dispatchable
    result, _ = resume(engine)
    assert result.queued == [] and run_row(engine, run_id).status == "waiting_approval"
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE task SET status = 'active' WHERE id = :t"), {"t": task_id})
        assert queries.backlog(
            conn, datetime.now(UTC), stale_before=T_PAST, republish_before=T_PAST
        ).dispatchable
    result, _ = resume(engine)
    assert [q.id for q in result.queued] == [run_id]


T_PAST = datetime(2000, 1, 1, tzinfo=UTC)


def test_each_item_of_a_loop_is_approved_on_its_own(engine: Engine, settings: Settings) -> None:
    loop = {
        "id": "loop",
        "uses": "pipeline.foreach",
        "with": {
            "items": [1, 2],
            "body": [
                {
                    "id": "send",
                    "uses": "builtin.echo",
                    "with": {"n": "${item}"},
                    "approval": "required",
                }
            ],
        },
    }
    run_id = queue_run(engine, pipeline(FIRST, loop))
    stops = []
    for _ in range(2):
        assert execute(engine, settings, run_id).status == "waiting_approval"
        row = run_row(engine, run_id)
        stops.append((row.suspended_step, row.suspended_input))
        approve(engine, run_id)
        resume(engine)
    assert stops == [("loop[0].send", {"n": 1}), ("loop[1].send", {"n": 2})]
    assert execute(engine, settings, run_id).status == "succeeded"
    assert [s.step_path for s in steps_of(engine, run_id)] == [
        "first",
        "loop[0].send",
        "loop[1].send",
        "loop",
    ]
    assert run_row(engine, run_id).approved_steps == ["loop[0].send", "loop[1].send"]


def test_a_retry_is_not_asked_again_for_a_step_an_earlier_attempt_completed(
    engine: Engine, settings: Settings
) -> None:
    flaky = {"id": "flaky", "uses": "builtin.sleep", "with": {"seconds": 2}, "timeout_seconds": 0.1}
    run_id = queue_run(
        engine, pipeline(FIRST, GATED, flaky), max_retries=1, backoff_strategy="none"
    )
    execute(engine, settings, run_id)
    approve(engine, run_id)
    resume(engine)
    assert execute(engine, settings, run_id).status == "failed"  # a retryable timeout
    (retry,) = dispatching.dispatch_batch(
        engine, NS, datetime.now(UTC) + timedelta(seconds=5), 5
    ).queued
    assert execute(engine, settings, retry.id).status == "failed"  # no second approval
    again = run_row(engine, retry.id)
    assert again.attempt == 2 and again.suspended_at is None
    steps = {s.step_id: s.cached for s in steps_of(engine, retry.id)}
    assert steps == {"first": True, "gated": True, "flaky": False}
