"""The tools for quiet hours and budgets (the API's ``policies`` routes), same names and checks."""

from __future__ import annotations

import uuid

from pydantic import Field

from ordinaut.mcp.schemas import NoArgs
from ordinaut.mcp.tool import McpTool
from ordinaut.service.auth import Principal
from ordinaut.service.facade import Service
from ordinaut.service.models import AgentPolicies, BudgetsReport, BudgetsRule, QuietHoursRule

_AGENT_ID = "The agent's id (your own: see the me resource or GET /me)."


class SetQuietHoursArgs(QuietHoursRule):
    """``agent_id`` plus the quiet-hours rule."""

    agent_id: uuid.UUID = Field(description=_AGENT_ID)


class SetBudgetsArgs(BudgetsRule):
    """``agent_id`` plus the budget rule."""

    agent_id: uuid.UUID = Field(description=_AGENT_ID)


def _quiet(svc: Service, p: Principal, a: SetQuietHoursArgs) -> AgentPolicies:
    return svc.set_quiet_hours(p, a.agent_id, QuietHoursRule(**a.model_dump(exclude={"agent_id"})))


def _budgets(svc: Service, p: Principal, a: SetBudgetsArgs) -> AgentPolicies:
    return svc.set_budgets(p, a.agent_id, BudgetsRule(**a.model_dump(exclude={"agent_id"})))


def _report(svc: Service, p: Principal, a: NoArgs) -> BudgetsReport:
    return svc.get_budgets(p)


POLICY_TOOLS = (
    McpTool(
        name="set_quiet_hours",
        title="Set an agent's quiet hours",
        description="""Set the quiet hours of an agent (yourself, or any agent with
agents:admin): steps whose tool has one of the given scopes (default notify) do not run
inside a window. on_quiet: defer (default; the run waits until the window ends), drop (the
step is skipped, the run goes on) or digest (deferred, and the calls of the same step deferred
to the same end are merged into one call). A task's own quiet_hours field overrides this.""",
        args=SetQuietHoursArgs,
        result=AgentPolicies,
        call=_quiet,
        example={
            "agent_id": "00000000-0000-0000-0000-000000000000",
            "tz": "Europe/Chisinau",
            "windows": ["22:00-08:00", "SA 00:00-24:00"],
            "on_quiet": "defer",
            "scopes": ["notify"],
        },
        idempotent=True,
    ),
    McpTool(
        name="set_budgets",
        title="Set an agent's budget",
        description="""Set an agent's budget (agents:admin): caps per local day (or month) in tz
over all its tasks: runs_per_day (runs past it are skipped, reason budget_exceeded),
tool_calls_per_day, llm_tokens_per_day and llm_tokens_per_month (a step past a cap is not
called and its run fails with budget_exceeded). Omitted caps are unlimited.""",
        args=SetBudgetsArgs,
        result=AgentPolicies,
        call=_budgets,
        example={
            "agent_id": "00000000-0000-0000-0000-000000000000",
            "tz": "Europe/Chisinau",
            "runs_per_day": 50,
            "tool_calls_per_day": 500,
        },
        idempotent=True,
    ),
    McpTool(
        name="get_budgets",
        title="Show budgets and usage",
        description="""Show your budget and your tasks' budgets with what each cap's current
period (local day or month) has used so far.""",
        args=NoArgs,
        result=BudgetsReport,
        call=_report,
        read_only=True,
        idempotent=True,
    ),
)
