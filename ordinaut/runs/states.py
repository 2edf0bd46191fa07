"""The run state machine, as data.

    queued ──claim──► running ──► succeeded | failed | canceled
       │                 │
       ├──► canceled     └──(lease expired)──► failed (a new attempt may follow)
       └──► waiting_approval ──► queued | canceled
    skipped   (recorded without running: dedupe, overlap, misfire, skip_next)

Every transition in the store is a conditional UPDATE guarded by the allowed *from* states,
so a redelivered message or a racing worker changes nothing.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    SKIPPED = "skipped"
    WAITING_APPROVAL = "waiting_approval"

    @property
    def finished(self) -> bool:
        """True for states a run never leaves."""
        return self in FINISHED


FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELED, RunStatus.SKIPPED})

TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset(
        {RunStatus.RUNNING, RunStatus.CANCELED, RunStatus.WAITING_APPROVAL}
    ),
    RunStatus.WAITING_APPROVAL: frozenset({RunStatus.QUEUED, RunStatus.CANCELED}),
    RunStatus.RUNNING: frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELED}),
}


def sources(target: RunStatus) -> tuple[RunStatus, ...]:
    """The states from which ``target`` may be reached (for conditional UPDATEs)."""
    return tuple(sorted(s for s, targets in TRANSITIONS.items() if target in targets))


class TaskStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    CANCELED = "canceled"
    COMPLETED = "completed"


class Trigger(StrEnum):
    """Why a piece of due work exists."""

    SCHEDULE = "schedule"
    CATCH_UP = "catch_up"
    MANUAL = "manual"
    RETRY = "retry"
    EVENT = "event"
