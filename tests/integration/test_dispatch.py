"""Dispatch against real PostgreSQL: priority, dedupe, overlap, concurrency keys, SKIP LOCKED.

The helpers at the top (``make_task``, ``add_due``) are shared with ``test_execute.py``.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ordinaut.config import Settings
from ordinaut.runs import dispatch as dispatching
from ordinaut.runs.dispatch import DispatchResult, QueuedRun
from ordinaut.store import queries
from ordinaut.store.engine import make_engine

ECHO = {"pipeline": [{"id": "echo", "uses": "builtin.echo", "with": {"ok": True}}]}
NS = "t"


def agent_id(conn: Connection) -> uuid.UUID:
    """The test agent (created on first use)."""
    value: uuid.UUID = conn.execute(
        sa.text(
            "INSERT INTO agent (name, scopes) VALUES ('tester', '{admin}') "
            "ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id"
        )
    ).scalar_one()
    return value


def make_task(conn: Connection, payload: Mapping[str, Any] = ECHO, **fields: Any) -> uuid.UUID:
    """An active once-task with no next_run_at (beat leaves it alone); ``fields`` override."""
    values: dict[str, Any] = {
        "title": "t",
        "schedule_kind": "once",
        "schedule_expr": "2026-01-01T00:00:00+00:00",
        "timezone": "UTC",
        "payload": json.dumps(payload),
        **fields,
    }
    cols = ", ".join(values)
    params = ", ".join("CAST(:payload AS jsonb)" if c == "payload" else f":{c}" for c in values)
    task_id: uuid.UUID = conn.execute(
        sa.text(f"INSERT INTO task (created_by, {cols}) VALUES (:agent, {params}) RETURNING id"),
        {"agent": agent_id(conn), **values},
    ).scalar_one()
    return task_id


def add_due(
    conn: Connection,
    task_id: uuid.UUID,
    run_at: datetime,
    *,
    not_before: datetime | None = None,
    priority: int = 5,
    trigger: str = "schedule",
    attempt: int = 1,
) -> None:
    """One due_work row."""
    queries.insert_due_work(
        conn,
        [
            {
                "task_id": task_id,
                "run_at": run_at,
                "not_before": not_before or run_at,
                "priority": priority,
                "trigger": trigger,
                "attempt": attempt,
            }
        ],
    )


def set_status(engine: Engine, run_ids: Sequence[uuid.UUID], status: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE task_run SET status = CAST(:s AS run_status) WHERE id = ANY(:ids)"),
            {"s": status, "ids": list(run_ids)},
        )


def runs(conn: Connection, task_id: uuid.UUID | None = None) -> list[Any]:
    query = "SELECT * FROM task_run" + (" WHERE task_id = :t" if task_id else "")
    return list(conn.execute(sa.text(query + " ORDER BY created_at, id"), {"t": task_id}).all())


def due_count(conn: Connection) -> int:
    return int(conn.execute(sa.text("SELECT count(*) FROM due_work")).scalar_one())


NOW = datetime.now(UTC).replace(microsecond=0)


def batch(engine: Engine, limit: int = 500, now: datetime | None = None) -> DispatchResult:
    return dispatching.dispatch_batch(engine, NS, now or datetime.now(UTC), limit)


# --- priority and time ------------------------------------------------------------------


def test_priority_one_is_most_urgent_then_not_before(engine: Engine) -> None:
    with engine.begin() as conn:
        task_id = make_task(conn)
        for i, priority in enumerate([9, 5, 1, 5, 1, 9]):
            add_due(
                conn, task_id, NOW - timedelta(seconds=60 - i), priority=priority
            )  # later i = later not_before
    first = batch(engine, limit=3)
    second = batch(engine, limit=3)
    with engine.connect() as conn:
        by_id = {r.id: r for r in runs(conn, task_id)}
    picked = [
        (by_id[q.id].priority, by_id[q.id].scheduled_for) for q in first.queued + second.queued
    ]
    assert [p for p, _ in picked] == [1, 1, 5, 5, 9, 9]
    assert [p for p, _ in picked[:3]] == [1, 1, 5]  # the first batch took the most urgent
    # within one priority, the earlier not_before goes first
    assert picked[0][1] < picked[1][1] and picked[2][1] < picked[3][1]
    assert [q.priority for q in first.queued] == [1, 1, 5]


def test_work_not_yet_due_and_paused_tasks_wait(engine: Engine) -> None:
    with engine.begin() as conn:
        later = make_task(conn)
        paused = make_task(conn, status="paused")
        add_due(conn, later, NOW, not_before=datetime.now(UTC) + timedelta(minutes=5))
        add_due(conn, paused, NOW)
    result = batch(engine)
    assert (result.leased, result.queued) == (0, [])
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE task SET status = 'active' WHERE id = :t"), {"t": paused})
    assert len(batch(engine).queued) == 1
    assert len(batch(engine, now=datetime.now(UTC) + timedelta(minutes=6)).queued) == 1


def test_occurrence_of_a_canceled_task_is_recorded_as_skipped(engine: Engine) -> None:
    with engine.begin() as conn:
        task_id = make_task(conn, status="canceled")
        add_due(conn, task_id, NOW)
    result = batch(engine)
    with engine.connect() as conn:
        (run,) = runs(conn, task_id)
        assert due_count(conn) == 0
    assert (result.skipped, result.queued) == (1, [])
    assert run.status == "skipped" and "canceled" in run.reason
    assert run.finished_at is not None


def test_run_rows_carry_the_occurrence_attempt_and_lag_timestamps(engine: Engine) -> None:
    with engine.begin() as conn:
        task_id = make_task(conn, concurrency_key="k", dedupe_key="d", dedupe_window_seconds=5)
        add_due(conn, task_id, NOW, not_before=NOW + timedelta(seconds=1), attempt=3)
    (queued,) = batch(engine, now=NOW + timedelta(seconds=2)).queued
    with engine.connect() as conn:
        (run,) = runs(conn, task_id)
        created = conn.execute(sa.text("SELECT now()")).scalar_one()
    assert run.id == queued.id and run.status == "queued" and run.attempt == 3
    assert run.scheduled_for == NOW and run.not_before == NOW + timedelta(seconds=1)
    assert run.concurrency_key == "k" and run.dedupe_key == "d"
    assert run.work_created_at is not None and run.work_created_at <= created
    assert run.published_at is None  # dispatch_batch does not publish; dispatch() does


# --- dedupe -------------------------------------------------------------------------------


def test_dedupe_window_skips_in_the_same_batch_and_across_batches(engine: Engine) -> None:
    with engine.begin() as conn:
        a = make_task(conn, dedupe_key="brief", dedupe_window_seconds=600)
        b = make_task(conn, dedupe_key="brief", dedupe_window_seconds=600)
        add_due(conn, a, NOW - timedelta(minutes=30))
        add_due(conn, a, NOW - timedelta(minutes=25))  # 5 min later: same batch, skipped
    first = batch(engine)
    assert (len(first.queued), first.skipped) == (1, 1)
    with engine.begin() as conn:
        add_due(conn, b, NOW - timedelta(minutes=22))  # another task, same key, 8 min later
        add_due(conn, a, NOW - timedelta(minutes=15))  # 15 min after the first: runs
    second = batch(engine)
    assert (len(second.queued), second.skipped) == (1, 1)
    with engine.connect() as conn:
        skipped = [r for r in runs(conn) if r.status == "skipped"]
    assert len(skipped) == 2
    assert all(r.reason.startswith("dedupe:") and "'brief'" in r.reason for r in skipped)
    assert {r.task_id for r in skipped} == {a, b}


def test_dedupe_ignores_failed_runs_and_retries(engine: Engine) -> None:
    with engine.begin() as conn:
        task_id = make_task(conn, dedupe_key="k", dedupe_window_seconds=600)
        add_due(conn, task_id, NOW - timedelta(minutes=3))
    assert len(batch(engine).queued) == 1
    with engine.begin() as conn:
        # a retry of the same occurrence is never deduplicated against its own earlier run
        add_due(conn, task_id, NOW - timedelta(minutes=2), trigger="retry", attempt=2)
    assert len(batch(engine).queued) == 1
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE task_run SET status = 'failed'"))
        add_due(conn, task_id, NOW - timedelta(minutes=1))  # only failed runs in the window
    assert len(batch(engine).queued) == 1


# --- overlap ------------------------------------------------------------------------------


def test_overlap_skip_records_a_skipped_run_but_a_retry_waits(engine: Engine) -> None:
    with engine.begin() as conn:
        task_id = make_task(conn, overlap_policy="skip")
        add_due(conn, task_id, NOW - timedelta(minutes=2))
        add_due(conn, task_id, NOW - timedelta(minutes=1))  # due while the first is open
    result = batch(engine)
    assert (len(result.queued), result.skipped) == (1, 1)
    set_status(engine, [result.queued[0].id], "running")
    with engine.begin() as conn:
        add_due(conn, task_id, NOW - timedelta(minutes=3), trigger="retry", attempt=2)
    assert (batch(engine).leased, due_count_now(engine)) == (0, 1)
    set_status(engine, [result.queued[0].id], "succeeded")
    assert len(batch(engine).queued) == 1
    with engine.connect() as conn:
        reasons = [r.reason for r in runs(conn, task_id) if r.status == "skipped"]
    assert reasons == ["overlap: the previous run of this task is still open"]


def due_count_now(engine: Engine) -> int:
    with engine.connect() as conn:
        return due_count(conn)


def test_overlap_queue_waits_for_the_previous_run(engine: Engine) -> None:
    with engine.begin() as conn:
        task_id = make_task(conn, overlap_policy="queue")
        for minutes in (3, 2, 1):
            add_due(conn, task_id, NOW - timedelta(minutes=minutes))
    first = batch(engine)
    assert (len(first.queued), first.waiting, first.skipped) == (1, 2, 0)
    assert batch(engine).leased == 0  # the waiting rows are not even leased while blocked
    set_status(engine, [first.queued[0].id], "succeeded")
    second = batch(engine)
    assert len(second.queued) == 1
    with engine.connect() as conn:
        order = [r.scheduled_for for r in runs(conn, task_id)]
    assert order == sorted(order)  # occurrences run in order
    assert due_count_now(engine) == 1


# --- concurrency keys --------------------------------------------------------------------


def test_concurrency_limit_counts_queued_and_running_runs(engine: Engine) -> None:
    with engine.begin() as conn:
        tasks = [make_task(conn, concurrency_key="gpu", concurrency_limit=2) for _ in range(5)]
        for task_id in tasks:
            add_due(conn, task_id, NOW)
    first = batch(engine)
    assert (len(first.queued), first.waiting) == (2, 3)
    set_status(engine, [first.queued[0].id], "running")
    assert batch(engine).queued == []  # queued + running = 2 = the limit
    set_status(engine, [first.queued[0].id], "succeeded")
    assert len(batch(engine).queued) == 1
    set_status(engine, [first.queued[1].id], "failed")
    assert len(batch(engine).queued) == 1
    assert due_count_now(engine) == 1


def test_a_full_key_does_not_hold_up_the_work_behind_it(engine: Engine) -> None:
    with engine.begin() as conn:
        keyed = make_task(conn, concurrency_key="one", priority=1)
        free = [make_task(conn) for _ in range(5)]
        for i in range(30):  # most urgent, but only one may run at a time
            add_due(conn, keyed, NOW - timedelta(seconds=100 - i), priority=1)
        for task_id in free:
            add_due(conn, task_id, NOW)
    result = dispatching.dispatch(
        engine, NS, lambda: datetime.now(UTC), lambda runs: None, batch_size=10
    )
    with engine.connect() as conn:
        started = {r.task_id for r in runs(conn)}
    assert started == {keyed, *free}
    assert len(result.queued) == 6


def test_concurrent_dispatchers_never_double_dispatch_or_exceed_a_limit(
    settings: Settings,
) -> None:
    """Eight dispatchers at once on their own connections, over keyed and free work."""
    engine = make_engine(settings.database_url, pool_size=10)
    try:
        with engine.begin() as conn:
            keyed = [
                make_task(conn, concurrency_key=f"k{i % 3}", concurrency_limit=2) for i in range(30)
            ]
            free = [make_task(conn) for _ in range(20)]
            for task_id in keyed + free:
                for m in range(5):
                    add_due(conn, task_id, NOW - timedelta(minutes=m))
        start = threading.Barrier(8)
        results: list[DispatchResult] = []
        errors: list[BaseException] = []

        def dispatcher() -> None:
            try:
                start.wait()
                for _ in range(10):
                    results.append(batch(engine, limit=20))
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=dispatcher) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        with engine.connect() as conn:
            made = runs(conn)
            left = due_count(conn)
        occurrences = [(r.task_id, r.scheduled_for) for r in made]
        assert len(occurrences) == len(set(occurrences))  # no occurrence became two runs
        assert len(made) + left == 250  # and none was lost
        per_key: dict[str, int] = {}
        for r in made:
            if r.concurrency_key:
                per_key[r.concurrency_key] = per_key.get(r.concurrency_key, 0) + 1
        assert per_key == {"k0": 2, "k1": 2, "k2": 2}
        assert sum(len(r.queued) for r in results) == len(made)
        assert len([r for r in made if r.concurrency_key is None]) == 100
    finally:
        engine.dispose()


def test_a_row_locked_by_another_dispatcher_is_skipped(engine: Engine, settings: Settings) -> None:
    other = make_engine(settings.database_url, pool_size=1)
    try:
        with engine.begin() as conn:
            task_id = make_task(conn)
            for m in range(4):
                add_due(conn, task_id, NOW - timedelta(minutes=m))
        with other.begin() as held:
            mine = queries.lease_due_work(held, datetime.now(UTC), 2)  # not committed yet
            result = batch(engine)
            assert result.leased == 2
            assert {r.run_at for r in mine}.isdisjoint({r.scheduled_for for r in runs_now(engine)})
    finally:
        other.dispose()


def runs_now(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return runs(conn)


# --- publish after commit ------------------------------------------------------------------


def test_dispatch_publishes_only_committed_runs_and_stamps_them(
    engine: Engine, settings: Settings
) -> None:
    observer = make_engine(settings.database_url, pool_size=1)
    seen: list[tuple[str, Any]] = []

    def publish(queued: Sequence[QueuedRun]) -> None:
        with observer.connect() as conn:  # another session: sees only committed rows
            for q in queued:
                row = conn.execute(
                    sa.text("SELECT status, published_at FROM task_run WHERE id = :i"),
                    {"i": q.id},
                ).one()
                seen.append((row.status, row.published_at))

    try:
        with engine.begin() as conn:
            task_id = make_task(conn)
            for m in range(3):
                add_due(conn, task_id, NOW - timedelta(minutes=m))
        result = dispatching.dispatch(
            engine, NS, lambda: datetime.now(UTC), publish, batch_size=500
        )
        assert seen == [("queued", None)] * 3
        with engine.connect() as conn:
            stamped = [r.published_at for r in runs(conn)]
        assert len(result.queued) == 3 and all(stamped)
    finally:
        observer.dispose()


# --- messages -----------------------------------------------------------------------------


def test_small_batches_go_one_run_per_message_and_bursts_in_groups() -> None:
    def sizes(n: int) -> list[int]:
        runs = [QueuedRun(uuid.uuid4(), 5) for _ in range(n)]
        groups = dispatching.message_groups(runs)
        assert [r for g in groups for r in g] == runs  # every run once, in batch order
        return [len(g) for g in groups]

    assert sizes(0) == []
    assert sizes(1) == [1]
    assert sizes(127) == [1] * 127
    assert sizes(128) == [2] * 64
    assert sizes(500) == [7] * 71 + [3]
    assert max(sizes(10_000)) == dispatching.MAX_RUNS_PER_MESSAGE
