"""One beat batch against a real database, ``now`` passed in: claims, batching, SKIP LOCKED.

``fire_due_tasks`` is called directly (no beat process), so each test states the instant it
fires at and asserts exact rows: what fired (a queued run for a task that runs freely, a
due_work row for the others), skipped runs, the task's next times and status.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.beat.firing import DIRECT_BURST, TickResult, fire_due_tasks
from ordinaut.scheduling.jitter import jitter_delay
from ordinaut.store import queries
from ordinaut.store.tables import agent, due_work, outbox, task, task_run

NOW = datetime(2026, 3, 2, 10, 0, 30, tzinfo=UTC)
GRACE = timedelta(seconds=60)


def at(clock: str) -> datetime:
    return datetime.fromisoformat(f"2026-03-02T{clock}Z")


def fire(engine: Engine, now: datetime = NOW, *, limit: int = 1000, cap: int = 100) -> TickResult:
    return fire_due_tasks(engine, now, limit=limit, grace=GRACE, cap=cap)


def add_tasks(engine: Engine, *specs: dict[str, Any]) -> list[uuid.UUID]:
    """Insert task rows as they would be stored (values not validated: tests set them)."""
    with engine.begin() as conn:
        owner = conn.execute(
            sa.insert(agent).values(name=f"a-{uuid.uuid4().hex[:8]}").returning(agent.c.id)
        ).scalar_one()
        rows = []
        for spec in specs:
            row: dict[str, Any] = {
                "id": uuid.uuid4(),
                "title": "t",
                "created_by": owner,
                "schedule_kind": "cron",
                "schedule_expr": "*/10 * * * *",
                "timezone": "UTC",
                "payload": {"pipeline": []},
                "created_at": at("00:00"),
            }
            row.update(spec)
            row.setdefault("next_occurrence_at", row.get("next_run_at"))
            rows.append(row)
            conn.execute(sa.insert(task).values(row))  # one by one: rows differ in their keys
    return [r["id"] for r in rows]


def work_of(engine: Engine, task_id: uuid.UUID) -> list[tuple[datetime, datetime, str]]:
    """What fired for a task: (occurrence, not_before, trigger) of its due_work rows and of
    the queued runs beat created itself, in occurrence order."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(due_work.c.run_at, due_work.c.not_before, due_work.c.trigger)
            .where(due_work.c.task_id == task_id)
            .union_all(
                sa.select(
                    task_run.c.scheduled_for, task_run.c.not_before, task_run.c.trigger
                ).where(task_run.c.task_id == task_id, task_run.c.status == "queued")
            )
            .order_by("run_at")
        ).all()
    return [tuple(r) for r in rows]


def counts(result: TickResult) -> tuple[int, int, int, int, int]:
    """(claimed, fired, skipped, completed, paused): fired counts runs and due_work alike."""
    fired = result.due_work + len(result.queued)
    return result.claimed, fired, result.skipped, result.completed, result.paused


def skipped_of(engine: Engine, task_id: uuid.UUID) -> list[tuple[datetime, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(task_run.c.scheduled_for, task_run.c.reason)
            .where(task_run.c.task_id == task_id, task_run.c.status == "skipped")
            .order_by(task_run.c.scheduled_for)
        ).all()
    return [tuple(r) for r in rows]


def state_of(engine: Engine, task_id: uuid.UUID) -> tuple[str, datetime | None, datetime | None]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(task.c.status, task.c.next_occurrence_at, task.c.next_run_at).where(
                task.c.id == task_id
            )
        ).one()
    return row[0], row[1], row[2]


def test_on_time_occurrence_fires_and_the_task_advances(engine: Engine) -> None:
    (tid,) = add_tasks(engine, {"next_run_at": at("10:00")})
    assert counts(fire(engine)) == (1, 1, 0, 0, 0)
    assert work_of(engine, tid) == [(at("10:00"), at("10:00"), "schedule")]
    assert state_of(engine, tid) == ("active", at("10:10"), at("10:10"))
    assert counts(fire(engine)) == (0, 0, 0, 0, 0)  # nothing due any more


