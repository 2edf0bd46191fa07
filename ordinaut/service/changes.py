"""Agent limits and the changes a person approves.

An agent's limits (:mod:`ordinaut.policy.agent_limits`) are checked when it creates a task
or changes one's schedule or pipeline, after the request itself was validated. A limit
crossed with ``on_exceed: "reject"`` fails the request (422, ``field`` ``limits.<name>``);
with ``"approve"`` (and none crossed with reject) the request is not applied: it is kept as
a pending change (:func:`gate_create`, :func:`gate_update`) with a diff — old and new
fields, the schedule in words and its next 10 fire times before and after — and the caller
gets 202 with it. A holder of ``changes:approve`` (or ``runs:approve``), never the agent that
proposed it, approves it (:func:`decide_change`): the request is then applied as that agent,
as if it had been made at that moment — validated again, limits checked again (those with
"approve" count as approved) — and audited naming both agents; or rejects it, which changes
nothing but the change's status.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Row

from ordinaut.errors import Conflict, Forbidden, NotFound, ValidationError
from ordinaut.pipeline.validate import validate_payload
from ordinaut.policy.agent_limits import AgentLimits, Crossed, Proposal, crossed
from ordinaut.scheduling.recurrence import ensure_not_past, parse_schedule
from ordinaut.scheduling.words import in_words, shortest_gap
from ordinaut.service import cursor
from ordinaut.service.audit import record
from ordinaut.service.auth import Principal
from ordinaut.service.models import (
    AgentLimitsPublic,
    ChangePublic,
    TaskCreate,
    TaskPublic,
    TaskUpdate,
)
from ordinaut.service.task_ops import owned_task, update_task
from ordinaut.service.tasks import check_pipeline, create_task, reject_untriggered
from ordinaut.store import queries
from ordinaut.tools.builtin import FOREACH
from ordinaut.tools.registry import tools_for_payload
from ordinaut.vocabulary import ChangeKind, ChangeStatus, OnExceed, Scope, TaskStatus, holds

MAX_PENDING_PER_AGENT = 100
NEXT_FIRES = 10
_SCHEDULE_FIELDS = ("schedule_kind", "schedule_expr", "timezone")


# --- limits -------------------------------------------------------------------------------


def _limits_of(conn: Connection, agent_id: uuid.UUID) -> AgentLimits | None:
    found = queries.get_agent(conn, agent_id)
    if found is None or found.limits is None:
        return None
    return AgentLimits.model_validate(found.limits)


def get_limits(conn: Connection, principal: Principal, agent_id: uuid.UUID) -> AgentLimitsPublic:
    """An agent's limits (agents:admin, or the agent itself)."""
    if principal.agent_id != agent_id:
        principal.require(Scope.AGENTS_ADMIN)
    if queries.get_agent(conn, agent_id) is None:
        raise NotFound(f"no agent {agent_id}", field="agent_id")
    return AgentLimitsPublic(agent_id=agent_id, limits=_limits_of(conn, agent_id) or AgentLimits())


def set_limits(
    conn: Connection, principal: Principal, agent_id: uuid.UUID, limits: AgentLimits
) -> AgentLimitsPublic:
    """Replace an agent's limits (agents:admin); they apply to its next creates and updates."""
    principal.require(Scope.AGENTS_ADMIN)
    before = queries.get_agent(conn, agent_id, lock=True)
    if before is None:
        raise NotFound(f"no agent {agent_id}", field="agent_id")
    value = limits.model_dump(mode="json", exclude_none=True)
    queries.set_agent_limits(conn, agent_id, value or None)
    record(
        conn,
        principal,
        "agent.limits",
        agent_id,
        details={"before": before.limits, "after": value, "agent": before.name},
    )
    return AgentLimitsPublic(agent_id=agent_id, limits=limits)


def _addresses(conn: Connection, payload: Any) -> list[str]:
    pipeline = validate_payload(payload, tools_for_payload(conn, payload))
    return [step.uses for step in pipeline.walk() if step.uses != FOREACH]


