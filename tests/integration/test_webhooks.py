"""Webhooks against a receiver the test starts: signed run events, retries of a failing
receiver with every attempt recorded, and loopback refused unless allowed."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from sqlalchemy.engine import Engine

from ordinaut.clock import utcnow
from ordinaut.config import Settings
from ordinaut.events import trigger, webhooks
from ordinaut.events.relay import relay
from ordinaut.store import queries
from tests.integration.conftest import Api

ECHO = {"pipeline": [{"id": "e", "uses": "builtin.echo", "with": {"x": 1}}]}


@dataclass
class Receiver:
    url: str
    fail_first: int = 0
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            code = 500 if len(state.got) <= state.fail_first else 204
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def agent_with_webhook(api: Api, url: str) -> tuple[str, str, str]:
    made = api.admin.post(
        "/agents",
        json={"name": "hooked", "scopes": ["tasks:write", "tasks:read"], "webhook_url": url},
    )
    assert made.status_code == 201, made.text
    agent = made.json()
    assert agent["webhook_secret"].startswith("whsec_")
    # shown once: no listing or lookup returns it again
    assert all(a["webhook_secret"] is None for a in api.admin.get("/agents").json())
    client = api.make_client(agent["token"])
    task = client.post(
        "/tasks",
        json={"title": "t", "schedule_kind": "cron", "schedule_expr": "0 9 * * *", "payload": ECHO},
    ).json()["id"]
    return agent["id"], agent["webhook_secret"], task


def run_events(engine: Engine, settings: Settings, task_id: str, *topics: str) -> None:
    """Run events as execute writes them, relayed and read by the trigger pass."""
    with engine.begin() as conn:
        queries.emit(
            conn, [(t, {"task_id": task_id, "run_id": "r1", "attempt": 1}) for t in topics]
        )
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True, protocol=3)
    try:
        relay(engine, client, settings.namespace)
        trigger.consume(engine, client, settings.namespace, utcnow())
        trigger.consume(engine, client, settings.namespace, utcnow())  # a re-read adds nothing
    finally:
        client.close()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does (the README's snippet)."""
    stamp = headers["x-ordinaut-timestamp"]
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    fresh = abs(time.time() - int(stamp)) < 300
    return fresh and hmac.compare_digest(
        "sha256=" + expected.hexdigest(), headers["x-ordinaut-signature"]
    )


def test_signed_deliveries_and_retries(
    api: Api, engine: Engine, settings: Settings, receiver: Receiver
) -> None:
    allowed = settings.model_copy(
        update={"allow_private_webhooks": True, "webhook_retry_base_seconds": 0.2}
    )
    agent_id, secret, task = agent_with_webhook(api, receiver.url)
    receiver.fail_first = 2
    run_events(engine, settings, task, "task.run.started", "task.run.succeeded", "task.created")

    deadline = time.monotonic() + 20
    while len([g for g in receiver.got]) < 4 and time.monotonic() < deadline:
        webhooks.deliver_due(engine, allowed, utcnow)
        time.sleep(0.1)
    webhooks.deliver_due(engine, allowed, utcnow)

    bodies = [json.loads(body) for _, body in receiver.got]
    assert {b["topic"] for b in bodies} == {"task.run.started", "task.run.succeeded"}
    for headers, body in receiver.got:
        assert verify(secret, headers, body)
        assert not verify("whsec_wrong", headers, body)
        assert headers["x-ordinaut-event"] == json.loads(body)["topic"]
    assert len(receiver.got) == 4  # two failed (500) then both delivered: nothing twice

    page = api.admin.get(f"/agents/{agent_id}/deliveries").json()
    assert {d["status"] for d in page["items"]} == {"delivered"}
    attempts = sorted(d["attempts"] for d in page["items"])
    assert attempts[-1] >= 2 and sum(attempts) == 4
    retried = max(page["items"], key=lambda d: d["attempts"])
    assert [a["status_code"] for a in retried["attempt_log"]][-1] == 204
    assert retried["attempt_log"][0]["error"] == "HTTP 500"

    # rotating the secret: new deliveries are signed with the new one
    rotated = api.admin.put(f"/agents/{agent_id}/webhook", json={"webhook_url": receiver.url})
    new_secret = rotated.json()["webhook_secret"]
    assert new_secret != secret
    run_events(engine, settings, task, "task.run.failed")
    webhooks.deliver_due(engine, allowed, utcnow)
    headers, body = receiver.got[-1]
    assert json.loads(body)["topic"] == "task.run.failed"
    assert verify(new_secret, headers, body) and not verify(secret, headers, body)


def test_a_loopback_receiver_is_refused_unless_allowed(
    api: Api, engine: Engine, settings: Settings, receiver: Receiver
) -> None:
    agent_id, _, task = agent_with_webhook(api, receiver.url)
    run_events(engine, settings, task, "task.run.started")
    assert webhooks.deliver_due(engine, settings, utcnow) == 0
    assert receiver.got == []
    (delivery,) = api.admin.get(f"/agents/{agent_id}/deliveries").json()["items"]
    assert delivery["status"] == "failed" and delivery["attempts"] == 1
    assert "egress policy refused" in delivery["attempt_log"][0]["error"]
    assert "ORDINAUT_ALLOW_PRIVATE_WEBHOOKS" in delivery["attempt_log"][0]["error"]


def test_webhook_urls_are_validated(api: Api) -> None:
    for url in ("ftp://x", "not a url", "http://"):
        got = api.admin.post("/agents", json={"name": "x", "webhook_url": url})
        assert got.status_code == 422 and "webhook_url" in got.text, got.text
