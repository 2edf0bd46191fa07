"""Real ``celery -A ordinaut beat`` processes on the test's database: guarantees 1, 2 and 6.

No worker runs here (unless a test says so): beat's output is the runs and due_work rows it
writes and the ``skipped`` runs it records, which stay put to be counted. "Beat was down" is made by
storing tasks whose next occurrence is already in the past, and by killing beat for real.
Schedules are per-second (6-field cron) so each test takes seconds, not minutes.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psutil
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from ordinaut.config import Settings
from ordinaut.runtime import Runtime
from ordinaut.scheduling.jitter import jitter_delay
from ordinaut.service.auth import Principal
from ordinaut.service.facade import Service
from ordinaut.service.models import TaskCreate, TaskUpdate
from ordinaut.store.tables import agent, due_work, task, task_run
from ordinaut.vocabulary import ScheduleKind
from tests.support import Proc, bootstrap_admin, celery, processes, wait_for

ECHO = {"pipeline": [{"id": "e", "uses": "builtin.echo", "with": {"x": 1}, "save_as": "e"}]}
SECOND = timedelta(seconds=1)


def utcnow() -> datetime:
    return datetime.now(UTC)


def beat(settings: Settings, log_dir: Path, name: str = "beat", **env: str) -> Proc:
    """A beat process (as ``start_beat``), extra ``ORDINAUT_*`` settings from ``env``."""
    return celery(settings, log_dir, name, "beat", "--loglevel", "INFO", "--pidfile=", **env)


def wait_started(proc: Proc) -> None:
    wait_for(lambda: "beat: Starting..." in proc.log(), 30, proc=proc, what=f"{proc.name} start")


def ticked(proc: Proc, settings: Settings) -> bool:
    """Whether the beat ``proc`` has ticked: its first tick opens its database connection."""
    port = make_url(settings.database_url).port or 5432
    held = psutil.Process(proc.pid).net_connections(kind="tcp")
    return any(c.raddr and c.raddr.port == port and c.status == "ESTABLISHED" for c in held)


def earliest_next(engine: Engine) -> datetime:
    """The earliest next occurrence of the database's tasks (how far beat has caught up)."""
    with engine.connect() as conn:
        earliest: datetime = conn.execute(
            sa.select(sa.func.min(task.c.next_occurrence_at))
        ).scalar_one()
    return earliest


def fired_lines(proc: Proc) -> list[int]:
    """The task counts of the "fired N due tasks" lines in a beat's log."""
    return [int(n) for n in re.findall(r"fired (\d+) due tasks", proc.log())]


@pytest.fixture
def service(settings: Settings) -> Iterator[tuple[Service, Principal]]:
    runtime = Runtime(settings, role="test")
    svc = Service(runtime, kick_dispatch=lambda: None)
    try:
        yield svc, svc.authenticate(bootstrap_admin(settings))
    finally:
        runtime.close()


def even_second(moment: datetime) -> datetime:
    moment = moment.replace(microsecond=0)
    return moment - timedelta(seconds=moment.second % 2)


def add_tasks(engine: Engine, specs: list[dict[str, Any]]) -> list[uuid.UUID]:
    """Store task rows directly, as the service would have (values chosen by the test)."""
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
                "timezone": "UTC",
                "payload": ECHO,
                "created_at": utcnow() - timedelta(hours=1),
                "misfire_policy": "run_once",
                "jitter_seconds": 0,
                "status": "active",
            }
            row.update(spec)
            row.setdefault("next_occurrence_at", row.get("next_run_at"))
            rows.append(row)
        conn.execute(sa.insert(task), rows)  # every row has the same keys
    return [r["id"] for r in rows]


def work_rows(engine: Engine, task_id: uuid.UUID | None = None) -> list[Any]:
    """What beat fired: due_work rows, and the runs it created itself for tasks that run
    freely (``run_at`` is the occurrence either way), in occurrence order."""
    work = sa.select(
        due_work.c.task_id,
        due_work.c.run_at,
        due_work.c.not_before,
        due_work.c.trigger,
        due_work.c.created_at,
    )
    runs = sa.select(
        task_run.c.task_id,
        task_run.c.scheduled_for.label("run_at"),
        task_run.c.not_before,
        task_run.c.trigger,
        task_run.c.work_created_at.label("created_at"),
    ).where(
        task_run.c.status.not_in(("skipped", "canceled")),  # not fired, or withdrawn
        task_run.c.work_created_at.is_not(None),
    )
    if task_id is not None:
        work = work.where(due_work.c.task_id == task_id)
        runs = runs.where(task_run.c.task_id == task_id)
    with engine.connect() as conn:
        return list(conn.execute(work.union_all(runs).order_by("run_at")).all())