def test_a_task_that_runs_freely_gets_its_run_from_beat_without_due_work(engine: Engine) -> None:
    (free,) = add_tasks(engine, {"next_run_at": at("10:00"), "priority": 2})
    result = fire(engine)
    assert [q.priority for q in result.queued] == [2] and result.due_work == 0
    with engine.connect() as conn:
        run = conn.execute(sa.select(task_run).where(task_run.c.task_id == free)).one()
        assert conn.execute(sa.select(sa.func.count()).select_from(due_work)).scalar() == 0
    assert run.id == result.queued[0].id
    assert (run.status, run.trigger, run.attempt, run.scheduled_for) == (
        "queued",
        "schedule",
        1,
        at("10:00"),
    )
    assert (run.not_before, run.work_created_at, run.published_at) == (at("10:00"), NOW, None)
    # the caller publishes after the commit; the next batch stamps when, in its transaction
    sent = NOW + timedelta(milliseconds=3)
    fire_due_tasks(engine, NOW, limit=10, grace=GRACE, cap=100, published=[(run.id, sent)])
    with engine.connect() as conn:
        stamped = conn.execute(sa.select(task_run.c.published_at)).scalar_one()
    assert stamped == sent


def test_a_burst_of_free_tasks_goes_through_dispatch_to_be_shared_fairly(
    engine: Engine,
) -> None:
    """More free runs than DIRECT_BURST in one batch become due_work (dispatch shares the
    runs queue between agents); a batch at or under it keeps beat's direct path."""
    add_tasks(engine, *({"next_run_at": at("10:00")} for _ in range(DIRECT_BURST)))
    steady = fire(engine)
    assert (len(steady.queued), steady.due_work) == (DIRECT_BURST, 0)
    add_tasks(engine, *({"next_run_at": at("10:01")} for _ in range(DIRECT_BURST + 1)))
    burst = fire(engine, at("10:01"))
    assert (burst.queued, burst.due_work) == ((), DIRECT_BURST + 1)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(due_work.c.run_at, due_work.c.trigger)).all()
    assert set(rows) == {(at("10:01"), "schedule")}


@pytest.mark.parametrize(
    "guard",
    [
        {"overlap_policy": "skip"},
        {"overlap_policy": "queue"},
        {"concurrency_key": "mail"},
        {"dedupe_key": "digest", "dedupe_window_seconds": 600},
    ],
)
def test_a_task_with_a_rule_between_runs_goes_through_dispatch(
    engine: Engine, guard: dict[str, Any]
) -> None:
    (tid,) = add_tasks(engine, {"next_run_at": at("10:00"), **guard})
    result = fire(engine)
    assert (result.due_work, result.queued) == (1, ())
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(task_run)).scalar() == 0
    assert work_of(engine, tid) == [(at("10:00"), at("10:00"), "schedule")]


def test_an_occurrence_that_already_has_its_run_is_not_fired_twice(engine: Engine) -> None:
    # what a second beat racing on the same occurrence would find: its run exists already
    (tid,) = add_tasks(engine, {"next_run_at": at("10:00")})
    with engine.begin() as conn:
        conn.execute(
            sa.insert(task_run).values(
                task_id=tid, status="queued", trigger="schedule", scheduled_for=at("10:00")
            )
        )
    result = fire(engine)
    assert (result.claimed, result.queued, result.due_work) == (1, (), 0)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(task_run)).scalar() == 1
    assert state_of(engine, tid)[1] == at("10:10")  # the schedule still moves on


def test_tasks_not_due_paused_or_without_times_are_not_claimed(engine: Engine) -> None:
    ids = add_tasks(
        engine,
        {"next_run_at": at("10:10")},
        {"next_run_at": at("09:00"), "status": "paused"},
        {"next_run_at": at("09:00"), "status": "canceled"},
        {"next_run_at": None, "schedule_kind": "event", "schedule_expr": "mail.*"},
    )
    assert fire(engine).claimed == 0
    assert [state_of(engine, i)[2] for i in ids] == [at("10:10"), at("09:00"), at("09:00"), None]


