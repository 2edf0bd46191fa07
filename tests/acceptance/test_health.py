"""/health names the part that is down: here, the worker of the runs queue."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ordinaut.config import Settings
from tests.support import free_port, processes, start_api, start_beat, start_worker, wait_for


@pytest.mark.timeout(120)
def test_health_says_which_queue_has_no_worker(settings: Settings, log_dir: Path) -> None:
    port = free_port()
    with processes() as procs:
        procs.append(start_api(settings, log_dir, port))
        procs.append(start_beat(settings, log_dir))
        procs.append(start_worker(settings, log_dir, "control", queues="control", concurrency=1))
        procs.append(runs := start_worker(settings, log_dir, "runs", queues="runs", concurrency=1))

        def health() -> httpx.Response:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)

        wait_for(lambda: health().status_code == 200, 60, proc=runs, what="a healthy stack")
        assert health().json()["queues"] == {"control": 1, "runs": 1}

        runs.stop()  # a worker leaving says so: its heartbeat goes with it
        wait_for(lambda: health().status_code == 503, 30, what="health to notice")
        report = health().json()
        assert report["queues"] == {"control": 1, "runs": 0}
        assert (report["database"], report["redis"], report["beat"]) == ("ok", "ok", "ok")
        assert report["status"] == "degraded"
