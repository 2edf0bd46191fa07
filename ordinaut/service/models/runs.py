"""Runs: a run, its steps, its policy decisions and the approval it waits for; pages of items."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ordinaut import limits
from ordinaut.service.models.common import TRUNCATED
from ordinaut.vocabulary import (
    ResumeAction,
    RunStatus,
    StepPart,
    StepStatus,
    Trigger,
)


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
