"""The trigger consumer against real PostgreSQL and Redis: a consumer process killed
between reading and acknowledging (SIGKILL) loses no event and doubles none, and a Redis
server killed in the middle of a burst (the test's own ``redis-server``) loses no trigger."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.clock import utcnow
from ordinaut.config import Settings
from ordinaut.embedded import EmbeddedRedis
from ordinaut.events import trigger
from ordinaut.events.relay import relay, stream_key
from ordinaut.runs import dispatch as dispatching
from ordinaut.service.auth import Principal
from ordinaut.service.facade import Service
from ordinaut.service.models import EventIn, TaskCreate
from ordinaut.vocabulary import OverlapPolicy, ScheduleKind
from tests.support import settings_env

ECHO = {"pipeline": [{"id": "e", "uses": "builtin.echo", "with": {"n": "${event.payload.n}"}}]}


def event_tasks(svc: Service, p: Principal, *patterns: str) -> list[str]:
    return [
        str(
            svc.create_task(
                p,
                TaskCreate(
                    title=pattern,
                    schedule_kind=ScheduleKind.EVENT,
                    schedule_expr=pattern,
                    payload=ECHO,
                ),
            ).id
        )
        for pattern in patterns
    ]


def publish(svc: Service, p: Principal, start: int, n: int) -> None:
    for i in range(start, start + n):
        svc.publish_event(p, EventIn(topic="burst.tick", payload={"n": i}))


def work_per_task_event(engine: Engine) -> Counter[tuple[str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT task_id, (event->'payload'->>'n')::int AS n FROM due_work")
        ).all()
    return Counter((str(r.task_id), r.n) for r in rows)


def pending(client: redis.Redis, namespace: str) -> int:
    summary = client.xpending(stream_key(namespace), trigger.GROUP)
    return int(summary["pending"])


CONSUMER = textwrap.dedent(
    """
    import sys, time
    import redis
    from ordinaut.clock import utcnow
    from ordinaut.config import load_settings
    from ordinaut.events import trigger
    from ordinaut.store.engine import make_engine

    mode = sys.argv[1]
    settings = load_settings()
    engine = make_engine(settings.database_url, pool_size=1)
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True, protocol=3)
    entries = trigger.read(client, settings.namespace, "doomed")
    if mode == "after_commit":
        with engine.begin() as conn:
            trigger.handle(conn, trigger.events_of(entries), utcnow())
    print(mode, len(entries), flush=True)
    time.sleep(600)  # killed here: read (and maybe committed), never acknowledged
    """
)


def run_and_kill(settings: Settings, mode: str) -> int:
    """A consumer process that reads (and maybe commits) and is SIGKILLed before XACK."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CONSUMER, mode],
        env=settings_env(settings),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert line and line[0] == mode, line
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    return int(line[1])


@pytest.mark.parametrize("mode", ["before_commit", "after_commit"])
def test_a_consumer_killed_before_acknowledging_loses_and_doubles_nothing(
    service: tuple[Service, Principal], settings: Settings, engine: Engine, mode: str
) -> None:
    svc, admin = service
    tasks = event_tasks(svc, admin, "burst.tick", "burst.*", "other.*")
    publish(svc, admin, 0, 5)
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True, protocol=3)
    try:
        assert relay(engine, client, settings.namespace) == 5 + 3  # 3 task.created events
        read = run_and_kill(settings, mode)
        assert read == 8
        assert pending(client, settings.namespace) == 8  # read by the dead consumer, not acked
        if mode == "after_commit":
            assert sum(work_per_task_event(engine).values()) == 10

        time.sleep(0.3)
        result = trigger.consume(
            engine, client, settings.namespace, svc.clock(), consumer="survivor", claim_idle_ms=200
        )
        assert result.entries == 8  # re-claimed with XAUTOCLAIM
        assert pending(client, settings.namespace) == 0
        work = work_per_task_event(engine)
        expected = {(t, n) for t in tasks[:2] for n in range(5)}
        assert set(work) == expected
        assert set(work.values()) == {1}  # each task once per event, whoever committed it
    finally:
        client.close()


