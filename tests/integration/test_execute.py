"""Execution against real PostgreSQL, in process: claim, receipts, retries, timeouts, leases.

Runs are dispatched for real (``dispatch_batch``) and executed with ``execute_run`` exactly
as a worker would, with real sleeps; only the Celery shell is left out (the acceptance tests
in ``tests/acceptance/test_discipline.py`` run it as real processes).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from ordinaut.clock import utcnow
from ordinaut.config import Settings
from ordinaut.runs import dispatch as dispatching
from ordinaut.runs import execute as executing
from ordinaut.runs import maintenance
from ordinaut.runs.backoff import retry_delay
from ordinaut.runs.dispatch import QueuedRun
from ordinaut.vocabulary import BackoffStrategy, RunStatus
from tests.integration.test_dispatch import NS, add_due, make_task, runs
from tests.support import wait_for

OWNER = "test-host:1"


def queue_run(engine: Engine, payload: Mapping[str, Any], **fields: Any) -> uuid.UUID:
    """A task with one due occurrence, dispatched: returns the queued run's id."""
    with engine.begin() as conn:
        task_id = make_task(conn, payload, **fields)
        add_due(conn, task_id, datetime.now(UTC) - timedelta(seconds=1))
    (queued,) = dispatching.dispatch_batch(engine, NS, datetime.now(UTC), 10).queued
    return queued.id


def execute(engine: Engine, settings: Settings, run_id: uuid.UUID) -> executing.Outcome:
    return executing.execute_run(engine, settings, run_id, OWNER, sleep=time.sleep, clock=utcnow)


def run_row(engine: Engine, run_id: uuid.UUID) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT * FROM task_run WHERE id = :i"), {"i": run_id}).one()


def steps_of(engine: Engine, run_id: uuid.UUID) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text("SELECT * FROM step_result WHERE run_id = :i ORDER BY id"), {"i": run_id}
            ).all()
        )


def due_rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT * FROM due_work ORDER BY id")).all())


def topics(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.text("SELECT topic FROM outbox ORDER BY id"))]


