"""What Flower shows for ``execute_run``: the task's title and the run id, from the message."""

from __future__ import annotations

import json
import uuid

import redis

from ordinaut.celery import create_app
from ordinaut.config import Settings
from ordinaut.runs.dispatch import QueuedRun
from ordinaut.runs.publish import publisher, shown


def test_shown_names_each_run_by_its_task() -> None:
    one, two = uuid.uuid4(), uuid.uuid4()
    assert shown([QueuedRun(one, 5, "Morning briefing")]) == f"'Morning briefing' run {one}"
    assert shown([QueuedRun(one, 5, "x" * 100), QueuedRun(two, 5)]) == (
        f"'{'x' * 57}...' run {one}; run {two}"
    )


def test_execute_run_messages_carry_the_title_in_argsrepr(settings: Settings) -> None:
    app = create_app(settings)
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    run_id = uuid.uuid4()
    try:
        publisher(app)([QueuedRun(run_id, 5, "Morning briefing")])
        keys = [
            k
            for k in client.keys(f"{settings.namespace}:celery:{settings.namespace}.runs*")
            if client.type(k) == "list"
        ]
        messages = [json.loads(m) for k in keys for m in client.lrange(k, 0, -1)]
    finally:
        client.close()
        app.close()
    (message,) = messages
    assert message["headers"]["task"] == "ordinaut.execute_run"
    assert message["headers"]["argsrepr"] == f"'Morning briefing' run {run_id}"
