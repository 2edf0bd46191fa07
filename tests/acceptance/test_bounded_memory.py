"""One agent cannot exhaust the machine: a pipeline that doubles its data through templates.

Step ``s0`` echoes a 100 kB string; each of ten echo steps after it passes the previous
output twice (``{"a": "${steps.prev}", "b": "${steps.prev}"}``), so step ``k`` would carry
100 kB·2^k (100 MB at the end). The caps stop it at the first step whose rendered input
passes the step input cap (1 MiB by default): the run fails with a non-retryable
``limit_exceeded`` error, and neither the worker nor the API grows by more than
:data:`RSS_BOUND` while the run executes and is read back (list, detail, a step's output).

Memory is read with psutil (every process of the worker: main process and pool children)
and Linux's VmHWM (the high-water mark of each process's RSS), so a short peak between two
samples still counts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

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

MIB = 1024 * 1024
RSS_BOUND = 100 * MIB  # documented in the README ("Limits")
DOUBLINGS = 10


def doubling_pipeline(seed_bytes: int = 100_000, doublings: int = DOUBLINGS) -> list[Any]:
    """The issue's pipeline: a seed string, then ``doublings`` echo steps doubling it."""
    steps: list[Any] = [
        {"id": "s0", "uses": "builtin.echo", "with": {"x": "a" * seed_bytes}, "save_as": "s0"}
    ]
    for i in range(1, doublings + 1):
        prev = f"${{steps.s{i - 1}}}"
        steps.append(
            {
                "id": f"s{i}",
                "uses": "builtin.echo",
                "with": {"a": prev, "b": prev},
                "save_as": f"s{i}",
            }
        )
    return steps


def _hwm(pid: int) -> int:
    """The process's peak RSS so far (VmHWM), in bytes; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class Growth:
    """How much each watched process grew over its RSS at the start, at its peak."""

    baseline: dict[int, int] = field(default_factory=dict)
    peak: dict[int, int] = field(default_factory=dict)

    def worst(self) -> int:
        return max((self.peak[pid] - self.baseline[pid] for pid in self.baseline), default=0)


@contextmanager
def watch_rss(root_pid: int) -> Iterator[Growth]:
    """Sample the RSS of ``root_pid`` and its children (psutil) until the block ends."""
    growth = Growth()
    stop = threading.Event()

    def tree() -> list[psutil.Process]:
        root = psutil.Process(root_pid)
        return [root, *root.children(recursive=True)]

    def sample() -> None:
        for proc in tree():
            try:
                rss = proc.memory_info().rss
            except psutil.Error:
                continue
            growth.baseline.setdefault(proc.pid, rss)
            growth.peak[proc.pid] = max(growth.peak.get(proc.pid, 0), rss, _hwm(proc.pid))

    def loop() -> None:
        while not stop.wait(0.02):
            sample()

    for proc in tree():  # the baseline: the RSS now, before the work starts
        growth.baseline[proc.pid] = proc.memory_info().rss
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield growth
    finally:
        stop.set()
        thread.join()
        sample()


@pytest.fixture
def one_slot_stack(settings: Settings, log_dir: Path) -> Iterator[Stack]:
    """API, beat and a worker with one pool process (so the warm-up run warms the one that
    then runs the doubling pipeline)."""
    token = bootstrap_admin(settings)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with processes() as procs:
        procs.append(start_api(settings, log_dir, port))
        procs.append(start_beat(settings, log_dir))
        procs.append(start_worker(settings, log_dir, concurrency=1))
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            yield Stack(settings, client, token, {p.name: p for p in procs}, base)


def run_to_the_end(stack: Stack, pipeline: list[Any], **task: Any) -> dict[str, Any]:
    """Create a task, run it now, and return its run once it has ended."""
    later = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    created = stack.api.post(
        "/tasks",
        json={
            "title": "double it",
            "schedule_kind": "once",
            "schedule_expr": later.isoformat(),
            "timezone": "UTC",
            "payload": {"pipeline": pipeline},
            **task,
        },
    )
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    assert stack.api.post(f"/tasks/{task_id}/run_now").status_code == 202

    def ended() -> dict[str, Any] | None:
        items = stack.api.get("/runs", params={"task_id": task_id}).json()["items"]
        done = [r for r in items if r["status"] in ("succeeded", "failed")]
        return done[0] if done else None

    run: dict[str, Any] = wait_for(ended, 120, proc=stack.procs["worker"], what="the run")
    return run


def test_doubling_pipeline_fails_on_the_cap_and_memory_stays_bounded(
    one_slot_stack: Stack,
) -> None:
    stack = one_slot_stack
    # a small run first: the pool process's first run loads modules and opens connections
    warm = run_to_the_end(stack, doubling_pipeline(seed_bytes=10, doublings=3))
    assert warm["status"] == "succeeded", warm

    with watch_rss(stack.procs["worker"].pid) as worker, watch_rss(stack.procs["api"].pid) as api:
        run = run_to_the_end(stack, doubling_pipeline(), max_retries=3)
        task_id = run["task_id"]
        listed = stack.api.get("/runs", params={"task_id": task_id})
        detail = stack.api.get(f"/runs/{run['id']}")
        whole = stack.api.get(f"/runs/{run['id']}/steps/s3/output")
    print(
        f"\nworker grew {worker.worst() / MIB:.1f} MiB, API grew {api.worst() / MIB:.1f} MiB; "
        f"GET /runs?task_id= {len(listed.content)} bytes, GET /runs/{{id}} "
        f"{len(detail.content)} bytes"
    )

    # the run failed on the step input cap, at the first step over 1 MiB, and is not retried
    assert run["status"] == "failed", run
    body = detail.json()
    assert "limit_exceeded" in body["error"] and "ORDINAUT_MAX_STEP_INPUT_BYTES" in body["error"]
    failed = [s for s in body["steps"] if s["status"] == "failed"]
    assert [s["step_id"] for s in failed] == ["s4"]  # 1.6 MB, the first over 1 MiB
    assert [s["step_id"] for s in body["steps"]] == ["s0", "s1", "s2", "s3", "s4"]
    # the over-cap input was never kept: the receipt says how big it was, not what it was
    assert failed[0]["input"] is None
    runs = stack.api.get("/runs", params={"task_id": task_id}).json()["items"]
    assert len(runs) == 1  # not retried, although max_retries is 3

    # the list is a summary (no outputs); the detail stays small
    assert len(listed.content) < 64 * 1024
    assert all("output" not in r for r in listed.json()["items"])
    assert len(detail.content) < 2 * MIB
    # the largest step output kept (s3, 800 kB) can be had whole
    assert whole.status_code == 200 and whole.json()["bytes"] > 800_000

    assert worker.worst() < RSS_BOUND, f"worker grew {worker.worst() / MIB:.0f} MiB"
    assert api.worst() < RSS_BOUND, f"API grew {api.worst() / MIB:.0f} MiB"
