"""The faults, on a seeded random schedule, and what each one does to the stack.

:func:`schedule` is pure: the same seed, window and length give the same faults at the same
offsets. Each kind has a count per ten minutes (at least one of each in any soak); the fault
window is cut into one slot per fault, the kinds are shuffled over the slots and each fault
starts at a random point of the first half of its slot and lasts a random time within it.

Kinds (all on loopback, on the soak's own processes and servers):

- ``kill_runs_worker``: ``kill -9`` a random runs worker (its pool too); a new one starts;
- ``kill_control``: ``kill -9`` the control worker; it restarts after the fault's length;
- ``kill_beat``: ``kill -9`` beat; it restarts after the fault's length;
- ``second_beat``: a second beat runs for the fault's length;
- ``restart_redis``: Redis stops (SIGTERM, its append-only file kept) and starts again;
- ``pause_redis``: Redis is SIGSTOPped for the fault's length, then SIGCONTinued;
- ``restart_postgres``: PostgreSQL is stopped immediately (SIGQUIT: crash recovery at the
  next start) and started again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

PER_TEN_MINUTES = {
    "kill_runs_worker": 6,
    "kill_control": 3,
    "kill_beat": 3,
    "second_beat": 2,
    "restart_redis": 2,
    "pause_redis": 3,
    "restart_postgres": 1,
}
ONCE_ONLY = frozenset({"restart_postgres"})
LENGTH = {  # seconds the fault lasts (down time, pause, second beat's life), bounds
    "kill_runs_worker": (0.0, 2.0),
    "kill_control": (0.5, 3.0),
    "kill_beat": (4.0, 20.0),  # beyond the soak's 10 s misfire grace at times
    "second_beat": (10.0, 40.0),
    "restart_redis": (1.0, 4.0),
    "pause_redis": (2.0, 6.0),
    "restart_postgres": (1.0, 4.0),
}


@dataclass(frozen=True)
class Fault:
    """One fault: its kind, when it starts (seconds into the soak) and how long it lasts."""

    kind: str
    at: float
    length: float


def schedule(seed: int, start: float, end: float) -> list[Fault]:
    """The faults of a soak whose fault window is ``[start, end]`` seconds, by start time."""
    rng = random.Random(seed)
    minutes = (end - start) / 60
    kinds: list[str] = []
    for kind, per_ten in PER_TEN_MINUTES.items():
        count = 1 if kind in ONCE_ONLY else max(1, round(per_ten * minutes / 10))
        kinds += [kind] * count
    rng.shuffle(kinds)
    slot = (end - start) / len(kinds)
    faults = []
    for i, kind in enumerate(kinds):
        at = start + i * slot + rng.uniform(0, slot / 2)
        low, high = LENGTH[kind]
        length = min(rng.uniform(low, high), max(slot / 2 - 0.5, low))
        faults.append(Fault(kind, round(at, 2), round(length, 2)))
    return faults
