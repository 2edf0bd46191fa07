"""`ordinaut up` heals itself: kill -9 any child or embedded server and it comes back, work
asked for meanwhile still happens, and Ctrl-C hands a running run back for the next start.

Everything runs on the test's own embedded servers (spare loopback ports, a temporary data
folder), never on the machine's shared PostgreSQL or Redis.
"""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from ordinaut.runs import shutdown
from tests.acceptance.test_up import Up, _clean_env
from tests.support import free_port, wait_for


def child(up: Up, match: str) -> psutil.Process:
    """The direct child of ``ordinaut up`` whose command line contains ``match``."""
    for proc in psutil.Process(up.proc.pid).children():
        if match in " ".join(proc.cmdline()):
            return proc
    raise AssertionError(f"no child of ordinaut up runs {match!r}")


def task(client: httpx.Client, pipeline: list[dict[str, Any]]) -> str:
    made = client.post(
        "/tasks",
        json={
            "title": "healing",
            "schedule_kind": "once",
            "schedule_expr": (datetime.now(UTC) + timedelta(days=365)).isoformat(),
            "payload": {"pipeline": pipeline},
        },
    )
    assert made.status_code == 201, made.text
    task_id: str = made.json()["id"]
    return task_id


def runs(client: httpx.Client, task_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get("/runs", params={"task_id": task_id}).json()["items"]
    return sorted(items, key=lambda r: r["attempt"])


def succeeded(client: httpx.Client, task_id: str, n: int) -> bool:
    return sum(bool(r["status"] == "succeeded") for r in runs(client, task_id)) >= n


ECHO = [{"id": "e", "uses": "builtin.echo", "with": {"x": 1}}]


@pytest.mark.timeout(420)
def test_up_restarts_what_dies_and_hands_runs_back_on_ctrl_c(server_tmp_path: Path) -> None:
    data_dir = server_tmp_path / "data"
    port = free_port()
    up = Up(data_dir, port, _clean_env(), "--grace", "1")
    clients: list[httpx.Client] = []

    def connect(token: str) -> httpx.Client:
        clients.append(
            httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
        )
        return clients[-1]

    try:
        token = up.wait_line("ORDINAUT_TOKEN=", 120).split("ORDINAUT_TOKEN=", 1)[1].strip()
        up.wait_line("Ordinaut is up", 120)
        client = connect(token)
        health = client.get("/health").json()
        assert health["queues"] == {"control": 1, "runs": 1}, health  # which worker is which
        echo = task(client, ECHO)

        # the runs worker's main process and beat die: both come back, the rest never stopped
        api = child(up, "uvicorn")
        child(up, "runs@").kill()
        child(up, " beat ").kill()
        up.wait_line("worker restarted", 60)
        up.wait_line("beat restarted", 60)
        assert child(up, "uvicorn").pid == api.pid and up.proc.poll() is None
        assert client.post(f"/tasks/{echo}/run_now").status_code == 202
        wait_for(lambda: succeeded(client, echo, 1), 60, what="a run after the restarts")

        # Redis dies; a run asked for meanwhile waits in PostgreSQL and runs once it is back
        child(up, "redis-server").kill()
        assert client.post(f"/tasks/{echo}/run_now").status_code == 202
        up.wait_line("redis restarted", 60)
        wait_for(lambda: succeeded(client, echo, 2), 90, what="the run asked for without Redis")

        # PostgreSQL dies: restarted on its port, with its data; the API answers again
        child(up, "postgres").kill()
        up.wait_line("postgres restarted", 90)
        wait_for(lambda: client.get("/health").status_code == 200, 90, what="health again")
        assert client.post(f"/tasks/{echo}/run_now").status_code == 202
        wait_for(lambda: succeeded(client, echo, 3), 90, what="a run after PostgreSQL's restart")
        # one line per death, and only the four kills died (a server whose first restart
        # attempt fails under load says "did not restart" and is tried again: that is fine)
        said = [line for line in up.lines if line.startswith("ordinaut ")]
        deaths = [x for x in said if "restarting it in" in x and "did not restart" not in x]
        assert len(deaths) == 4, "\n".join(said)
        assert all("was killed by SIGKILL" in x for x in deaths), "\n".join(said)
        beat_and_control = [x for x in up.lines if x.startswith(("beat ", "control "))]
        assert not [x for x in beat_and_control if "Traceback" in x]

        # Ctrl-C while a run is under way: it gets --grace 1, then is handed back
        slow = task(
            client,
            [{"id": f"s{i}", "uses": "builtin.sleep", "with": {"seconds": 1}} for i in range(8)],
        )
        assert client.post(f"/tasks/{slow}/run_now").status_code == 202
        wait_for(
            lambda: [r["status"] for r in runs(client, slow)] == ["running"],
            60,
            what="the slow run",
        )
        assert up.interrupt() == 0
        assert up.find("handed back between steps")
        client.close()

        up = Up(data_dir, port, _clean_env())
        up.wait_line("Ordinaut is up", 120)
        client = connect(token)
        wait_for(lambda: succeeded(client, slow, 1), 90, what="the handed-back run's next attempt")
        first, second = runs(client, slow)
        assert (first["status"], first["error"]) == ("failed", shutdown.HANDED_BACK)
        assert (second["attempt"], second["status"]) == (2, "succeeded")
        assert up.interrupt() == 0
    finally:
        for made in clients:
            made.close()
        if up.proc.poll() is None:
            os.killpg(up.proc.pid, signal.SIGKILL)
            up.proc.wait()
            up.close()
