"""A Redis crash in the middle of a burst of events, with real beat and worker processes:
the test's own ``redis-server`` (spare port) is SIGKILLed while events are published and
started again; every event still starts exactly one run of each task it matches."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.celery import create_app
from ordinaut.config import Settings
from ordinaut.embedded import EmbeddedRedis
from ordinaut.runs import wake
from ordinaut.runtime import Runtime
from ordinaut.service.facade import Service
from ordinaut.service.models import EventIn, TaskCreate
from ordinaut.vocabulary import ScheduleKind
from tests.support import bootstrap_admin, processes, start_beat, start_worker, wait_for

ECHO = {"pipeline": [{"id": "e", "uses": "builtin.echo", "with": {"n": "${event.payload.n}"}}]}


@pytest.mark.timeout(240)
def test_a_redis_crash_mid_burst_loses_no_trigger_with_real_workers(
    settings: Settings, engine: Engine, tmp_path: Path, log_dir: Path
) -> None:
    server = EmbeddedRedis(tmp_path / "redis-data")
    local = settings.model_copy(update={"redis_url": server.start()})
    token = bootstrap_admin(local)
    runtime = Runtime(local)
    sender = create_app(local)
    svc = Service(
        runtime,
        kick_dispatch=wake.kicker(sender, runtime),
        kick_relay=wake.kicker(sender, runtime, wake.RELAY_TASK, pending_as=wake.EVENT_RELAY),
    )
    try:
        me = svc.authenticate(token)
        tasks = [
            str(
                svc.create_task(
                    me,
                    TaskCreate(
                        title=pattern,
                        schedule_kind=ScheduleKind.EVENT,
                        schedule_expr=pattern,
                        payload=ECHO,
                    ),
                ).id
            )
            for pattern in ("burst.tick", "burst.*")
        ]
        with processes() as procs:
            procs.append(start_beat(local, log_dir))
            procs.append(worker := start_worker(local, log_dir))
            wait_for(lambda: "ready" in worker.log(), 30, proc=worker, what="the worker")

            def publish(start: int, n: int) -> None:
                for i in range(start, start + n):
                    svc.publish_event(me, EventIn(topic="burst.tick", payload={"n": i}))
                    time.sleep(0.05)

            publish(0, 10)
            pid = server.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)  # mid-burst: whatever the AOF had not written is gone
            server.stop()
            publish(10, 10)  # Redis is down: recorded in PostgreSQL, relayed later
            server.start()
            publish(20, 10)

            def runs() -> Counter[tuple[str, int]]:
                with engine.connect() as conn:
                    rows = conn.execute(
                        sa.text(
                            "SELECT task_id, (event->'payload'->>'n')::int AS n FROM task_run "
                            "WHERE status = 'succeeded'"
                        )
                    ).all()
                return Counter((str(r.task_id), r.n) for r in rows)

            expected = {(t, n) for t in tasks for n in range(30)}
            wait_for(lambda: set(runs()) == expected, 180, proc=worker, what="every run")
            time.sleep(2)  # anything doubled would show up now
            with engine.connect() as conn:
                total = conn.execute(sa.text("SELECT count(*) FROM task_run")).scalar_one()
            assert total == 60
            assert set(runs().values()) == {1}
    finally:
        sender.close()
        runtime.close()
        server.stop()