def test_a_redis_crash_in_the_middle_of_a_burst_loses_no_trigger(
    service: tuple[Service, Principal], engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    svc, admin = service
    tasks = event_tasks(svc, admin, "burst.tick", "#")
    server = EmbeddedRedis(tmp_path)
    server.start()
    client = redis.Redis.from_url(server.url, decode_responses=True, protocol=3)
    ns = settings.namespace
    try:
        publish(svc, admin, 0, 10)
        relay(engine, client, ns)
        trigger.consume(engine, client, ns, svc.clock())  # the first ten: triggered

        publish(svc, admin, 10, 10)
        relay(engine, client, ns)  # on the stream, not yet read by the group
        pid = server.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # a crash: the last second of the AOF may be gone
        server.stop()

        publish(svc, admin, 20, 10)  # while Redis is down: they wait in the outbox
        with pytest.raises(redis.ConnectionError):
            relay(engine, client, ns)

        server.start()
        relay(engine, client, ns)
        trigger.consume(engine, client, ns, svc.clock())
        # whatever the crash took from the stream, the backstop finds in PostgreSQL
        trigger.backstop(engine, svc.clock(), after=timedelta(0))
        trigger.consume(engine, client, ns, svc.clock())

        work = work_per_task_event(engine)
        assert set(work) == {(t, n) for t in tasks for n in range(30)}
        assert set(work.values()) == {1}
        with engine.connect() as conn:
            untriggered = conn.execute(
                sa.text(
                    "SELECT count(*) FROM outbox "
                    "WHERE topic LIKE 'event.external.%' AND triggered_at IS NULL"
                )
            ).scalar_one()
        assert untriggered == 0
    finally:
        client.close()
        server.stop()


def test_events_lost_from_the_stream_are_triggered_by_the_backstop(
    service: tuple[Service, Principal], engine: Engine, settings: Settings
) -> None:
    svc, admin = service
    (task,) = event_tasks(svc, admin, "burst.tick")
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True, protocol=3)
    try:
        publish(svc, admin, 0, 3)
        relay(engine, client, settings.namespace)
        client.delete(stream_key(settings.namespace))  # Redis lost the stream
        assert trigger.consume(engine, client, settings.namespace, svc.clock()).events == 0
        # not yet: the backstop waits BACKSTOP_AFTER for the stream to deliver
        assert trigger.backstop(engine, svc.clock()) == 0
        later = svc.clock() + trigger.BACKSTOP_AFTER + timedelta(seconds=1)
        assert trigger.backstop(engine, later) == 3
        assert trigger.backstop(engine, later) == 0
        assert work_per_task_event(engine) == Counter({(task, n): 1 for n in range(3)})
    finally:
        client.close()


def test_the_event_history_is_pruned_after_its_retention(
    service: tuple[Service, Principal], engine: Engine, settings: Settings
) -> None:
    svc, admin = service
    (task,) = event_tasks(svc, admin, "burst.tick")
    publish(svc, admin, 0, 2)
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True, protocol=3)
    try:
        relay(engine, client, settings.namespace)
        trigger.consume(engine, client, settings.namespace, svc.clock())
    finally:
        client.close()
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE event_fire SET fired_at = now() - interval '31 days' WHERE task_id = :t"
            ),
            {"t": task},
        )
    publish(svc, admin, 2, 1)  # a recent one stays
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True, protocol=3)
    try:
        relay(engine, client, settings.namespace)
        trigger.consume(engine, client, settings.namespace, svc.clock())
    finally:
        client.close()
    gone = trigger.prune(engine, svc.clock(), days=30)
    assert gone["event_fire"] == 2
    with engine.connect() as conn:
        left = conn.execute(sa.text("SELECT count(*) FROM event_fire")).scalar_one()
    assert left == 1


def test_dispatch_rules_apply_to_event_runs(
    service: tuple[Service, Principal], engine: Engine, settings: Settings
) -> None:
    """Dedupe, overlap and priority decide event work as they decide scheduled work."""
    svc, admin = service
    deduped = svc.create_task(
        admin,
        TaskCreate(
            title="dedupe",
            schedule_kind=ScheduleKind.EVENT,
            schedule_expr="burst.tick",
            payload=ECHO,
            dedupe_key="one-per-minute",
            dedupe_window_seconds=60,
            priority=2,
        ),
    )
    overlapping = svc.create_task(
        admin,
        TaskCreate(
            title="overlap",
            schedule_kind=ScheduleKind.EVENT,
            schedule_expr="burst.tick",
            payload=ECHO,
            overlap_policy=OverlapPolicy.SKIP,
        ),
    )
    publish(svc, admin, 0, 3)
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True, protocol=3)
    try:
        relay(engine, client, settings.namespace)
        trigger.consume(engine, client, settings.namespace, svc.clock())
    finally:
        client.close()
    published: list[Any] = []
    dispatching.dispatch(engine, settings.namespace, utcnow, published.extend, batch_size=100)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT task_id, status, trigger, priority, reason FROM task_run")
        ).all()
    by_task: dict[str, list[Any]] = {}
    for row in rows:
        by_task.setdefault(str(row.task_id), []).append(row)
    for task in (deduped, overlapping):
        runs = by_task[str(task.id)]
        assert len(runs) == 3 and {r.trigger for r in runs} == {"event"}
        assert [r.status for r in runs].count("queued") == 1, runs
        assert [r.status for r in runs].count("skipped") == 2, runs
    assert {r.priority for r in by_task[str(deduped.id)]} == {2}
    assert all("dedupe" in (r.reason or "") for r in by_task[str(deduped.id)] if r.reason)
    assert all("overlap" in (r.reason or "") for r in by_task[str(overlapping.id)] if r.reason)
    assert {q.priority for q in published} == {2, 5}
