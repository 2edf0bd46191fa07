"""`ordinaut up` as a user runs it: embedded servers, Ctrl-C, restart with history intact."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support import free_port, wait_for


def _clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("ORDINAUT_")
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Up:
    """A running `ordinaut up` whose combined log is collected line by line."""

    def __init__(self, data_dir: Path, port: int, env: dict[str, str], *extra: str) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ordinaut.cli",
                "up",
                "--data-dir",
                str(data_dir),
                "--port",
                str(port),
                "--workers",
                "1",
                *extra,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            process_group=0,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def find(self, fragment: str) -> str | None:
        return next((line for line in self.lines if fragment in line), None)

    def wait_line(self, fragment: str, timeout: float) -> str:
        def check() -> str | None:
            if self.proc.poll() is not None:
                raise AssertionError("ordinaut up exited:\n" + "\n".join(self.lines[-40:]))
            return self.find(fragment)

        return wait_for(check, timeout, interval=0.2, what=repr(fragment))

    def interrupt(self, timeout: float = 60) -> int:
        """Ctrl-C as a terminal sends it: SIGINT to the foreground process group."""
        os.killpg(self.proc.pid, signal.SIGINT)
        code = self.proc.wait(timeout)
        self.close()
        return code

    def close(self) -> None:
        self._reader.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.mark.timeout(240)
def test_up_embedded_survives_ctrl_c_and_restart(server_tmp_path: Path) -> None:
    data_dir = server_tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    up = Up(data_dir, port, _clean_env())
    try:
        token_line = up.wait_line("ORDINAUT_TOKEN=", 120)
        token = token_line.split("ORDINAUT_TOKEN=", 1)[1].strip()
        up.wait_line("Ordinaut is up", 120)
        assert up.find(f"Dashboard {base}/ui")
        # readable lines for the person: no Celery banner, no root-user warning (this test
        # runs as root); both are kept in the log file, marked DEBUG
        assert up.find("-------------- ") is None and up.find("superuser") is None
        kept = (data_dir / "ordinaut.log").read_text()
        assert "DEBUG worker" in kept and "-------------- " in kept
        if os.geteuid() == 0:
            assert "superuser privileges" in kept
        assert "Ordinaut is up" in kept
        family = [up.proc.pid] + [
            c.pid for c in psutil.Process(up.proc.pid).children(recursive=True)
        ]
        names = {psutil.Process(pid).name() for pid in family}
        assert {"postgres", "redis-server"} <= names

        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
        when = datetime.now(UTC) + timedelta(seconds=2)
        created = client.post(
            "/tasks",
            json={
                "title": "persisted",
                "schedule_kind": "once",
                "schedule_expr": when.isoformat(),
                "payload": {"pipeline": [{"id": "e", "uses": "builtin.echo", "with": {"x": 1}}]},
            },
        )
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]

        def succeeded() -> list[dict[str, str]] | None:
            items = client.get("/runs", params={"task_id": task_id}).json()["items"]
            return [r for r in items if r["status"] == "succeeded"] or None

        first_runs = wait_for(succeeded, 60, interval=0.3, what="the run")

        assert up.interrupt() == 0
        gone = wait_for(
            lambda: all(
                not psutil.pid_exists(p) or psutil.Process(p).status() == "zombie" for p in family
            ),
            15,
            what="every child process to exit",
        )
        assert gone
        assert up.find("stopped (data kept in")

        up = Up(data_dir, port, _clean_env())
        up.wait_line("Ordinaut is up", 120)
        assert up.find("ORDINAUT_TOKEN=") is None, "the admin token is shown only on first start"
        shown = client.get(f"/tasks/{task_id}")
        assert shown.status_code == 200
        assert shown.json()["status"] == "completed"
        again = client.get("/runs", params={"task_id": task_id}).json()["items"]
        assert [r["id"] for r in again] == [r["id"] for r in first_runs]
        client.close()
        assert up.interrupt() == 0
    finally:
        if up.proc.poll() is None:
            os.killpg(up.proc.pid, signal.SIGKILL)
            up.proc.wait()
            up.close()


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (["up"], {"DATABASE_URL": "mysql://nope/x"}, "DATABASE_URL must start with postgresql://"),
        (
            ["migrate"],
            {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x"},
            "DATABASE_URL: cannot connect to PostgreSQL",
        ),
        (["up", "--port", "70000"], {}, "70000 is not between 1 and 65535"),
        (["up", "--workers", "0"], {}, "0 is not between 1 and 64"),
        (["up", "--grace", "-1"], {}, "-1 is not between 0 and 3600"),
        (
            ["up"],
            {
                "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x",
                "ORDINAUT_SHUTDOWN_GRACE_SECONDS": "soon",
            },
            "ORDINAUT_SHUTDOWN_GRACE_SECONDS",
        ),
    ],
)
def test_bad_settings_are_one_clear_line(
    tmp_path: Path, args: list[str], env: dict[str, str], fragment: str
) -> None:
    full_env = _clean_env() | env | {"REDIS_URL": "redis://127.0.0.1:1/0"}
    result = subprocess.run(
        [sys.executable, "-m", "ordinaut.cli", *args, "--data-dir", str(tmp_path)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1
