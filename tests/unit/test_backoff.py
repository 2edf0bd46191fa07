"""Retry backoff: pure delays per strategy, attempt, base, cap, seed and retry_after."""

from __future__ import annotations

import pytest

from ordinaut.runs.backoff import retry_delay
from ordinaut.vocabulary import BackoffStrategy

EXP = BackoffStrategy.EXPONENTIAL
JIT = BackoffStrategy.EXPONENTIAL_JITTER
FIXED = BackoffStrategy.FIXED
NONE = BackoffStrategy.NONE


@pytest.mark.parametrize(
    ("strategy", "attempt", "expected"),
    [
        (EXP, 1, 2.0),
        (EXP, 2, 4.0),
        (EXP, 3, 8.0),
        (EXP, 6, 64.0),
        (EXP, 7, 100.0),  # capped
        (EXP, 60, 100.0),  # no overflow far past the cap
        (FIXED, 1, 2.0),
        (FIXED, 9, 2.0),
        (NONE, 1, 0.0),
        (NONE, 5, 0.0),
    ],
)
def test_deterministic_strategies(strategy: BackoffStrategy, attempt: int, expected: float) -> None:
    assert retry_delay(strategy, attempt, base=2.0, cap=100.0) == expected


def test_fixed_is_capped() -> None:
    assert retry_delay(FIXED, 1, base=50.0, cap=10.0) == 10.0


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 8, 12])
def test_jitter_stays_between_half_base_and_the_exponential_ceiling(attempt: int) -> None:
    ceiling = min(100.0, 2.0 * 2 ** (attempt - 1))
    for i in range(200):
        delay = retry_delay(JIT, attempt, base=2.0, cap=100.0, seed=f"run-{i}")
        assert 1.0 <= delay <= ceiling


def test_jitter_is_stable_for_a_seed_and_spreads_across_seeds() -> None:
    one = retry_delay(JIT, 4, base=2.0, cap=100.0, seed="run-a")
    assert one == retry_delay(JIT, 4, base=2.0, cap=100.0, seed="run-a")
    spread = {round(retry_delay(JIT, 4, base=2.0, cap=100.0, seed=f"r{i}"), 6) for i in range(50)}
    assert len(spread) > 40  # full jitter: almost every run gets its own retry time


def test_jitter_depends_on_the_attempt() -> None:
    firsts = [retry_delay(JIT, 5, base=1.0, cap=1000.0, seed=f"r{i}") for i in range(100)]
    seconds = [retry_delay(JIT, 6, base=1.0, cap=1000.0, seed=f"r{i}") for i in range(100)]
    assert sum(seconds) > sum(firsts) * 1.5  # the window doubles with each attempt


@pytest.mark.parametrize("strategy", list(BackoffStrategy))
def test_retry_after_is_a_floor_but_still_capped(strategy: BackoffStrategy) -> None:
    assert retry_delay(strategy, 1, base=1.0, cap=30.0, retry_after=12.0) == 12.0
    assert retry_delay(strategy, 1, base=1.0, cap=30.0, retry_after=500.0) == 30.0
    longer = retry_delay(strategy, 1, base=20.0, cap=30.0, retry_after=0.5)
    assert longer >= 0.5


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        retry_delay(EXP, 0, base=1.0, cap=10.0)
