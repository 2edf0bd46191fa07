"""The tour, for real: `ordinaut demo-tools --register`, then the examples through API → beat →
dispatch → a prefork worker calling HTTP, MCP and LLM tools on the demo server."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ordinaut.config import Settings
from tests.acceptance.conftest import Stack
from tests.support import (
    Proc,
    bootstrap_admin,
    celery,
    free_port,
    settings_env,
    start_api,
    start_beat,
    wait_for,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def tour(settings: Settings, log_dir: Path) -> Iterator[tuple[Stack, str]]:
    """A stack whose worker talks to a demo tool server registered by the CLI."""
    token = bootstrap_admin(settings)
    demo_port, api_port = free_port(), free_port()
    demo_url = f"http://127.0.0.1:{demo_port}"
    procs: dict[str, Proc] = {}
    try:
        argv = [sys.executable, "-m", "ordinaut.cli", "demo-tools", "--port", str(demo_port)]
        procs["demo"] = Proc("demo", [*argv, "--register"], settings_env(settings), log_dir)
        wait_for(lambda: _up(f"{demo_url}/health"), 30, proc=procs["demo"], what="demo tools")
        procs["api"] = start_api(settings, log_dir, api_port)
        procs["beat"] = start_beat(settings, log_dir)
        llm = {"ORDINAUT_LLM_BASE_URL": f"{demo_url}/v1", "ORDINAUT_LLM_MODEL": "demo"}
        queues = ",".join(f"{settings.namespace}.{q}" for q in ("runs", "control"))
        procs["worker"] = celery(
            settings,
            log_dir,
            "worker",
            "worker",
            "-Q",
            queues,
            "-c",
            "2",
            "-P",
            "prefork",
            "-n",
            f"worker-{settings.namespace}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
            **llm,
        )
        base = f"http://127.0.0.1:{api_port}"
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            yield Stack(settings, client, token, procs, base), demo_url
    finally:
        for proc in reversed(list(procs.values())):
            proc.stop()


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _soon(example: str, seconds: int) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EXAMPLES / example).read_text())
    when = (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)
    return {**body, "schedule_kind": "once", "schedule_expr": when.isoformat()}


def test_examples_run_end_to_end_against_the_demo_server(tour: tuple[Stack, str]) -> None:
    stack, demo_url = tour
    as_shipped = stack.api.post(
        "/tasks", json=json.loads((EXAMPLES / "morning-briefing.json").read_text())
    )
    assert as_shipped.status_code == 201, as_shipped.text
    assert as_shipped.json()["next_run"]["local"][11:16] == "08:30"

    ids = {}
    for example in ("morning-briefing.json", "follow-up-manager.json"):
        made = stack.api.post("/tasks", json=_soon(example, 3))
        assert made.status_code == 201, made.text
        ids[example] = made.json()["id"]

    def finished(task_id: str) -> dict[str, Any] | None:
        items = stack.api.get("/runs", params={"task_id": task_id}).json()["items"]
        done = [r for r in items if r["status"] in ("succeeded", "failed")]
        return done[0] if done else None

    worker = stack.procs["worker"]
    brief = wait_for(lambda: finished(ids["morning-briefing.json"]), 45, proc=worker, what="brief")
    assert brief["status"] == "succeeded", brief
    run = stack.api.get(f"/runs/{brief['id']}").json()
    steps = {s["step_id"]: s for s in run["steps"]}
    assert list(steps) == ["cal", "wx", "mail", "plan", "ping"]
    assert all(s["status"] == "succeeded" and s["output"] for s in steps.values())
    assert steps["cal"]["output"]["items"][0]["title"] == "Team stand-up"
    assert steps["wx"]["output"]["city"] == "Chisinau"  # over MCP
    assert len(steps["mail"]["output"]["threads"]) == 5
    assert steps["plan"]["output"]["text"].startswith("Demo summary")
    assert steps["ping"]["output"]["ok"] is True
    assert run["output"] == steps["ping"]["output"]

    follow = wait_for(
        lambda: finished(ids["follow-up-manager.json"]), 45, proc=worker, what="follow"
    )
    assert follow["status"] == "succeeded", follow
    sent = httpx.get(f"{demo_url}/demo/sent").json()["sent"]
    messages = [s for s in sent if s["kind"] == "message"]
    assert [m["text"] for m in messages] == [steps["plan"]["output"]["text"]]
    assert {s["thread_id"] for s in sent if s["kind"] == "draft"} == {"t-201", "t-202", "t-203"}
