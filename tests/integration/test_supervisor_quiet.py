"""What ``ordinaut up`` shows the person: Celery's start-up banner and its root-user warning
go to the log file only (marked DEBUG); log records and a crash's own output are shown."""

from __future__ import annotations

import io
import sys
import textwrap
from pathlib import Path

from ordinaut.cli.restarts import RestartPolicy
from ordinaut.cli.supervisor import Child, Supervisor

BANNER_THEN_LOGS = r"""
print(" -------------- celery@host v5.7.0 (collider)")
print("--- ***** ----- ")
print("[tasks]\n  . ordinaut.execute_run")
print("[2026-12-02 10:00:00,000: WARNING/MainProcess] x.py:1: SecurityWarning: You're running"
      " the worker with superuser privileges: this is")
print("absolutely not recommended!")
print("[2026-12-02 10:00:01,000: INFO/MainProcess] worker ready.")
print("Traceback (most recent call last):")
print("[2026-12-02 10:00:02,000: INFO/MainProcess] run 1 succeeded")
"""


def run_child(tmp_path: Path, name: str, code: str) -> tuple[str, str]:
    out = io.StringIO()
    with (tmp_path / "ordinaut.log").open("w") as log_file:
        sup = Supervisor(
            out,
            color=False,
            policy=RestartPolicy(max_failures=1, window=60, first_delay=0.05, max_delay=0.1),
            log_file=log_file,
            quiet=frozenset({"worker"}),
        )
        sup.start(Child(name, [sys.executable, "-c", textwrap.dedent(code)]))
        assert sup.children[0].proc is not None
        sup.children[0].proc.wait(10)
        for thread in list(sup._threads):  # the relay has read everything
            thread.join(10)
        sup.stop_all(grace=1)
    return out.getvalue(), (tmp_path / "ordinaut.log").read_text()


def test_banner_and_root_warning_go_to_the_log_file_only(tmp_path: Path) -> None:
    shown, kept = run_child(tmp_path, "worker", BANNER_THEN_LOGS)
    assert "celery@host" not in shown and "superuser" not in shown and "absolutely" not in shown
    assert "worker ready." in shown and "run 1 succeeded" in shown
    assert "Traceback" in shown  # a continuation of a shown record is shown
    assert "DEBUG worker" in kept and "celery@host" in kept and "superuser" in kept
    assert "run 1 succeeded" in kept


def test_a_quiet_child_that_dies_before_logging_shows_why(tmp_path: Path) -> None:
    shown, _ = run_child(
        tmp_path, "worker", 'import sys; print("ImportError: no module x"); sys.exit(3)'
    )
    assert "ImportError: no module x" in shown


def test_other_children_are_shown_whole(tmp_path: Path) -> None:
    shown, _ = run_child(tmp_path, "api", 'print(" -------------- not celery")')
    assert "not celery" in shown
