"""mcp tools for real: the demo MCP server over streamable HTTP and over stdio.

MCP servers are configured and imported with the CLI (``tool add-mcp-server``,
``tool import-mcp``), then used by runs (execute_run in-process) and by the session pool.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from ordinaut.cli import main
from ordinaut.demo import app as demo_app
from ordinaut.demo.tools import BY_ADDRESS
from ordinaut.errors import ToolError
from ordinaut.tools import mcp_pool
from ordinaut.tools.registry import ToolRunner
from ordinaut.tools.spec import McpServer, ToolCall, ToolSpec, Transport
from tests.integration.conftest import Api
from tests.integration.test_tools_http import drive, run_detail, start_run, step_keys
from tests.support import free_port

STDIO = ("-m", "ordinaut.demo")


@pytest.fixture(scope="module")
def demo() -> Iterator[demo_app.DemoApp]:
    with demo_app.running(free_port()) as served:
        try:
            yield served
        finally:
            mcp_pool.shared().close()  # runs in this process used the shared pool


def cli(api: Api, monkeypatch: pytest.MonkeyPatch, *argv: str) -> None:
    monkeypatch.setenv("DATABASE_URL", api.settings.database_url)
    assert main(list(argv)) == 0


def test_import_over_streamable_http_then_run(
    api: Api,
    engine: Engine,
    demo: demo_app.DemoApp,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli(api, monkeypatch, "tool", "add-mcp-server", "demo", "--url", f"{demo.base_url}/mcp")
    cli(api, monkeypatch, "tool", "import-mcp", "demo")
    assert "registered demo.today_forecast (mcp demo/today_forecast)" in capsys.readouterr().out
    tools = {t["address"]: t for t in api.admin.get("/tools").json()}
    imported = tools["demo.send_message"]
    assert (imported["transport"], imported["server"]) == ("mcp", "demo")
    assert imported["input_schema"] == BY_ADDRESS["notify.send_message"].input_schema
    assert imported["output_schema"] == BY_ADDRESS["notify.send_message"].output_schema

    start_run(
        api,
        [
            {
                "id": "wx",
                "uses": "demo.today_forecast",
                "with": {"city": "Chisinau"},
                "save_as": "weather",
            },
            {
                "id": "ping",
                "uses": "demo.send_message",
                "with": {"chat_id": 5, "text": "${steps.weather.summary}"},
                "save_as": "sent",
            },
        ],
    )
    outcome = drive(engine, api)
    assert outcome.status == "succeeded", run_detail(api, outcome)["error"]
    steps = run_detail(api, outcome)["steps"]
    assert steps[0]["output"]["city"] == "Chisinau"
    assert steps[1]["output"]["ok"] is True
    sent = demo.state.sent[-1]
    assert sent["text"] == steps[0]["output"]["summary"]
    assert sent["idempotency_key"] == step_keys(engine, outcome)[1]  # via _meta


def test_is_error_fails_the_run_and_stricter_catalog_schema_is_enforced(
    api: Api, engine: Engine, demo: demo_app.DemoApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli(api, monkeypatch, "tool", "add-mcp-server", "demo", "--url", f"{demo.base_url}/mcp")
    cli(api, monkeypatch, "tool", "import-mcp", "demo")
    start_run(
        api,
        [
            {
                "id": "cal",
                "uses": "demo.list_events",
                "with": {"start": "2025-08-08T10:00:00+03:00", "end": "2025-08-08T09:00:00+03:00"},
            }
        ],
        max_retries=2,
    )
    outcome = drive(engine, api)
    assert (outcome.status, outcome.retry_at) == ("failed", None)
    assert run_detail(api, outcome)["error"] == "step 'cal': end is before start"

    stricter = api.admin.get("/tools").json()
    entry = next(t for t in stricter if t["address"] == "demo.today_forecast")
    entry["output_schema"]["properties"]["high_c"]["maximum"] = 0
    body = {k: v for k, v in entry.items() if v is not None}
    assert api.admin.post("/tools?replace=true", json=body).status_code == 201
    start_run(api, [{"id": "wx", "uses": "demo.today_forecast", "with": {"city": "Chisinau"}}])
    outcome = drive(engine, api)
    assert outcome.status == "failed"
    assert (
        "step 'wx': output.high_c violates the output schema" in run_detail(api, outcome)["error"]
    )


def stdio_spec(name: str = "send_message") -> ToolSpec:
    server = McpServer(name="stdio-demo", command=sys.executable, args=STDIO)
    tool = BY_ADDRESS["notify.send_message"]
    return ToolSpec(
        f"stdio-demo.{name}",
        Transport.MCP,
        tool.input_schema,
        tool.output_schema,
        server="stdio-demo",
        remote_name=name,
        mcp=server,
    )


def test_stdio_sessions_are_kept_per_process_and_dedupe_by_key() -> None:
    spec = stdio_spec()
    pool = mcp_pool.SessionPool()
    runner = ToolRunner(
        {spec.address: spec}, sleep=time.sleep, clock=lambda: datetime.now(UTC), pool=pool
    )

    def send(key: str) -> Any:
        call = ToolCall(spec.address, {"chat_id": 1, "text": key}, "s", "s", key, 20)
        started = time.perf_counter()
        out = runner.call(call, timeout=20)
        print(f"stdio call {key}: {(time.perf_counter() - started) * 1000:.1f} ms")
        return out["message_id"]

    try:
        # one server process serves every call: its message counter keeps going
        assert [send("a"), send("b"), send("a")] == [1, 2, 1]
    finally:
        pool.close()
    fresh = mcp_pool.SessionPool()
    runner.pool = fresh
    try:
        assert send("b") == 1  # a new session is a new process with fresh state
    finally:
        fresh.close()


def test_stdio_server_imported_by_cli_runs_a_step(
    api: Api, engine: Engine, monkeypatch: pytest.MonkeyPatch, demo: demo_app.DemoApp
) -> None:
    cli(
        api,
        monkeypatch,
        "tool",
        "add-mcp-server",
        "local",
        "--env",
        "DEMO=1",
        "--command",
        sys.executable,
        *STDIO,
    )
    cli(api, monkeypatch, "tool", "import-mcp", "local")
    start_run(api, [{"id": "inbox", "uses": "local.top_unread", "with": {"count": 2}}])
    outcome = drive(engine, api)
    assert outcome.status == "succeeded", run_detail(api, outcome)["error"]
    threads = run_detail(api, outcome)["steps"][0]["output"]["threads"]
    assert [t["thread_id"] for t in threads] == ["t-101", "t-102"]


@pytest.mark.parametrize(
    ("server", "retryable", "message"),
    [
        (McpServer("gone", url="http://127.0.0.1:{port}/mcp"), True, "connection failed"),
        (McpServer("nope", command="/nonexistent/mcp-server"), False, "cannot start"),
        (McpServer("dies", command=sys.executable, args=("-c", "pass")), True, "closed"),
    ],
)
def test_unreachable_servers_carry_retry_intent(
    server: McpServer, retryable: bool, message: str
) -> None:
    if server.url:
        server = McpServer(server.name, url=server.url.format(port=free_port()))
    spec = ToolSpec("x.y", Transport.MCP, {}, {}, server=server.name, remote_name="y", mcp=server)
    pool = mcp_pool.SessionPool()
    runner = ToolRunner({"x.y": spec}, sleep=time.sleep, clock=lambda: datetime.now(UTC), pool=pool)
    try:
        with pytest.raises(ToolError, match=message) as caught:
            runner.call(ToolCall("x.y", {}, "s", "s", "k", 10), timeout=10)
    finally:
        pool.close()
    assert caught.value.retryable is retryable