def _verdict(found: list[Crossed]) -> list[Crossed]:
    """The limits crossed when all say "approve"; a ValidationError naming the first one that
    says "reject"."""
    for one in found:
        if one.on_exceed is OnExceed.REJECT:
            raise ValidationError(f"{one.limit}: {one.message}", field=f"limits.{one.limit}")
    return found


def _create_crossed(
    conn: Connection, agent_id: uuid.UUID, body: TaskCreate, *, now: datetime, default_tz: str
) -> list[Crossed]:
    """The limits creating ``body`` as ``agent_id`` crosses (after validating the request)."""
    limits = _limits_of(conn, agent_id)
    if limits is None:
        return []
    reject_untriggered(body.schedule_kind)
    schedule = parse_schedule(
        body.schedule_kind, body.schedule_expr, body.timezone or default_tz, created_at=now
    )
    ensure_not_past(schedule, now)
    proposal = Proposal(
        active_tasks=queries.count_active_tasks(conn, agent_id) + 1,
        shortest_gap=shortest_gap(schedule, now),
        addresses=_addresses(conn, body.payload),
    )
    return crossed(limits, proposal)


def _update_crossed(
    conn: Connection, agent_id: uuid.UUID, row: Row[Any], body: TaskUpdate, *, now: datetime
) -> list[Crossed]:
    """The limits of ``agent_id`` that changing task ``row`` with ``body`` crosses (after
    validating the request)."""
    limits = _limits_of(conn, agent_id)
    changes = body.model_dump(exclude_unset=True)
    if limits is None or not changes:
        return []
    reject_untriggered(body.schedule_kind)
    gap = None
    if changes.keys() & set(_SCHEDULE_FIELDS) and row.status == TaskStatus.ACTIVE:
        schedule = parse_schedule(
            changes.get("schedule_kind", row.schedule_kind),
            changes.get("schedule_expr", row.schedule_expr),
            changes.get("timezone", row.timezone),
            created_at=row.created_at,
        )
        ensure_not_past(schedule, now)
        gap = shortest_gap(schedule, now)
    addresses = _addresses(conn, changes["payload"]) if "payload" in changes else None
    return crossed(limits, Proposal(shortest_gap=gap, addresses=addresses))


# --- proposing ------------------------------------------------------------------------------


def gate_create(
    conn: Connection,
    principal: Principal,
    body: TaskCreate,
    *,
    now: datetime,
    default_tz: str,
    idempotency_key: str | None = None,
) -> ChangePublic | None:
    """None when creating ``body`` crosses none of the caller's limits; the pending change
    when it crosses only limits with on_exceed "approve"; 422 naming a "reject" limit."""
    principal.require(Scope.TASKS_WRITE)
    if idempotency_key is not None:
        earlier = queries.change_by_key(conn, principal.agent_id, idempotency_key)
        if earlier is not None:
            return _public(earlier)
        if queries.idempotency_known(conn, principal.agent_id, idempotency_key):
            return None  # a retry of a create that was applied: replayed, not checked again
    found = _verdict(
        _create_crossed(conn, principal.agent_id, body, now=now, default_tz=default_tz)
    )
    if not found:
        return None
    check_pipeline(conn, principal, body.payload)
    request = body.model_dump(mode="json", exclude_unset=True, exclude={"created_by"})
    tz = body.timezone or default_tz
    after = _schedule_side(body.schedule_kind, body.schedule_expr, tz, now, now=now)
    diff = {
        "fields": [{"field": k, "old": None, "new": v} for k, v in request.items()],
        "schedule": {"before": None, "after": after},
    }
    return _propose(
        conn,
        principal,
        ChangeKind.CREATE_TASK,
        None,
        request,
        diff,
        found,
        now=now,
        key=idempotency_key,
    )


