"""The run tools: list, show, cancel, approve and reject runs, and list what waits for
approval (the ``/runs`` and ``/approvals`` API's operations)."""

from __future__ import annotations

from ordinaut.mcp.schemas import (
    ApprovalPage,
    ListApprovalsArgs,
    ListRunsArgs,
    RunDecision,
    RunPage,
    RunRef,
    StepRef,
)
from ordinaut.mcp.tool import McpTool
from ordinaut.service.auth import Principal
from ordinaut.service.facade import Service
from ordinaut.service.models import RunPublic, StepData

_RUN_ID = "00000000-0000-4000-8000-000000000001"


def _approvals(svc: Service, p: Principal, a: ListApprovalsArgs) -> ApprovalPage:
    items, nxt = svc.list_approvals(p, limit=a.limit, cursor=a.cursor)
    return ApprovalPage(items=items, next_cursor=nxt)


def _list(svc: Service, p: Principal, a: ListRunsArgs) -> RunPage:
    items, nxt = svc.list_runs(
        p, task_id=a.task_id, status=a.status, limit=a.limit, cursor=a.cursor
    )
    return RunPage(items=items, next_cursor=nxt)


RUN_TOOLS = (
    McpTool(
        name="list_runs",
        title="List runs",
        description="""List runs (one per attempt of an occurrence), newest first: status
(queued, running, succeeded, failed, canceled, skipped, waiting_approval), trigger, times and
error (no output: get_run shows it). Use it after run_now, or to answer "did my briefing run
this morning?". Filter by task_id and status; pass next_cursor back as cursor for the next
page.""",
        args=ListRunsArgs,
        result=RunPage,
        call=_list,
        example={"task_id": "00000000-0000-4000-8000-000000000000", "limit": 5},
        read_only=True,
    ),
    McpTool(
        name="get_run",
        title="Show a run with its step receipts",
        description="""Show one run with the receipt of every pipeline step (input, output,
status, error, attempt, times). Use it to explain what a run did or why it failed. An input
or output over 64 KiB shows as {"truncated": true, "bytes": N, "preview": "..."}: fetch it
whole with get_step_data.""",
        args=RunRef,
        result=RunPublic,
        call=lambda svc, p, a: svc.get_run(p, a.run_id),
        example={"run_id": _RUN_ID},
        read_only=True,
    ),
    McpTool(
        name="get_step_data",
        title="Get a step's whole input or output",
        description="""Return the whole input (the rendered arguments) or output of one step of
a run, for a value get_run shows truncated. step_path is the step's path as get_run lists it
('fetch', or 'loop[2].send' inside a foreach).""",
        args=StepRef,
        result=StepData,
        call=lambda svc, p, a: svc.get_step_data(p, a.run_id, a.step_path, a.part),
        example={"run_id": _RUN_ID, "step_path": "fetch", "part": "output"},
        read_only=True,
    ),
    McpTool(
        name="cancel_run",
        title="Cancel a run",
        description="""Cancel one queued, waiting_approval or running run (a running one stops
between steps). The task and its schedule are unchanged; use cancel_task to stop the task.""",
        args=RunRef,
        result=RunPublic,
        call=lambda svc, p, a: svc.cancel_run(p, a.run_id),
        example={"run_id": _RUN_ID},
        destructive=True,
    ),
    McpTool(
        name="approve_run",
        title="Approve a run waiting for approval",
        description="""Let a run in status waiting_approval go on from the step it stopped
before (needs the runs:approve scope); earlier steps are not repeated. Find such runs with
list_approvals; show the user the step's rendered arguments (input) before approving. The
comment is kept in the audit log.""",
        args=RunDecision,
        result=RunPublic,
        call=lambda svc, p, a: svc.approve_run(p, a.run_id, a.comment),
        example={"run_id": _RUN_ID, "comment": "looks right"},
    ),
    McpTool(
        name="reject_run",
        title="Reject a run waiting for approval",
        description="""Refuse a run in status waiting_approval (needs the runs:approve scope); it
ends as canceled (the comment goes into its reason and the audit log) and the gated step and
everything after it never happen.""",
        args=RunDecision,
        result=RunPublic,
        call=lambda svc, p, a: svc.reject_run(p, a.run_id, a.comment),
        example={"run_id": _RUN_ID, "comment": "wrong recipient"},
        destructive=True,
    ),
    McpTool(
        name="list_approvals",
        title="List runs waiting for approval",
        description="""List the runs waiting for a person's approval that you may decide (needs
the runs:approve scope), oldest first: the task, the step the run stopped before, its rendered
arguments (input: exactly what the tool will be sent), why, and when on_timeout decides by
itself. Decide with approve_run or reject_run.""",
        args=ListApprovalsArgs,
        result=ApprovalPage,
        call=_approvals,
        example={"limit": 10},
        read_only=True,
    ),
)
