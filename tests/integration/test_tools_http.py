"""http and llm tools in real runs: a real API, the demo tool server, execute_run in-process.

Covers the contract checks in both directions (the run fails naming step and field), the
retry intent of every failure class, ``Retry-After``, the secret auth header and the same
``Idempotency-Key`` on a retried run.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.clock import utcnow
from ordinaut.demo import app as demo_app
from ordinaut.demo import catalog as demo_catalog
from ordinaut.errors import ToolError
from ordinaut.runs.dispatch import dispatch_batch
from ordinaut.runs.execute import Outcome, execute_run
from ordinaut.store.tables import step_result
from ordinaut.tools.registry import ToolRunner
from ordinaut.tools.spec import ToolCall, ToolSpec, Transport
from tests.integration.conftest import Api
from tests.support import free_port

ANY_OBJECT = {"type": "object"}


@pytest.fixture(scope="module")
def demo() -> Iterator[demo_app.DemoApp]:
    with demo_app.running(free_port()) as served:
        yield served


def register(api: Api, **tool: Any) -> None:
    made = api.admin.post("/tools", json=tool)
    assert made.status_code == 201, made.text


def fault_tool(api: Api, demo: demo_app.DemoApp, address: str, **extra: Any) -> None:
    register(
        api,
        address=address,
        transport="http",
        endpoint=f"{demo.base_url}/tools/faults/respond",
        input_schema=ANY_OBJECT,
        output_schema=extra.pop("output_schema", ANY_OBJECT),
        **extra,
    )


def start_run(api: Api, pipeline: list[dict[str, Any]], **task: Any) -> str:
    """Create a task (far in the future) and ask for a run now; returns the task id."""
    body = {
        "title": "tools test",
        "schedule_kind": "once",
        "schedule_expr": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        "timezone": "UTC",
        "payload": {"params": task.pop("params", {}), "pipeline": pipeline},
        "backoff_strategy": "fixed",
        **task,
    }
    created = api.admin.post("/tasks", json=body)
    assert created.status_code == 201, created.text
    task_id: str = created.json()["id"]
    assert api.admin.post(f"/tasks/{task_id}/run_now").status_code == 202
    return task_id


def drive(engine: Engine, api: Api, at: datetime | None = None) -> Outcome:
    """Dispatch what is due at ``at`` and execute the one run it makes."""
    queued = dispatch_batch(engine, api.settings.namespace, at or datetime.now(UTC), 10).queued
    assert len(queued) == 1, queued
    return execute_run(
        engine, api.settings, queued[0].id, "test-worker", sleep=time.sleep, clock=utcnow
    )


def run_detail(api: Api, outcome: Outcome) -> dict[str, Any]:
    found: dict[str, Any] = api.admin.get(f"/runs/{outcome.run_id}").json()
    return found


def step_keys(engine: Engine, outcome: Outcome) -> list[str]:
    """The idempotency keys the run's steps used, in order."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(step_result.c.idempotency_key)
            .where(step_result.c.run_id == outcome.run_id)
            .order_by(step_result.c.id)
        )
        return [row[0] for row in rows]


