"""A worker's warm shutdown: runs may finish within a grace period, the rest are handed back.

SIGTERM to a Celery worker's main process is a warm shutdown: it stops taking messages and
waits for its running tasks. Celery alone would wait without limit, and anything that kills
the pool meanwhile leaves its runs ``running`` until their leases expire. Here:

1. :func:`begin` (the main process, when the shutdown starts) records the end of the grace
   period (``ORDINAUT_SHUTDOWN_GRACE_SECONDS``) in memory shared with the pool processes: an
   anonymous shared mapping made when this module is imported, before the pool forks.
2. After it, a run stops before its next step and is **handed back**
   (:func:`ordinaut.store.queries.hand_back_run`): ``failed`` ("handed back: …") with its
   receipts in the same statement, and its next attempt due at once whatever its retries
   (it did not fail; it was interrupted). Completed steps stand: the next attempt serves them
   from their receipts.
3. A run still inside one step :data:`STUCK_SECONDS` later is handed back by its lease keeper
   (:mod:`ordinaut.runs.lease`), as a crash would be but without waiting for its lease to
   expire. Its next attempt is due only once this worker's pool is surely gone
   (:data:`IN_STEP_RETRY_DELAY`): a step that still completes meanwhile has its receipt
   written first (the next attempt serves it); one that does not is cut short when the
   process ends and runs again in the next attempt.
4. :data:`COLD_AFTER_SECONDS` after the grace, the main process asks Celery for a cold
   shutdown (SIGQUIT to itself, see :mod:`ordinaut.tasks`), which ends the pool.

Times are ``time.monotonic()`` seconds, passed in; that clock is shared by every process of
the machine.
"""

from __future__ import annotations

import mmap
import struct

STUCK_SECONDS = 1.0
COLD_AFTER_SECONDS = 3.0
# from the keeper's hand-back to past the cold shutdown, with a margin for the pool to end
IN_STEP_RETRY_DELAY = COLD_AFTER_SECONDS - STUCK_SECONDS + 2.0
HANDED_BACK = "handed back: the worker shut down before the run ended"
HANDED_BACK_IN_STEP = "handed back: the worker shut down while a step was running"

_FORMAT = "d"
# MAP_SHARED | MAP_ANONYMOUS: a fork shares it with its parent; no file, nothing connects
_SHARED = mmap.mmap(-1, struct.calcsize(_FORMAT))


def begin(grace: float, now: float) -> float:
    """Start the grace period (once; a second call keeps the first end); its end."""
    end = deadline()
    if end is None:
        end = now + grace
        _SHARED[:] = struct.pack(_FORMAT, end)
    return end


def deadline() -> float | None:
    """When the grace period ends, or None while the worker is not shutting down."""
    (end,) = struct.unpack(_FORMAT, _SHARED[:])
    return float(end) if end > 0 else None


def hand_back_due(now: float) -> bool:
    """True once the grace period is over: runs stop before their next step."""
    end = deadline()
    return end is not None and now >= end


def stuck_due(now: float) -> bool:
    """True once a run still inside a step should be handed back by its lease keeper."""
    end = deadline()
    return end is not None and now >= end + STUCK_SECONDS


def reset() -> None:
    """Forget a shutdown (tests, and a worker restarted in the same process)."""
    _SHARED[:] = struct.pack(_FORMAT, 0.0)
