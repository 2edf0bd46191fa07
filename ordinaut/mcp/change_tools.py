"""The change tools: list, approve and reject the task changes that wait for a person (the
``/changes`` API's operations)."""

from __future__ import annotations

from ordinaut.mcp.schemas import ChangeDecision, ChangePage, ListChangesArgs
from ordinaut.mcp.tool import McpTool
from ordinaut.service.auth import Principal
from ordinaut.service.facade import Service
from ordinaut.service.models import ChangePublic

_CHANGE_ID = "00000000-0000-4000-8000-000000000002"


def _list(svc: Service, p: Principal, a: ListChangesArgs) -> ChangePage:
    status = a.status.value if a.status is not None else None
    items, nxt = svc.list_changes(p, status=status, limit=a.limit, cursor=a.cursor)
    return ChangePage(items=items, next_cursor=nxt)


CHANGE_TOOLS = (
    McpTool(
        name="list_changes",
        title="List task changes waiting for approval",
        description="""List creates and updates of tasks that crossed an agent's limits
(max_active_tasks, min_interval_seconds, allowed_tools with on_exceed "approve") and wait for
a person, oldest first. Each has a diff: old and new fields, the schedule in words and its
next 10 fire times before and after. A holder of changes:approve or runs:approve sees every
agent's; others see their own. When create_task or update_task answers change_pending, the
change is here.""",
        args=ListChangesArgs,
        result=ChangePage,
        call=_list,
        example={"status": "pending", "limit": 10},
        read_only=True,
    ),
    McpTool(
        name="approve_change",
        title="Approve a pending task change",
        description="""Apply a pending change as the agent that proposed it, as if it were made
now (validated again; needs changes:approve or runs:approve, and an agent never approves its
own change). Show the user the diff (list_changes) first. The comment is kept in the audit
log, which names both agents.""",
        args=ChangeDecision,
        result=ChangePublic,
        call=lambda svc, p, a: svc.approve_change(p, a.change_id, a.comment),
        example={"change_id": _CHANGE_ID, "comment": "fine for this week"},
    ),
    McpTool(
        name="reject_change",
        title="Reject a pending task change",
        description="""Refuse a pending change (needs changes:approve or runs:approve): nothing
of it is applied; the comment is kept in the audit log.""",
        args=ChangeDecision,
        result=ChangePublic,
        call=lambda svc, p, a: svc.reject_change(p, a.change_id, a.comment),
        example={"change_id": _CHANGE_ID, "comment": "too often"},
        destructive=True,
    ),
)
