"""/metrics counters through the roll-up: what finished long ago is summed once, what
finished since is counted live, and no run or step is counted twice or lost as the
watermark moves (``now`` is passed in, so the test moves it)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.runtime import Runtime
from ordinaut.service import observe
from ordinaut.store.queries.metrics import ROLL_LAG, STEP_BUCKETS
from ordinaut.store.tables import agent, metric_watermark, step_result, task, task_run

NOW = datetime.now(UTC)


@pytest.fixture
def runtime(settings: Any) -> Iterator[Runtime]:
    made = Runtime(settings, role="test")
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def task_id(engine: Engine) -> uuid.UUID:
    with engine.begin() as conn:
        owner = conn.execute(sa.insert(agent).values(name="m").returning(agent.c.id)).scalar_one()
        made: uuid.UUID = conn.execute(
            sa.insert(task)
            .values(
                title="t",
                created_by=owner,
                schedule_kind="cron",
                schedule_expr="0 * * * *",
                payload={},
            )
            .returning(task.c.id)
        ).scalar_one()
    return made


def add_runs(
    engine: Engine, task_id: uuid.UUID, finished: datetime, statuses: list[str], step_ms: int
) -> None:
    """Finished runs at ``finished``, each with one builtin.echo step of ``step_ms``."""
    with engine.begin() as conn:
        for n, status in enumerate(statuses):
            run = conn.execute(
                sa.insert(task_run)
                .values(
                    task_id=task_id,
                    status=status,
                    trigger="manual",
                    scheduled_for=finished - timedelta(seconds=n + 1),
                    started_at=finished - timedelta(seconds=1),
                    finished_at=finished,
                )
                .returning(task_run.c.id)
            ).scalar_one()
            conn.execute(
                sa.insert(step_result).values(
                    run_id=run,
                    step_path="e",
                    step_id="e",
                    address="builtin.echo",
                    status="succeeded" if status == "succeeded" else "failed",
                    started_at=finished - timedelta(milliseconds=step_ms),
                    finished_at=finished,
                )
            )


def figures(runtime: Runtime, now: datetime) -> tuple[dict[str, int], dict[str, Any]]:
    snap = observe.snapshot(runtime, now)
    (echo,) = [s for s in snap.steps if s.address == "builtin.echo"]
    return snap.runs, {
        "count": echo.count,
        "ok": echo.succeeded,
        "buckets": echo.buckets,
        "seconds": round(echo.seconds, 6),
    }


def watermark(engine: Engine) -> datetime:
    with engine.connect() as conn:
        moment: datetime = conn.execute(sa.select(metric_watermark.c.rolled_until)).scalar_one()
    return moment


def test_counters_survive_the_roll_up_without_double_counting(
    engine: Engine, runtime: Runtime, task_id: uuid.UUID
) -> None:
    add_runs(engine, task_id, NOW - timedelta(hours=1), ["succeeded"] * 3 + ["failed"], 20)
    add_runs(engine, task_id, NOW - timedelta(seconds=5), ["succeeded", "failed"], 300)

    runs, steps = figures(runtime, NOW)
    assert watermark(engine) == NOW - ROLL_LAG  # the hour-old runs are summed now
    assert (runs["succeeded"], runs["failed"]) == (4, 2)
    assert (steps["count"], steps["ok"]) == (6, 4)
    expected = tuple(4 * (b >= 0.02) + 2 * (b >= 0.3) for b in STEP_BUCKETS)
    assert steps["buckets"] == expected
    assert steps["seconds"] == pytest.approx(4 * 0.02 + 2 * 0.3)

    assert figures(runtime, NOW) == (runs, steps)  # a second scrape: nothing counted twice

    later = NOW + timedelta(minutes=10)  # the recent runs are rolled up too: same totals
    assert figures(runtime, later) == (runs, steps)
    assert watermark(engine) == later - ROLL_LAG

    add_runs(engine, task_id, later - timedelta(seconds=1), ["failed"], 5)  # new work shows
    runs2, steps2 = figures(runtime, later)
    assert (runs2["succeeded"], runs2["failed"]) == (4, 3)
    assert (steps2["count"], steps2["ok"]) == (7, 4)
