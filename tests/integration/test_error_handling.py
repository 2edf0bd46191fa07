"""Even a bug or an outage answers JSON: request ids, the 500 shape, 503s, failed-auth limits.

* An exception nothing handles (injected into the service, standing in for an unknown bug)
  is ``500 {"error": {"code": "internal_error", "request_id"}}`` over HTTP, the same id in
  ``X-Request-ID`` and in the log line with the traceback; over MCP a tool error carrying it.
* PostgreSQL going away (a TCP proxy in front of the real server is stopped, then started
  again) is ``503 {"error": {"code": "unavailable"}}`` with Retry-After, and the API
  recovers; Redis being unreachable turns no agent operation into a 5xx.
* Failed authentication costs few database lookups: past the per-address limit a client gets
  429 with Retry-After without a lookup (counted with ``pg_stat_user_tables``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from ordinaut.api.app import create_api
from ordinaut.config import Settings
from ordinaut.service.agents import create_agent
from ordinaut.service.facade import Service
from ordinaut.store.engine import make_engine
from tests.integration.conftest import serve
from tests.integration.test_input_boundary import TASK
from tests.integration.test_mcp_input_boundary import MCP_HEADERS, envelope
from tests.support import bootstrap_admin, free_port, wait_for

ECHO = {"pipeline": [{"id": "hi", "uses": "builtin.echo", "with": {"message": "hi"}}]}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Bug(RuntimeError):
    """Stands in for a bug nobody anticipated."""


def test_an_unexpected_exception_is_a_json_500_with_its_request_id(
    settings: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = bootstrap_admin(settings)
    app = create_api(settings)
    service: Service = app.state.service

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise Bug("an unexpected failure")

    monkeypatch.setattr(service, "list_tasks", broken)
    monkeypatch.setattr(service, "get_run", broken)
    caplog.set_level(logging.ERROR)
    with serve(settings, app) as base, httpx.Client(base_url=base, headers=bearer(token)) as c:
        resp = c.get("/tasks")
        assert resp.status_code == 500
        assert resp.headers["content-type"] == "application/json"
        error = resp.json()["error"]
        rid = resp.headers["x-request-id"]
        assert error["code"] == "internal_error" and error["request_id"] == rid
        assert rid in error["message"]
        logged = [r for r in caplog.records if rid in r.getMessage()]
        assert logged and logged[0].exc_info and logged[0].exc_info[0] is Bug
        assert c.get("/me").status_code == 200  # the connection and the server carry on

        given = c.get("/tasks", headers={"X-Request-ID": "trace-42.a_b"})
        assert given.headers["x-request-id"] == "trace-42.a_b"
        assert given.json()["error"]["request_id"] == "trace-42.a_b"
        odd = c.get("/me", headers={"X-Request-ID": "no spaces, please"})
        assert odd.headers["x-request-id"] != "no spaces, please"

        caplog.clear()
        run = "00000000-0000-4000-8000-000000000001"
        call = envelope("get_run", json.dumps({"run_id": run}).encode())
        over_mcp = c.post("/mcp", content=call, headers=MCP_HEADERS)
        result = over_mcp.json()["result"]
        assert result["isError"] is True
        detail = result["_meta"]["ordinaut/error"]
        assert detail["code"] == "internal_error" and detail["request_id"] in detail["message"]
        assert detail["request_id"] == over_mcp.headers["x-request-id"]
        assert any(detail["request_id"] in r.getMessage() and r.exc_info for r in caplog.records)


class TcpProxy:
    """Forwards a loopback port to a server; stopping it cuts every connection, as a crash."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the thread blocked in accept()
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def proxied_database(settings: Settings) -> Iterator[tuple[Settings, TcpProxy]]:
    url = make_url(settings.database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        yield settings.model_copy(update={"database_url": through}), proxy
    finally:
        proxy.stop()


def test_postgresql_down_is_a_503_with_retry_after_and_the_api_recovers(
    settings: Settings,
) -> None:
    token = bootstrap_admin(settings)
    fresh_token = unseen_token(settings)
    with (
        proxied_database(settings) as (via_proxy, proxy),
        serve(via_proxy) as base,
        httpx.Client(base_url=base, headers=bearer(token), timeout=30) as c,
    ):
        assert c.get("/me").status_code == 200
        proxy.stop()
        for method, url, body in [
            ("GET", "/me", None),
            ("GET", "/tasks", None),
            ("POST", "/tasks", {**TASK, "payload": ECHO}),
            ("GET", "/tasks", None),
        ]:
            resp = c.request(method, url, json=body)
            assert resp.status_code == 503, resp.text
            assert resp.headers["content-type"] == "application/json"
            assert int(resp.headers["retry-after"]) > 0
            error = resp.json()["error"]
            assert error["code"] == "unavailable" and error["request_id"]
        # MCP: a known token reaches the tool, which reports the outage; an unknown token
        # cannot even be checked, which is a 503 too, never a 500
        tool = c.post("/mcp", content=envelope("list_tasks", b"{}"), headers=MCP_HEADERS)
        assert tool.json()["result"]["_meta"]["ordinaut/error"]["code"] == "unavailable"
        unchecked = c.post(
            "/mcp",
            content=envelope("list_tasks", b"{}"),
            headers={**MCP_HEADERS, **bearer(fresh_token)},
        )
        assert unchecked.status_code == 503 and unchecked.json()["error"]["code"] == "unavailable"

        proxy.start()
        wait_for(lambda: c.get("/tasks").status_code == 200, 20, what="the API to recover")
        assert c.post("/tasks", json={**TASK, "payload": ECHO}).status_code == 201


def unseen_token(settings: Settings) -> str:
    """A second agent's token, created directly in the database (never seen by the API)."""
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        with engine.begin() as conn:
            return create_agent(conn, "unseen", ["tasks:read"]).token
    finally:
        engine.dispose()


def test_redis_unreachable_turns_no_operation_into_a_5xx(settings: Settings) -> None:
    token = bootstrap_admin(settings)
    no_redis = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    with (
        serve(no_redis) as base,
        httpx.Client(base_url=base, headers=bearer(token), timeout=60) as c,
    ):
        made = c.post("/tasks", json={**TASK, "payload": ECHO})
        assert made.status_code == 201, made.text
        task = made.json()["id"]
        for method, url, body, status in [
            ("GET", "/tasks", None, 200),
            ("POST", f"/tasks/{task}/run_now", None, 202),
            ("POST", f"/tasks/{task}/pause", None, 200),
            ("POST", "/events", {"topic": "t", "payload": {}}, 202),
            ("GET", "/schedules/preview?kind=cron&expr=0%209%20*%20*%20*", None, 200),
            ("GET", "/health", None, 503),
        ]:
            resp = c.request(method, url, json=body)
            assert resp.status_code == status, f"{url}: {resp.text}"
            assert resp.headers["content-type"] == "application/json"
        call = envelope("get_task", json.dumps({"task_id": task}).encode())
        tool = c.post("/mcp", content=call, headers=MCP_HEADERS)
        assert tool.status_code == 200 and tool.json()["result"]["isError"] is False


def agent_scans(conn: psycopg.Connection[Any]) -> int:
    """Reads of the agent table so far (a token lookup is one, by index or sequentially)."""
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = 'agent'"
    ).fetchone()
    assert row is not None
    return int(row[0])


