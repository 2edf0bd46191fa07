"""A worker's shutdown grace against real PostgreSQL, in process: runs are handed back.

The grace period is started here as a worker's main process starts it on SIGTERM
(``shutdown.begin``); the Celery shell around it (the signal, the cold shutdown) runs with
real worker processes in ``tests/acceptance/test_warm_shutdown.py``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from celery.exceptions import Reject
from sqlalchemy.engine import Engine

from ordinaut.celery import create_app
from ordinaut.config import Settings
from ordinaut.runs import dispatch as dispatching
from ordinaut.runs import shutdown
from ordinaut.runs.execute import Outcome
from ordinaut.store import queries
from ordinaut.vocabulary import TaskStatus
from tests.integration.test_dispatch import NS, add_due, make_task
from tests.integration.test_execute import (
    ECHO,
    OWNER,
    due_rows,
    execute,
    pipeline,
    queue_run,
    run_row,
    sleep_step,
    steps_of,
    topics,
    wait_in_step_after,
)
from tests.support import wait_for


@pytest.fixture(autouse=True)
def no_shutdown() -> Iterator[None]:
    shutdown.reset()
    yield
    shutdown.reset()


def start(
    engine: Engine, settings: Settings, run_id: uuid.UUID
) -> tuple[threading.Thread, list[Outcome]]:
    outcomes: list[Outcome] = []
    thread = threading.Thread(target=lambda: outcomes.append(execute(engine, settings, run_id)))
    thread.start()
    return thread, outcomes


def dispatch_next(engine: Engine) -> uuid.UUID:
    (queued,) = dispatching.dispatch_batch(engine, NS, datetime.now(UTC), 10).queued
    return queued.id


def test_after_the_grace_a_run_stops_at_its_next_step_and_is_handed_back(
    engine: Engine, settings: Settings
) -> None:
    steps = [sleep_step(name, 0.3) for name in "abcd"]
    run_id = queue_run(engine, pipeline(*steps), max_retries=0)
    thread, outcomes = start(engine, settings, run_id)
    wait_in_step_after(engine, run_id, "a")  # step b is under way
    shutdown.begin(0.0, time.monotonic())  # SIGTERM, no grace left
    thread.join(10)

    assert outcomes[0].status == "handed_back" and outcomes[0].wake_dispatch
    run = run_row(engine, run_id)
    assert (run.status, run.error, run.leased_until) == ("failed", shutdown.HANDED_BACK, None)
    assert [(s.step_id, s.status) for s in steps_of(engine, run_id)] == [
        ("a", "succeeded"),
        ("b", "succeeded"),  # the step under way finished; its receipt came with the hand-back
    ]
    # max_retries is 0, yet the next attempt is due at once: the run was interrupted
    (retry,) = due_rows(engine)
    assert (retry.attempt, retry.trigger) == (2, "retry")
    assert retry.not_before == run.finished_at
    assert topics(engine)[-2:] == ["task.run.failed", "task.run.retry_planned"]

    shutdown.reset()  # the next worker
    again = dispatch_next(engine)
    assert execute(engine, settings, again).status == "succeeded"
    assert [(s.step_id, s.cached) for s in steps_of(engine, again)] == [
        ("a", True),  # completed steps are served from their receipts, not run twice
        ("b", True),
        ("c", False),
        ("d", False),
    ]


def test_a_run_inside_a_long_step_is_handed_back_by_its_lease_keeper(
    engine: Engine, settings: Settings
) -> None:
    run_id = queue_run(engine, pipeline(sleep_step("long", 4), ECHO))
    thread, outcomes = start(engine, settings, run_id)
    wait_for(lambda: run_row(engine, run_id).status == "running", 10, what="the claim")
    shutdown.begin(0.0, time.monotonic())

    # handed back while the step still runs, not when its lease would have expired
    wait_for(lambda: run_row(engine, run_id).status == "failed", 5, what="the hand-back")
    assert thread.is_alive()
    run = run_row(engine, run_id)
    assert run.error == shutdown.HANDED_BACK_IN_STEP
    (retry,) = due_rows(engine)
    # due once the worker's pool is surely gone, so a step ending meanwhile is on record first
    assert retry.attempt == 2
    assert retry.not_before - run.finished_at == timedelta(seconds=shutdown.IN_STEP_RETRY_DELAY)

    thread.join(10)
    assert outcomes[0].status == "lost"
    assert [s.step_id for s in steps_of(engine, run_id)] == ["long"]  # its receipt stands
    assert run_row(engine, run_id).status == "failed"


def test_hand_back_needs_the_lease_and_skips_the_retry_of_a_canceled_task(
    engine: Engine, settings: Settings
) -> None:
    run_id = queue_run(engine, pipeline(ECHO))
    with engine.begin() as conn:
        claimed = queries.claim_run(conn, run_id, OWNER, settings.lease_seconds)
        assert claimed is not None
        assert queries.hand_back_run(conn, run_id, "someone-else:1", error="x") is None
        conn.execute(
            sa.text("UPDATE task SET status = :s WHERE id = :t"),
            {"s": TaskStatus.CANCELED.value, "t": claimed.task_id},
        )
        assert queries.hand_back_run(conn, run_id, OWNER, error="x") is False
        assert queries.hand_back_run(conn, run_id, OWNER, error="x") is None  # once
    assert run_row(engine, run_id).status == "failed"
    assert due_rows(engine) == []


def test_the_rest_of_a_message_goes_back_to_the_queue_after_the_grace(
    engine: Engine, settings: Settings
) -> None:
    with engine.begin() as conn:
        first_task = make_task(conn, pipeline(ECHO))
        second_task = make_task(conn, pipeline(ECHO))
        for task_id in (first_task, second_task):
            add_due(conn, task_id, datetime.now(UTC) - timedelta(seconds=1))
    first, second = (
        q.id for q in dispatching.dispatch_batch(engine, NS, datetime.now(UTC), 10).queued
    )
    app = create_app(settings)
    task = app.tasks["ordinaut.execute_run"]
    shutdown.begin(0.0, time.monotonic())
    try:
        with pytest.raises(Reject) as rejected:
            task(str(first), str(second))  # one message for both runs, as under a burst
    finally:
        app.ordinaut_runtime().close()
    assert rejected.value.requeue
    assert run_row(engine, first).error == shutdown.HANDED_BACK
    assert run_row(engine, second).status == "queued"  # not started; its message is requeued
