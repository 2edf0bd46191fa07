"""Agents: create, list, rotate tokens, revoke (which stops their work); the bootstrap admin."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from ordinaut.errors import Conflict, NotFound, ValidationError
from ordinaut.events import webhooks
from ordinaut.service.audit import record
from ordinaut.service.auth import ADMIN_SCOPES, Principal, hash_token, new_token
from ordinaut.service.inputs import check_http_url
from ordinaut.service.models import (
    AgentCreate,
    AgentPublic,
    DeliveryPage,
    DeliveryPublic,
    WebhookIn,
)
from ordinaut.store import queries
from ordinaut.vocabulary import Scope

ADMIN_NAME = "admin"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_SCOPE = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")


@dataclass(frozen=True)
class NewAgent:
    """A created agent with its token (shown once)."""

    id: uuid.UUID
    name: str
    scopes: tuple[str, ...]
    token: str


def check_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    """Validate scope names (operation scopes and tool scopes like ``notify``)."""
    for i, scope in enumerate(scopes):
        if not isinstance(scope, str) or not _SCOPE.match(scope):
            raise ValidationError(
                f"invalid scope {scope!r}: lowercase letters, digits and _ . : - only",
                field=f"scopes[{i}]",
            )
    return tuple(dict.fromkeys(scopes))


def create_agent(
    conn: Connection,
    name: str,
    scopes: Sequence[str],
    *,
    actor: uuid.UUID | None = None,
    token: str | None = None,
) -> NewAgent:
    """Create an agent and return it with its bearer token."""
    if not _NAME.match(name):
        raise ValidationError(
            "agent name must be 1-64 characters: letters, digits, _ . @ -", field="name"
        )
    clean = check_scopes(scopes)
    token = token or new_token()
    if queries.agent_named(conn, name) is not None:
        raise Conflict(f"an agent named {name!r} already exists", field="name")
    agent_id = queries.insert_agent(conn, name, clean, hash_token(token))
    queries.insert_audit(
        conn,
        actor=actor or agent_id,
        action="agent.create",
        subject_id=agent_id,
        details={"after": {"name": name, "scopes": list(clean)}},
    )
    return NewAgent(agent_id, name, clean, token)


def ensure_admin(conn: Connection, token: str | None) -> NewAgent | None:
    """Make sure an admin agent exists; returns it (with token) only when just created.

    With ``token`` (ORDINAUT_ADMIN_TOKEN) the admin's token is set to it on every start, so
    automation can rely on it; without, a random token is made once and shown once.
    """
    row = queries.agent_named(conn, ADMIN_NAME)
    if row is None:
        return create_agent(conn, ADMIN_NAME, ADMIN_SCOPES, token=token)
    if token is not None and row.token_hash != hash_token(token):
        queries.set_agent_token(conn, row.id, hash_token(token), reinstate=True)
    return None


def _public(
    row: queries.Agent, token: str | None = None, webhook_secret: str | None = None
) -> AgentPublic:
    return AgentPublic(
        id=row.id,
        name=row.name,
        scopes=list(row.scopes),
        webhook_url=row.webhook_url,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        token=token,
        webhook_secret=webhook_secret,
    )


def _agent_row(conn: Connection, agent_id: uuid.UUID) -> queries.Agent:
    row = queries.get_agent(conn, agent_id)
    if row is None:
        raise NotFound(f"no agent {agent_id}", field="agent_id")
    return row


def add_agent(conn: Connection, principal: Principal, body: AgentCreate) -> AgentPublic:
    """Create an agent (agents:admin); the response carries its token, once."""
    principal.require(Scope.AGENTS_ADMIN)
    if body.webhook_url is not None:
        check_http_url(body.webhook_url, "webhook_url")
    made = create_agent(conn, body.name, body.scopes, actor=principal.agent_id)
    secret = None
    if body.webhook_url:
        secret = webhooks.new_secret()
        queries.set_webhook(conn, made.id, body.webhook_url, secret)
    return _public(_agent_row(conn, made.id), made.token, secret)


def set_webhook(
    conn: Connection, principal: Principal, agent_id: uuid.UUID, body: WebhookIn
) -> AgentPublic:
    """Set an agent's webhook URL with a new signing secret (shown in this response only),
    or remove it (null); itself, or any agent with agents:admin."""
    if agent_id != principal.agent_id:
        principal.require(Scope.AGENTS_ADMIN)
    row = _agent_row(conn, agent_id)
    if row.revoked_at is not None:
        raise Conflict("agent is revoked", field="agent_id")
    secret = None
    if body.webhook_url is not None:
        check_http_url(body.webhook_url, "webhook_url")
        secret = webhooks.new_secret()
    queries.set_webhook(conn, agent_id, body.webhook_url, secret)
    record(conn, principal, "agent.set_webhook", agent_id, details={"url": body.webhook_url})
    return _public(_agent_row(conn, agent_id), webhook_secret=secret)


def list_deliveries(
    conn: Connection,
    principal: Principal,
    agent_id: uuid.UUID,
    *,
    limit: int,
    after: str | None,
) -> DeliveryPage:
    """An agent's webhook deliveries, newest first (itself, or agents:admin)."""
    if agent_id != principal.agent_id:
        principal.require(Scope.AGENTS_ADMIN)
    _agent_row(conn, agent_id)
    before = None
    if after is not None:
        if not after.isdigit() or len(after) > 19:
            raise ValidationError("cursor must be a next_cursor this call returned", field="cursor")
        before = int(after)
    rows = queries.list_deliveries(conn, agent_id, before=before, limit=limit + 1)
    items = [DeliveryPublic.model_validate(dict(r._mapping)) for r in rows[:limit]]
    return DeliveryPage(items=items, next_cursor=str(items[-1].id) if len(rows) > limit else None)


