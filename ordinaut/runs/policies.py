"""The person's rules around each tool call of a run: quiet hours, budgets, rate limits.

Built once per run from what the claim read (the task's quiet hours, else its agent's; the
task's and the agent's budgets) and asked before and after each tool call by
:mod:`ordinaut.runs.execute`:

* ``policy.quiet_hours`` (a built-in tool) is answered here: ``{"quiet", "next_allowed"}``
  (and ``window`` when quiet) from :func:`ordinaut.policy.quiet_hours.quiet_at`;
* a step whose tool holds a silenced scope, inside a window, with ``on_quiet: drop`` is not
  called: :class:`~ordinaut.pipeline.executor.StepDropped` records it ``skipped`` with the
  reason and the run goes on; the decision is written on the run (and as an event);
* budgets: :class:`~ordinaut.runs.budgets.StepBudgets`.

Cached steps (served from an earlier attempt's receipt) make no call, so no rule applies.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from ordinaut.errors import ToolError
from ordinaut.pipeline.executor import StepDropped
from ordinaut.policy import quiet_hours as quiet
from ordinaut.runs.budgets import StepBudgets, decision
from ordinaut.store import queries
from ordinaut.tools.spec import ToolCall, ToolSpec
from ordinaut.vocabulary import OnQuiet

Connect = Callable[[], AbstractContextManager[Connection]]


class RunPolicies:
    """The rules of one run, asked around each tool call."""

    def __init__(
        self,
        engine: Engine,
        namespace: str,
        claimed: queries.ClaimedRun,
        connect: Connect,
    ) -> None:
        self.run_id: uuid.UUID = claimed.id
        self.connect = connect
        self.quiet = quiet.parse_quiet_hours(claimed.quiet_hours) if claimed.quiet_hours else None
        policy = queries.TaskPolicies(
            claimed.task_id,
            claimed.created_by,
            claimed.quiet_hours,
            claimed.task_budgets,
            claimed.agent_budgets,
        )
        self.budgets = StepBudgets(engine, namespace, claimed.id, policy)

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

    def silenced(self, tool: ToolSpec, now: datetime) -> quiet.QuietState | None:
        """The quiet state when ``tool`` is silenced at ``now``, else None."""
        if self.quiet is None or not self.quiet.silences(tool.scopes):
            return None
        state = quiet.quiet_at(self.quiet, now)
        return state if state.quiet else None

    def before_call(self, call: ToolCall, tool: ToolSpec, now: datetime) -> None:
        """Drop a silenced step (``on_quiet: drop``), then count it against the budgets."""
        state = self.silenced(tool, now)
        if state is not None and self.quiet is not None and self.quiet.on_quiet is OnQuiet.DROP:
            why = f"dropped by {quiet.describe(self.quiet, state)}"
            self.note(decision("dropped", "quiet_hours", why, now, step=call.step_path))
            raise StepDropped(why)
        self.budgets.before_call(call.address, call.step_path, now)

    def after_call(self, call: ToolCall, output: Any, now: datetime) -> None:
        """Count the LLM tokens an ``llm.*`` answer reports."""
        self.budgets.after_call(call.address, output, now)

    def note(self, entry: Mapping[str, Any]) -> None:
        """Write a decision on the run, with its ``task.run.policy`` event."""
        with self.connect() as conn:
            queries.add_decision(conn, self.run_id, entry)
