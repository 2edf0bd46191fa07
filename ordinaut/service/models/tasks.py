"""Tasks: what a caller sends to create, change, snooze or skip one, and what it gets back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from ordinaut.pipeline.schema import PayloadJson
from ordinaut.service.models.common import CONDITION_DOC, MAX_BUDGET, WORKER_POOL
from ordinaut.vocabulary import (
    BackoffStrategy,
    MisfirePolicy,
    OnQuiet,
    OverlapPolicy,
    ScheduleKind,
    TaskStatus,
)


class QuietHoursRule(BaseModel):
    """Quiet hours (README, "Quiet hours"): windows in which steps of some tool scopes wait."""

    model_config = ConfigDict(extra="forbid")

    tz: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="IANA zone of the windows (default: the task's, or the server's)",
    )
    windows: list[str] = Field(
        min_length=1,
        max_length=32,
        description='Local "HH:MM-HH:MM" spans, optionally after weekday codes: '
        '"22:00-08:00", "SA 00:00-24:00", "MO,TU 12:00-13:00"',
    )
    on_quiet: OnQuiet = OnQuiet.DEFER
    scopes: list[str] = Field(
        default_factory=lambda: ["notify"],
        min_length=1,
        max_length=32,
        description="Tool scopes silenced",
    )


class BudgetsRule(BaseModel):
    """Budgets (README, "Budgets"): caps per local day or month; omitted caps are unlimited."""

    model_config = ConfigDict(extra="forbid")

    tz: str | None = Field(default=None, min_length=1, max_length=64)
    runs_per_day: StrictInt | None = Field(default=None, ge=0, le=MAX_BUDGET)
    tool_calls_per_day: StrictInt | None = Field(default=None, ge=0, le=MAX_BUDGET)
    llm_tokens_per_day: StrictInt | None = Field(default=None, ge=0, le=MAX_BUDGET)
    llm_tokens_per_month: StrictInt | None = Field(default=None, ge=0, le=MAX_BUDGET)


class TaskCreate(BaseModel):
    """The body of ``POST /tasks`` (the seed's task, ``created_by`` taken from the token)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    schedule_kind: ScheduleKind
    schedule_expr: str | None = Field(default=None, max_length=4000)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    payload: PayloadJson
    priority: StrictInt = Field(default=5, ge=1, le=9, description="1 is most urgent, 9 least")
    dedupe_key: str | None = Field(default=None, min_length=1, max_length=200)
    dedupe_window_seconds: StrictInt = Field(default=0, ge=0, le=366 * 86400)
    max_retries: StrictInt = Field(default=3, ge=0, le=100)
    backoff_strategy: BackoffStrategy = BackoffStrategy.EXPONENTIAL_JITTER
    concurrency_key: str | None = Field(default=None, min_length=1, max_length=200)
    concurrency_limit: StrictInt = Field(default=1, ge=1, le=10_000)
    overlap_policy: OverlapPolicy = OverlapPolicy.ALLOW
    misfire_policy: MisfirePolicy = MisfirePolicy.RUN_ONCE
    jitter_seconds: StrictInt = Field(default=0, ge=0, le=86400)
    timeout_seconds: StrictInt | None = Field(default=None, ge=1, le=7 * 86400)
    event_filter: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="Event tasks: a JMESPath expression over the event's payload; the task "
        "fires only when it is truthy (e.g. \"priority == 'high'\").",
    )
    event_sources: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=50,
        description="Event tasks: ids of other agents whose events may also fire this task "
        "(its own agent's always do; an agents:admin publisher reaches every task).",
    )
    condition: dict[str, Any] | None = Field(default=None, description=CONDITION_DOC)
    cooldown_seconds: StrictInt | None = Field(
        default=None,
        ge=1,
        le=366 * 86400,
        description="Condition tasks: after firing, no new firing for this long.",
    )
    quiet_hours: QuietHoursRule | None = Field(
        default=None, description="Overrides the agent's quiet hours for this task"
    )
    budgets: BudgetsRule | None = Field(
        default=None, description="This task's own caps (the agent's budget applies too)"
    )
    worker_pool: str | None = Field(
        default=None,
        pattern=WORKER_POOL,
        description="Run on workers of the Celery queue <namespace>.runs.<worker_pool>",
    )
    created_by: str | None = Field(
        default=None, description="Ignored: the owner is the agent whose token made the call."
    )


PATCH_NULLABLE = frozenset(
    {
        "schedule_expr",
        "dedupe_key",
        "concurrency_key",
        "timeout_seconds",
        "event_filter",
        "condition",
        "cooldown_seconds",
        "quiet_hours",
        "budgets",
        "worker_pool",
    }
)


def _only_listed_nullable(schema: dict[str, Any]) -> None:
    """In the PATCH schema, advertise null only for fields that accept it."""
    for name, prop in schema.get("properties", {}).items():
        options = prop.get("anyOf")
        if name in PATCH_NULLABLE or not options:
            continue
        rest = [o for o in options if o.get("type") != "null"]
        if len(rest) == 1:
            del prop["anyOf"]
            prop.update(rest[0])
        prop.pop("default", None)