def skipped_rows(engine: Engine, task_id: uuid.UUID | None = None) -> list[Any]:
    query = (
        sa.select(
            task_run.c.task_id, task_run.c.scheduled_for, task_run.c.reason, task_run.c.finished_at
        )
        .where(task_run.c.status == "skipped")
        .order_by(task_run.c.scheduled_for)
    )
    if task_id is not None:
        query = query.where(task_run.c.task_id == task_id)
    with engine.connect() as conn:
        return list(conn.execute(query).all())


def fires_after(engine: Engine, task_id: uuid.UUID, moment: datetime) -> bool:
    """Whether beat has written due work for ``task_id`` due after ``moment``."""
    return any(r.run_at > moment for r in work_rows(engine, task_id))


def task_state(engine: Engine, task_id: uuid.UUID) -> tuple[str, datetime | None]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(task.c.status, task.c.next_run_at).where(task.c.id == task_id)
        ).one()
    return row[0], row[1]


# --- guarantee 6: schedules are live ---------------------------------------------------------


def test_tasks_created_changed_paused_and_canceled_while_beat_runs(
    settings: Settings, log_dir: Path, engine: Engine, service: tuple[Service, Principal]
) -> None:
    svc, me = service
    with processes() as procs:
        procs.append(proc := beat(settings, log_dir))
        wait_started(proc)

        def create(kind: ScheduleKind, expr: str) -> uuid.UUID:
            body = TaskCreate(
                title=expr, schedule_kind=kind, schedule_expr=expr, timezone="UTC", payload=ECHO
            )
            return svc.create_task(me, body).id

        created_at = utcnow()
        every = create(ScheduleKind.CRON, "* * * * * *")
        once_at = (created_at + 3 * SECOND).replace(microsecond=0)
        once = create(ScheduleKind.ONCE, once_at.isoformat())
        rule_start = once_at - SECOND
        rule = create(
            ScheduleKind.RRULE,
            f"DTSTART:{rule_start:%Y%m%dT%H%M%SZ}\nRRULE:FREQ=SECONDLY;INTERVAL=2;COUNT=3",
        )

        def three_rows() -> list[Any] | None:
            rows = work_rows(engine, every)
            return rows if len(rows) >= 3 else None

        # picked up without a restart: one row per second from the next whole second
        rows = wait_for(three_rows, 10, proc=proc)
        first = rows[0].run_at
        assert created_at < first <= created_at + 2 * SECOND
        assert [r.run_at for r in rows[:3]] == [first, first + SECOND, first + 2 * SECOND]
        assert {r.trigger for r in rows} == {"schedule"}

        # a changed schedule takes effect at the next tick
        svc.update_task(me, every, TaskUpdate(schedule_expr="*/3 * * * * *"))
        changed = utcnow()
        wait_for(
            lambda: len([r for r in work_rows(engine, every) if r.run_at > changed]) >= 2,
            10,
            proc=proc,
        )
        after = [r.run_at for r in work_rows(engine, every) if r.run_at > changed]
        assert all(at.second % 3 == 0 and at.microsecond == 0 for at in after), after

        # paused: nothing more fires
        svc.pause_task(me, every)
        paused = utcnow()
        time.sleep(2.5)  # proves a non-event: 2.5 s is two beat ticks or more (1 s apart)
        assert [r.run_at for r in work_rows(engine, every) if r.run_at > paused] == []

        # resumed: firing again
        svc.resume_task(me, every)
        resumed = utcnow()
        wait_for(lambda: any(r.run_at > resumed for r in work_rows(engine, every)), 10, proc=proc)

        # canceled: its waiting work is gone and nothing more is written
        svc.cancel_task(me, every)
        time.sleep(2.5)  # proves a non-event, as for the pause
        assert work_rows(engine, every) == []
        assert task_state(engine, every) == ("canceled", None)

        # the one-off fired once; the RRULE fired COUNT times; both completed
        wait_for(lambda: task_state(engine, rule)[0] == "completed", 10, proc=proc)
        assert [r.run_at for r in work_rows(engine, once)] == [once_at]
        assert task_state(engine, once) == ("completed", None)
        rule_at = [r.run_at for r in work_rows(engine, rule)]
        assert rule_at == [rule_start, rule_start + 2 * SECOND, rule_start + 4 * SECOND]
        assert task_state(engine, rule) == ("completed", None)
        assert proc.alive()


