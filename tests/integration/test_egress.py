"""The egress policy on real connections: a counting HTTP server on loopback proves that a
refused call never reached it (not one TCP connection), and that an allowed one did.

Covers http tools, the LLM base URL and MCP over HTTP through ``ToolRunner``, Ordinaut's own
PostgreSQL and API guarded through the worker's policy (``policy_for(settings)``), and a
whole run through ``execute_run`` against the API's own admin endpoint.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from ordinaut.config import Settings
from ordinaut.egress import DEFAULT_POLICY, EgressPolicy, build_policy
from ordinaut.errors import ToolError
from ordinaut.tools.guarded import EgressRefused, policy_for
from ordinaut.tools.llm import LLM_TOOLS
from ordinaut.tools.registry import ToolRunner
from ordinaut.tools.spec import McpServer, ToolCall, ToolSpec, Transport
from tests.integration.conftest import Api
from tests.integration.test_tools_http import drive, register, run_detail, start_run

ANY = {"type": "object"}


class _Server(http.server.ThreadingHTTPServer):
    accepted = 0

    def get_request(self) -> tuple[socket.socket, Any]:
        conn = super().get_request()
        self.accepted += 1  # a connection, before any byte of a request is read
        return conn


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.dumps({"ok": True, "choices": [{"message": {"content": "hi"}}]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class Counting:
    """An HTTP server on ``host`` answering every POST with JSON, counting connections."""

    def __init__(self, host: str) -> None:
        self.server = _Server((host, 0), _Handler)
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def accepted(self) -> int:
        return self.server.accepted

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def loopback() -> Iterator[Counting]:
    served = Counting("127.0.0.1")
    yield served
    served.close()


@pytest.fixture
def second() -> Iterator[Counting]:
    """The same kind of server on 127.0.0.2 (on Linux the whole 127/8 is loopback)."""
    served = Counting("127.0.0.2")
    yield served
    served.close()


def call(url: str, policy: EgressPolicy) -> Any:
    spec = ToolSpec(
        address="t.x", transport=Transport.HTTP, input_schema=ANY, output_schema=ANY, endpoint=url
    )
    runner = ToolRunner(
        {"t.x": spec}, sleep=time.sleep, clock=lambda: datetime.now(UTC), egress=policy
    )
    return runner.call(ToolCall("t.x", {}, "s", "s", "k", 5.0), timeout=5.0)


def refused(url: str, policy: EgressPolicy) -> ToolError:
    with pytest.raises(EgressRefused) as caught:
        call(url, policy)
    assert not caught.value.retryable
    assert caught.value.message.startswith("egress policy refused")
    return caught.value


def test_a_local_tool_on_loopback_works_with_the_default_policy(loopback: Counting) -> None:
    assert call(f"http://127.0.0.1:{loopback.port}/", DEFAULT_POLICY)["ok"] is True
    assert call(f"http://localhost:{loopback.port}/", DEFAULT_POLICY)["ok"] is True
    assert loopback.accepted >= 1


def test_a_denied_address_is_refused_before_any_byte(second: Counting) -> None:
    policy = build_policy(deny="127.0.0.2/32")
    forms = [
        f"http://127.0.0.2:{second.port}/",
        f"http://[::ffff:127.0.0.2]:{second.port}/",  # IPv4-mapped IPv6
        f"http://0x7f000002:{second.port}/",  # hexadecimal
        f"http://2130706434:{second.port}/",  # decimal
        f"http://0177.0.2:{second.port}/",  # octal, three parts
    ]
    for url in forms:
        error = refused(url, policy)
        assert "denied by ORDINAUT_EGRESS_DENY entry '127.0.0.2/32'" in error.message, url
    assert second.accepted == 0
    # the same forms do reach the server when the policy allows them: the refusal was the policy
    for url in forms:
        assert call(url, DEFAULT_POLICY)["ok"] is True, url
    assert second.accepted == len(forms)
    # httpx refuses a dotted octal form with four parts outright
    with pytest.raises(ToolError, match="invalid URL") as caught:
        call(f"http://0177.0.0.2:{second.port}/", DEFAULT_POLICY)
    assert not caught.value.retryable


def test_link_local_and_metadata_are_refused() -> None:
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[fe80::1]:80/"):
        error = refused(url, DEFAULT_POLICY)
        assert "link-local" in error.message
        assert "ORDINAUT_EGRESS_ALLOW" in error.message


def test_ordinauts_own_postgres_and_api_are_refused(settings: Settings, loopback: Counting) -> None:
    # the real PostgreSQL of this test, as the worker's policy guards it
    pg_port = int(settings.database_url.rsplit(":", 1)[1].split("/")[0])
    error = refused(f"http://127.0.0.1:{pg_port}/", policy_for(settings))
    assert "Ordinaut's own PostgreSQL (DATABASE_URL)" in error.message
    error = refused(f"http://127.0.0.3:{pg_port}/", policy_for(settings))  # any loopback
    redis_port = int(settings.redis_url.rsplit(":", 1)[1].split("/")[0])
    error = refused(f"http://localhost:{redis_port}/", policy_for(settings))
    assert "Redis (REDIS_URL)" in error.message
    # a PostgreSQL and an API that count: not one connection reaches them
    own = settings.model_copy(
        update={
            "database_url": f"postgresql+psycopg://u@127.0.0.1:{loopback.port}/db",
            "api_address": f"127.0.0.1:{loopback.port}",
        }
    )
    refused(f"http://127.0.0.1:{loopback.port}/", policy_for(own))
    refused(f"http://[::ffff:127.0.0.1]:{loopback.port}/", policy_for(own))
    assert loopback.accepted == 0
    # explicitly allowed, it is reached
    opened = own.model_copy(update={"egress_allow": f"127.0.0.1:{loopback.port}"})
    assert call(f"http://127.0.0.1:{loopback.port}/", policy_for(opened))["ok"] is True
    assert loopback.accepted == 1


def test_llm_base_url_obeys_the_policy(second: Counting) -> None:
    environ = {
        "ORDINAUT_LLM_BASE_URL": f"http://127.0.0.2:{second.port}/v1",
        "ORDINAUT_LLM_MODEL": "m",
    }
    call_ = ToolCall("llm.chat", {"instruction": "hi"}, "s", "s", "k", 5)

    def runner(policy: EgressPolicy) -> ToolRunner:
        clock = lambda: datetime.now(UTC)  # noqa: E731
        return ToolRunner(LLM_TOOLS, sleep=time.sleep, clock=clock, environ=environ, egress=policy)

    with pytest.raises(EgressRefused, match="ORDINAUT_EGRESS_DENY"):
        runner(build_policy(deny="127.0.0.2")).call(call_, timeout=5)
    assert second.accepted == 0
    assert runner(DEFAULT_POLICY).call(call_, timeout=5)["text"] == "hi"
    assert second.accepted == 1


def test_mcp_over_http_obeys_the_policy(second: Counting) -> None:
    server = McpServer(name="far", url=f"http://127.0.0.2:{second.port}/mcp")
    spec = ToolSpec(
        address="far.x",
        transport=Transport.MCP,
        input_schema=ANY,
        output_schema=ANY,
        server="far",
        remote_name="x",
        mcp=server,
    )
    clock = lambda: datetime.now(UTC)  # noqa: E731
    runner = ToolRunner(
        {"far.x": spec},
        sleep=time.sleep,
        clock=clock,
        egress=build_policy(deny="127.0.0.0/8:" + str(second.port)),
    )
    with pytest.raises(EgressRefused, match="ORDINAUT_EGRESS_DENY") as caught:
        runner.call(ToolCall("far.x", {}, "s", "s", "k", 10), timeout=10)
    assert not caught.value.retryable
    assert second.accepted == 0


def test_a_run_against_the_apis_own_admin_endpoint_fails_naming_the_policy(
    api: Api, engine: Engine
) -> None:
    register(
        api,
        address="self.agents",
        transport="http",
        endpoint=f"{api.base_url}/agents",
        input_schema=ANY,
        output_schema=ANY,
    )
    start_run(api, [{"id": "grab", "uses": "self.agents", "with": {}}])
    own = api.settings.model_copy(update={"api_address": api.base_url.removeprefix("http://")})
    outcome = drive(engine, dataclasses.replace(api, settings=own))
    detail = run_detail(api, outcome)
    assert outcome.status == "failed"
    assert outcome.retry_at is None  # non-retryable: no retry planned
    assert "egress policy refused" in detail["error"]
    assert "Ordinaut's own API (ORDINAUT_API_ADDRESS)" in detail["error"]
    assert "bearer" not in detail["error"].lower()  # nothing of the API's answer was copied