def gate_update(
    conn: Connection, principal: Principal, task_id: uuid.UUID, body: TaskUpdate, *, now: datetime
) -> ChangePublic | None:
    """Like :func:`gate_create`, for a change of task ``task_id`` (the caller's limits)."""
    row = owned_task(conn, principal, task_id)
    found = _verdict(_update_crossed(conn, principal.agent_id, row, body, now=now))
    if not found:
        return None
    if body.payload is not None:
        check_pipeline(conn, principal, body.payload)
    request = body.model_dump(mode="json", exclude_unset=True)
    old = _plain_row(row)
    fields = [
        {"field": k, "old": old.get(k), "new": v} for k, v in request.items() if old.get(k) != v
    ]
    new = {f: request.get(f, getattr(row, f)) for f in _SCHEDULE_FIELDS}
    diff = {
        "fields": fields,
        "schedule": {
            "before": _schedule_side(
                row.schedule_kind, row.schedule_expr, row.timezone, row.created_at, now=now
            ),
            "after": _schedule_side(
                new["schedule_kind"],
                new["schedule_expr"],
                new["timezone"],
                row.created_at,
                now=now,
            ),
        },
    }
    return _propose(
        conn, principal, ChangeKind.UPDATE_TASK, task_id, request, diff, found, now=now, key=None
    )


def _plain_row(row: Row[Any]) -> dict[str, Any]:
    return {
        k: (v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, uuid.UUID) else v)
        for k, v in row._mapping.items()
    }


def _schedule_side(
    kind: str, expr: str | None, tz: str, created_at: datetime, *, now: datetime
) -> dict[str, Any]:
    """A schedule as the diff shows it: in words, with its next fire times after ``now``."""
    schedule = parse_schedule(kind, expr, tz, created_at=created_at)
    return {
        "schedule_kind": str(kind),
        "schedule_expr": expr,
        "timezone": tz,
        "in_words": in_words(kind, expr, tz),
        "next": [o.utc.isoformat() for o in schedule.occurrences(now, NEXT_FIRES)],
    }


def _propose(
    conn: Connection,
    principal: Principal,
    kind: ChangeKind,
    task_id: uuid.UUID | None,
    request: dict[str, Any],
    diff: dict[str, Any],
    found: list[Crossed],
    *,
    now: datetime,
    key: str | None,
) -> ChangePublic:
    if queries.count_pending(conn, principal.agent_id) >= MAX_PENDING_PER_AGENT:
        raise Conflict(
            f"this agent already has {MAX_PENDING_PER_AGENT} changes waiting for approval",
            field="limits",
        )
    row = queries.insert_change(
        conn,
        {
            "agent_id": principal.agent_id,
            "kind": kind.value,
            "task_id": task_id,
            "body": request,
            "diff": diff,
            "exceeded": [{"limit": c.limit, "message": c.message} for c in found],
            "idempotency_key": key,
            "created_at": now,
        },
    )
    record(conn, principal, "change.propose", row.id, details={"kind": kind, "task_id": task_id})
    queries.emit(
        conn,
        [
            (
                "change.pending",
                {"change_id": str(row.id), "agent_id": str(principal.agent_id), "kind": kind},
            )
        ],
    )
    return _public(row)


def _public(row: Row[Any]) -> ChangePublic:
    return ChangePublic.model_validate(dict(row._mapping))


def pending_message(change: ChangePublic) -> str:
    """What the caller of a create or update is told when it became a pending change."""
    limits = ", ".join(e["limit"] for e in change.exceeded)
    return (
        f"not applied: it crosses this agent's {limits} limit (on_exceed: approve); it waits "
        f"for a person's approval as change {change.id} (GET /changes, list_changes)"
    )


# --- listing and deciding -------------------------------------------------------------------


def _approver(principal: Principal) -> bool:
    return holds(principal.scopes, Scope.CHANGES_APPROVE) or holds(
        principal.scopes, Scope.RUNS_APPROVE
    )