# --- guarantee 2: no double fire ---------------------------------------------------------------


def test_two_beats_at_once_write_each_occurrence_once(
    settings: Settings, log_dir: Path, engine: Engine
) -> None:
    """200 per-second tasks, each 30 s behind, due at the same instant for two racing beats."""
    knobs = {"ORDINAUT_BEAT_BATCH_SIZE": "20", "ORDINAUT_MISFIRE_GRACE_SECONDS": "5"}
    with processes() as procs:
        procs.append(one := beat(settings, log_dir, "beat-1", **knobs))
        procs.append(two := beat(settings, log_dir, "beat-2", **knobs))
        wait_started(one)
        wait_started(two)
        wait_for(lambda: ticked(one, settings) and ticked(two, settings), 30, what="first ticks")
        start = utcnow().replace(microsecond=0) + 3 * SECOND
        policies = ["run_once", "skip", "run_all", "run_once"] * 50
        ids = add_tasks(
            engine,
            [
                {
                    "schedule_expr": "* * * * * *",
                    "misfire_policy": policy,
                    "next_occurrence_at": start - 30 * SECOND,
                    "next_run_at": start,
                }
                for policy in policies
            ],
        )
        # both wake at `start`, then every second, and race for the same rows
        wait_for(
            lambda: earliest_next(engine) >= start + 3 * SECOND,
            (start - utcnow()).total_seconds() + 30,
            proc=one,
            what="three seconds of occurrences from `start` fired",
        )
        for proc in (one, two):
            assert proc.alive(), proc.log()[-2000:]
            proc.stop()

    assert fired_lines(one) and fired_lines(two), "both beats should have claimed tasks"
    work = work_rows(engine)
    skipped = skipped_rows(engine)
    per_work = Counter((r.task_id, r.run_at) for r in work)
    per_skip = Counter((r.task_id, r.scheduled_for) for r in skipped)
    assert set(per_work.values()) == {1}
    assert set(per_skip.values()) == {1}, [k for k, n in per_skip.items() if n > 1][:5]
    assert not per_work.keys() & per_skip.keys()
    # and none lost: every second from 30 s before `start` to the task's next one, once
    with engine.connect() as conn:
        nexts = dict(conn.execute(sa.select(task.c.id, task.c.next_occurrence_at)).all())
    for tid, policy in zip(ids, policies, strict=True):
        covered = sorted(at for t, at in (*per_work, *per_skip) if t == tid)
        expected = []
        at = start - 30 * SECOND
        while at < nexts[tid]:
            expected.append(at)
            at += SECOND
        assert covered == expected, (policy, tid)
        assert nexts[tid] >= start + 3 * SECOND
    # claimed just after `start`: start-30 .. start-5 (26) were missed, start-4 .. start on time
    triggers = Counter(r.trigger for r in work)
    assert triggers["catch_up"] == 100 * 1 + 50 * 26  # run_once: the latest; run_all: all
    assert len(skipped) == 100 * 25 + 50 * 26  # run_once: the others; skip: all


# --- guarantee 1: misfire policies after downtime ---------------------------------------------


GRACE_S = 4
CAP = 20


