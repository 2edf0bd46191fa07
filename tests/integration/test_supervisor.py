"""The supervisor with real child processes: restarts, servers first, giving up, shutdown.

Children are small Python programs; no Ordinaut server is involved (``test_up_heals`` in
the acceptance tier runs the real ``ordinaut up``).
"""

from __future__ import annotations

import io
import os
import signal
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ordinaut.cli.restarts import RestartPolicy
from ordinaut.cli.supervisor import Child, Supervisor
from tests.support import wait_for

FAST = RestartPolicy(max_failures=4, window=60, first_delay=0.05, max_delay=0.2)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


@pytest.fixture
def sup() -> Iterator[Supervisor]:
    made = Supervisor(io.StringIO(), color=False, policy=FAST)
    try:
        yield made
    finally:
        made.stop_all(grace=5)


def log_of(sup: Supervisor) -> list[str]:
    out = sup.out
    assert isinstance(out, io.StringIO)
    return out.getvalue().splitlines()


class Supervising:
    """``sup.supervise`` in a thread, stopped at the end; ``result`` is what it returned."""

    def __init__(self, sup: Supervisor, servers: list[FakeServer] | None = None) -> None:
        self.stop = threading.Event()
        self.result: list[str | None] = []
        self.thread = threading.Thread(
            target=lambda: self.result.append(sup.supervise(self.stop, servers or [], poll=0.05))
        )
        self.thread.start()

    def close(self) -> str | None:
        self.stop.set()
        self.thread.join(10)
        return self.result[0]


def test_a_killed_child_is_restarted_once_and_logged_once(sup: Supervisor) -> None:
    sup.start(Child("sleeper", python("import time; time.sleep(60)")))
    watching = Supervising(sup)
    try:
        first = sup.children[0].proc
        assert first is not None
        os.kill(first.pid, signal.SIGKILL)
        wait_for(
            lambda: any("sleeper restarted" in line for line in log_of(sup)), 10, what="restart"
        )
        second = sup.children[0].proc
        assert second is not None and second.pid != first.pid and second.poll() is None
    finally:
        assert watching.close() is None  # stopped, not given up
    lines = log_of(sup)
    assert [line for line in lines if "sleeper was killed by SIGKILL" in line] == [
        "ordinaut | sleeper was killed by SIGKILL; restarting it in 0.05 s"
    ]
    assert len([line for line in lines if "sleeper restarted (pid" in line]) == 1


def test_repeated_fast_failures_give_up_with_a_clear_reason(sup: Supervisor) -> None:
    sup.start(Child("broken", python("import sys; sys.exit(3)")))
    stop = threading.Event()
    reason = sup.supervise(stop, poll=0.05)
    assert reason == "broken exited with status 3: it failed 4 times within 60 s, giving up"
    restarts = [line for line in log_of(sup) if "restarting it in" in line]
    assert [line.rsplit(" ", 2)[-2] for line in restarts] == ["0.05", "0.1", "0.2"]


class FakeServer:
    """A watched "server": a real process whose first ``failures`` restarts fail."""

    def __init__(self, name: str, events: list[str], failures: int) -> None:
        self.name, self.events, self.failures = name, events, failures
        self.proc = Child(name, python("import time; time.sleep(60)"))
        self.sup = Supervisor(io.StringIO(), color=False)
        self.sup.start(self.proc)

    def exit_code(self) -> int | None:
        return self.proc.exit_code()

    def restart(self) -> str:
        if self.failures:
            self.failures -= 1
            self.events.append(f"{self.name} failed")
            raise RuntimeError("port busy")
        self.events.append(self.name)
        return self.proc.restart()

    def close(self) -> None:
        self.sup.stop_all(grace=5)


class NotedChild(Child):
    """A child whose restarts are noted in ``events``."""

    events: list[str] = []

    def restart(self) -> str:
        self.events.append(self.name)
        return super().restart()


def test_servers_come_back_before_the_children_that_need_them(sup: Supervisor) -> None:
    events: list[str] = []
    NotedChild.events = events
    server = FakeServer("db", events, failures=2)
    sup.start(child := NotedChild("app", python("import time; time.sleep(60)")))
    watching = Supervising(sup, [server])
    try:
        assert server.proc.proc is not None and child.proc is not None
        os.kill(child.proc.pid, signal.SIGKILL)
        os.kill(server.proc.proc.pid, signal.SIGKILL)
        wait_for(lambda: "app" in events, 10, what="the child's restart")
    finally:
        assert watching.close() is None
        server.close()
    # the child waited, though its own backoff was over, until the server was back
    assert events == ["db failed", "db failed", "db", "app"]
    assert any("db did not restart (port busy); restarting it in" in x for x in log_of(sup))


def test_shutdown_signals_the_main_process_only(sup: Supervisor, tmp_path: Path) -> None:
    """A Celery worker's pool must not get SIGTERM: its main process lets it finish."""
    record = tmp_path / "signals"
    pool = f"""
import signal, time
def handler(*_):
    open({str(record)!r}, "a").write("pool got SIGTERM\\n")
    raise SystemExit(1)
signal.signal(signal.SIGTERM, handler)
open({str(record)!r} + ".ready", "w").close()
time.sleep(1.5)
open({str(record)!r}, "a").write("pool finished its work\\n")
"""
    program = f"""
        import signal, subprocess, sys, time
        def warm(*_):  # as a worker's warm shutdown: wait for the pool to finish
            open({str(record)!r}, "a").write("main got SIGTERM\\n")
            pool.wait()
            sys.exit(0)
        signal.signal(signal.SIGTERM, warm)
        pool = subprocess.Popen([sys.executable, "-c", {pool!r}])
        time.sleep(60)
    """
    sup.start(Child("worker", python(program)))
    wait_for(lambda: Path(f"{record}.ready").exists(), 20, what="the pool process")
    sup.stop_all(grace=10)
    assert record.read_text().splitlines() == ["main got SIGTERM", "pool finished its work"]
