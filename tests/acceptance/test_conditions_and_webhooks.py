"""Condition tasks and webhooks with real processes (API, beat, a worker): the worker's
maintenance pass runs the checks and sends the webhooks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from ordinaut.config import Settings
from ordinaut.store.engine import make_engine
from tests.integration.test_condition_tasks import CONDITION, PIPELINE
from tests.integration.test_webhooks import Receiver, receiver, verify
from tests.support import (
    bootstrap_admin,
    free_port,
    processes,
    start_api,
    start_beat,
    start_worker,
    wait_for,
)

__all__ = ["receiver"]  # the fixture, used here too

ENV = {"ORDINAUT_ALLOW_PRIVATE_WEBHOOKS": "1", "ORDINAUT_WEBHOOK_RETRY_BASE_SECONDS": "0.5"}


@pytest.fixture
def admin(settings: Settings, log_dir: Path) -> Iterator[httpx.Client]:
    token = bootstrap_admin(settings)
    port = free_port()
    with processes() as procs:
        procs.append(start_api(settings, log_dir, port, env=ENV))
        procs.append(start_beat(settings, log_dir))
        procs.append(start_worker(settings, log_dir, env=ENV))
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ) as client:
            yield client


def sql(settings: Settings, statement: str, **params: Any) -> list[Any]:
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        engine.dispose()


def test_a_condition_fires_once_per_edge_on_real_workers(
    admin: httpx.Client, settings: Settings
) -> None:
    made = admin.post(
        "/tasks",
        json={
            "title": "watch",
            "schedule_kind": "condition",
            "schedule_expr": "0 0 1 1 *",  # its own ticks are far away: the test makes them
            "condition": CONDITION,
            "payload": {"params": {"v": False}, "pipeline": PIPELINE},
        },
    )
    assert made.status_code == 201, made.text
    task = made.json()["id"]

    def tick(v: bool, n: int) -> None:
        body = {"payload": {"params": {"v": v}, "pipeline": PIPELINE}}
        assert admin.patch(f"/tasks/{task}", json=body).status_code == 200
        sql(settings, "UPDATE task SET next_check_at = now() WHERE id = :id", id=task)
        wait_for(
            lambda: len(admin.get(f"/tasks/{task}/checks").json()["items"]) >= n,
            30,
            what=f"check {n}",
        )

    for n, v in enumerate((True, True, False, True), start=1):
        tick(v, n)

    def succeeded() -> list[Any]:
        runs = admin.get("/runs", params={"task_id": task}).json()["items"]
        return [r for r in runs if r["status"] == "succeeded"]

    wait_for(lambda: len(succeeded()) == 2, 30, what="two runs")
    time.sleep(1)
    runs = admin.get("/runs", params={"task_id": task}).json()["items"]
    assert len(runs) == 2 and {r["trigger"] for r in runs} == {"condition"}
    fired = [c["fired"] for c in reversed(admin.get(f"/tasks/{task}/checks").json()["items"])]
    assert fired == [True, False, False, True]


def test_run_events_reach_a_webhook_signed_and_retried(
    admin: httpx.Client, settings: Settings, receiver: Receiver
) -> None:
    receiver.fail_first = 1
    made = admin.post(
        "/agents",
        json={
            "name": "hooked",
            "scopes": ["tasks:read", "tasks:write", "events:publish"],
            "webhook_url": receiver.url,
        },
    )
    assert made.status_code == 201, made.text
    agent = made.json()
    with httpx.Client(
        base_url=str(admin.base_url),
        headers={"Authorization": f"Bearer {agent['token']}"},
        timeout=10,
    ) as client:
        task = client.post(
            "/tasks",
            json={
                "title": "on ping",
                "schedule_kind": "event",
                "schedule_expr": "ping",
                "payload": {"pipeline": [{"id": "e", "uses": "builtin.echo", "with": {}}]},
            },
        ).json()["id"]
        assert client.post("/events", json={"topic": "ping", "payload": {}}).status_code == 202

    def topics() -> set[str]:
        return {json.loads(body)["topic"] for headers, body in receiver.got}

    wait_for(lambda: {"task.run.started", "task.run.succeeded"} <= topics(), 60, what="hooks")
    for headers, body in receiver.got:
        assert verify(agent["webhook_secret"], headers, body)
        assert json.loads(body)["payload"]["task_id"] == task
    deliveries = admin.get(f"/agents/{agent['id']}/deliveries").json()["items"]
    wait_for(
        lambda: all(
            d["status"] == "delivered"
            for d in admin.get(f"/agents/{agent['id']}/deliveries").json()["items"]
        ),
        30,
        what="all delivered",
    )
    deliveries = admin.get(f"/agents/{agent['id']}/deliveries").json()["items"]
    assert max(d["attempts"] for d in deliveries) == 2  # the first answer was a 500