def test_beat_restarted_after_downtime_applies_each_misfire_policy(
    settings: Settings, log_dir: Path, engine: Engine
) -> None:
    knobs = {
        "ORDINAUT_MISFIRE_GRACE_SECONDS": str(GRACE_S),
        "ORDINAUT_MISFIRE_CAP": str(CAP),
    }
    grace = timedelta(seconds=GRACE_S)
    first = even_second(utcnow()) - timedelta(seconds=300)  # down for 5 minutes: 150 missed
    policies = ("run_once", "skip", "run_all")
    ids = dict(
        zip(
            policies,
            add_tasks(
                engine,
                [
                    {"schedule_expr": "*/2 * * * * *", "misfire_policy": p, "next_run_at": first}
                    for p in policies
                ],
            ),
            strict=True,
        )
    )
    with processes() as procs:
        procs.append(proc := beat(settings, log_dir, **knobs))
        wait_for(lambda: len(skipped_rows(engine)) >= 3 * CAP, 30, proc=proc)

        # the restart's first tick, at `now`: occurrences older than now - grace were missed
        now = skipped_rows(engine, ids["skip"])[0].finished_at
        grid = [first + timedelta(seconds=2 * i) for i in range(200)]
        missed = [at for at in grid if at < now - grace]
        on_time = [at for at in grid if now - grace <= at <= now]
        assert len(missed) >= 145 and on_time

        def catch_up(tid: uuid.UUID) -> list[datetime]:
            rows = [r for r in work_rows(engine, tid) if r.trigger == "catch_up"]
            assert {r.not_before for r in rows} <= {now}
            return [r.run_at for r in rows]

        def skips(tid: uuid.UUID) -> tuple[list[datetime], str]:
            rows = skipped_rows(engine, tid)
            return [r.scheduled_for for r in rows], rows[-1].reason

        # run_once: the latest missed occurrence runs once; the others are recorded skipped
        assert catch_up(ids["run_once"]) == [missed[-1]]
        listed, last_reason = skips(ids["run_once"])
        assert listed == missed[:CAP]
        assert f"and {len(missed) - 1 - CAP} later missed" in last_reason
        # skip: none runs, all recorded (the first CAP listed, the rest counted)
        assert catch_up(ids["skip"]) == []
        listed, last_reason = skips(ids["skip"])
        assert listed == missed[:CAP] and f"and {len(missed) - CAP} later" in last_reason
        # run_all: the first CAP run, in order; the rest recorded skipped
        assert catch_up(ids["run_all"]) == missed[:CAP]
        listed, last_reason = skips(ids["run_all"])
        assert listed == missed[CAP : 2 * CAP]
        assert f"and {len(missed) - 2 * CAP} later" in last_reason
        # on-time occurrences fire as scheduled, and the schedule resumes after `now`
        for tid in ids.values():
            wait_for(partial(fires_after, engine, tid, now), 10)
            scheduled = [r.run_at for r in work_rows(engine, tid) if r.trigger == "schedule"]
            assert scheduled[: len(on_time)] == on_time

        # a real crash: SIGKILL, down for 7 s (> grace), restart
        proc.kill9()
        down_at = utcnow()
        time.sleep(7)  # the outage under test: beat is down for longer than the grace
        procs.append(again := beat(settings, log_dir, "beat-again", **knobs))
        wait_for(
            lambda: all(
                any(r.run_at > down_at + 8 * SECOND for r in work_rows(engine, t))
                for t in ids.values()
            ),
            30,
            proc=again,
        )

    # after the first catch-up, every occurrence is accounted for exactly once
    for policy, tid in ids.items():
        work = {r.run_at: r.trigger for r in work_rows(engine, tid) if r.run_at > now}
        skip = [r.scheduled_for for r in skipped_rows(engine, tid) if r.scheduled_for > now]
        assert not work.keys() & set(skip)
        covered = sorted([*work, *skip])
        assert covered == [covered[0] + timedelta(seconds=2 * i) for i in range(len(covered))]
        outage = [at for at in covered if down_at < at and work.get(at) != "schedule"]
        assert outage, f"{policy}: the 7 s outage should have missed occurrences"
        if policy == "run_once":
            assert [at for at in outage if work.get(at) == "catch_up"] == [outage[-1]]
        elif policy == "skip":
            assert all(at in skip for at in outage)
        else:
            assert all(work.get(at) == "catch_up" for at in outage)


# --- jitter, end to end -----------------------------------------------------------------------


def test_jitter_is_stable_and_within_bounds(
    settings: Settings, log_dir: Path, engine: Engine, service: tuple[Service, Principal]
) -> None:
    svc, me = service
    with processes() as procs:
        procs.append(proc := beat(settings, log_dir))
        wait_started(proc)
        ids = [
            svc.create_task(
                me,
                TaskCreate(
                    title=f"herd {i}",
                    schedule_kind=ScheduleKind.CRON,
                    schedule_expr="*/2 * * * * *",
                    timezone="UTC",
                    payload=ECHO,
                    jitter_seconds=1,
                ),
            ).id
            for i in range(30)
        ]
        wait_for(lambda: all(len(work_rows(engine, t)) >= 2 for t in ids), 15, proc=proc)
    delays = set()
    for tid in ids:
        for row in work_rows(engine, tid):
            delay = row.not_before - row.run_at
            assert delay == jitter_delay(str(tid), row.run_at, 1)  # what any process computes
            assert timedelta(0) <= delay <= SECOND
            assert row.created_at >= row.not_before, "written before its jittered time"
            assert row.trigger == "schedule"
            delays.add(delay)
        status, next_run = task_state(engine, tid)
        assert status == "active" and next_run is not None
        assert next_run.microsecond % 1000 == 0  # millisecond jitter on a whole-second grid
    assert len(delays) >= 30  # spread, not one offset