def pipeline(*steps: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    return {"pipeline": list(steps), **extra}


ECHO = {"id": "hello", "uses": "builtin.echo", "with": {"attempt": "${run.attempt}"}}
AFTER = {**ECHO, "id": "after"}


def sleep_step(step_id: str, seconds: float, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "uses": "builtin.sleep", "with": {"seconds": seconds}, **extra}


def wait_in_step_after(engine: Engine, run_id: uuid.UUID, *done: str) -> None:
    """Until exactly ``done`` are on record: the step after them has begun.

    Receipts are written just before the next step's tool call, after its cancel check.
    """
    wait_for(
        lambda: [s.step_id for s in steps_of(engine, run_id)] == list(done),
        10,
        interval=0.02,
        what=f"the receipts of {done}",
    )


# --- claim -----------------------------------------------------------------------------


def test_success_is_recorded_with_receipt_and_events(engine: Engine, settings: Settings) -> None:
    run_id = queue_run(engine, pipeline(ECHO, {**ECHO, "id": "again", "save_as": "x"}))
    outcome = execute(engine, settings, run_id)
    run = run_row(engine, run_id)
    steps = steps_of(engine, run_id)
    assert outcome.status == "succeeded" and outcome.retry_at is None
    assert (run.status, run.success, run.lease_owner) == ("succeeded", True, OWNER)
    assert run.output == {"attempt": 1} and run.leased_until is None
    assert run.started_at <= run.finished_at
    assert [(s.step_id, s.status, s.cached) for s in steps] == [
        ("hello", "succeeded", False),
        ("again", "succeeded", False),
    ]
    assert steps[0].idempotency_key.endswith(":hello")
    assert topics(engine) == ["task.run.started", "task.run.succeeded"]


def test_a_duplicate_message_runs_nothing(engine: Engine, settings: Settings) -> None:
    run_id = queue_run(engine, pipeline(sleep_step("nap", 0.5)))
    outcomes: list[executing.Outcome] = []
    threads = [
        threading.Thread(target=lambda: outcomes.append(execute(engine, settings, run_id)))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(o.status for o in outcomes) == ["ignored", "ignored", "succeeded"]
    assert execute(engine, settings, run_id).status == "ignored"  # redelivered after finish
    assert len(steps_of(engine, run_id)) == 1
    assert topics(engine).count("task.run.started") == 1


def test_a_canceled_queued_run_is_not_claimed(engine: Engine, settings: Settings) -> None:
    run_id = queue_run(engine, pipeline(ECHO))
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE task_run SET status = 'canceled' WHERE id = :i"), {"i": run_id}
        )
    assert execute(engine, settings, run_id).status == "ignored"
    assert run_row(engine, run_id).started_at is None and steps_of(engine, run_id) == []


# --- retries ----------------------------------------------------------------------------


def test_retryable_failure_plans_the_next_attempt_at_the_backoff_time(
    engine: Engine, settings: Settings
) -> None:
    slow = sleep_step("slow", 1.0, timeout_seconds=0.1)  # a step timeout: retryable
    run_id = queue_run(engine, pipeline(slow), max_retries=2, backoff_strategy="exponential")
    outcome = execute(engine, settings, run_id)
    run = run_row(engine, run_id)
    (due,) = due_rows(engine)
    assert outcome.status == "failed" and run.status == "failed"
    assert "timed out after 0.1s" in run.error and "'slow'" in run.error
    assert (due.trigger, due.attempt, due.run_at) == ("retry", 2, run.scheduled_for)
    delay = (due.not_before - run.finished_at).total_seconds()
    assert abs(delay - settings.backoff_base_seconds) < 0.2  # exponential, attempt 1: base
    assert outcome.retry_at == due.not_before
    assert topics(engine)[-2:] == ["task.run.failed", "task.run.retry_planned"]


def test_every_attempt_is_its_own_run_until_retries_run_out(
    engine: Engine, settings: Settings
) -> None:
    slow = sleep_step("slow", 1.0, timeout_seconds=0.05)
    run_id = queue_run(engine, pipeline(slow), max_retries=2, backoff_strategy="none")
    queued = [run_id]
    while queued:
        execute(engine, settings, queued[0])
        queued = [
            q.id for q in dispatching.dispatch_batch(engine, NS, datetime.now(UTC), 10).queued
        ]
    with engine.connect() as conn:
        made = runs(conn)
    assert [(r.attempt, r.status) for r in made] == [(1, "failed"), (2, "failed"), (3, "failed")]
    assert due_rows(engine) == []  # max_retries=2: three attempts, then it stays failed
    assert len({r.scheduled_for for r in made}) == 1  # all attempts of one occurrence


def test_non_retryable_failure_fails_at_once(engine: Engine, settings: Settings) -> None:
    bad = {"id": "nap", "uses": "builtin.sleep", "with": {"seconds": "${params.when}"}}
    run_id = queue_run(engine, pipeline(bad, params={"when": "soon"}), max_retries=5)
    outcome = execute(engine, settings, run_id)
    run = run_row(engine, run_id)
    assert outcome.status == "failed" and outcome.retry_at is None
    assert "with.seconds" in run.error and "input schema" in run.error
    assert due_rows(engine) == []


def test_a_step_retry_override_replaces_the_task_policy(engine: Engine, settings: Settings) -> None:
    no_retry = sleep_step("flaky", 1.0, timeout_seconds=0.05, retry={"max_retries": 0})
    run_id = queue_run(engine, pipeline(no_retry), max_retries=5)
    execute(engine, settings, run_id)
    assert due_rows(engine) == []
    fixed = sleep_step(
        "flaky2", 1.0, timeout_seconds=0.05, retry={"max_retries": 1, "backoff": "fixed"}
    )
    run_id = queue_run(engine, pipeline(fixed), max_retries=0, backoff_strategy="exponential")
    execute(engine, settings, run_id)
    (due,) = due_rows(engine)
    run = run_row(engine, run_id)
    expected = retry_delay(BackoffStrategy.FIXED, 1, base=1.0, cap=30.0)
    assert abs((due.not_before - run.finished_at).total_seconds() - expected) < 0.2


# --- timeouts ---------------------------------------------------------------------------


def test_run_timeout_fails_the_attempt_and_follows_the_retry_policy(
    engine: Engine, settings: Settings
) -> None:
    steps = pipeline(sleep_step("a", 0.4), sleep_step("b", 5.0), sleep_step("c", 0.1))
    run_id = queue_run(engine, steps, timeout_seconds=1, max_retries=1)
    began = time.monotonic()
    outcome = execute(engine, settings, run_id)
    took = time.monotonic() - began
    run = run_row(engine, run_id)
    assert outcome.status == "failed" and 0.9 < took < 2.5
    assert "timed out" in run.error and "timeout_seconds" in run.error
    assert [s.step_id for s in steps_of(engine, run_id)] == ["a", "b"]  # c never started
    assert len(due_rows(engine)) == 1  # retryable like any transient failure


# --- receipts and idempotency ---------------------------------------------------------------


def test_a_retry_serves_completed_steps_from_their_receipts(
    engine: Engine, settings: Settings
) -> None:
    flaky = sleep_step("send", 1.0, timeout_seconds=0.05)
    run_id = queue_run(engine, pipeline(ECHO, flaky), max_retries=1, backoff_strategy="none")
    execute(engine, settings, run_id)
    (retry,) = dispatching.dispatch_batch(engine, NS, datetime.now(UTC), 10).queued
    execute(engine, settings, retry.id)
    first, second = steps_of(engine, run_id), steps_of(engine, retry.id)
    assert [(s.step_id, s.status, s.cached) for s in first] == [
        ("hello", "succeeded", False),
        ("send", "failed", False),
    ]
    assert [(s.step_id, s.cached) for s in second] == [("hello", True), ("send", False)]
    assert second[0].idempotency_key == first[0].idempotency_key
    # the echo was not called again: its output still says attempt 1
    assert second[0].output == {"attempt": 1} and run_row(engine, retry.id).attempt == 2


def test_a_receipt_is_on_record_before_the_next_step_starts(
    engine: Engine, settings: Settings
) -> None:
    run_id = queue_run(engine, pipeline(ECHO, sleep_step("nap", 1.0)))
    seen: list[list[str]] = []

    def watch() -> None:  # the first receipts on record, while the nap still runs
        seen.append(
            wait_for(lambda: [s.step_id for s in steps_of(engine, run_id)], 10, interval=0.02)
        )

    watcher = threading.Thread(target=watch)
    watcher.start()
    execute(engine, settings, run_id)
    watcher.join()
    assert seen == [["hello"]]


# --- leases, cancel, reaper ---------------------------------------------------------------


def test_the_lease_and_reservations_are_extended_while_a_long_step_runs(
    engine: Engine, settings: Settings
) -> None:
    short = settings.model_copy(update={"lease_seconds": 5})
    run_id = queue_run(engine, pipeline(sleep_step("long", 3.5)))
    waiting = queue_run(engine, pipeline(ECHO))  # the next run of the same message
    executing.reserve(engine, short, [waiting], OWNER)
    reserved_until = run_row(engine, waiting).leased_until
    marks: list[datetime] = []

    def lease_while_running() -> datetime | None:
        row = run_row(engine, run_id)
        return row.leased_until if row.status == RunStatus.RUNNING else None

    def pushed_forward() -> datetime | None:
        until = lease_while_running()
        return until if until is not None and until > marks[0] else None

    def watch() -> None:  # the lease as claimed, then once it has been extended
        marks.append(wait_for(lease_while_running, 10, interval=0.02, what="the claim"))
        marks.append(wait_for(pushed_forward, 10, interval=0.05, what="a lease extension"))

    watcher = threading.Thread(target=watch)
    watcher.start()
    outcome = executing.execute_run(
        engine, short, run_id, OWNER, sleep=time.sleep, clock=utcnow, reserved=[waiting]
    )
    watcher.join()
    assert outcome.status == "succeeded"
    assert marks[-1] > marks[0]  # pushed forward during the step
    assert marks[-1] > run_row(engine, run_id).started_at + timedelta(seconds=5)
    later = run_row(engine, waiting)
    assert (later.status, later.lease_owner) == ("queued", OWNER)
    assert later.leased_until > reserved_until  # the reservation went along


def test_cancel_through_the_row_stops_the_run_between_steps(
    engine: Engine, settings: Settings
) -> None:
    run_id = queue_run(engine, pipeline(ECHO, sleep_step("one", 1.2), AFTER))

    def cancel() -> None:
        wait_in_step_after(engine, run_id, "hello")  # inside "one"
        with engine.begin() as conn:  # what the API's cancel does to a running run
            conn.execute(
                sa.text(
                    "UPDATE task_run SET status = 'canceled', finished_at = now(), "
                    "reason = 'task canceled', leased_until = NULL WHERE id = :i"
                ),
                {"i": run_id},
            )

    canceller = threading.Thread(target=cancel)
    canceller.start()
    outcome = execute(engine, settings, run_id)
    canceller.join()
    run = run_row(engine, run_id)
    assert outcome.status == "canceled"
    assert (run.status, run.reason) == ("canceled", "task canceled")
    assert [s.step_id for s in steps_of(engine, run_id)] == ["hello", "one"]  # "after" never ran
    assert due_rows(engine) == []


def test_reaper_fails_expired_leases_and_plans_retries_while_retries_last(
    engine: Engine, settings: Settings
) -> None:
    keep = queue_run(engine, pipeline(ECHO), max_retries=1, backoff_strategy="fixed")
    last = queue_run(engine, pipeline(ECHO), max_retries=0)
    alive = queue_run(engine, pipeline(ECHO), max_retries=3)
    with engine.begin() as conn:  # three claimed runs; two workers died long ago
        conn.execute(
            sa.text(
                "UPDATE task_run SET status = 'running', lease_owner = 'dead:1', "
                "started_at = now(), leased_until = now() - interval '1 second' "
                "WHERE id = ANY(:dead)"
            ),
            {"dead": [keep, last]},
        )
        conn.execute(
            sa.text(
                "UPDATE task_run SET status = 'running', lease_owner = 'alive:1', "
                "started_at = now(), leased_until = now() + interval '1 minute' WHERE id = :i"
            ),
            {"i": alive},
        )
    reaped = maintenance.reap(engine, settings, utcnow())
    assert {r.run_id for r in reaped} == {keep, last}
    for run_id in (keep, last):
        run = run_row(engine, run_id)
        assert run.status == "failed" and "lease expired: worker dead:1" in run.error
    assert run_row(engine, alive).status == "running"
    (due,) = due_rows(engine)
    assert (due.task_id, due.attempt, due.trigger) == (run_row(engine, keep).task_id, 2, "retry")
    assert {r.run_id: r.retry_at is not None for r in reaped} == {keep: True, last: False}
    assert maintenance.reap(engine, settings, utcnow()) == []  # nothing twice


def test_a_worker_whose_lease_was_reaped_cannot_overwrite_the_failure(
    engine: Engine, settings: Settings
) -> None:
    run_id = queue_run(engine, pipeline(ECHO, sleep_step("one", 1.5), AFTER), max_retries=1)

    def reap_underneath() -> None:
        wait_in_step_after(engine, run_id, "hello")  # inside "one"
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE task_run SET leased_until = now() - interval '1s' WHERE id = :i"),
                {"i": run_id},
            )
        maintenance.reap(engine, settings, utcnow())

    reaper = threading.Thread(target=reap_underneath)
    reaper.start()
    outcome = execute(engine, settings, run_id)
    reaper.join()
    run = run_row(engine, run_id)
    assert outcome.status == "lost"
    assert run.status == "failed" and run.error.startswith("lease expired")
    steps = [s.step_id for s in steps_of(engine, run_id)]
    assert steps == ["hello", "one"]  # stopped before "after"
    assert len(due_rows(engine)) == 1  # the reaper's retry, not a second one


