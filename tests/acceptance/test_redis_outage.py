"""Guarantee 9 with real processes: Redis (broker and stream) goes away while beat and a
worker run; beat keeps scheduling into Postgres, nothing is lost, and the run happens once
Redis is back (a real Redis server on a spare port is stopped and restarted). Beat says so
in one line each way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.config import Settings
from ordinaut.embedded import EmbeddedRedis
from ordinaut.runtime import Runtime
from ordinaut.service.facade import Service
from ordinaut.service.models import TaskCreate
from ordinaut.store.tables import due_work, task, task_run
from tests.support import bootstrap_admin, processes, start_beat, start_worker, wait_for


@pytest.mark.timeout(180)
def test_beat_and_worker_ride_out_a_redis_outage(
    settings: Settings, engine: Engine, tmp_path: Path, log_dir: Path
) -> None:
    redis_server = EmbeddedRedis(tmp_path / "redis-data")
    local = settings.model_copy(update={"redis_url": redis_server.start()})
    token = bootstrap_admin(local)
    svc = Service(Runtime(local), kick_dispatch=lambda: None)
    try:
        with processes() as procs:
            procs.append(beat := start_beat(local, log_dir))
            procs.append(worker := start_worker(local, log_dir))
            wait_for(lambda: "ready" in worker.log(), 30, proc=worker, what="the worker")

            redis_server.stop()
            when = datetime.now(UTC) + timedelta(seconds=3)
            me = svc.authenticate(token)
            made = svc.create_task(
                me,
                TaskCreate.model_validate(
                    {
                        "title": "during the outage",
                        "schedule_kind": "once",
                        "schedule_expr": when.isoformat(),
                        "timezone": "UTC",
                        "payload": {"pipeline": [{"id": "e", "uses": "builtin.echo", "with": {}}]},
                    }
                ),
            )

            def scheduled() -> bool:
                with engine.connect() as conn:
                    status = conn.execute(
                        sa.select(task.c.status).where(task.c.id == made.id)
                    ).scalar_one()
                    # the run (its task runs freely: beat creates it) or due work for dispatch
                    rows = (
                        conn.execute(sa.select(sa.func.count()).select_from(due_work)).scalar_one()
                        + conn.execute(
                            sa.select(sa.func.count()).where(task_run.c.task_id == made.id)
                        ).scalar_one()
                    )
                return status == "completed" and rows == 1

            # beat keeps scheduling into Postgres while the broker is away
            wait_for(scheduled, 30, proc=beat, what="beat to schedule without Redis")
            assert beat.alive() and worker.alive()

            redis_server.start()

            def succeeded() -> bool:
                with engine.connect() as conn:
                    statuses = (
                        conn.execute(
                            sa.select(task_run.c.status).where(task_run.c.task_id == made.id)
                        )
                        .scalars()
                        .all()
                    )
                return statuses == ["succeeded"]

            wait_for(succeeded, 90, proc=beat, what="the run once Redis is back")
            assert worker.alive()
            # one line when the broker went away and one when it came back: no traceback
            # per failed send (Celery's default, about 150 lines each, several a second)
            log = beat.log()
            assert "Traceback" not in log
            assert log.count("is unreachable") == 1 and log.count("is reachable again") == 1
    finally:
        svc.runtime.close()
        redis_server.stop()
