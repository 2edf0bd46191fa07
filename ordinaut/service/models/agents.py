"""Agents: their tokens, limits, pending changes and policies (quiet hours, budgets)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ordinaut.policy.agent_limits import AgentLimits
from ordinaut.vocabulary import (
    ChangeKind,
    ChangeStatus,
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


class AgentPolicies(BaseModel):
    """An agent's quiet hours and budget rules as stored (null: none)."""

    agent_id: uuid.UUID
    quiet_hours: dict[str, Any] | None = None
    budgets: dict[str, Any] | None = None


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