def test_demo_pipeline_over_http_with_secret_auth(
    api: Api, engine: Engine, demo: demo_app.DemoApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDINAUT_SECRET_DEMO_TOKEN", "s3cret-value")
    for entry in demo_catalog.http_tools(demo.base_url):
        if entry["address"] == "notify.send_message":
            entry["auth"] = {"header": "Authorization", "secret": "DEMO_TOKEN", "prefix": "Bearer "}
        register(api, **entry)
    listed = api.admin.get("/tools").json()
    shown = next(t for t in listed if t["address"] == "notify.send_message")
    assert shown["auth"] == {"header": "Authorization", "secret": "DEMO_TOKEN", "prefix": "Bearer "}
    assert "s3cret-value" not in str(listed)

    start_run(
        api,
        [
            {
                "id": "wx",
                "uses": "weather.today_forecast",
                "with": {"city": "Chisinau"},
                "save_as": "weather",
            },
            {
                "id": "ping",
                "uses": "notify.send_message",
                "with": {"chat_id": 7, "text": "Today: ${steps.weather.summary}"},
                "save_as": "sent",
            },
        ],
    )
    outcome = drive(engine, api)
    assert outcome.status == "succeeded"
    steps = run_detail(api, outcome)["steps"]
    assert [s["step_id"] for s in steps] == ["wx", "ping"]
    assert steps[1]["output"]["ok"] is True
    seen = [r for r in demo.requests if r["path"] == "/tools/notify/send_message"][-1]
    assert seen["authorization"] == "Bearer s3cret-value"
    assert seen["idempotency_key"] == step_keys(engine, outcome)[1]
    assert seen["body"]["text"] == "Today: " + steps[0]["output"]["summary"]
    weather = [r for r in demo.requests if r["path"] == "/tools/weather/today_forecast"][-1]
    assert weather["authorization"] is None  # only the tool with auth gets the header


def test_input_violation_known_at_run_time_fails_naming_step_and_field(
    api: Api, engine: Engine, demo: demo_app.DemoApp
) -> None:
    for entry in demo_catalog.http_tools(demo.base_url):
        register(api, **entry)
    before = len(demo.requests)
    start_run(
        api,
        [
            {
                "id": "ping",
                "uses": "notify.send_message",
                "with": {"chat_id": "${params.chat}", "text": "hi"},
            }
        ],
        params={"chat": "not-a-number"},
        max_retries=2,
    )
    outcome = drive(engine, api)
    assert (outcome.status, outcome.retry_at) == ("failed", None)
    run = run_detail(api, outcome)
    assert "step 'ping'" in run["error"] and "with.chat_id" in run["error"]
    assert len(demo.requests) == before  # nothing was sent


def test_output_violation_fails_naming_step_and_field(
    api: Api, engine: Engine, demo: demo_app.DemoApp
) -> None:
    fault_tool(
        api,
        demo,
        "faulty.stamp",
        output_schema={
            "type": "object",
            "required": ["ts"],
            "properties": {"ts": {"type": "string", "format": "date-time"}},
        },
    )
    start_run(api, [{"id": "stamp", "uses": "faulty.stamp", "with": {"output": {"ts": "noon"}}}])
    outcome = drive(engine, api)
    assert (outcome.status, outcome.retry_at) == ("failed", None)
    run = run_detail(api, outcome)
    assert "step 'stamp'" in run["error"]
    assert "output.ts" in run["error"] and "date-time" in run["error"]
    assert run["steps"][0]["output"] == {"ts": "noon"}  # the receipt keeps what came back


def test_retried_run_resends_the_same_idempotency_key_after_retry_after(
    api: Api, engine: Engine, demo: demo_app.DemoApp
) -> None:
    fault_tool(api, demo, "faulty.flaky")
    start_run(
        api,
        [
            {
                "id": "call",
                "uses": "faulty.flaky",
                "with": {"fail_with": 503, "fail_times": 1, "retry_after": "7"},
            }
        ],
        max_retries=2,
    )
    first = drive(engine, api)
    assert first.status == "failed" and first.retry_at is not None
    failed = run_detail(api, first)
    # measured from when the attempt finished, not from now: a loaded machine may take
    # seconds to get here, and the backoff is a property of the retry, not of this test
    finished = datetime.fromisoformat(failed["finished_at"])
    waited = (first.retry_at - finished).total_seconds()
    assert 6.5 < waited <= 7.5  # Retry-After (7 s) beats the 1 s fixed backoff
    assert "HTTP 503" in failed["error"]

    second = drive(engine, api, at=first.retry_at)
    assert second.status == "succeeded"
    run = run_detail(api, second)
    assert run["attempt"] == 2 and run["steps"][0]["output"] == {"ok": True, "calls": 2}
    keys = [r["idempotency_key"] for r in demo.requests if r["path"] == "/tools/faults/respond"]
    assert keys[-2:] == step_keys(engine, second) * 2 == step_keys(engine, first) * 2


@pytest.fixture
def nul_answering_tool() -> Iterator[str]:
    """A local HTTP tool whose JSON answer holds a NUL character (legal JSON, not storable)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            body = b'{"text": "a\\u0000b", "n": 1}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/answer"
    finally:
        server.shutdown()
        server.server_close()


def test_an_answer_postgresql_cannot_store_fails_the_step_clearly(
    api: Api, engine: Engine, nul_answering_tool: str
) -> None:
    register(
        api,
        address="odd.nul",
        transport="http",
        endpoint=nul_answering_tool,
        input_schema=ANY_OBJECT,
        output_schema=ANY_OBJECT,
    )
    start_run(api, [{"id": "call", "uses": "odd.nul", "with": {}}], max_retries=3)
    outcome = drive(engine, api)
    # a failed step with a clear reason, not retried (the same call gives the same answer),
    # and the run's bookkeeping stored: before, the receipt itself failed to store
    assert (outcome.status, outcome.retry_at) == ("failed", None)
    error = run_detail(api, outcome)["error"]
    assert "cannot be stored" in error and "NUL" in error and "output.text" in error


def test_non_retryable_http_error_fails_without_retry(
    api: Api, engine: Engine, demo: demo_app.DemoApp
) -> None:
    fault_tool(api, demo, "faulty.reject")
    start_run(
        api,
        [{"id": "call", "uses": "faulty.reject", "with": {"fail_with": 400, "fail_times": 9}}],
        max_retries=3,
    )
    outcome = drive(engine, api)
    assert (outcome.status, outcome.retry_at) == ("failed", None)
    assert "step 'call': HTTP 400" in run_detail(api, outcome)["error"]


def _http_spec(endpoint: str, timeout: float = 30.0) -> ToolSpec:
    return ToolSpec(
        "t.x", Transport.HTTP, ANY_OBJECT, ANY_OBJECT, timeout_seconds=timeout, endpoint=endpoint
    )


@pytest.mark.parametrize(
    ("args", "retryable", "retry_after"),
    [
        ({"fail_with": 400}, False, None),
        ({"fail_with": 404}, False, None),
        ({"fail_with": 422}, False, None),
        ({"fail_with": 408}, True, None),
        ({"fail_with": 429, "retry_after": "12"}, True, 12.0),
        ({"fail_with": 500}, True, None),
        ({"fail_with": 503, "retry_after": "Wed, 21 Oct 2015 07:28:00 GMT"}, True, 0.0),
        ({"delay_seconds": 1.0}, True, None),  # called with a 0.3 s timeout
    ],
)
def test_http_failures_carry_retry_intent(
    demo: demo_app.DemoApp, args: dict[str, Any], retryable: bool, retry_after: float | None
) -> None:
    spec = _http_spec(f"{demo.base_url}/tools/faults/respond")
    runner = ToolRunner({"t.x": spec}, sleep=time.sleep, clock=lambda: datetime.now(UTC))
    call = ToolCall("t.x", args, "s", "s", f"key-{time.monotonic_ns()}", 0.3)
    with pytest.raises(ToolError) as caught:
        runner.call(call, timeout=0.3)
    assert (caught.value.retryable, caught.value.retry_after) == (retryable, retry_after)


def test_connection_refused_is_retryable() -> None:
    spec = _http_spec(f"http://127.0.0.1:{free_port()}/nothing")
    runner = ToolRunner({"t.x": spec}, sleep=time.sleep, clock=lambda: datetime.now(UTC))
    with pytest.raises(ToolError, match="connection failed") as caught:
        runner.call(ToolCall("t.x", {}, "s", "s", "k", 2.0), timeout=2.0)
    assert caught.value.retryable


def test_llm_plan_speaks_the_chat_completions_api(
    api: Api, engine: Engine, demo: demo_app.DemoApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDINAUT_LLM_BASE_URL", f"{demo.base_url}/v1")
    monkeypatch.setenv("ORDINAUT_LLM_MODEL", "demo-model")
    start_run(
        api,
        [
            {
                "id": "plan",
                "uses": "llm.plan",
                "with": {
                    "instruction": "Plan my day around ${params.who}",
                    "system": "Be brief.",
                },
                "save_as": "brief",
            }
        ],
        params={"who": "Ana's visit"},
    )
    outcome = drive(engine, api)
    assert outcome.status == "succeeded", run_detail(api, outcome)["error"]
    out = run_detail(api, outcome)["steps"][0]["output"]
    prompt = "Plan my day around Ana's visit"
    assert out["text"] == demo_app.summarize(prompt)
    assert out["model"] == "demo-model"
    assert out["usage"]["prompt_tokens"] == len(prompt.split()) + 2


def test_llm_without_configuration_fails_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ordinaut.tools.llm import LLM_TOOLS

    runner = ToolRunner(LLM_TOOLS, sleep=time.sleep, clock=lambda: datetime.now(UTC), environ={})
    with pytest.raises(ToolError, match="ORDINAUT_LLM_BASE_URL") as caught:
        runner.call(ToolCall("llm.chat", {"instruction": "hi"}, "s", "s", "k", 5), timeout=5)
    assert not caught.value.retryable
