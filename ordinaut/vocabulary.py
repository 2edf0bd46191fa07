"""Ordinaut's vocabulary: every status, kind, policy and scope name, defined once.

The edge models (API, MCP), the store's statements and the domain code all use these
enums; a value written anywhere else as a bare string is a bug waiting to drift. The run
state machine is data here (:data:`TRANSITIONS`); every statement in ``ordinaut.store`` that
changes a run's status declares the edges it moves along, and a test checks them against
this table::

    queued ──claim──► running ──► succeeded | failed | canceled
       │                 │
       ├──► canceled     ├──(lease expired)──► failed (a new attempt may follow)
       │                 └──(suspend before a step)──► waiting_approval | deferred
       └──► waiting_approval ──► queued (resume) | canceled
                                 deferred ──► queued (resume_at) | canceled
    skipped   (recorded without running: dedupe, overlap, misfire, skip_next, budget)

A *suspended* run (a status in :data:`SUSPENDED`) stopped before one of its steps and
holds no worker, lease or concurrency slot; it goes back to ``queued`` when it is resumed
(``resume_at`` came, or a person approved it) and continues from that step (see
:mod:`ordinaut.runs.suspension`).

This module imports nothing from Ordinaut: it is the bottom layer.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """Where one attempt of one occurrence stands."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    SKIPPED = "skipped"
    WAITING_APPROVAL = "waiting_approval"
    DEFERRED = "deferred"  # stopped before a step by a policy (quiet hours, rate limit)

    @property
    def finished(self) -> bool:
        """True for states a run never leaves."""
        return self in FINISHED


FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELED, RunStatus.SKIPPED})

SUSPENDED: tuple[RunStatus, ...] = (RunStatus.WAITING_APPROVAL, RunStatus.DEFERRED)
"""States of a run stopped before a step, holding nothing, until it is resumed or canceled."""

# Runs are *inserted* as queued (dispatch) or skipped (records of what did not run); every
# later change of status is one of these edges.
TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset(
        {RunStatus.RUNNING, RunStatus.CANCELED, RunStatus.WAITING_APPROVAL}
    ),
    **{s: frozenset({RunStatus.QUEUED, RunStatus.CANCELED}) for s in SUSPENDED},
    RunStatus.RUNNING: frozenset(
        {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELED, *SUSPENDED}
    ),
}
INSERTED_AS = frozenset({RunStatus.QUEUED, RunStatus.SKIPPED})


def sources(target: RunStatus) -> tuple[RunStatus, ...]:
    """The states from which ``target`` may be reached (for conditional UPDATEs)."""
    return tuple(sorted(s for s, targets in TRANSITIONS.items() if target in targets))


def allowed(source: RunStatus, target: RunStatus) -> bool:
    """True when the state machine has the edge ``source → target``."""
    return target in TRANSITIONS.get(source, frozenset())


class ResumeAction(StrEnum):
    """What happens to a suspended run when its ``resume_at`` comes."""

    RESUME = "resume"  # queued again, from the step it stopped before
    APPROVE = "approve"  # the same, with that step's approval gate passed
    REJECT = "reject"  # canceled (an approval refused, or timed out with on_timeout reject)


class OnTimeout(StrEnum):
    """What an approval that nobody gave in time does."""

    REJECT = "reject"
    APPROVE = "approve"


class OnExceed(StrEnum):
    """What a create or update that crosses one of its agent's limits does."""

    REJECT = "reject"  # 422 naming the limit
    APPROVE = "approve"  # kept as a pending change a person approves or rejects


class ChangeKind(StrEnum):
    """What a pending change would do when approved."""

    CREATE_TASK = "create_task"
    UPDATE_TASK = "update_task"


class ChangeStatus(StrEnum):
    """Where a pending change stands."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class StepStatus(StrEnum):
    """How one step of a run ended (a step receipt)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class StepPart(StrEnum):
    """What of a step receipt ``GET /runs/{id}/steps/{path}/{part}`` returns whole."""

    INPUT = "input"
    OUTPUT = "output"


class TaskStatus(StrEnum):
    """Whether a task still schedules work."""

    ACTIVE = "active"
    PAUSED = "paused"
    CANCELED = "canceled"
    COMPLETED = "completed"


class Trigger(StrEnum):
    """Why a piece of due work (and the run made from it) exists."""

    SCHEDULE = "schedule"
    CATCH_UP = "catch_up"
    MANUAL = "manual"
    RETRY = "retry"
    EVENT = "event"
    CONDITION = "condition"


class ScheduleKind(StrEnum):
    """How a task is triggered."""

    CRON = "cron"
    RRULE = "rrule"
    ONCE = "once"
    EVENT = "event"
    CONDITION = "condition"


TIMED_KINDS = frozenset({ScheduleKind.CRON, ScheduleKind.RRULE, ScheduleKind.ONCE})
"""Kinds whose occurrences are times (the others fire on events or conditions)."""


class MisfirePolicy(StrEnum):
    """What to do with occurrences missed while nothing was scheduling."""

    RUN_ONCE = "run_once"
    SKIP = "skip"
    RUN_ALL = "run_all"


class OverlapPolicy(StrEnum):
    """What an occurrence does while a run of the same task is still open."""

    ALLOW = "allow"
    SKIP = "skip"
    QUEUE = "queue"


class BackoffStrategy(StrEnum):
    """How long a failed attempt waits before the next one."""

    EXPONENTIAL_JITTER = "exponential_jitter"
    EXPONENTIAL = "exponential"
    FIXED = "fixed"
    NONE = "none"


class OnError(StrEnum):
    """What a failing step does to its pipeline."""

    FAIL = "fail"
    CONTINUE = "continue"


class OnQuiet(StrEnum):
    """What a step silenced by quiet hours does (see :mod:`ordinaut.policy.quiet_hours`)."""

    DEFER = "defer"
    DROP = "drop"
    DIGEST = "digest"


class BudgetMetric(StrEnum):
    """What a budget caps; each is counted per day or month in the budget's zone."""

    RUNS_PER_DAY = "runs_per_day"
    TOOL_CALLS_PER_DAY = "tool_calls_per_day"
    LLM_TOKENS_PER_DAY = "llm_tokens_per_day"
    LLM_TOKENS_PER_MONTH = "llm_tokens_per_month"


BUDGET_EXCEEDED = "budget_exceeded"
"""The error code (and skip reason prefix) of work refused by a budget; never retried."""


class Scope(StrEnum):
    """What a token may do. ``agents:admin`` holds every scope and sees every agent's work."""

    TASKS_READ = "tasks:read"
    TASKS_WRITE = "tasks:write"
    RUNS_READ = "runs:read"
    RUNS_APPROVE = "runs:approve"
    CHANGES_APPROVE = "changes:approve"
    EVENTS_PUBLISH = "events:publish"
    TOOLS_ADMIN = "tools:admin"
    AGENTS_ADMIN = "agents:admin"


OPERATION_SCOPES: tuple[str, ...] = tuple(Scope)
ADMIN_SCOPE = Scope.AGENTS_ADMIN


def holds(held: frozenset[str] | set[str], scope: str) -> bool:
    """True when a holder of ``held`` may use ``scope`` (admins hold every scope)."""
    return scope in held or ADMIN_SCOPE in held
