"""The edge: Pydantic models for what callers send and receive (API, MCP and CLI alike)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from ordinaut import limits
from ordinaut.pipeline.schema import PayloadJson
from ordinaut.policy.agent_limits import AgentLimits
from ordinaut.vocabulary import (
    BackoffStrategy,
    ChangeKind,
    ChangeStatus,
    MisfirePolicy,
    OnQuiet,
    OverlapPolicy,
    ResumeAction,
    RunStatus,
    ScheduleKind,
    StepPart,
    StepStatus,
    TaskStatus,
    Trigger,
)

MAX_STEP_PATH = 1000  # characters of a step path in GET /runs/{id}/steps/{step_path}/{part}
TRUNCATED = (
    f"Shown inline up to {limits.INLINE_STEP_DATA_BYTES // 1024} KiB of JSON text; a larger "
    'value is {"truncated": true, "bytes": N, "preview": "<its first '
    f'{limits.PREVIEW_CHARS} characters>"}}: get it whole from '
    "GET /runs/{id}/steps/{step_path}/{input|output} (MCP: get_step_data)."
)


CONDITION_DOC = (
    'Condition tasks: {"uses": TOOL, "with": {ARGS}, "when": JMESPATH}. On each tick of '
    "schedule_expr (cron or RRULE) the tool is called with the arguments and the JMESPath "
    "expression judges its output; the pipeline runs only when the result turns from false "
    "to true (and not within cooldown_seconds of the last firing)."
)

WORKER_POOL = r"^[a-z0-9][a-z0-9_-]{0,39}$"
MAX_BUDGET = 10**12


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


class StepPublic(BaseModel):
    """The receipt of one pipeline step."""

    step_path: str
    step_id: str
    address: str
    status: StepStatus
    attempt: int
    input: Any = Field(description=TRUNCATED)
    output: Any = Field(description=TRUNCATED)
    error: str | None
    started_at: datetime
    finished_at: datetime


class RunSummary(BaseModel):
    """One attempt of one occurrence of a task, as lists show it: no output, no steps."""

    id: uuid.UUID
    task_id: uuid.UUID
    status: RunStatus
    trigger: Trigger
    attempt: int
    scheduled_for: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    reason: str | None
    created_at: datetime


class RunPublic(RunSummary):
    """One attempt of one occurrence of a task, with its output and step receipts."""

    output: Any = Field(default=None, description=TRUNCATED)
    suspended_at: datetime | None = Field(
        default=None, description="When the run last stopped before a step (see suspended_step)."
    )
    suspended_step: str | None = Field(
        default=None,
        description="The step the run stopped before (waiting_approval: the step to approve).",
    )
    suspended_input: Any = Field(
        default=None,
        description="That step's rendered arguments: exactly what the tool will be sent "
        f"(over {limits.INLINE_STEP_DATA_BYTES // 1024} KiB of JSON text: the truncation "
        "marker, as for output).",
    )
    suspend_reason: str | None = Field(default=None, description="Why the run stopped there.")
    resume_at: datetime | None = Field(
        default=None,
        description="When resume_action happens by itself (an approval's timeout); null: "
        "only when someone decides.",
    )
    resume_action: ResumeAction | None = Field(
        default=None,
        description="What happens at resume_at: approve or resume (the run goes on from the "
        "step), reject (it is canceled).",
    )
    approved_steps: list[str] = Field(
        default_factory=list, description="Steps whose approval this run was given."
    )
    decided_by: uuid.UUID | None = Field(
        default=None,
        description="The agent whose approval made the pending resume due (the audit log "
        "has every decision, with its comment).",
    )
    steps: list[StepPublic] | None = None
    worker_pool: str | None = None
    decisions: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Policy decisions about this run, oldest first: what, at, why (quiet "
        "hours, budgets, rate limits, worker pool)",
    )


class Decision(BaseModel):
    """The body of ``POST /runs/{id}/approve|reject`` (and of a change's): an optional note
    kept in the audit log (and, for a reject, in the run's reason)."""

    model_config = ConfigDict(extra="forbid")

    comment: str | None = Field(
        default=None, max_length=1000, description="Why; kept in the audit log."
    )


class ApprovalPublic(BaseModel):
    """A run stopped before a step that waits for a person's approval."""

    run_id: uuid.UUID
    task_id: uuid.UUID
    task_title: str
    attempt: int
    scheduled_for: datetime
    waiting_since: datetime = Field(description="When the run stopped before the step.")
    step: str | None = Field(description="The step to approve (its path).")
    input: Any = Field(
        description="The step's rendered arguments: exactly what the tool will be sent "
        f"(over {limits.INLINE_STEP_DATA_BYTES // 1024} KiB: the truncation marker; get_run "
        "shows the same)."
    )
    reason: str | None
    timeout_at: datetime | None = Field(
        description="When on_timeout decides by itself; null: the run waits for a person."
    )
    on_timeout: ResumeAction | None = Field(
        description="What happens at timeout_at: reject (the run is canceled) or approve."
    )


class ChangePublic(BaseModel):
    """A create or update of a task that crossed one of its agent's limits and waits for a
    person (``status`` pending), or was decided."""

    id: uuid.UUID
    agent_id: uuid.UUID
    agent_name: str
    kind: ChangeKind
    task_id: uuid.UUID | None = Field(description="The task an update_task change changes.")
    status: ChangeStatus
    body: dict[str, Any] = Field(description="The request as the agent made it.")
    diff: dict[str, Any] = Field(
        description="fields: [{field, old, new}]; schedule: {before, after}, each with the "
        "schedule in words and its next 10 fire times (before is null for a new task)."
    )
    exceeded: list[dict[str, Any]] = Field(description="The limits it crosses: {limit, message}.")
    created_at: datetime
    decided_at: datetime | None = None
    decided_by: uuid.UUID | None = None
    comment: str | None = None
    result_task_id: uuid.UUID | None = Field(
        default=None, description="The task an approved change created or changed."
    )


class AgentLimitsPublic(BaseModel):
    """An agent's limits (``GET|PUT /agents/{id}/limits``)."""

    agent_id: uuid.UUID
    limits: AgentLimits


class StepData(BaseModel):
    """The whole input or output of one step of a run."""

    run_id: uuid.UUID
    step_path: str
    part: StepPart
    attempt: int
    bytes: int = Field(description="Size of the value as JSON text (0 when there is none).")
    value: Any


class Page(BaseModel):
    """A page of results with the cursor for the next one."""

    items: list[Any]
    next_cursor: str | None = None


class AgentCreate(BaseModel):
    """The body of ``POST /agents``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    scopes: list[str] = Field(default_factory=list, max_length=100)
    webhook_url: str | None = Field(default=None, max_length=2000)


class AgentPublic(BaseModel):
    """An agent; ``token`` is present only in the response that creates or rotates it."""

    id: uuid.UUID
    name: str
    scopes: list[str]
    webhook_url: str | None = None
    created_at: datetime
    revoked_at: datetime | None = None
    token: str | None = None
    webhook_secret: str | None = Field(
        default=None,
        description="The key webhook deliveries are signed with (HMAC-SHA256); present only "
        "in the response that creates the agent with a webhook_url or sets a new webhook.",
    )


class WebhookIn(BaseModel):
    """The body of ``PUT /agents/{id}/webhook``: a new URL (null removes the webhook)."""

    model_config = ConfigDict(extra="forbid")

    webhook_url: str | None = Field(max_length=2000)


class DeliveryPublic(BaseModel):
    """One webhook delivery: an event sent to an agent's webhook, with every attempt."""

    id: int
    outbox_id: int
    topic: str
    status: str = Field(description="pending (to be tried or retried), delivered or failed.")
    attempts: int
    attempt_log: list[dict[str, Any]] = Field(
        description="Each attempt: {attempt, at, status_code, error, ms}."
    )
    next_attempt_at: datetime
    created_at: datetime
    finished_at: datetime | None


class DeliveryPage(BaseModel):
    """A page of an agent's webhook deliveries, newest first."""

    items: list[DeliveryPublic]
    next_cursor: str | None = None


class EventIn(BaseModel):
    """The body of ``POST /events``."""

    model_config = ConfigDict(extra="forbid")

    topic: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*$",
        description="Dot-separated segments of A-Z a-z 0-9 _ : - (e.g. email.received); "
        "event tasks match it with their schedule_expr pattern.",
    )
    payload: dict[str, Any] = Field(default_factory=dict)


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


class CheckPublic(BaseModel):
    """One check of a condition task: its result and why it did or did not fire."""

    id: int
    task_id: uuid.UUID
    scheduled_for: datetime
    checked_at: datetime
    result: bool | None = Field(description="The when expression's verdict (null: it failed).")
    fired: bool
    reason: str
    output: Any = Field(default=None, description="The tool's output (up to 64 KiB).")
    error: str | None = None


class CheckPage(BaseModel):
    """A page of a condition task's checks, newest first."""

    items: list[CheckPublic]
    next_cursor: str | None = None


class EventPage(BaseModel):
    """A page of the event stream (``GET /events``): oldest first."""

    items: list[dict[str, Any]] = Field(
        description="Stream entries: {id, outbox_id, topic, payload, at} (README: the stream "
        "entry format)."
    )
    next_cursor: str | None = Field(
        description="Pass as after= to continue (also when this page is short or empty)."
    )


class EventAccepted(BaseModel):
    """The answer to ``POST /events``."""

    id: uuid.UUID
    topic: str
    accepted_at: datetime


class RunNowAccepted(BaseModel):
    """The answer to ``POST /tasks/{id}/run_now``: the occurrence queued for now."""

    task_id: uuid.UUID
    scheduled_for: datetime


class BudgetUse(BaseModel):
    """One cap and what its period has used so far."""

    metric: str
    cap: int
    used: int
    period: str


class BudgetView(BaseModel):
    """A budget rule (an agent's or a task's) with its usage now."""

    subject: str = Field(description="agent or task")
    id: uuid.UUID
    title: str | None = None
    tz: str
    caps: list[BudgetUse]


class BudgetsReport(BaseModel):
    """``GET /budgets``: the caller's budgets and usage against each cap."""

    agent_id: uuid.UUID
    at: datetime
    budgets: list[BudgetView]
    truncated: bool = Field(
        default=False, description="More tasks have budgets than are shown (the newest are)"
    )


class AgentPolicies(BaseModel):
    """An agent's quiet hours and budget rules as stored (null: none)."""

    agent_id: uuid.UUID
    quiet_hours: dict[str, Any] | None = None
    budgets: dict[str, Any] | None = None
