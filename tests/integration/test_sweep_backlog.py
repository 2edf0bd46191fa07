"""The sweeper after a broker outage: prompt re-sends when the runs queue is empty, bounded.

A run whose ``execute_run`` message died with the broker stays ``queued``; the sweeper
re-sends it. How soon depends on the runs queue, measured on a real Redis.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from celery import Celery
from sqlalchemy.engine import Engine

from ordinaut.celery import create_app
from ordinaut.config import Settings
from ordinaut.runs import execute as executing
from ordinaut.runs import maintenance
from ordinaut.runs.publish import EXECUTE_RUN
from ordinaut.tasks import runs_backlog
from tests.integration.test_execute import ECHO, pipeline, queue_run, run_row


def published_ago(engine: Engine, run_id: uuid.UUID, seconds: float) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE task_run SET published_at = now() - make_interval(secs => :s), "
                "created_at = now() - make_interval(secs => :s) WHERE id = :i"
            ),
            {"s": seconds, "i": run_id},
        )


def sweep(
    engine: Engine, settings: Settings, backlog: int | None, limit: int = 1000
) -> list[uuid.UUID]:
    return maintenance.sweep(
        engine, settings, datetime.now(UTC), lambda q: None, limit=limit, backlog=backlog
    )


def test_with_the_runs_queue_empty_a_lost_message_is_re_sent_after_one_lease(
    engine: Engine, settings: Settings
) -> None:
    # settings.lease_seconds is 10: published 12 s ago, not claimed (the broker restarted)
    lost = queue_run(engine, pipeline(ECHO))
    published_ago(engine, lost, 12)
    assert sweep(engine, settings, backlog=7) == []  # a backlog: its message may be waiting
    assert sweep(engine, settings, backlog=None) == []  # the queue could not be measured
    assert sweep(engine, settings, backlog=0) == [lost]  # nothing waits: it lost its message
    assert run_row(engine, lost).published_at > datetime.now(UTC) - timedelta(seconds=5)
    assert sweep(engine, settings, backlog=0) == []  # just re-sent: not again at once


def test_a_worker_holding_a_message_keeps_it_and_a_sweep_is_bounded(
    engine: Engine, settings: Settings
) -> None:
    held = queue_run(engine, pipeline(ECHO))
    lost = [queue_run(engine, pipeline(ECHO)) for _ in range(3)]
    for run_id in (held, *lost):
        published_ago(engine, run_id, 12)
    executing.reserve(engine, settings, [held], "busy-worker:1")  # a live reservation
    first = sweep(engine, settings, backlog=0, limit=2)
    assert len(first) == 2 and set(first) < set(lost)  # bounded per sweep
    # the re-sent ones now wait in the queue: the rest wait for it to drain, or five leases
    assert sweep(engine, settings, backlog=2) == []
    assert sweep(engine, settings, backlog=0) == list(set(lost) - set(first))
    assert run_row(engine, held).published_at < datetime.now(UTC) - timedelta(seconds=10)


@pytest.fixture
def app(settings: Settings) -> Iterator[Celery]:
    made = create_app(settings)
    yield made
    made.ordinaut_runtime().close()
    made.pool.force_close_all()


def test_the_backlog_is_measured_on_the_broker(app: Celery, settings: Settings) -> None:
    assert runs_backlog(app, settings.runs_queue) == 0  # Redis keeps no key for it yet
    for priority in (1, 9):  # kombu keeps one list per priority step: both count
        app.send_task(EXECUTE_RUN, args=[str(uuid.uuid4())], priority=priority)
    assert runs_backlog(app, settings.runs_queue) == 2
    assert runs_backlog(app, settings.control_queue) == 0


def test_an_unreachable_broker_means_an_unknown_backlog(settings: Settings) -> None:
    away = create_app(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    assert runs_backlog(away, settings.runs_queue) is None