def test_sweeper_resends_queued_runs_without_a_message(engine: Engine, settings: Settings) -> None:
    never = queue_run(engine, pipeline(ECHO))
    lost = queue_run(engine, pipeline(ECHO))
    fresh = queue_run(engine, pipeline(ECHO))
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE task_run SET created_at = now() - interval '1 minute' WHERE id = :i"),
            {"i": never},
        )
        conn.execute(
            sa.text(
                "UPDATE task_run SET created_at = now() - interval '2 hours', "
                "published_at = now() - interval '1 hour' WHERE id = :i"
            ),
            {"i": lost},
        )
    sent: list[uuid.UUID] = []
    resent = maintenance.sweep(
        engine, settings, datetime.now(UTC), lambda q: sent.extend(r.id for r in q)
    )
    assert set(resent) == set(sent) == {never, lost}
    assert fresh not in sent and run_row(engine, never).published_at is not None
    assert maintenance.sweep(engine, settings, datetime.now(UTC), lambda q: None) == []

    def refuse(queued: Sequence[QueuedRun]) -> None:
        raise ConnectionError("broker down")

    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE task_run SET published_at = NULL, "
                "created_at = now() - interval '1 minute' WHERE id = :i"
            ),
            {"i": fresh},
        )
    with pytest.raises(ConnectionError):
        maintenance.sweep(engine, settings, datetime.now(UTC), refuse)
    assert run_row(engine, fresh).published_at is None  # rolled back: tried again next sweep