class TaskUpdate(BaseModel):
    """The body of ``PATCH /tasks/{id}``: any subset of the mutable fields.

    Only ``schedule_expr``, ``dedupe_key``, ``concurrency_key``, ``timeout_seconds``,
    ``event_filter``, ``condition``, ``cooldown_seconds``, ``quiet_hours``, ``budgets`` and
    ``worker_pool`` may be set to null; for the rest an omitted field is unchanged and null
    is rejected.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_only_listed_nullable)

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    schedule_kind: ScheduleKind | None = None
    schedule_expr: str | None = Field(default=None, max_length=4000)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    payload: PayloadJson | None = None
    priority: StrictInt | None = Field(default=None, ge=1, le=9)
    dedupe_key: str | None = Field(default=None, min_length=1, max_length=200)
    dedupe_window_seconds: StrictInt | None = Field(default=None, ge=0, le=366 * 86400)
    max_retries: StrictInt | None = Field(default=None, ge=0, le=100)
    backoff_strategy: BackoffStrategy | None = None
    concurrency_key: str | None = Field(default=None, min_length=1, max_length=200)
    concurrency_limit: StrictInt | None = Field(default=None, ge=1, le=10_000)
    overlap_policy: OverlapPolicy | None = None
    misfire_policy: MisfirePolicy | None = None
    jitter_seconds: StrictInt | None = Field(default=None, ge=0, le=86400)
    timeout_seconds: StrictInt | None = Field(default=None, ge=1, le=7 * 86400)
    event_filter: str | None = Field(default=None, min_length=1, max_length=1000)
    event_sources: list[uuid.UUID] | None = Field(default=None, max_length=50)
    condition: dict[str, Any] | None = None
    cooldown_seconds: StrictInt | None = Field(default=None, ge=1, le=366 * 86400)
    quiet_hours: QuietHoursRule | None = None
    budgets: BudgetsRule | None = None
    worker_pool: str | None = Field(default=None, pattern=WORKER_POOL)

    @field_validator(
        "title",
        "description",
        "schedule_kind",
        "timezone",
        "payload",
        "priority",
        "dedupe_window_seconds",
        "max_retries",
        "backoff_strategy",
        "concurrency_limit",
        "overlap_policy",
        "misfire_policy",
        "jitter_seconds",
        "event_sources",
    )
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null (omit the field to leave it unchanged)")
        return value


class TimePoint(BaseModel):
    """An instant shown both in UTC and in the task's zone."""

    utc: datetime
    local: datetime


class TaskPublic(BaseModel):
    """A task as callers see it."""

    id: uuid.UUID
    title: str
    description: str
    created_by: uuid.UUID
    schedule_kind: ScheduleKind
    schedule_expr: str | None
    timezone: str
    # Loose on purpose: reading a task must never fail on a payload stored under an older
    # version of the language, and pydantic cannot share a recursive model's definitions
    # between request and response schemas (it would publish Pipeline-Input/-Output copies).
    payload: dict[str, Any] = Field(
        description="The pipeline as stored: params and steps (its schema: GET "
        "/schemas/pipeline, or the MCP resource ordinaut://schemas/pipeline)."
    )
    status: TaskStatus
    priority: int
    dedupe_key: str | None
    dedupe_window_seconds: int
    max_retries: int
    backoff_strategy: BackoffStrategy
    concurrency_key: str | None
    concurrency_limit: int
    overlap_policy: OverlapPolicy
    misfire_policy: MisfirePolicy
    jitter_seconds: int
    timeout_seconds: int | None
    event_filter: str | None = None
    event_sources: list[uuid.UUID] = Field(default_factory=list)
    condition: dict[str, Any] | None = None
    cooldown_seconds: int | None = None
    next_check_at: datetime | None = None
    quiet_hours: dict[str, Any] | None = None
    budgets: dict[str, Any] | None = None
    worker_pool: str | None = None
    next_run_at: datetime | None
    next_run: TimePoint | None
    created_at: datetime
    updated_at: datetime


class SnoozeIn(BaseModel):
    """The body of ``POST /tasks/{id}/snooze``: exactly one of ``seconds`` or ``until``."""

    model_config = ConfigDict(extra="forbid")

    seconds: StrictInt | None = Field(default=None, ge=1, le=366 * 86400)
    until: datetime | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SnoozeIn:
        if (self.seconds is None) == (self.until is None):
            raise ValueError("give exactly one of seconds or until")
        if self.until is not None and self.until.tzinfo is None:
            raise ValueError("until needs a UTC offset, e.g. 2026-12-01T09:00:00+02:00")
        return self


class SkipIn(BaseModel):
    """The body of ``POST /tasks/{id}/skip_next``."""

    model_config = ConfigDict(extra="forbid")

    count: StrictInt = Field(default=1, ge=1, le=1000)


class RunNowAccepted(BaseModel):
    """The answer to ``POST /tasks/{id}/run_now``: the occurrence queued for now."""

    task_id: uuid.UUID
    scheduled_for: datetime
