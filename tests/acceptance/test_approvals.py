"""Approvals with real processes: ``celery beat``, a one-process ``celery worker`` and the API.

A run stops before its gated step holding no worker (another task runs on the only worker
process meanwhile), resumes from that step after ``POST /runs/{id}/approve`` without calling
the earlier step's tool again (calls are counted on a local HTTP tool server), ends canceled
after a reject, and a timeout's default (reject) applies after every process was restarted.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from ordinaut.config import Settings
from ordinaut.store.engine import make_engine
from ordinaut.tools import catalog
from ordinaut.tools.spec import ToolSpec, Transport
from tests.acceptance.test_discipline import (  # noqa: F401  (fixtures)
    ToolServer,
    fast,
    procs,
    register_http_tools,
    rows,
    task_with_due,
    tool_server,
    wait_ready,
)
from tests.support import (
    Proc,
    bootstrap_admin,
    free_port,
    start_api,
    start_beat,
    start_worker,
    wait_for,
)

pytestmark = pytest.mark.timeout(240)


def sends(server: ToolServer, **body: Any) -> int:
    """How many requests ``POST /send`` got with exactly ``body``."""
    return sum(1 for path, _, got in server.requests if path == "/send" and got == body)


def status_of(engine: Engine, run_id: uuid.UUID) -> str | None:
    found = rows(engine, "SELECT status FROM task_run WHERE id = :i", i=run_id)
    return str(found[0].status) if found else None


def run_of(engine: Engine, task_id: uuid.UUID, timeout: float = 60) -> uuid.UUID:
    def one() -> uuid.UUID | None:
        found = rows(engine, "SELECT id FROM task_run WHERE task_id = :t", t=task_id)
        return found[0].id if found else None

    run_id: uuid.UUID = wait_for(one, timeout, what=f"a run of {task_id}")
    return run_id


def wait_status(
    engine: Engine, run_id: uuid.UUID, status: str, timeout: float = 60, proc: Proc | None = None
) -> None:
    wait_for(
        lambda: status_of(engine, run_id) == status,
        timeout,
        interval=0.2,
        proc=proc,
        what=f"run {run_id} {status} (it is {status_of(engine, run_id)})",
    )


GATED = {
    "pipeline": [
        {"id": "prepare", "uses": "demo.send", "with": {"n": 1}, "save_as": "p"},
        {
            "id": "publish",
            "uses": "demo.send",
            "with": {"n": 2, "after": "${steps.p.path}"},
            "approval": "required",
        },
    ]
}


@pytest.fixture
def engine(fast: Settings) -> Iterator[Engine]:  # noqa: F811
    made = make_engine(fast.database_url, pool_size=2)
    yield made
    made.dispose()


@pytest.fixture
def clients() -> Iterator[list[httpx.Client]]:
    made: list[httpx.Client] = []
    yield made
    for one in made:
        one.close()


def start_all(settings: Settings, log_dir: Path, port: int) -> dict[str, Proc]:
    """API, beat and one worker with a single process for both queues."""
    started = {
        "api": start_api(settings, log_dir, port),
        "beat": start_beat(settings, log_dir),
        "worker": start_worker(settings, log_dir, "solo", concurrency=1),
    }
    wait_ready(settings, started["worker"])
    return started


def test_a_gated_run_waits_holding_no_worker_and_resumes_from_the_gated_step_once_approved(
    fast: Settings,  # noqa: F811
    log_dir: Path,
    procs: list[Proc],  # noqa: F811
    tool_server: ToolServer,  # noqa: F811
    engine: Engine,
    clients: list[httpx.Client],
) -> None:
    register_http_tools(engine, tool_server)
    token, port = bootstrap_admin(fast), free_port()
    started = start_all(fast, log_dir, port)
    procs.extend(started.values())
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}
    )
    clients.append(api)
    gated = run_of(engine, task_with_due(engine, GATED))
    wait_status(engine, gated, "waiting_approval", proc=started["worker"])
    shown = api.get(f"/runs/{gated}").json()
    assert shown["suspended_step"] == "publish"
    assert shown["suspended_input"] == {"n": 2, "after": "/send"}  # exactly what will be sent
    assert [s["step_id"] for s in shown["steps"]] == ["prepare"]
    (waiting,) = api.get("/approvals").json()["items"]
    assert waiting["run_id"] == str(gated) and waiting["input"] == {"n": 2, "after": "/send"}

    # the only worker process is free: another task runs while the first one waits
    other = run_of(
        engine,
        task_with_due(engine, {"pipeline": [{"id": "x", "uses": "demo.send", "with": {"n": 9}}]}),
    )
    wait_status(engine, other, "succeeded", proc=started["worker"])
    assert status_of(engine, gated) == "waiting_approval"
    assert sends(tool_server, n=1) == 1 and sends(tool_server, n=2, after="/send") == 0

    approved = api.post(f"/runs/{gated}/approve", json={"comment": "go"})
    assert approved.status_code == 200, approved.text
    wait_status(engine, gated, "succeeded", proc=started["worker"])
    # resumed from the gated step: the first step's tool was not called again
    assert sends(tool_server, n=1) == 1 and sends(tool_server, n=2, after="/send") == 1
    steps = api.get(f"/runs/{gated}").json()["steps"]
    assert [(s["step_id"], s["status"]) for s in steps] == [
        ("prepare", "succeeded"),
        ("publish", "succeeded"),
    ]
    audit = api.get("/audit", params={"subject_id": str(gated)}).json()
    (decision,) = [e for e in audit if e["action"] == "run.approve"]
    assert decision["details"]["comment"] == "go" and decision["details"]["decided_by"] == "admin"

    # reject: canceled with the reason, the gated step never runs
    rejected = run_of(engine, task_with_due(engine, GATED))
    wait_status(engine, rejected, "waiting_approval", proc=started["worker"])
    body = api.post(f"/runs/{rejected}/reject", json={"comment": "not today"}).json()
    assert body["status"] == "canceled" and body["reason"] == "rejected by admin: not today"
    time.sleep(2)  # a dispatch pass or two: nothing resumes it
    assert status_of(engine, rejected) == "canceled"
    assert sends(tool_server, n=2, after="/send") == 1


def test_a_tool_that_requires_approval_gates_without_a_step_flag(
    fast: Settings,  # noqa: F811
    log_dir: Path,
    procs: list[Proc],  # noqa: F811
    tool_server: ToolServer,  # noqa: F811
    engine: Engine,
    clients: list[httpx.Client],
) -> None:
    with engine.begin() as conn:
        catalog.save_tool(
            conn,
            ToolSpec(
                address="demo.guarded",
                transport=Transport.HTTP,
                endpoint=f"{tool_server.url}/send",
                input_schema={"type": "object"},
                output_schema={"type": "object"},
                requires_approval=True,
            ),
        )
    token, port = bootstrap_admin(fast), free_port()
    started = start_all(fast, log_dir, port)
    procs.extend(started.values())
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}
    )
    clients.append(api)
    payload = {"pipeline": [{"id": "pay", "uses": "demo.guarded", "with": {"n": 5}}]}
    run_id = run_of(engine, task_with_due(engine, payload))
    wait_status(engine, run_id, "waiting_approval", proc=started["worker"])
    assert "tool 'demo.guarded'" in api.get(f"/runs/{run_id}").json()["suspend_reason"]
    assert sends(tool_server, n=5) == 0
    assert api.post(f"/runs/{run_id}/approve").status_code == 200
    wait_status(engine, run_id, "succeeded", proc=started["worker"])
    assert sends(tool_server, n=5) == 1


def test_the_timeout_default_rejects_after_every_process_was_restarted(
    fast: Settings,  # noqa: F811
    log_dir: Path,
    procs: list[Proc],  # noqa: F811
    tool_server: ToolServer,  # noqa: F811
    engine: Engine,
) -> None:
    register_http_tools(engine, tool_server)
    port = free_port()
    bootstrap_admin(fast)
    first = start_all(fast, log_dir, port)
    procs.extend(first.values())
    timed = {
        "pipeline": [
            GATED["pipeline"][0],
            {**GATED["pipeline"][1], "approval_timeout_seconds": 4},
        ]
    }
    run_id = run_of(engine, task_with_due(engine, timed))
    wait_status(engine, run_id, "waiting_approval", proc=first["worker"])
    for proc in first.values():  # every process goes away before the timeout
        proc.stop()
    (row,) = rows(engine, "SELECT resume_at, resume_action FROM task_run WHERE id = :i", i=run_id)
    assert row.resume_action == "reject"
    time.sleep(5)  # the timeout passes while nothing runs
    assert status_of(engine, run_id) == "waiting_approval"
    again = start_all(fast, log_dir, port)
    procs.extend(again.values())
    wait_status(engine, run_id, "canceled", proc=again["worker"])
    (run,) = rows(engine, "SELECT reason FROM task_run WHERE id = :i", i=run_id)
    assert "not given in time (on_timeout: reject)" in run.reason
    assert sends(tool_server, n=1) == 1 and sends(tool_server, n=2, after="/send") == 0
    (decision,) = rows(
        engine,
        "SELECT actor_agent_id, details FROM audit_log WHERE subject_id = :i "
        "AND action = 'run.reject'",
        i=run_id,
    )
    assert decision.actor_agent_id is None and decision.details["decided_by"] == "timeout"
