"""/events, /schedules/preview, /agents, /me and /audit routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from ordinaut.api.deps import Caller, IdempotencyKey, Svc
from ordinaut.service.models import AgentCreate, AgentPublic, EventAccepted, EventIn

router = APIRouter()


@router.post(
    "/events",
    status_code=202,
    response_model=EventAccepted,
    tags=["events"],
    operation_id="publish_event",
)
def publish_event(
    body: EventIn, svc: Svc, caller: Caller, idempotency_key: IdempotencyKey = None
) -> EventAccepted:
    """Record an external event (``{"topic", "payload"}``) in the outbox."""
    return svc.publish_event(caller, body, idempotency_key=idempotency_key)


@router.get("/schedules/preview", tags=["schedules"], operation_id="preview_schedule")
def preview_schedule(
    svc: Svc,
    caller: Caller,
    kind: Literal["cron", "rrule", "once"],
    expr: Annotated[str, Query(min_length=1, max_length=4000)],
    tz: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    count: Annotated[int, Query(ge=1, le=1000)] = 10,
    after: datetime | None = None,
) -> dict[str, Any]:
    """The next ``count`` occurrences of any expression, in UTC and local time, with DST notes."""
    return svc.preview_schedule(caller, kind, expr, tz, count=count, after=after)


@router.post("/agents", status_code=201, response_model=AgentPublic, tags=["agents"])
def create_agent(body: AgentCreate, svc: Svc, caller: Caller) -> AgentPublic:
    """Create an agent (agents:admin); the token is in this response only."""
    return svc.create_agent(caller, body)


@router.get("/agents", response_model=list[AgentPublic], tags=["agents"])
def list_agents(svc: Svc, caller: Caller) -> list[AgentPublic]:
    """Every agent (agents:admin)."""
    return svc.list_agents(caller)


@router.post("/agents/{agent_id}/rotate_token", response_model=AgentPublic, tags=["agents"])
def rotate_token(agent_id: uuid.UUID, svc: Svc, caller: Caller) -> AgentPublic:
    """Issue a new token; the old one stops working at once."""
    return svc.rotate_token(caller, agent_id)


@router.delete("/agents/{agent_id}", response_model=AgentPublic, tags=["agents"])
def revoke_agent(agent_id: uuid.UUID, svc: Svc, caller: Caller) -> AgentPublic:
    """Revoke an agent (agents:admin); its tasks and history stay."""
    return svc.revoke_agent(caller, agent_id)


@router.get("/me", response_model=AgentPublic, tags=["agents"])
def me(svc: Svc, caller: Caller) -> AgentPublic:
    """The agent this token belongs to."""
    return svc.me(caller)


@router.get("/audit", tags=["audit"])
def audit(
    svc: Svc,
    caller: Caller,
    subject_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Audit entries, newest first (agents:admin)."""
    return svc.list_audit(caller, subject_id=subject_id, limit=limit)