def list_agents(conn: Connection, principal: Principal) -> list[AgentPublic]:
    """Every agent (agents:admin)."""
    principal.require(Scope.AGENTS_ADMIN)
    return [_public(r) for r in queries.list_agents(conn)]


def me(conn: Connection, principal: Principal) -> AgentPublic:
    """The calling agent."""
    return _public(_agent_row(conn, principal.agent_id))


def rotate_token(conn: Connection, principal: Principal, agent_id: uuid.UUID) -> AgentPublic:
    """A new token for an agent (itself, or any with agents:admin); the old one stops working."""
    if agent_id != principal.agent_id:
        principal.require(Scope.AGENTS_ADMIN)
    row = _agent_row(conn, agent_id)
    if row.revoked_at is not None:
        raise Conflict("agent is revoked", field="agent_id")
    token = new_token()
    queries.set_agent_token(conn, agent_id, hash_token(token))
    record(conn, principal, "agent.rotate_token", agent_id)
    return _public(row, token)


def revoke_agent(
    conn: Connection, principal: Principal, agent_id: uuid.UUID, *, now: datetime
) -> AgentPublic:
    """Revoke an agent for good and stop its work, in one transaction.

    Its token stops working; its active tasks are paused (each with an audit entry and a
    ``task.paused`` event) and its queued, waiting and running runs are canceled (a running
    one stops before its next step), all with the reason. Its tasks and history stay. A run
    claimed later for one of its tasks is refused before any step (see ``claim_run``).
    """
    principal.require(Scope.AGENTS_ADMIN)
    row = queries.get_agent(conn, agent_id, lock=True)  # orders us with concurrent claims
    if row is None:
        raise NotFound(f"no agent {agent_id}", field="agent_id")
    if row.revoked_at is not None:
        raise Conflict("agent is already revoked", field="agent_id")
    if agent_id == principal.agent_id:
        raise Conflict("an agent cannot revoke itself", field="agent_id")
    queries.revoke_agent(conn, agent_id)
    reason = queries.OWNER_REVOKED
    paused = queries.pause_tasks_of(
        conn, agent_id, actor=principal.agent_id, reason=reason, now=now
    )
    canceled = queries.cancel_runs_of(conn, agent_id, now=now, reason=reason)
    details = {"paused_tasks": len(paused), "canceled_runs": canceled}
    record(conn, principal, "agent.revoke", agent_id, details=details)
    queries.emit(conn, [("agent.revoked", {"agent_id": str(agent_id), **details})])
    return _public(_agent_row(conn, agent_id))