def test_sweeper_resends_runs_whose_reservation_ran_out(engine: Engine, settings: Settings) -> None:
    """A worker died holding a message for several runs: the ones it had not claimed."""
    orphan = queue_run(engine, pipeline(ECHO))
    held = queue_run(engine, pipeline(ECHO))
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE task_run SET published_at = now()"))
    executing.reserve(engine, settings, [orphan, held], "dead:1")
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE task_run SET leased_until = now() - interval '1s' WHERE id = :i"),
            {"i": orphan},
        )
    sent: list[uuid.UUID] = []
    assert maintenance.sweep(
        engine, settings, datetime.now(UTC), lambda q: sent.extend(r.id for r in q)
    ) == [orphan]
    row = run_row(engine, orphan)
    assert (row.status, row.lease_owner, row.leased_until) == ("queued", None, None)
    assert run_row(engine, held).lease_owner == "dead:1"  # still within its reservation
    assert execute(engine, settings, orphan).status == "succeeded"  # anyone may claim it


def test_a_claim_on_a_connection_the_server_dropped_is_made_again_on_a_fresh_one(
    engine: Engine, settings: Settings
) -> None:
    # the claim runs on the driver's cursor (store/queries/driver.py): a dropped connection
    # must still come back as SQLAlchemy's "connection invalidated" error, which the claim
    # answers by trying once more on a fresh connection
    run_id = queue_run(engine, pipeline(ECHO))
    with engine.connect() as conn:  # pooled connections, used a moment ago: not pinged
        database = conn.execute(sa.text("SELECT current_database()")).scalar_one()
    admin = make_url(settings.database_url).set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as kill:
        ended = kill.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchone()
    assert ended is not None and ended[0] >= 1
    outcome = execute(engine, settings, run_id)
    assert outcome.status == "succeeded"
    assert run_row(engine, run_id).status == "succeeded"
