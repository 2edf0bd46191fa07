"""/events, /schedules/preview, /agents, /me and /audit routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from ordinaut.api.deps import Caller, IdempotencyKey, Svc
from ordinaut.api.event_stream import sse_response
from ordinaut.service.models import (
    AgentCreate,
    AgentPolicies,
    AgentPublic,
    BudgetsReport,
    BudgetsRule,
    DeliveryPage,
    EventAccepted,
    EventIn,
    EventPage,
    QuietHoursRule,
    WebhookIn,
)

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


@router.get("/events", response_model=EventPage, tags=["events"], operation_id="list_events")
def list_events(
    svc: Svc,
    caller: Caller,
    after: Annotated[str | None, Query(max_length=50)] = None,
    topic: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventPage:
    """Stream entries the caller may see, oldest first, after the cursor ``after``;
    ``topic`` is a pattern (``*`` one segment, ``#`` any) over the entry's topic."""
    return svc.list_events(caller, after=after, topic=topic, limit=limit)


@router.get(
    "/events/stream",
    tags=["events"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_events(
    request: Request,
    svc: Svc,
    caller: Caller,
    topic: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    since: Annotated[str | None, Query(max_length=50)] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=50)] = None,
) -> StreamingResponse:
    """Server-Sent Events of the stream the caller may see: ``id`` is the entry id (resume
    with ``Last-Event-ID`` or ``since``), ``event`` its topic, ``data`` the entry as JSON;
    a ``: heartbeat`` comment when nothing happened for a while."""
    return sse_response(request, svc, caller, after=last_event_id or since, topic=topic)


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


@router.put("/agents/{agent_id}/webhook", response_model=AgentPublic, tags=["agents"])
def set_webhook(agent_id: uuid.UUID, body: WebhookIn, svc: Svc, caller: Caller) -> AgentPublic:
    """Set the agent's webhook URL with a new signing secret (in this response only), or
    remove it with null."""
    return svc.set_webhook(caller, agent_id, body)


@router.get("/agents/{agent_id}/deliveries", response_model=DeliveryPage, tags=["agents"])
def list_deliveries(
    agent_id: uuid.UUID,
    svc: Svc,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> DeliveryPage:
    """The agent's webhook deliveries, newest first, each with every attempt."""
    return svc.list_deliveries(caller, agent_id, limit=limit, cursor=cursor)


@router.delete("/agents/{agent_id}", response_model=AgentPublic, tags=["agents"])
def revoke_agent(agent_id: uuid.UUID, svc: Svc, caller: Caller) -> AgentPublic:
    """Revoke an agent (agents:admin); its tasks and history stay."""
    return svc.revoke_agent(caller, agent_id)


@router.put(
    "/agents/{agent_id}/quiet_hours",
    response_model=AgentPolicies,
    tags=["policies"],
    operation_id="set_quiet_hours",
)
def set_quiet_hours(
    agent_id: uuid.UUID, body: QuietHoursRule, svc: Svc, caller: Caller
) -> AgentPolicies:
    """An agent's default quiet hours (itself, or agents:admin); a task's own override it."""
    return svc.set_quiet_hours(caller, agent_id, body)


@router.put(
    "/agents/{agent_id}/budgets",
    response_model=AgentPolicies,
    tags=["policies"],
    operation_id="set_budgets",
)
def set_budgets(agent_id: uuid.UUID, body: BudgetsRule, svc: Svc, caller: Caller) -> AgentPolicies:
    """An agent's budget: caps per local day or month over all its tasks (agents:admin)."""
    return svc.set_budgets(caller, agent_id, body)


@router.get("/budgets", response_model=BudgetsReport, tags=["policies"], operation_id="get_budgets")
def get_budgets(svc: Svc, caller: Caller) -> BudgetsReport:
    """The caller's budgets (its own and its tasks') with usage against each cap."""
    return svc.get_budgets(caller)


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
