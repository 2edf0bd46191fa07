"""/metrics and /ready against real processes: figures move with the work, and say so when
a worker is gone."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ordinaut.config import Settings
from tests.acceptance.conftest import Stack
from tests.support import (
    bootstrap_admin,
    free_port,
    processes,
    start_api,
    start_beat,
    start_worker,
    wait_for,
)

ECHO = {"pipeline": [{"id": "e", "uses": "builtin.echo", "with": {"x": 1}}]}
BROKEN = {  # fails at run time: "soon" is not a number of seconds
    "params": {"when": "soon"},
    "pipeline": [{"id": "nap", "uses": "builtin.sleep", "with": {"seconds": "${params.when}"}}],
}


def scrape(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``: (name, sorted labels) → value."""
    resp = httpx.get(f"{base_url}/metrics", timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }


def sample(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def once(client: httpx.Client, payload: dict[str, Any]) -> str:
    body = {
        "title": "observed",
        "schedule_kind": "cron",
        "schedule_expr": "0 0 1 1 *",
        "timezone": "UTC",
        "payload": payload,
        "max_retries": 0,
    }
    task = client.post("/tasks", json=body)
    assert task.status_code == 201, task.text
    task_id: str = task.json()["id"]
    assert client.post(f"/tasks/{task_id}/run_now").status_code == 202
    return task_id


def finished(client: httpx.Client, task_id: str) -> Callable[[], str | None]:
    def status() -> str | None:
        items = client.get("/runs", params={"task_id": task_id}).json()["items"]
        done = [r["status"] for r in items if r["status"] in ("succeeded", "failed")]
        return done[0] if done else None

    return status


def test_metrics_move_as_runs_succeed_and_fail(stack: Stack) -> None:
    before = scrape(stack.base_url)
    ok = once(stack.api, ECHO)
    bad = once(stack.api, BROKEN)
    worker = stack.procs["worker"]
    assert wait_for(finished(stack.api, ok), 30, proc=worker) == "succeeded"
    assert wait_for(finished(stack.api, bad), 30, proc=worker) == "failed"
    after = scrape(stack.base_url)

    def moved(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert moved("orchestrator_runs_total", status="succeeded") == 1
    assert moved("orchestrator_runs_total", status="failed") == 1
    assert moved("orchestrator_step_success_total", tool_addr="builtin.echo") == 1
    assert moved("orchestrator_step_duration_seconds_count", tool_addr="builtin.echo") == 1
    assert (
        moved("orchestrator_step_duration_seconds_bucket", tool_addr="builtin.echo", le="+Inf") == 1
    )
    assert moved("orchestrator_steps_total", tool_addr="builtin.sleep") == 1
    assert moved("orchestrator_step_success_total", tool_addr="builtin.sleep") == 0
    assert sample(after, "orchestrator_workers_live", queue="runs") >= 1
    assert sample(after, "orchestrator_workers_live", queue="control") >= 1
    assert 0 <= sample(after, "orchestrator_beat_tick_age_seconds") < 30
    # the processes log one JSON object a line (their output is a file, not a terminal)
    for name in ("worker", "beat", "api"):
        lines = [line for line in stack.procs[name].log().splitlines() if line.strip()]
        assert lines, name
        parsed = [json.loads(line) for line in lines]  # every line, the banner included
        assert all({"ts", "level", "logger", "event", "message"} <= set(p) for p in parsed)
    finished_line = [
        p
        for p in map(json.loads, stack.procs["worker"].log().splitlines())
        if p.get("task_id") == ok and p.get("status") == "succeeded"
    ]
    assert finished_line and {"run_id", "attempt", "latency_ms"} <= set(finished_line[0])
    # the same figures from a second API process: they come from the database
    port = free_port()
    second = start_api(stack.settings, stack.procs["api"].log_path.parent, port, env={})
    try:
        other = scrape(f"http://127.0.0.1:{port}")
        for name in ("orchestrator_runs_total", "orchestrator_step_success_total"):
            assert {k: v for k, v in other.items() if k[0] == name} == {
                k: v for k, v in after.items() if k[0] == name
            }
    finally:
        second.stop()


@pytest.mark.timeout(150)
def test_lag_backlog_and_readiness_follow_the_workers(settings: Settings, log_dir: Path) -> None:
    token = bootstrap_admin(settings)
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def ready() -> httpx.Response:
        return httpx.get(f"{base}/ready", timeout=5)

    with (
        processes() as procs,
        httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as client,
    ):
        procs.append(start_api(settings, log_dir, port))
        procs.append(start_beat(settings, log_dir))
        procs.append(control := start_worker(settings, log_dir, "control", queues="control"))
        procs.append(runs := start_worker(settings, log_dir, "runs", queues="runs"))
        wait_for(lambda: ready().status_code == 200, 60, proc=runs, what="a ready stack")
        assert ready().json()["checks"] == {
            "database": "ok",
            "redis": "ok",
            "beat": "ok",
            "control_workers": "ok",
            "runs_workers": "ok",
        }
        calm = scrape(base)
        assert sample(calm, "orchestrator_runs_queued_late") == 0

        runs.stop()  # nothing executes runs any more: they queue up and wait
        for _ in range(3):
            once(client, ECHO)
        wait_for(
            lambda: sample(scrape(base), "orchestrator_runs_queued_late") == 3,
            20,
            proc=control,
            what="queued runs to show",
        )
        wait_for(
            lambda: sample(scrape(base), "orchestrator_scheduler_lag_seconds") > 3,
            20,
            what="the lag to rise",
        )
        not_ready = ready()
        assert not_ready.status_code == 503
        assert not_ready.json()["checks"]["runs_workers"] == "no live worker on the runs queue"

        control.stop()
        wait_for(lambda: ready().json()["checks"]["control_workers"] != "ok", 30, what="ready")
        body = ready().json()
        assert ready().status_code == 503 and body["status"] == "not ready"
        assert "control_workers: no live worker on the control queue" in body["reasons"]
        assert (body["checks"]["database"], body["checks"]["beat"]) == ("ok", "ok")