def test_batches_claim_earliest_first_and_stop_when_drained(engine: Engine) -> None:
    due = [at("09:59:30") + timedelta(seconds=i) for i in range(25)]  # all within grace
    ids = add_tasks(
        engine,
        *[{"schedule_kind": "once", "schedule_expr": d.isoformat(), "next_run_at": d} for d in due],
        {"next_run_at": at("10:10")},
    )
    first = fire(engine, limit=10)
    done_first = [i for i in ids if state_of(engine, i)[0] == "completed"]
    assert done_first == ids[:10]  # the ten earliest
    results = [first] + [fire(engine, limit=10) for _ in range(3)]
    assert [(r.claimed, len(r.queued), r.completed) for r in results] == [
        (10, 10, 10),
        (10, 10, 10),
        (5, 5, 5),
        (0, 0, 0),
    ]
    with engine.connect() as conn:
        written = conn.execute(sa.select(task_run.c.task_id, task_run.c.scheduled_for)).all()
    assert sorted((r.scheduled_for, r.task_id) for r in written) == list(
        zip(due, ids[:25], strict=True)
    )
    assert all(state_of(engine, i) == ("completed", None, None) for i in ids[:25])
    assert state_of(engine, ids[25]) == ("active", at("10:10"), at("10:10"))


def test_rows_locked_by_another_claimer_are_skipped_not_waited_for(engine: Engine) -> None:
    ids = add_tasks(
        engine, *[{"next_run_at": at("10:00") - timedelta(seconds=i)} for i in range(8)]
    )
    with engine.connect() as holder:
        tx = holder.begin()
        held = queries.claim_due_tasks(holder, NOW, 3)  # the 3 earliest, locked until rollback
        assert [r.id for r in held] == ids[7:4:-1]
        result: list[TickResult] = []
        other = threading.Thread(target=lambda: result.append(fire(engine)))
        other.start()
        other.join(10)
        assert not other.is_alive(), "the second claimer waited for the first one's locks"
        assert result[0].claimed == 5
        assert {state_of(engine, i)[0:2] for i in ids[:5]} == {("active", at("10:10"))}
        assert all(work_of(engine, i) == [] for i in ids[5:])
        tx.rollback()
    assert fire(engine).claimed == 3  # released: now the next tick takes them
    assert all(state_of(engine, i)[1] == at("10:10") for i in ids)


