"""Event-triggered tasks end to end: API process → outbox → relay → stream → trigger
consumer → due_work → dispatch → a real worker runs the pipeline with the event in it."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
import sqlalchemy as sa

from ordinaut.store.engine import make_engine
from tests.acceptance.conftest import Stack
from tests.acceptance.test_mcp_scenario import over_http
from tests.support import text_of, wait_for

SCOPES = ["tasks:read", "tasks:write", "runs:read", "events:publish"]


@pytest.fixture
def clients() -> Iterator[list[httpx.Client]]:
    made: list[httpx.Client] = []
    yield made
    for client in made:
        client.close()


def agent(stack: Stack, clients: list[httpx.Client], name: str) -> tuple[httpx.Client, str]:
    made = stack.api.post("/agents", json={"name": name, "scopes": SCOPES})
    assert made.status_code == 201, made.text
    client = httpx.Client(
        base_url=stack.base_url,
        headers={"Authorization": f"Bearer {made.json()['token']}"},
        timeout=10,
    )
    clients.append(client)
    return client, made.json()["id"]


def event_task(client: httpx.Client, title: str, pattern: str, **extra: Any) -> str:
    body = {
        "title": title,
        "schedule_kind": "event",
        "schedule_expr": pattern,
        "payload": {
            "pipeline": [
                {
                    "id": "echo",
                    "uses": "builtin.echo",
                    "with": {
                        "topic": "${event.topic}",
                        "subject": "${event.payload.subject}",
                        "event_id": "${event.id}",
                    },
                    "save_as": "echo",
                }
            ]
        },
        **extra,
    }
    made = client.post("/tasks", json=body)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def runs_by_task(stack: Stack) -> dict[str, list[Any]]:
    engine = make_engine(stack.settings.database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT task_id, status, trigger, event, reason FROM task_run")
            ).all()
    finally:
        engine.dispose()
    found: dict[str, list[Any]] = {}
    for row in rows:
        found.setdefault(str(row.task_id), []).append(row)
    return found


def test_an_event_starts_exactly_one_run_of_each_task_it_reaches(
    stack: Stack, clients: list[httpx.Client]
) -> None:
    alice, _ = agent(stack, clients, "alice")
    bob, bob_id = agent(stack, clients, "bob")
    exact = event_task(alice, "exact", "mail.received")
    star = event_task(alice, "star", "mail.*")
    hash_all = event_task(alice, "hash", "#")
    filtered_in = event_task(alice, "urgent only", "mail.*", event_filter="priority == 'high'")
    filtered_out = event_task(alice, "low only", "mail.*", event_filter="priority == 'low'")
    other_topic = event_task(alice, "calendar", "calendar.*")
    too_deep = event_task(alice, "one segment", "*")
    bobs = event_task(bob, "bob's", "mail.received")
    bob_opted_in = event_task(bob, "bob listens to alice", "mail.#", event_sources=[])
    paused = event_task(alice, "paused", "mail.received")
    assert alice.post(f"/tasks/{paused}/pause").status_code == 200

    # bob's second task opts in to alice's events
    alice_id = alice.get("/me").json()["id"]
    patched = bob.patch(f"/tasks/{bob_opted_in}", json={"event_sources": [alice_id]})
    assert patched.status_code == 200, patched.text

    sent = alice.post(
        "/events",
        json={"topic": "mail.received", "payload": {"subject": "hello", "priority": "high"}},
    )
    assert sent.status_code == 202, sent.text
    event_id = sent.json()["id"]

    firing = {exact, star, hash_all, filtered_in, bob_opted_in}

    def done() -> bool:
        runs = runs_by_task(stack)
        return all(any(r.status == "succeeded" for r in runs.get(t, [])) for t in firing) and bool(
            runs.get(paused)
        )

    wait_for(done, 30, what="the event's runs")
    # anything late would show up now
    wait_for(lambda: stack.api.get("/health").status_code == 200, 5)
    runs = runs_by_task(stack)
    counts = Counter({t: len(rs) for t, rs in runs.items()})
    for task in firing:
        assert counts[task] == 1, (task, runs.get(task))
        (run,) = runs[task]
        assert run.trigger == "event"
        assert run.event["id"] == event_id
        assert run.event["topic"] == "mail.received"
        assert run.event["payload"] == {"subject": "hello", "priority": "high"}
    for task in (filtered_out, other_topic, too_deep, bobs):
        assert counts[task] == 0, (task, runs.get(task))
    (skipped,) = runs[paused]
    assert skipped.status == "skipped" and "paused" in skipped.reason

    # the payload reached the step's input
    got = alice.get("/runs", params={"task_id": exact}).json()["items"]
    detail = alice.get(f"/runs/{got[0]['id']}").json()
    step_input = detail["steps"][0]["input"]
    assert step_input == {"topic": "mail.received", "subject": "hello", "event_id": event_id}

    # bob cannot start alice's tasks by publishing the same topic
    assert bob.post("/events", json={"topic": "mail.received", "payload": {}}).status_code == 202
    wait_for(lambda: len(runs_by_task(stack).get(bobs, [])) == 1, 30, what="bob's own run")
    runs = runs_by_task(stack)
    for task in (exact, star, hash_all):
        assert len(runs[task]) == 1
    assert bob_id != alice_id


def test_an_admin_event_reaches_every_agents_tasks(
    stack: Stack, clients: list[httpx.Client]
) -> None:
    alice, _ = agent(stack, clients, "alice")
    task = event_task(alice, "any", "ops.*")
    sent = stack.api.post("/events", json={"topic": "ops.deploy", "payload": {"subject": "v2"}})
    assert sent.status_code == 202
    wait_for(lambda: runs_by_task(stack).get(task), 30, what="the admin event's run")
    (run,) = runs_by_task(stack)[task]
    assert run.event["payload"] == {"subject": "v2"}
    assert uuid.UUID(run.event["agent_id"])


def test_over_mcp_create_task_makes_an_event_task_and_publish_event_starts_it(
    stack: Stack,
) -> None:
    async def main() -> tuple[str, str]:
        async with over_http(stack) as session:
            refused = await session.call_tool(
                "create_task",
                {
                    "title": "bad filter",
                    "schedule_kind": "event",
                    "schedule_expr": "mcp.*",
                    "event_filter": "x ==",
                    "payload": {"pipeline": [{"id": "e", "uses": "builtin.echo", "with": {}}]},
                },
            )
            assert refused.is_error and "event_filter" in text_of(refused.content[0])
            made = await session.call_tool(
                "create_task",
                {
                    "title": "on mcp.ping",
                    "schedule_kind": "event",
                    "schedule_expr": "mcp.*",
                    "event_filter": "n > `1`",
                    "payload": {
                        "pipeline": [
                            {"id": "e", "uses": "builtin.echo", "with": {"n": "${event.payload.n}"}}
                        ]
                    },
                },
            )
            assert not made.is_error, made.content
            task_id = str((made.structured_content or {})["id"])
            skipped = await session.call_tool(
                "publish_event", {"topic": "mcp.ping", "payload": {"n": 1}}
            )
            assert not skipped.is_error
            sent = await session.call_tool(
                "publish_event", {"topic": "mcp.ping", "payload": {"n": 2}}
            )
            assert not sent.is_error, sent.content
            return task_id, str((sent.structured_content or {})["id"])

    task_id, event_id = anyio.run(main)
    wait_for(
        lambda: any(r.status == "succeeded" for r in runs_by_task(stack).get(task_id, [])),
        30,
        what="the run publish_event started",
    )
    (run,) = runs_by_task(stack)[task_id]
    assert run.event["id"] == event_id and run.event["payload"] == {"n": 2}
