"""/metrics gauges over the queues, from rows as the scheduler and dispatch leave them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.config import Settings
from ordinaut.runtime import Runtime
from ordinaut.service import observe
from ordinaut.store.tables import agent, due_work, outbox, task, task_run

NOW = datetime.now(UTC)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    made = Runtime(settings, role="test")
    try:
        yield made
    finally:
        made.close()


def add_task(engine: Engine, **columns: object) -> uuid.UUID:
    with engine.begin() as conn:
        owner = conn.execute(
            sa.insert(agent).values(name=f"g-{uuid.uuid4().hex[:6]}").returning(agent.c.id)
        ).scalar_one()
        values = {
            "title": "t",
            "created_by": owner,
            "schedule_kind": "cron",
            "schedule_expr": "0 * * * *",
            "payload": {},
            **columns,
        }
        made: uuid.UUID = conn.execute(
            sa.insert(task).values(values).returning(task.c.id)
        ).scalar_one()
    return made


def test_backlogs_lag_and_full_concurrency_keys_show(engine: Engine, runtime: Runtime) -> None:
    quiet = observe.snapshot(runtime, NOW).gauges
    assert (quiet.due_backlog, quiet.queued_late, quiet.waiting_concurrency) == (0, 0, 0)
    assert (quiet.outbox_backlog, quiet.lag_seconds) == (0, 0.0)

    free = add_task(engine)
    keyed = add_task(engine, concurrency_key="printer", concurrency_limit=1)
    with engine.begin() as conn:
        # due work that should have started 40 s and 10 s ago, one more not yet due
        conn.execute(
            sa.insert(due_work),
            [
                {
                    "task_id": free,
                    "run_at": NOW - timedelta(seconds=40),
                    "not_before": NOW - timedelta(seconds=40),
                },
                {
                    "task_id": free,
                    "run_at": NOW + timedelta(minutes=5),
                    "not_before": NOW + timedelta(minutes=5),
                },
                {
                    "task_id": keyed,
                    "run_at": NOW - timedelta(seconds=10),
                    "not_before": NOW - timedelta(seconds=10),
                },
            ],
        )
        # the key's one slot is taken by a running run; a queued run waits 25 s for a worker
        conn.execute(
            sa.insert(task_run).values(
                task_id=keyed,
                status="running",
                scheduled_for=NOW,
                concurrency_key="printer",
                started_at=NOW,
            )
        )
        conn.execute(
            sa.insert(task_run).values(
                task_id=free,
                status="queued",
                scheduled_for=NOW,
                not_before=NOW - timedelta(seconds=25),
            )
        )
        conn.execute(sa.insert(outbox), [{"topic": "t", "payload": {}}] * 3)

    g = observe.snapshot(runtime, NOW).gauges
    assert g.due_backlog == 2  # the one due in 5 minutes is not late
    assert g.due_oldest_seconds == pytest.approx(40, abs=0.01)
    assert g.queued_late == 1
    assert g.waiting_concurrency == 1  # "printer" is full
    assert g.outbox_backlog == 3
    assert g.lag_seconds == pytest.approx(40, abs=0.01)  # the oldest wait, due work or run
    runs = observe.snapshot(runtime, NOW).runs
    assert (runs.get("running"), runs.get("queued")) == (1, 1)