def test_concurrent_claimers_share_the_work_without_duplicates(engine: Engine) -> None:
    # 300 tasks missed 10:00..10:50 under "skip": each occurrence must be recorded once
    specs = [
        {"misfire_policy": "skip", "next_run_at": at("10:00") + timedelta(milliseconds=i)}
        for i in range(300)
    ]
    ids = set(add_tasks(engine, *specs))
    now = at("10:55")
    start = threading.Barrier(3)
    totals: list[list[TickResult]] = [[], [], []]

    def claimer(k: int) -> None:
        start.wait()
        while True:
            r = fire(engine, now, limit=7)
            totals[k].append(r)
            if r.claimed == 0:
                return

    threads = [threading.Thread(target=claimer, args=(k,)) for k in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    claimed = [sum(r.claimed for r in rs) for rs in totals]
    assert sum(claimed) == 300, claimed
    assert sum(1 for c in claimed if c > 0) >= 2, f"claimers did not run side by side: {claimed}"
    with engine.connect() as conn:
        runs = conn.execute(
            sa.select(task_run.c.task_id, task_run.c.scheduled_for).where(
                task_run.c.status == "skipped"
            )
        ).all()
        nexts = conn.execute(sa.select(task.c.next_occurrence_at)).scalars().all()
    per_occurrence = Counter((r.task_id, r.scheduled_for) for r in runs)
    assert len(per_occurrence) == 300 * 6  # 10:00 (+ms), 10:10, …, 10:50
    assert set(per_occurrence.values()) == {1}
    assert {tid for tid, _ in per_occurrence} == ids
    assert set(nexts) == {at("11:00")}


def test_misfire_policies_write_catch_up_work_and_record_skips(engine: Engine) -> None:
    common = {"schedule_expr": "*/10 * * * *", "next_run_at": at("08:00")}
    once, skip, every, capped = add_tasks(
        engine,
        {**common, "misfire_policy": "run_once"},
        {**common, "misfire_policy": "skip"},
        {**common, "misfire_policy": "run_all"},
        {**common, "misfire_policy": "run_all", "schedule_expr": "* * * * *"},
    )
    now = at("10:05")
    result = fire(engine, now, cap=5)
    missed = [at("08:00") + timedelta(minutes=10 * i) for i in range(13)]  # 08:00 .. 10:00
    assert work_of(engine, once) == [(at("10:00"), now, "catch_up")]
    assert [s for s, _ in skipped_of(engine, once)] == missed[:5]
    assert "(and 7 later missed occurrences not listed)" in skipped_of(engine, once)[-1][1]
    assert work_of(engine, skip) == []
    assert [s for s, _ in skipped_of(engine, skip)] == missed[:5]
    assert all("misfire (skip)" in r for _, r in skipped_of(engine, skip))
    assert work_of(engine, every) == [(m, now, "catch_up") for m in missed[:5]]
    assert [s for s, _ in skipped_of(engine, every)] == missed[5:10]
    minutes = [at("08:00") + timedelta(minutes=i) for i in range(124)]  # 08:00 .. 10:03
    assert [w[0] for w in work_of(engine, capped)] == [*minutes[:5], at("10:04"), at("10:05")]
    assert [w[2] for w in work_of(engine, capped)][-2:] == ["schedule", "schedule"]
    assert len(skipped_of(engine, capped)) == 5
    assert {state_of(engine, i)[1] for i in (once, skip, every)} == {at("10:10")}
    assert state_of(engine, capped)[1] == at("10:06")
    assert counts(result) == (4, 1 + 5 + 7, 20, 0, 0)


def test_jittered_tasks_fire_late_by_their_own_stable_delay(engine: Engine) -> None:
    jitter = 120
    tids = [uuid.uuid4() for _ in range(20)]
    add_tasks(
        engine,
        *[
            {
                "id": tid,
                "jitter_seconds": jitter,
                "next_occurrence_at": at("10:00"),
                "next_run_at": _jitter(tid, at("10:00"), jitter),
            }
            for tid in tids
        ],
    )
    early = fire(engine, at("10:00:40"))  # only those whose delay is up to 40 s
    expected_early = sum(1 for t in tids if _jitter(t, at("10:00"), jitter) <= at("10:00:40"))
    assert early.claimed == expected_early
    assert 0 < early.claimed < 20
    assert fire(engine, at("10:02")).claimed == 20 - expected_early
    delays = set()
    for tid in tids:
        fired = _jitter(tid, at("10:00"), jitter)
        assert work_of(engine, tid) == [(at("10:00"), fired, "schedule")]
        assert at("10:00") <= fired <= at("10:02")
        delays.add(fired)
        assert state_of(engine, tid) == ("active", at("10:10"), _jitter(tid, at("10:10"), jitter))
    assert len(delays) == 20


def test_once_and_exhausted_rrule_become_completed(engine: Engine) -> None:
    once, rule = add_tasks(
        engine,
        {
            "schedule_kind": "once",
            "schedule_expr": "2026-03-02T10:00:00Z",
            "next_run_at": at("10:00"),
        },
        {
            "schedule_kind": "rrule",
            "schedule_expr": "DTSTART:20260302T095800Z\nRRULE:FREQ=MINUTELY;COUNT=3",
            "next_run_at": at("09:59:30"),  # snoozed to 09:59:30, then 10:00 is the last one
        },
    )
    assert fire(engine).completed == 2
    assert work_of(engine, once) == [(at("10:00"), at("10:00"), "schedule")]
    assert [w[0] for w in work_of(engine, rule)] == [at("09:59:30"), at("10:00")]
    assert state_of(engine, once) == state_of(engine, rule) == ("completed", None, None)


def test_existing_due_work_for_the_same_occurrence_is_left_alone(engine: Engine) -> None:
    (tid,) = add_tasks(engine, {"next_run_at": at("10:00"), "overlap_policy": "queue"})
    with engine.begin() as conn:
        queries.insert_due_work(
            conn,
            [
                {
                    "task_id": tid,
                    "run_at": at("10:00"),
                    "not_before": at("09:00"),
                    "trigger": "manual",
                }
            ],
        )
    assert counts(fire(engine)) == (1, 0, 0, 0, 0)
    assert work_of(engine, tid) == [(at("10:00"), at("09:00"), "manual")]
    assert state_of(engine, tid)[1] == at("10:10")


def test_a_task_whose_schedule_cannot_be_computed_is_paused_and_says_why(engine: Engine) -> None:
    zone, jitter, fine = add_tasks(
        engine,
        {"timezone": "Mars/Olympus", "next_run_at": at("10:00")},  # e.g. dropped from tzdata
        {"jitter_seconds": -5, "next_run_at": at("10:00")},  # written around the service
        {"next_run_at": at("10:00")},
    )
    assert counts(fire(engine)) == (3, 1, 2, 0, 2)
    for broken, detail in ((zone, "Mars/Olympus"), (jitter, "jitter_seconds")):
        assert state_of(engine, broken) == ("paused", at("10:00"), at("10:00"))
        ((when, reason),) = skipped_of(engine, broken)
        assert when == at("10:00") and detail in reason and "paused" in reason
    assert work_of(engine, fine) == [(at("10:00"), at("10:00"), "schedule")]
    with engine.connect() as conn:
        topics = Counter(conn.execute(sa.select(outbox.c.topic)).scalars())
    assert topics == {"task.paused": 2, "task.run.skipped": 2}


def test_rrule_without_dtstart_is_anchored_at_creation_truncated_to_the_minute(
    engine: Engine,
) -> None:
    (tid,) = add_tasks(
        engine,
        {
            "schedule_kind": "rrule",
            "schedule_expr": "FREQ=MINUTELY;INTERVAL=7",
            "created_at": at("09:51:42.5"),
            "next_run_at": at("09:58"),
        },
    )
    fire(engine, at("09:58:10"))
    assert work_of(engine, tid) == [(at("09:58"), at("09:58"), "schedule")]
    assert state_of(engine, tid)[1] == at("10:05")  # 09:51, 09:58, 10:05: zero seconds


def _jitter(tid: uuid.UUID, occurrence: datetime, seconds: int) -> datetime:
    return occurrence + jitter_delay(str(tid), occurrence, seconds)


def test_a_task_over_its_expansion_budget_is_paused_and_says_why(engine: Engine) -> None:
    """Beat spends at most ``steps`` of expansion work on one task in a batch (issue 12);
    past it the task is paused with a skipped run saying why, like a zone that left tzdata."""
    costly, cheap = add_tasks(
        engine,
        {"schedule_expr": "* * * * *", "next_run_at": at("07:00")},  # 180 missed minutes
        {"schedule_expr": "0 10 * * *", "next_run_at": at("10:00")},
    )
    result = fire_due_tasks(engine, NOW, limit=1000, grace=GRACE, cap=100, steps=40)
    assert counts(result) == (2, 1, 1, 0, 1)
    assert state_of(engine, costly) == ("paused", at("07:00"), at("07:00"))
    ((when, reason),) = skipped_of(engine, costly)
    assert when == at("07:00")
    assert "expansion budget" in reason and "40" in reason and "paused" in reason
    assert work_of(engine, cheap) == [(at("10:00"), at("10:00"), "schedule")]
