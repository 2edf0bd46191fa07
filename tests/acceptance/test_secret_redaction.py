"""A secret reflected by an upstream is nowhere: not in the run, its receipts, its events, the
stream, nor the logs.

A local HTTP tool server echoes the ``Authorization`` header it got (the tool's secret) back
as it is, base64-encoded, URL-encoded, hex-encoded, JSON-escaped and inside a Basic
credential; a second endpoint refuses with a 401 whose body quotes the header; a fake chat
server answers with the LLM API key it was sent. A real worker (secrets in its environment)
runs a pipeline through all three and a step that copies the reflected data into its input;
an agent also publishes an event carrying the secret. Then every place that keeps or emits
data is read raw: the API's answers, the ``step_result``, ``task_run`` and ``outbox`` rows,
the Redis stream, and the worker's and API's logs.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.config import Settings
from ordinaut.events.relay import stream_key
from tests.acceptance.conftest import Stack
from tests.acceptance.test_bounded_memory import run_to_the_end
from tests.support import (
    bootstrap_admin,
    free_port,
    processes,
    start_api,
    start_beat,
    start_worker,
    stream_fields,
    wait_for,
)

SECRET = "tok_9fQ2+xY/Lm=Kp7Zr-w"
LLM_KEY = "sk-test-Ab12Cd34Ef56Gh"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def leaks(text: str) -> list[str]:
    """The forms of either secret found in ``text`` (a piece of one counts too)."""
    forms = {
        SECRET,
        SECRET[:10],
        SECRET[-10:],
        quote(SECRET, safe=""),
        b64(SECRET).rstrip("="),
        SECRET.encode().hex(),
        LLM_KEY,
        LLM_KEY[:12],
        b64(f"user:{SECRET}")[8:24],  # the stretch of a Basic credential that is the secret
    }
    return sorted(form for form in forms if form in text)


class Reflector(BaseHTTPRequestHandler):
    """Tool endpoints that give the caller's Authorization header back, in many forms."""

    def do_POST(self) -> None:
        header = self.headers.get("Authorization", "")
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        secret = header.removeprefix("Bearer ")
        body: dict[str, Any]
        if self.path == "/reflect":
            status, body = (
                200,
                {
                    "header": header,
                    "b64": b64(header),
                    "url": quote(header, safe=""),
                    "hex": header.encode().hex(),
                    "json": json.dumps({"h": header}),
                    "basic": "Basic " + b64(f"user:{secret}"),
                },
            )
        elif self.path == "/chat/completions":
            status, body = (
                200,
                {
                    "choices": [{"message": {"content": f"you sent {header}"}}],
                    "usage": {},
                    "model": "m",
                },
            )
        else:
            status, body = 401, {"detail": f"denied: Authorization was {header!r}"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def reflector() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Reflector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def secret_stack(settings: Settings, log_dir: Path, reflector: str) -> Iterator[Stack]:
    """API and worker with the secrets in their environment (as ``ordinaut up`` would have)."""
    env = {
        "ORDINAUT_SECRET_TOOL_TOKEN": SECRET,
        "ORDINAUT_LLM_API_KEY": LLM_KEY,
        "ORDINAUT_LLM_BASE_URL": reflector,
        "ORDINAUT_LLM_MODEL": "m",
    }
    token = bootstrap_admin(settings)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with processes() as procs:
        procs.append(start_api(settings, log_dir, port, env=env))
        procs.append(start_beat(settings, log_dir))
        procs.append(start_worker(settings, log_dir, concurrency=1, env=env))
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            yield Stack(settings, client, token, {p.name: p for p in procs}, base)


def test_a_reflected_secret_is_redacted_everywhere(
    secret_stack: Stack, reflector: str, engine: Engine
) -> None:
    stack = secret_stack
    auth = {"header": "Authorization", "secret": "TOOL_TOKEN", "prefix": "Bearer "}
    for name, path in (("echo", "/reflect"), ("deny", "/deny")):
        made = stack.api.post(
            "/tools",
            json={
                "address": f"reflect.{name}",
                "transport": "http",
                "endpoint": reflector + path,
                "input_schema": {"type": "object"},
                "output_schema": {"type": "object"},
                "auth": auth,
            },
        )
        assert made.status_code == 201, made.text
    published = stack.api.post(
        "/events", json={"topic": "note", "payload": {"text": f"key {SECRET}", "k": b64(SECRET)}}
    )
    assert published.status_code == 202

    run = run_to_the_end(
        stack,
        [
            {"id": "r1", "uses": "reflect.echo", "with": {"q": 1}, "save_as": "r1"},
            {
                "id": "copy",
                "uses": "builtin.echo",
                "with": {"got": "${steps.r1}", "text": "header=${steps.r1.header}"},
            },
            {"id": "ask", "uses": "llm.chat", "with": {"instruction": "hello"}},
            {"id": "deny", "uses": "reflect.deny", "with": {}},
        ],
        max_retries=0,
    )
    assert run["status"] == "failed" and "HTTP 401" in run["error"], run

    # the API's answers: the run, every step's whole input and output, the run list
    detail = stack.api.get(f"/runs/{run['id']}")
    answers = [detail.text, stack.api.get("/runs").text]
    for step in detail.json()["steps"]:
        for part in ("input", "output"):
            answers.append(
                stack.api.get(f"/runs/{run['id']}/steps/{step['step_path']}/{part}").text
            )
    assert "[redacted:TOOL_TOKEN]" in detail.text and "[redacted:LLM_API_KEY]" in detail.text
    assert [s["step_id"] for s in detail.json()["steps"]] == ["r1", "copy", "ask", "deny"]
    for answer in answers:
        assert leaks(answer) == [], answer[:2000]

    # the stored rows, read raw
    with engine.connect() as conn:
        for table in ("step_result", "task_run", "outbox"):
            rows = conn.execute(sa.text(f"SELECT t::text FROM {table} t")).scalars().all()
            assert rows, table
            assert leaks("\n".join(rows)) == [], table

    # the stream, once the run's last event is on it
    client = redis.Redis.from_url(stack.settings.redis_url, decode_responses=True)
    try:

        def relayed() -> list[dict[str, str]] | None:
            entries = stream_fields(client, stream_key(stack.settings.namespace))
            done = any(
                e["topic"] == "task.run.failed" and run["id"] in e["payload"] for e in entries
            )
            return entries if done else None

        entries = wait_for(relayed, 30, what="the run's events on the stream")
    finally:
        client.close()
    stream = json.dumps(entries)
    assert "event.external.note" in stream and "[redacted:TOOL_TOKEN]" in stream
    assert leaks(stream) == []

    # the logs: the worker logs the failed run's error (it quotes the 401 body)
    worker_log = stack.procs["worker"].log()
    assert f"run {run['id']} failed" in worker_log and "HTTP 401" in worker_log
    assert leaks(worker_log) == []
    assert leaks(stack.procs["api"].log()) == []
