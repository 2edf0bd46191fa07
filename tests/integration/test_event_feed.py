"""Following the stream: GET /events pages and GET /events/stream (SSE) over a real API and
Redis — in order, filtered to what the caller may see, resumable from Last-Event-ID."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy.engine import Engine

from ordinaut.config import Settings
from ordinaut.events.relay import relay
from tests.integration.conftest import Api, serve
from tests.support import bootstrap_admin

SCOPES = ["tasks:read", "tasks:write", "runs:read", "events:publish"]
ECHO = {"pipeline": [{"id": "e", "uses": "builtin.echo", "with": {"x": 1}}]}


def push(engine: Engine, settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True, protocol=3)
    try:
        relay(engine, client, settings.namespace)
    finally:
        client.close()


def test_pages_in_order_with_topic_filter_and_visibility(
    api: Api, engine: Engine, settings: Settings
) -> None:
    alice = api.agent("alice", SCOPES)
    bob = api.agent("bob", SCOPES)
    mine = alice.post(
        "/tasks",
        json={"title": "a", "schedule_kind": "cron", "schedule_expr": "0 9 * * *", "payload": ECHO},
    ).json()["id"]
    bob.post(
        "/tasks",
        json={"title": "b", "schedule_kind": "cron", "schedule_expr": "0 9 * * *", "payload": ECHO},
    )
    for i in range(5):
        assert (
            alice.post("/events", json={"topic": "n.tick", "payload": {"i": i}}).status_code == 202
        )
    assert bob.post("/events", json={"topic": "n.tick", "payload": {"i": 99}}).status_code == 202
    push(engine, settings)

    # the admin sees everything, in order, in pages
    first = api.admin.get("/events", params={"limit": 3}).json()
    assert len(first["items"]) == 3
    rest = api.admin.get("/events", params={"after": first["next_cursor"], "limit": 100}).json()
    everything = first["items"] + rest["items"]
    assert [e["topic"] for e in everything].count("task.created") == 2
    ids = [e["outbox_id"] for e in everything]
    assert ids == sorted(ids) and len(ids) == 8
    # a poll at the end keeps its place
    assert api.admin.get("/events", params={"after": rest["next_cursor"]}).json() == {
        "items": [],
        "next_cursor": rest["next_cursor"],
    }

    # alice: her task's event and her own external events, not bob's
    seen = alice.get("/events").json()["items"]
    assert [e["topic"] for e in seen] == ["task.created"] + ["event.external.n.tick"] * 5
    assert seen[0]["payload"]["task_id"] == mine
    assert [e["payload"]["payload"]["i"] for e in seen[1:]] == [0, 1, 2, 3, 4]

    ticks = alice.get("/events", params={"topic": "event.external.#", "limit": 2}).json()
    assert [e["payload"]["payload"]["i"] for e in ticks["items"]] == [0, 1]

    for params, field in (
        ({"after": "nope"}, "after"),
        ({"topic": "a..b"}, "topic"),
        ({"limit": 0}, "limit"),
    ):
        got = alice.get("/events", params=params)
        assert got.status_code == 422 and field in got.text, got.text


@pytest.fixture
def fast_api(settings: Settings) -> Iterator[tuple[str, str, Settings]]:
    """An API whose event stream sends a heartbeat every 0.3 s."""
    quick = settings.model_copy(update={"event_stream_heartbeat_seconds": 0.3})
    token = bootstrap_admin(quick)
    with serve(quick) as base:
        yield base, token, quick


def sse_events(response: httpx.Response, count: int) -> Iterator[dict[str, Any]]:
    """Parse Server-Sent Events from a streaming response; comments become {"comment": …}."""
    current: dict[str, Any] = {}
    seen = 0
    for line in response.iter_lines():
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
            continue
        if line == "":
            if "data" in current:
                yield current
                seen += 1
                if seen == count:
                    return
            current = {}
            continue
        name, _, value = line.partition(":")
        current[name] = value.lstrip(" ")


def test_sse_delivers_in_order_and_resumes_from_last_event_id(
    fast_api: tuple[str, str, Settings], engine: Engine
) -> None:
    base, token, settings = fast_api
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
        got: list[dict[str, Any]] = []
        comments: list[str] = []
        with http.stream("GET", "/events/stream", params={"topic": "event.external.#"}) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            published = False
            for item in sse_events(resp, 4):
                if "comment" in item:
                    comments.append(item["comment"])
                    if item["comment"] == "heartbeat" and not published:
                        # open and idle: publish now (a live feed shows only new events)
                        for i in range(4):
                            http.post("/events", json={"topic": "s.tick", "payload": {"i": i}})
                        http.post(
                            "/tasks",
                            json={
                                "title": "x",
                                "schedule_kind": "cron",
                                "schedule_expr": "0 9 * * *",
                                "payload": ECHO,
                            },
                        )
                        push(engine, settings)
                        published = True
                    continue
                got.append(item)
        assert "heartbeat" in comments, (comments, got)
        assert [json.loads(e["data"])["payload"]["payload"]["i"] for e in got] == [0, 1, 2, 3]
        assert [e["event"] for e in got] == ["event.external.s.tick"] * 4
        assert [e["id"] for e in got] == [json.loads(e["data"])["id"] for e in got]

        # resume after the second: the third and fourth, then whatever comes next
        with http.stream(
            "GET",
            "/events/stream",
            headers={"Last-Event-ID": got[1]["id"]},
            params={"topic": "event.external.#"},
        ) as resp:
            resumed = [e for e in sse_events(resp, 2) if "comment" not in e]
        assert [e["id"] for e in resumed] == [got[2]["id"], got[3]["id"]]

        bad = http.get("/events/stream", headers={"Last-Event-ID": "yesterday"})
        assert bad.status_code == 422 and "Last-Event-ID" in bad.text


def test_cli_publishes_and_tails(api: Api, engine: Engine, settings: Settings) -> None:
    token = api.admin.headers["Authorization"].split()[1]
    env = {**os.environ, "ORDINAUT_URL": api.base_url, "ORDINAUT_TOKEN": token}
    published = subprocess.run(
        [
            sys.executable,
            "-m",
            "ordinaut.cli",
            "events",
            "publish",
            "cli.hello",
            "--data",
            '{"a": 1}',
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert published.returncode == 0, published.stderr
    event_id = published.stdout.strip()
    bad = subprocess.run(
        [sys.executable, "-m", "ordinaut.cli", "events", "publish", "cli.hello", "--data", "[1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and "--data is not valid JSON" in bad.stderr
    push(engine, settings)

    for extra, check in (
        (["--json"], lambda text: json.loads(text)["payload"]["id"] == event_id),
        ([], lambda text: "event.external.cli.hello" in text and '{"a": 1}' in text),
    ):
        proc = subprocess.Popen(
            [sys.executable, "-m", "ordinaut.cli", "events", "tail", "--since", "0-0", *extra],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            assert check(first), first
        finally:
            proc.kill()
            proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()


def test_open_streams_are_capped(settings: Settings) -> None:
    capped = settings.model_copy(
        update={"max_event_streams": 1, "event_stream_heartbeat_seconds": 0.2}
    )
    token = bootstrap_admin(capped)
    headers = {"Authorization": f"Bearer {token}"}
    with (
        serve(capped) as base,
        httpx.Client(base_url=base, headers=headers, timeout=10) as http,
        http.stream("GET", "/events/stream") as first,
    ):
        assert first.status_code == 200
        next(sse_events(first, 1))  # it is open
        second = http.get("/events/stream")
        assert second.status_code == 503, second.text
        assert "ORDINAUT_MAX_EVENT_STREAMS" in second.text
        # the other routes still answer while the stream waits
        assert http.get("/events").status_code == 200
