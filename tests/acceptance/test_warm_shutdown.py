"""A worker told to stop (SIGTERM to its main process, as ``ordinaut up`` sends it): runs
that end within the grace period finish; the others are handed back at once, never left to
wait a whole lease, and no completed step runs twice."""

from __future__ import annotations

import os
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.config import Settings
from ordinaut.runs import shutdown
from tests.integration.test_dispatch import add_due, make_task
from tests.support import processes, start_beat, start_worker, wait_for


def sleeps(count: int, seconds: float) -> dict[str, Any]:
    steps = [
        {"id": f"s{i}", "uses": "builtin.sleep", "with": {"seconds": seconds}} for i in range(count)
    ]
    return {"pipeline": steps}


def runs_of(engine: Engine, task_id: uuid.UUID) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text("SELECT * FROM task_run WHERE task_id = :t ORDER BY attempt"),
                {"t": task_id},
            ).all()
        )


def receipts(engine: Engine, task_id: uuid.UUID) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT r.attempt, s.step_id, s.cached FROM step_result s "
                    "JOIN task_run r ON r.id = s.run_id WHERE r.task_id = :t ORDER BY s.id"
                ),
                {"t": task_id},
            ).all()
        )


@pytest.mark.timeout(180)
def test_sigterm_lets_short_runs_finish_and_hands_the_rest_back(
    settings: Settings, engine: Engine, log_dir: Path
) -> None:
    local = settings.model_copy(update={"shutdown_grace_seconds": 2.0})
    with engine.begin() as conn:
        short = make_task(conn, sleeps(3, 0.5))  # ends inside the grace
        steps = make_task(conn, sleeps(10, 0.5))  # stopped at a step boundary
        stuck = make_task(conn, sleeps(1, 30))  # still inside its one step
        for task_id in (short, steps, stuck):
            add_due(conn, task_id, datetime.now(UTC) - timedelta(seconds=1))
    with processes() as procs:
        procs.append(start_beat(local, log_dir))
        procs.append(worker := start_worker(local, log_dir, "first", concurrency=3))

        def all_running() -> bool:
            return all(
                [r.status for r in runs_of(engine, t)] == ["running"] for t in (short, steps, stuck)
            )

        wait_for(all_running, 60, proc=worker, what="the three runs to start")
        asked = time.monotonic()
        os.kill(worker.pid, signal.SIGTERM)  # the main process only: a warm shutdown
        wait_for(lambda: not worker.alive(), 60, what="the worker to stop")
        print(f"worker stopped {time.monotonic() - asked:.1f} s after SIGTERM (grace 2 s)")

        (done,) = runs_of(engine, short)
        assert done.status == "succeeded"
        (first,) = runs_of(engine, steps)
        assert (first.status, first.error) == ("failed", shutdown.HANDED_BACK)
        (cut,) = runs_of(engine, stuck)
        assert (cut.status, cut.error) == ("failed", shutdown.HANDED_BACK_IN_STEP)
        with engine.connect() as conn:
            retries = conn.execute(
                sa.text("SELECT task_id, attempt, not_before FROM due_work ORDER BY task_id")
            ).all()
        # both are due again at once (the one cut inside a step once the pool is gone), not
        # after a lease (settings.lease_seconds) plus the reaper
        assert {(r.task_id, r.attempt) for r in retries} == {(steps, 2), (stuck, 2)}
        for retry in retries:
            ended = first.finished_at if retry.task_id == steps else cut.finished_at
            assert retry.not_before - ended <= timedelta(seconds=shutdown.IN_STEP_RETRY_DELAY)
        done_before = {r.step_id for r in receipts(engine, steps)}
        assert done_before and len(done_before) < 10

        procs.append(second := start_worker(local, log_dir, "second", concurrency=1))
        wait_for(
            lambda: [r.status for r in runs_of(engine, steps)] == ["failed", "succeeded"],
            60,
            proc=second,
            what="the handed-back run's next attempt",
        )
        again = [(r.step_id, r.cached) for r in receipts(engine, steps) if r.attempt == 2]
        assert {step for step, cached in again if cached} == done_before
        # every step ran (not served from a receipt) exactly once over both attempts
        ran = [r.step_id for r in receipts(engine, steps) if not r.cached]
        assert sorted(ran) == sorted(f"s{i}" for i in range(10))
