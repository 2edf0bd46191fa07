"""Budgets at work: dispatch counts runs, the worker counts tool calls and LLM tokens.

The decisions are :func:`ordinaut.policy.budgets.check`; this module reads and writes the
usage around them. Each budget (a task's, its agent's) is guarded by a transaction-scoped
advisory lock (``<namespace>:budget``, subject id), held while its usage is read, decided on
and added to, so dispatchers and workers on any number of hosts never pass a cap together.

* **Runs** (:class:`RunBudgets`, in dispatch's transaction): a first attempt that would pass
  ``runs_per_day`` of its task or agent is recorded ``skipped`` with reason
  ``budget_exceeded: budget runs_per_day 50 of 50 (2026-12-02 Europe/Chisinau)``; a run
  that starts is counted in the same transaction that creates it.
* **Tool calls and tokens** (:class:`StepBudgets`, in the worker, before each call): a call
  that would pass ``tool_calls_per_day`` — or an ``llm.*`` call once a token cap is reached —
  is not made: :class:`~ordinaut.errors.BudgetExceeded` fails the run, never retried, and
  the decision is written on the run. A call is counted when it is allowed, before it is
  made (a crash after that counts a call that may not have happened: never an undercount);
  LLM tokens are added from the answer's reported ``usage`` right after the call.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from ordinaut.policy import budgets as rules
from ordinaut.policy.budgets import Budgets, Counter, Exceeded
from ordinaut.store import queries
from ordinaut.vocabulary import BudgetMetric

Subject = tuple[str, uuid.UUID, Budgets]  # ("task" | "agent", its id, its rule)


def decision(what: str, policy: str, why: str, now: datetime, **more: Any) -> dict[str, Any]:
    """A policy decision as written on a run and in its ``task.run.policy`` event."""
    return {"what": what, "policy": policy, "at": now.isoformat(), "why": why, **more}


def pool_decision(pool: str, namespace: str, now: datetime) -> dict[str, Any]:
    """The routing of a run to its worker pool's queue."""
    queue = f"{namespace}.runs.{pool}"
    return decision(
        "routed",
        "worker_pool",
        f"worker pool {pool}: waits for a worker of queue {queue}",
        now,
        queue=queue,
    )


def subjects(policy: queries.TaskPolicies, metrics: frozenset[BudgetMetric]) -> list[Subject]:
    """The task's and the agent's budgets that cap one of ``metrics``."""
    found: list[Subject] = []
    for kind, subject_id, raw in (
        ("task", policy.task_id, policy.task_budgets),
        ("agent", policy.agent_id, policy.agent_budgets),
    ):
        if raw:
            rule = rules.parse_budgets(raw)
            if metrics & rule.caps.keys():
                found.append((kind, subject_id, rule))
    return found


def _view(used: Mapping[queries.UsageKey, int], subject_id: uuid.UUID) -> dict[Counter, int]:
    return {Counter(c, p): n for (s, c, p), n in used.items() if s == subject_id}


def _keys(subject_id: uuid.UUID, rule: Budgets, counter: str, now: datetime) -> set[Any]:
    return {(subject_id, c.counter, c.period) for c in rules.counters(rule, counter, now).values()}


def _lock_keys(namespace: str, found: list[Subject]) -> set[tuple[str, str]]:
    return {(f"{namespace}:budget", str(subject_id)) for _, subject_id, _ in found}


RUN_METRICS = frozenset({BudgetMetric.RUNS_PER_DAY})
STEP_METRICS = frozenset(
    {
        BudgetMetric.TOOL_CALLS_PER_DAY,
        BudgetMetric.LLM_TOKENS_PER_DAY,
        BudgetMetric.LLM_TOKENS_PER_MONTH,
    }
)


