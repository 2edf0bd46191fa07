"""A worker's shutdown grace, shared with the pool processes it forked (pure, time passed in)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from ordinaut.runs import shutdown


@pytest.fixture
def no_shutdown() -> Iterator[None]:
    shutdown.reset()
    yield
    shutdown.reset()


@pytest.mark.usefixtures("no_shutdown")
def test_the_grace_period_is_seen_by_a_process_forked_before_it_began() -> None:
    assert shutdown.deadline() is None and not shutdown.hand_back_due(1e12)
    pid = os.fork()
    if pid == 0:  # the pool process: forked first, it sees the parent's later begin()
        until = time.monotonic() + 10
        while shutdown.deadline() is None and time.monotonic() < until:
            time.sleep(0.01)
        os._exit(0 if shutdown.deadline() == 1000.0 else 1)
    assert shutdown.begin(10.0, now=990.0) == 1000.0
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.usefixtures("no_shutdown")
def test_runs_are_handed_back_after_the_grace_and_stuck_ones_a_moment_later() -> None:
    end = shutdown.begin(5.0, now=100.0)
    assert shutdown.begin(60.0, now=101.0) == end == 105.0  # a second SIGTERM keeps the first
    assert not shutdown.hand_back_due(104.9) and shutdown.hand_back_due(105.0)
    assert not shutdown.stuck_due(105.0)
    assert shutdown.stuck_due(105.0 + shutdown.STUCK_SECONDS)
    # a run handed back inside a step waits until the pool is surely gone
    assert shutdown.STUCK_SECONDS + shutdown.IN_STEP_RETRY_DELAY > shutdown.COLD_AFTER_SECONDS
