"""The supervisor's restart policy (pure, time passed in): backoff, then giving up."""

from __future__ import annotations

from ordinaut.cli.restarts import RestartPolicy, Restarts


def test_restart_delays_double_then_give_up_at_the_fifth_fast_failure() -> None:
    restarts = Restarts(RestartPolicy(max_failures=5, window=60, first_delay=0.5, max_delay=10))
    assert [restarts.failed(t) for t in (0.0, 1.0, 3.0, 6.0)] == [0.5, 1.0, 2.0, 4.0]
    assert restarts.failed(12.0) is None  # five within a minute: something restarts won't fix
    assert restarts.recent == 5


def test_a_child_that_ran_a_while_starts_its_backoff_over() -> None:
    restarts = Restarts(RestartPolicy(max_failures=3, window=60, first_delay=1, max_delay=10))
    assert restarts.failed(0.0) == 1
    assert restarts.failed(10.0) == 2
    # both earlier failures are more than a window ago: this is a first failure again
    assert restarts.failed(100.0) == 1
    assert restarts.failed(101.0) == 2
    assert restarts.failed(102.0) is None


def test_restart_delay_is_capped() -> None:
    restarts = Restarts(RestartPolicy(max_failures=100, window=1e9, first_delay=1, max_delay=5))
    delays = [restarts.failed(float(t)) for t in range(8)]
    assert delays == [1, 2, 4, 5, 5, 5, 5, 5]