@dataclass
class RunBudgets:
    """``runs_per_day`` for one dispatch batch: usage read once under the locks, counted
    per run decided, written back with the batch."""

    now: datetime
    by_task: dict[uuid.UUID, list[Subject]]
    used: dict[queries.UsageKey, int] = field(default_factory=dict)
    added: dict[queries.UsageKey, int] = field(default_factory=dict)
    decisions: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def of(cls, policies: Mapping[uuid.UUID, queries.TaskPolicies], now: datetime) -> RunBudgets:
        """The run budgets of the batch's tasks."""
        by_task = {tid: subjects(p, RUN_METRICS) for tid, p in policies.items()}
        return cls(now, {tid: found for tid, found in by_task.items() if found})

    def lock_keys(self, namespace: str) -> set[tuple[str, str]]:
        """Advisory lock keys of every budget the batch may count against."""
        return _lock_keys(namespace, [s for found in self.by_task.values() for s in found])

    def load(self, conn: Connection) -> None:
        """Read the usage (call with the locks held)."""
        keys: set[queries.UsageKey] = set()
        for found in self.by_task.values():
            for _, subject_id, rule in found:
                keys |= _keys(subject_id, rule, rules.RUNS, self.now)
        self.used = queries.usage(conn, keys)

    def take_run(self, row: queries.LeasedWork) -> str | None:
        """Count one run of ``row``'s task, or say which cap it would pass (counting nothing)."""
        found = self.by_task.get(row.task_id, [])
        for kind, subject_id, rule in found:
            exceeded = rules.check(rule, rules.RUNS, _view(self.used, subject_id), self.now)
            if exceeded is not None:
                why = f"{kind} {exceeded.reason}"
                self.decisions.setdefault(row.id, []).append(
                    decision("skipped", "budget", why, self.now, metric=exceeded.metric.value)
                )
                return why
        for _, subject_id, rule in found:
            for key in _keys(subject_id, rule, rules.RUNS, self.now):
                self.used[key] = self.used.get(key, 0) + 1
                self.added[key] = self.added.get(key, 0) + 1
        return None

    def save(self, conn: Connection) -> None:
        """Write the runs counted (in the batch's transaction)."""
        queries.add_usage(conn, self.added)


class StepBudgets:
    """Tool-call and token caps for one run, checked before each call."""

    def __init__(
        self,
        engine: Engine,
        namespace: str,
        run_id: uuid.UUID,
        policy: queries.TaskPolicies | None,
    ) -> None:
        self.engine, self.namespace, self.run_id = engine, namespace, run_id
        self.found = subjects(policy, STEP_METRICS) if policy is not None else []

    def lock_keys(self, namespace: str) -> set[tuple[str, str]]:
        """Advisory lock keys of the budgets this run's calls count against."""
        return _lock_keys(namespace, self.found)

    def take_call(
        self, conn: Connection, address: str, step_path: str, now: datetime
    ) -> dict[str, Any] | None:
        """Count one call on ``conn`` (locks held by the caller), or return the refusal's
        decision (counting nothing) if a cap says no."""
        if not self.found:
            return None
        llm = rules.is_llm(address)
        keys: set[queries.UsageKey] = set()
        for _, subject_id, rule in self.found:
            keys |= _keys(subject_id, rule, rules.TOOL_CALLS, now)
            if llm:
                keys |= _keys(subject_id, rule, rules.LLM_TOKENS, now)
        refused = self._refusal(queries.usage(conn, keys), llm, now)
        if refused is not None:
            why = f"step {step_path!r} not called: {refused[0]}"
            return decision("failed", "budget", why, now, step=step_path, metric=refused[1])
        calls: dict[queries.UsageKey, int] = {}
        for _, subject_id, rule in self.found:
            for key in _keys(subject_id, rule, rules.TOOL_CALLS, now):
                calls[key] = 1
        queries.add_usage(conn, calls)
        return None

    def _refusal(
        self, used: Mapping[queries.UsageKey, int], llm: bool, now: datetime
    ) -> tuple[str, str] | None:
        """(why, metric) of the first cap the call would pass, or None."""
        for kind, subject_id, rule in self.found:
            view = _view(used, subject_id)
            exceeded: Exceeded | None = rules.check(rule, rules.TOOL_CALLS, view, now)
            if exceeded is None and llm:
                exceeded = rules.check(rule, rules.LLM_TOKENS, view, now, adding=0)
            if exceeded is not None:
                return f"{kind} {exceeded.reason}", exceeded.metric.value
        return None

    def after_call(self, address: str, output: Any, now: datetime) -> None:
        """Add the tokens an ``llm.*`` answer reports to the token counters."""
        if not self.found or not rules.is_llm(address):
            return
        tokens = rules.tokens_used(output)
        if not tokens:
            return
        amounts: dict[queries.UsageKey, int] = {}
        for _, subject_id, rule in self.found:
            for key in _keys(subject_id, rule, rules.LLM_TOKENS, now):
                amounts[key] = tokens
        with self.engine.begin() as conn:
            queries.add_usage(conn, amounts)
