"""Retry backoff: pure functions of the attempt number (and, for jitter, of the run id)."""

from __future__ import annotations

from ordinaut.scheduling.jitter import stable_fraction
from ordinaut.vocabulary import BackoffStrategy


def retry_delay(
    strategy: BackoffStrategy,
    failed_attempt: int,
    *,
    base: float,
    cap: float,
    seed: str = "",
    retry_after: float | None = None,
) -> float:
    """Seconds to wait before the attempt after ``failed_attempt`` (1-based).

    ``exponential``: base·2^(n-1), capped. ``exponential_jitter``: "full jitter" — a stable
    pseudo-random point in [base/2, that value] derived from ``seed`` (so the same failure
    always schedules the same retry time). ``fixed``: base. ``none``: 0. A tool's
    ``retry_after`` is a floor.
    """
    if failed_attempt < 1:
        raise ValueError("failed_attempt starts at 1")
    if strategy is BackoffStrategy.NONE:
        delay = 0.0
    elif strategy is BackoffStrategy.FIXED:
        delay = min(base, cap)
    else:
        delay = min(cap, base * 2 ** (failed_attempt - 1))
        if strategy is BackoffStrategy.EXPONENTIAL_JITTER:
            fraction = stable_fraction(f"{seed}:{failed_attempt}")
            low = min(delay, base / 2)
            delay = low + (delay - low) * fraction
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay
