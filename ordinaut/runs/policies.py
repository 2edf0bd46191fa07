"""The person's rules around each tool call of a run: quiet hours, budgets, rate limits.

Built once per run from what the claim read (the task's quiet hours, else its agent's; the
task's and the agent's budgets; the worker's ``ORDINAUT_RATE_LIMITS``). :meth:`RunPolicies.gate`
is a suspension gate (:mod:`ordinaut.runs.suspension`): it sees each tool step just before its
call, with the rendered arguments, and decides in this order:

1. **Quiet hours** — a step whose tool holds a silenced scope, inside a window:
   ``defer``: the run stops before it, ``deferred`` with ``resume_at`` = the end of the quiet
   period, holding no worker; it resumes from that step then. ``drop``: the step is recorded
   ``skipped`` with the reason, the run goes on. ``digest``: the first run of the task to
   reach that step for that end is the digest's *leader* (one ``INSERT … ON CONFLICT`` into
   ``digest_call`` decides, so two runs arriving together get one leader); it stops with
   ``{...its arguments, "items": [its arguments]}`` as the suspended input. Every later run
   of the task reaching the same step inside the same quiet period appends its arguments to
   the digest's ``items``, records its own step ``skipped`` ("merged into the digest call of
   run …") and goes on. At the end of the period the leader makes **one** call: its own
   arguments plus ``items``, every merged call's arguments, oldest first (at most
   :data:`MAX_DIGEST_ITEMS`; a run finding the digest full defers on its own). The tool
   must accept an ``items`` field.
2. **Rate limits and budgets**, in one transaction under advisory locks on every rule key and
   budget involved (so workers on any host decide one at a time): a rate limit whose window
   or concurrency is full defers the run (``deferred``, ``resume_at`` when the slot frees);
   a budget cap the call would pass fails it (``budget_exceeded``); otherwise the call is
   counted against both and goes ahead. A concurrency slot is held until the call returns
   (or, after a crash, until the call's timeout has passed).

Every decision is written on the run (``decisions``) with a ``task.run.policy`` event.
``policy.quiet_hours`` (a built-in tool) is answered here too. Steps served from an earlier
attempt's receipt make no call: no rule applies to them.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection, Engine

from ordinaut.config import Settings
from ordinaut.errors import BudgetExceeded, ConfigError, ToolError, ValidationError
from ordinaut.pipeline.executor import GateCheck, Suspension
from ordinaut.policy import quiet_hours as quiet
from ordinaut.policy import rate_limits
from ordinaut.policy.rate_limits import RateLimit
from ordinaut.runs.budgets import StepBudgets, decision
from ordinaut.store import queries
from ordinaut.tools.spec import ToolCall, ToolSpec
from ordinaut.vocabulary import OnQuiet, ResumeAction, RunStatus

Connect = Callable[[], AbstractContextManager[Connection]]
MAX_DIGEST_ITEMS = 100
SLOT_SLACK = timedelta(seconds=5)


@functools.lru_cache(maxsize=4)
def _parsed(text: str) -> tuple[RateLimit, ...]:
    try:
        return rate_limits.parse_rate_limits(text)
    except ValidationError as exc:
        raise ConfigError(f"{exc.field}: {exc.message}", field=exc.field) from None


def rate_limits_of(settings: Settings) -> tuple[RateLimit, ...]:
    """The shared rate limits of ``ORDINAUT_RATE_LIMITS`` (ConfigError naming the entry)."""
    return _parsed(settings.rate_limits)


class RunPolicies:
    """The rules of one run, asked around each tool call."""

    def __init__(
        self,
        engine: Engine,
        namespace: str,
        claimed: queries.ClaimedRun,
        connect: Connect,
        limits: tuple[RateLimit, ...] = (),
    ) -> None:
        self.engine, self.namespace, self.connect = engine, namespace, connect
        self.claimed = claimed
        self.run_id: uuid.UUID = claimed.id
        self.limits = limits
        self.quiet = quiet.parse_quiet_hours(claimed.quiet_hours) if claimed.quiet_hours else None
        policy = queries.TaskPolicies(
            claimed.task_id,
            claimed.created_by,
            claimed.quiet_hours,
            claimed.task_budgets,
            claimed.agent_budgets,
        )
        self.budgets = StepBudgets(engine, namespace, claimed.id, policy)
        self.dropped: dict[str, str] = {}  # step path → why it is skipped
        self.held: dict[str, list[int]] = {}  # step path → its rate_call slots
        self.leads: set[str] = set()  # step paths whose digest this run leads

    # --- the gate ---------------------------------------------------------------------

    def gate(self, check: GateCheck, now: datetime) -> Suspension | None:
        """Quiet hours, then rate limits and budgets (see the module docstring)."""
        state = self.silenced(check.tool, now)
        if state is not None and self.quiet is not None:
            return self._quiet(check, state, self.quiet, now)
        return self._take(check, now)

    def _quiet(
        self, check: GateCheck, state: quiet.QuietState, rule: quiet.QuietHours, now: datetime
    ) -> Suspension | None:
        text = quiet.describe(rule, state)
        path = check.step_path
        assert state.until is not None
        if rule.on_quiet is OnQuiet.DROP:
            why = f"dropped by {text}"
            self.dropped[path] = why
            self.note(decision("dropped", "quiet_hours", why, now, step=path))
            return None
        step_input: Any = check.args
        if rule.on_quiet is OnQuiet.DIGEST:
            with self.engine.begin() as conn:
                leader = queries.join_digest(
                    conn,
                    task_id=self.claimed.task_id,
                    step_path=path,
                    until=state.until,
                    run_id=self.run_id,
                    args=check.args,
                    max_items=MAX_DIGEST_ITEMS,
                )
                if leader is not None and leader != self.run_id:
                    why = f"merged into the digest call of run {leader} ({text})"
                    self.dropped[path] = why
                    queries.add_decision(
                        conn,
                        self.run_id,
                        decision("digested", "quiet_hours", why, now, step=path, into=str(leader)),
                    )
                    return None
            if leader == self.run_id:  # it leads (a full digest: it defers on its own)
                own = dict(check.args) if isinstance(check.args, Mapping) else {}
                step_input = {**own, "items": [check.args]}
                self.leads.add(path)
        why = f"deferred by {text}"
        self.note(
            decision("deferred", "quiet_hours", why, now, step=path, until=state.until.isoformat())
        )
        return Suspension(
            RunStatus.DEFERRED,
            path,
            step_input,
            why,
            resume_at=state.until,
            on_resume=ResumeAction.RESUME,
        )

    def _take(self, check: GateCheck, now: datetime) -> Suspension | None:
        """Rate limits and budgets in one locked transaction: defer, refuse, or count."""
        agent = str(self.claimed.created_by)
        rules = rate_limits.matching(self.limits, check.tool.address, check.tool.server)
        if not rules and not self.budgets.found:
            return None
        keys = {(f"{self.namespace}:rate", rule.key(agent)) for rule in rules}
        keys |= self.budgets.lock_keys(self.namespace)
        path = check.step_path
        refusal: dict[str, Any] | None = None
        with self.engine.begin() as conn:
            queries.lock_keys(conn, keys)
            waits = []
            for rule in rules:
                key = rule.key(agent)
                queries.prune_rate_calls(conn, key, before=now - rate_limits.WINDOW, now=now)
                starts, held = queries.rate_calls(
                    conn, key, since=now - rate_limits.WINDOW, now=now
                )
                wait = rate_limits.decide(rule, starts, held, now)
                if wait is not None:
                    waits.append(wait)
            if waits:
                wait = max(waits, key=lambda w: w.until)
                why = f"deferred by {wait.reason} until {wait.until.isoformat()}"
                queries.add_decision(
                    conn,
                    self.run_id,
                    decision(
                        "deferred", "rate_limit", why, now, step=path, until=wait.until.isoformat()
                    ),
                )
                return Suspension(RunStatus.DEFERRED, path, check.args, why, resume_at=wait.until)
            refusal = self.budgets.take_call(conn, check.tool.address, path, now)
            if refusal is not None:
                queries.add_decision(conn, self.run_id, refusal)
            elif rules:
                timeout = check.step.timeout_seconds or check.tool.timeout_seconds
                until = now + timedelta(seconds=timeout) + SLOT_SLACK
                self.held[path] = queries.insert_rate_calls(
                    conn,
                    [(r.key(agent), until if r.concurrent is not None else None) for r in rules],
                    run_id=self.run_id,
                    now=now,
                )
        if refusal is not None:
            raise BudgetExceeded(refusal["why"])
        return None

    # --- around the call --------------------------------------------------------------

    def silenced(self, tool: ToolSpec, now: datetime) -> quiet.QuietState | None:
        """The quiet state when ``tool`` is silenced at ``now``, else None."""
        if self.quiet is None or not self.quiet.silences(tool.scopes):
            return None
        state = quiet.quiet_at(self.quiet, now)
        return state if state.quiet else None

    def skip_reason(self, call: ToolCall) -> str | None:
        """Why this call is not made (dropped by quiet hours, merged into a digest), or None."""
        return self.dropped.pop(call.step_path, None)

    def call_args(self, call: ToolCall) -> Mapping[str, Any]:
        """The arguments to send: a digest's leader, resumed before its step, sends its own
        arguments plus ``items`` (every merged call's arguments); other calls their own."""
        claimed = self.claimed
        if (
            self.quiet is None
            or self.quiet.on_quiet is not OnQuiet.DIGEST
            or claimed.suspended_at is None
            or claimed.suspended_step != call.step_path
        ):
            return call.args
        with self.connect() as conn:
            items = queries.digest_items(conn, self.run_id, call.step_path)
        if items is None:
            return call.args
        self.leads.add(call.step_path)
        return {**call.args, "items": items}

    def after_call(self, call: ToolCall, output: Any, now: datetime) -> None:
        """Count the LLM tokens an ``llm.*`` answer reports; a digest's call closes it."""
        self.budgets.after_call(call.address, output, now)
        if call.step_path in self.leads:
            self.leads.discard(call.step_path)
            with self.connect() as conn:
                queries.close_digest(conn, self.run_id, call.step_path)

    def release(self, call: ToolCall) -> None:
        """The call returned: its concurrency slots are free."""
        ids = self.held.pop(call.step_path, [])
        if ids:
            with self.connect() as conn:
                queries.release_rate_calls(conn, ids)

    def quiet_answer(self, args: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        """The ``policy.quiet_hours`` tool: quiet now (or at ``at``), and when steps may run."""
        at = now
        if isinstance(args.get("at"), str):
            try:
                at = datetime.fromisoformat(args["at"])
            except ValueError:
                raise ToolError("at must be an ISO 8601 date-time", field="at") from None
            if at.tzinfo is None:
                raise ToolError("at needs a UTC offset", field="at")
        if self.quiet is None:
            return {"quiet": False, "next_allowed": at.isoformat()}
        state = quiet.quiet_at(self.quiet, at)
        answer: dict[str, Any] = {
            "quiet": state.quiet,
            "next_allowed": state.next_allowed.isoformat(),
        }
        if state.window is not None:
            answer["window"] = state.window.text
        return answer

    def note(self, entry: Mapping[str, Any]) -> None:
        """Write a decision on the run, with its ``task.run.policy`` event."""
        with self.connect() as conn:
            queries.add_decision(conn, self.run_id, entry)