def list_changes(
    conn: Connection,
    principal: Principal,
    *,
    status: str | None = ChangeStatus.PENDING.value,
    limit: int = 50,
    after: str | None = None,
) -> tuple[list[ChangePublic], str | None]:
    """Changes oldest first (pending ones by default): every agent's for a holder of
    changes:approve or runs:approve, else the caller's own proposals (tasks:read)."""
    if not _approver(principal):
        principal.require(Scope.TASKS_READ)
    if status is not None and status not in set(ChangeStatus):
        names = ", ".join(ChangeStatus)
        raise ValidationError(f"status must be one of {names}", field="status")
    if not 1 <= limit <= 1000:
        raise ValidationError("limit must be between 1 and 1000", field="limit")
    rows = queries.list_changes(
        conn,
        agent_id=None if _approver(principal) else principal.agent_id,
        status=ChangeStatus(status) if status is not None else None,
        after=cursor.decode(after) if after is not None else None,
        limit=limit + 1,
    )
    page = [_public(r) for r in rows[:limit]]
    more = None
    if len(rows) > limit:
        more = cursor.encode(rows[limit - 1].created_at, rows[limit - 1].id)
    return page, more


def decide_change(
    conn: Connection,
    principal: Principal,
    change_id: uuid.UUID,
    *,
    approve: bool,
    now: datetime,
    default_tz: str,
    comment: str | None = None,
) -> ChangePublic:
    """Approve (apply it as its agent, now) or reject a pending change."""
    if not _approver(principal):
        raise Forbidden(
            f"this token lacks the scope '{Scope.CHANGES_APPROVE}' (or '{Scope.RUNS_APPROVE}')",
            field="scope",
        )
    row = queries.get_change(conn, change_id, lock=True)
    if row is None:
        raise NotFound(f"no change {change_id}", field="change_id")
    if row.status != ChangeStatus.PENDING:
        raise Conflict(f"change is already {row.status}", field="status")
    if row.agent_id == principal.agent_id:
        raise Forbidden("an agent cannot decide its own change", field="change_id")
    details = {
        "agent": row.agent_name,
        "agent_id": str(row.agent_id),
        "kind": row.kind,
        "decided_by": principal.name,
        "comment": comment,
    }
    task: TaskPublic | None = None
    if approve:
        task = _apply(conn, principal, row, now=now, default_tz=default_tz, comment=comment)
        details["task_id"] = str(task.id)
    status = ChangeStatus.APPROVED if approve else ChangeStatus.REJECTED
    queries.decide_change(
        conn,
        change_id,
        status=status,
        by=principal.agent_id,
        at=now,
        comment=comment,
        result_task_id=task.id if task is not None else None,
    )
    action = "approve" if approve else "reject"
    record(conn, principal, f"change.{action}", change_id, details=details)
    queries.emit(conn, [(f"change.{status.value}", {"change_id": str(change_id), **details})])
    found = queries.get_change(conn, change_id)
    assert found is not None
    return _public(found)


def _apply(
    conn: Connection,
    approver: Principal,
    row: Row[Any],
    *,
    now: datetime,
    default_tz: str,
    comment: str | None,
) -> TaskPublic:
    """Make the change's request as its agent, now: validated and limit-checked again."""
    agent = queries.get_agent(conn, row.agent_id)
    if agent is None or agent.revoked_at is not None:
        raise Conflict("the agent that proposed this change was revoked", field="agent_id")
    proposer = Principal(agent.id, agent.name, frozenset(agent.scopes))
    audit: Mapping[str, Any] = {
        "change_id": str(row.id),
        "approved_by": approver.name,
        "approved_by_id": str(approver.agent_id),
        "comment": comment,
    }
    if row.kind == ChangeKind.CREATE_TASK:
        body = TaskCreate.model_validate(row.body)
        _verdict(_create_crossed(conn, proposer.agent_id, body, now=now, default_tz=default_tz))
        return create_task(conn, proposer, body, now=now, default_tz=default_tz, audit=audit)
    update = TaskUpdate.model_validate(row.body)
    task_row = owned_task(conn, proposer, row.task_id)
    _verdict(_update_crossed(conn, proposer.agent_id, task_row, update, now=now))
    return update_task(conn, proposer, row.task_id, update, now=now, audit=audit)
