"""Wake-up requests, read off the real broker. What a runs worker asks for after a message's
runs (``wake.after_runs``): the relay half a second later, once while one is pending; a
dispatch pass now when a run left work for dispatch; a refill pass 0.2 s later while dispatch
holds work back. And beat asks for dispatch on the first full batch of a burst, before it
writes the next one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import redis
from sqlalchemy.engine import Engine

from ordinaut.beat.scheduler import DatabaseScheduler
from ordinaut.celery import create_app
from ordinaut.clock import utcnow
from ordinaut.config import Settings
from ordinaut.runs import wake
from ordinaut.runtime import Runtime
from tests.integration.test_dispatch import make_task


@pytest.fixture
def sent(settings: Settings) -> Iterator[tuple[Any, Runtime, Any]]:
    app = create_app(settings)
    rt = Runtime(settings, role="test")
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)

    def messages() -> list[tuple[str, float | None]]:
        """(task, its eta or None) of every message on the control queue."""
        pattern = f"{settings.namespace}:celery:{settings.control_queue}*"
        keys = [k for k in client.keys(pattern) if client.type(k) == "list"]
        found = []
        for raw in (m for k in keys for m in client.lrange(k, 0, -1)):
            headers = json.loads(raw)["headers"]
            eta = headers.get("eta")
            found.append((headers["task"], eta))
        return found

    try:
        yield app, rt, messages
    finally:
        client.close()
        rt.close()
        app.close()


def delays(found: list[tuple[str, Any]], task: str) -> list[float | None]:
    now = datetime.now().astimezone()
    return [
        None if eta is None else (datetime.fromisoformat(eta) - now).total_seconds()
        for name, eta in found
        if name == task
    ]


def test_the_relay_is_asked_for_once_and_half_a_second_later(sent: Any) -> None:
    app, rt, messages = sent
    wake.after_runs(app, rt, wake_dispatch=False)
    wake.after_runs(app, rt, wake_dispatch=False)  # one pending: not asked again
    (relay,) = delays(messages(), wake.RELAY_TASK)
    assert relay is not None and 0 < relay <= wake.RELAY_DELAY
    assert delays(messages(), wake.DISPATCH_TASK) == []  # nothing left for dispatch


def test_work_left_for_dispatch_asks_for_a_pass_now(sent: Any) -> None:
    app, rt, messages = sent
    wake.after_runs(app, rt, wake_dispatch=True)
    assert delays(messages(), wake.DISPATCH_TASK) == [None]


def test_while_dispatch_holds_work_back_a_refill_pass_comes_a_moment_later(sent: Any) -> None:
    app, rt, messages = sent
    wake.hold(rt, True)
    wake.after_runs(app, rt, wake_dispatch=False)
    wake.after_runs(app, rt, wake_dispatch=False)  # one pending: not one per message
    (refill,) = delays(messages(), wake.DISPATCH_TASK)
    assert refill is not None and 0 < refill <= wake.HELD_REFILL_DELAY
    wake.hold(rt, False)


def test_beat_asks_for_dispatch_on_a_bursts_first_full_batch(
    settings: Settings, engine: Engine
) -> None:
    # tasks with a concurrency key go through dispatch; five due, batches of two: the first
    # full batch already asks (coalesced: one message), while beat writes the other three
    small = settings.model_copy(update={"beat_batch_size": 2})
    app = create_app(small)
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    with engine.begin() as conn:
        for _ in range(5):
            make_task(
                conn, concurrency_key="gpu", next_run_at=utcnow(), next_occurrence_at=utcnow()
            )
    scheduler = DatabaseScheduler(app)
    try:
        pattern = f"{settings.namespace}:celery:{settings.control_queue}*"
        seen = scheduler._fire(utcnow())  # the batches only: the look's own request comes after
        keys = [k for k in client.keys(pattern) if client.type(k) == "list"]
        tasks = [json.loads(m)["headers"]["task"] for k in keys for m in client.lrange(k, 0, -1)]
        assert tasks == [wake.DISPATCH_TASK]
        assert seen.became_due
    finally:
        scheduler.close()
        client.close()
        app.close()
