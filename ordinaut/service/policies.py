"""Quiet hours and budgets: set them on agents and tasks, and show usage against the caps.

Rules are validated by :mod:`ordinaut.policy` (errors name the field) and stored
normalised (defaults filled in), so the worker and dispatch read what was checked. Setting
a rule writes an audit entry and an ``agent.policy`` event in the same transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.engine import Connection

from ordinaut.errors import NotFound
from ordinaut.policy import budgets as budget_rules
from ordinaut.policy.budgets import parse_budgets
from ordinaut.policy.quiet_hours import parse_quiet_hours
from ordinaut.service.audit import record
from ordinaut.service.auth import Principal
from ordinaut.service.models import (
    AgentPolicies,
    BudgetsReport,
    BudgetsRule,
    BudgetUse,
    BudgetView,
    QuietHoursRule,
)
from ordinaut.store import queries
from ordinaut.vocabulary import Scope

MAX_TASK_BUDGETS_SHOWN = 100


def _rule(body: BaseModel) -> dict[str, Any]:
    return body.model_dump(mode="json", exclude_none=True)


def quiet_hours_json(body: QuietHoursRule | None, field: str, tz: str) -> dict[str, Any] | None:
    """A quiet-hours rule checked and normalised for storage (None stays None)."""
    if body is None:
        return None
    return parse_quiet_hours(_rule(body), field=field, default_tz=tz).to_json()


def budgets_json(body: BudgetsRule | None, field: str, tz: str) -> dict[str, Any] | None:
    """A budget rule checked and normalised for storage (None stays None)."""
    if body is None:
        return None
    return parse_budgets(_rule(body), field=field, default_tz=tz).to_json()


def _policies(conn: Connection, agent_id: uuid.UUID) -> AgentPolicies:
    quiet, budgets = queries.agent_policies(conn, agent_id)
    return AgentPolicies(agent_id=agent_id, quiet_hours=quiet, budgets=budgets)


def _set(
    conn: Connection,
    principal: Principal,
    agent_id: uuid.UUID,
    column: str,
    rule: dict[str, Any],
) -> AgentPolicies:
    before = _policies(conn, agent_id)
    if not queries.set_agent_policy(conn, agent_id, column, rule):
        raise NotFound(f"no agent {agent_id}", field="agent_id")
    record(
        conn,
        principal,
        f"agent.{column}",
        agent_id,
        details={"before": getattr(before, column), "after": rule},
    )
    queries.emit(
        conn, [("agent.policy", {"agent_id": str(agent_id), "policy": column, "rule": rule})]
    )
    return _policies(conn, agent_id)


def set_quiet_hours(
    conn: Connection,
    principal: Principal,
    agent_id: uuid.UUID,
    body: QuietHoursRule,
    *,
    default_tz: str,
) -> AgentPolicies:
    """An agent's default quiet hours (itself with tasks:write, or agents:admin)."""
    if agent_id != principal.agent_id:
        principal.require(Scope.AGENTS_ADMIN)
    principal.require(Scope.TASKS_WRITE)
    rule = quiet_hours_json(body, "", default_tz)
    assert rule is not None
    return _set(conn, principal, agent_id, "quiet_hours", rule)


def set_budgets(
    conn: Connection,
    principal: Principal,
    agent_id: uuid.UUID,
    body: BudgetsRule,
    *,
    default_tz: str,
) -> AgentPolicies:
    """An agent's budget (agents:admin only: an agent does not set its own allowance)."""
    principal.require(Scope.AGENTS_ADMIN)
    rule = budgets_json(body, "", default_tz)
    assert rule is not None
    return _set(conn, principal, agent_id, "budgets", rule)


def _view(
    subject: str,
    subject_id: uuid.UUID,
    title: str | None,
    raw: dict[str, Any],
    used: dict[queries.UsageKey, int],
    now: datetime,
) -> BudgetView:
    rule = parse_budgets(raw)
    caps = []
    for metric, cap in rule.caps.items():
        counter, _ = budget_rules.METRICS[metric]
        period = budget_rules.period_of(rule, metric, now)
        caps.append(
            BudgetUse(
                metric=metric.value,
                cap=cap,
                used=used.get((subject_id, counter, period), 0),
                period=period,
            )
        )
    return BudgetView(subject=subject, id=subject_id, title=title, tz=rule.tz.key, caps=caps)


def _keys(subject_id: uuid.UUID, raw: dict[str, Any], now: datetime) -> list[queries.UsageKey]:
    rule = parse_budgets(raw)
    return [
        (subject_id, budget_rules.METRICS[m][0], budget_rules.period_of(rule, m, now))
        for m in rule.caps
    ]


def get_budgets(conn: Connection, principal: Principal, *, now: datetime) -> BudgetsReport:
    """The caller's budget and its tasks' budgets (newest 100), with usage in each period."""
    principal.require(Scope.TASKS_READ)
    _, agent_rule = queries.agent_policies(conn, principal.agent_id)
    tasks = queries.task_budgets_of(conn, principal.agent_id, MAX_TASK_BUDGETS_SHOWN + 1)
    shown = tasks[:MAX_TASK_BUDGETS_SHOWN]
    keys: list[queries.UsageKey] = []
    if agent_rule:
        keys += _keys(principal.agent_id, agent_rule, now)
    for task_id, _, rule in shown:
        keys += _keys(task_id, rule, now)
    used = queries.usage(conn, keys)
    views = []
    if agent_rule:
        views.append(_view("agent", principal.agent_id, principal.name, agent_rule, used, now))
    views += [_view("task", tid, title, rule, used, now) for tid, title, rule in shown]
    return BudgetsReport(
        agent_id=principal.agent_id,
        at=now,
        budgets=views,
        truncated=len(tasks) > MAX_TASK_BUDGETS_SHOWN,
    )
