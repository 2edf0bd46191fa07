"""/changes: creates and updates of tasks that wait for a person's approval; and
/agents/{id}/limits, the limits that send them there."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from ordinaut.api.deps import Caller, Svc
from ordinaut.policy.agent_limits import AgentLimits
from ordinaut.service.models import AgentLimitsPublic, ChangePublic, Decision, Page

router = APIRouter(tags=["changes"])


@router.get("/changes", response_model=Page, operation_id="list_changes")
def list_changes(
    svc: Svc,
    caller: Caller,
    status: str | None = "pending",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> Page:
    """Changes oldest first (pending by default), each with its diff: every agent's for a
    holder of changes:approve or runs:approve, else the caller's own."""
    items, nxt = svc.list_changes(caller, status=status, limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=nxt)


@router.post(
    "/changes/{change_id}/approve", response_model=ChangePublic, operation_id="approve_change"
)
def approve_change(
    change_id: uuid.UUID, svc: Svc, caller: Caller, body: Decision | None = None
) -> ChangePublic:
    """Apply a pending change as its agent, now (validated again); changes:approve or
    runs:approve, and never the agent that proposed it."""
    return svc.approve_change(caller, change_id, body.comment if body else None)


@router.post(
    "/changes/{change_id}/reject", response_model=ChangePublic, operation_id="reject_change"
)
def reject_change(
    change_id: uuid.UUID, svc: Svc, caller: Caller, body: Decision | None = None
) -> ChangePublic:
    """Refuse a pending change: nothing is applied."""
    return svc.reject_change(caller, change_id, body.comment if body else None)


@router.get("/agents/{agent_id}/limits", response_model=AgentLimitsPublic, tags=["agents"])
def get_agent_limits(agent_id: uuid.UUID, svc: Svc, caller: Caller) -> AgentLimitsPublic:
    """An agent's limits (agents:admin, or the agent itself)."""
    return svc.get_agent_limits(caller, agent_id)


@router.put("/agents/{agent_id}/limits", response_model=AgentLimitsPublic, tags=["agents"])
def set_agent_limits(
    agent_id: uuid.UUID, body: AgentLimits, svc: Svc, caller: Caller
) -> AgentLimitsPublic:
    """Replace an agent's limits (agents:admin): max_active_tasks, min_interval_seconds,
    allowed_tools, each {"value", "on_exceed": "reject" | "approve"}."""
    return svc.set_agent_limits(caller, agent_id, body)