def settled_scans(conn: psycopg.Connection[Any]) -> int:
    """The agent table's reads once they stop changing (a backend flushes its counts when it
    disconnects, so read this after the API has closed its connections)."""
    seen: list[int] = []

    def steady() -> int | None:
        seen.append(agent_scans(conn))
        time.sleep(0.2)
        return seen[-1] if len(seen) >= 3 and len(set(seen[-3:])) == 1 else None

    return wait_for(steady, 30, interval=0, what="statistics to settle")


@pytest.mark.timeout(180)
def test_failed_authentication_is_throttled_per_address_without_lookups(
    settings: Settings,
) -> None:
    """600 bad tokens cost at most the per-address limit in lookups (600 before the fix).

    The answer cache is off here, so every lookup that happens is counted; an agent whose
    token was valid recently still gets in from the throttled address, a token never seen
    there waits for the window.
    """
    admin = bootstrap_admin(settings)
    unseen = unseen_token(settings)
    limit, requests = settings.auth_failures_per_minute, 600
    url = make_url(settings.database_url).set(drivername="postgresql")
    uncached = settings.model_copy(update={"auth_cache_seconds": 0.0})
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as stats:
        before = settled_scans(stats)
        with serve(uncached) as base, httpx.Client(base_url=base) as c:
            assert c.get("/me", headers=bearer(admin)).status_code == 200
            answers = [
                c.get("/me", headers=bearer(f"ord_{secrets.token_urlsafe(32)}"))
                for _ in range(requests)
            ]
            known = c.get("/me", headers=bearer(admin))
            stranger = c.get("/me", headers=bearer(unseen))
        lookups = settled_scans(stats) - before  # the API is gone: its counts are flushed
    statuses = [a.status_code for a in answers]
    assert statuses[:limit] == [401] * limit
    assert statuses[limit:] == [429] * (requests - limit)
    assert all(int(a.headers["retry-after"]) >= 1 for a in answers[limit:])
    assert answers[-1].json()["error"]["code"] == "rate_limited"
    assert known.status_code == 200
    assert stranger.status_code == 429
    # the admin's two successful /me cost two reads each (token, then the agent by id)
    print(f"{requests} bad tokens: {lookups - 4} token lookups")
    assert lookups - 4 <= limit + 2  # a lookup per bad token up to the limit; not 600
