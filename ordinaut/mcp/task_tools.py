"""The task tools: create, list, read, change, run now, snooze, skip, pause, resume, cancel.

Each is a thin adapter over the ``Service`` method of the same name; arguments are the
``/tasks`` API's (body fields plus ``task_id``). create_task and run_now are keyed: a
request's ``_meta["ordinaut/idempotency_key"]`` plays the API's ``Idempotency-Key`` header.
Descriptions are written for a language model: what the tool does, when to use it, and an
example argument set.
"""

from __future__ import annotations

from typing import Any

from ordinaut.mcp.schemas import (
    ListTasksArgs,
    SkipArgs,
    SnoozeArgs,
    TaskPage,
    TaskRef,
    UpdateTaskArgs,
)
from ordinaut.mcp.tool import McpTool
from ordinaut.service.auth import Principal
from ordinaut.service.facade import Service
from ordinaut.service.models import (
    RunNowAccepted,
    SkipIn,
    SnoozeIn,
    TaskCreate,
    TaskPublic,
    TaskUpdate,
)

WEEKDAYS_0830 = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8;BYMINUTE=30"
_TASK_ID = "00000000-0000-4000-8000-000000000000"

TASK_FIELD_HELP = {
    "title": "Short name shown in lists, e.g. 'Morning briefing'.",
    "description": "Free text: what the task is for.",
    "schedule_kind": (
        "rrule (RFC 5545 recurrence), cron (5 fields), once (a single instant), event (fires "
        "when publish_event sends a matching topic) or condition (checks a tool on a cadence "
        "and fires when its 'when' turns true)."
    ),
    "schedule_expr": (
        "For rrule e.g. 'FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8;BYMINUTE=30' (weekdays "
        "08:30); for cron e.g. '30 8 * * 1-5'; for once an ISO 8601 time such as "
        "'2026-12-01T09:00:00+02:00' (no offset = the task's timezone); for event a topic "
        "pattern such as 'email.received', 'calendar.*' (* = one segment) or 'alerts.#' "
        "(# = any segments); for condition the check cadence as cron or RRULE. Times are "
        "read in the task's timezone."
    ),
    "timezone": "IANA zone the schedule is read in, e.g. 'Europe/Chisinau' (default: server's).",
    "payload": (
        'What to run: {"params": {...}, "pipeline": [step, ...]}. A step is {"id": '
        '"greet", "uses": "<tool address from list_tools>", "with": {arguments}, '
        '"save_as": "name"}; arguments may use ${params.x} or ${steps.name.field}. '
        "Loops: uses pipeline.foreach. The full language is the Pipeline schema here."
    ),
    "dedupe_key": "Occurrences with the same key inside dedupe_window_seconds run once.",
    "dedupe_window_seconds": "Window for dedupe_key, in seconds (0 = off).",
    "max_retries": "Retries of a failed run (0-100, default 3).",
    "backoff_strategy": "Delay between retries.",
    "concurrency_key": "Runs sharing this key are limited to concurrency_limit at once.",
    "concurrency_limit": "How many runs with the same concurrency_key may run at once.",
    "overlap_policy": "When a run is still going at the next occurrence: allow, skip or queue.",
    "misfire_policy": "Occurrences missed while down: run_once (default), skip or run_all.",
    "jitter_seconds": "Spread the start by up to this many seconds (stable per task).",
    "timeout_seconds": "Fail a run that takes longer than this.",
}

_CREATE_EXAMPLE: dict[str, Any] = {
    "title": "Morning briefing",
    "description": "Weekday greeting at 08:30",
    "schedule_kind": "rrule",
    "schedule_expr": WEEKDAYS_0830,
    "timezone": "Europe/Chisinau",
    "payload": {
        "pipeline": [{"id": "greet", "uses": "builtin.echo", "with": {"message": "Good morning"}}]
    },
}


def _create(svc: Service, p: Principal, a: TaskCreate, key: str | None) -> TaskPublic:
    return svc.create_task(p, a, idempotency_key=key)


def _run_now(svc: Service, p: Principal, a: TaskRef, key: str | None) -> RunNowAccepted:
    return svc.run_now(p, a.task_id, idempotency_key=key)


def _list(svc: Service, p: Principal, a: ListTasksArgs) -> TaskPage:
    items, nxt = svc.list_tasks(p, status=a.status, limit=a.limit, cursor=a.cursor)
    return TaskPage(items=items, next_cursor=nxt)


def _update(svc: Service, p: Principal, a: UpdateTaskArgs) -> TaskPublic:
    body = TaskUpdate.model_validate(a.model_dump(exclude={"task_id"}, exclude_unset=True))
    return svc.update_task(p, a.task_id, body)


def _snooze(svc: Service, p: Principal, a: SnoozeArgs) -> TaskPublic:
    body = SnoozeIn.model_validate(a.model_dump(exclude={"task_id"}, exclude_unset=True))
    return svc.snooze_task(p, a.task_id, body)


def _skip(svc: Service, p: Principal, a: SkipArgs) -> TaskPublic:
    return svc.skip_next(p, a.task_id, SkipIn(count=a.count))


TASK_TOOLS = (
    McpTool(
        name="create_task",
        title="Create a scheduled task",
        description="""Create a task: a schedule plus a pipeline of tool calls that Ordinaut runs at
every occurrence, exactly on time, acting as you (this agent). Use it when the user wants
something done later or repeatedly ("every weekday at 08:30 ...", "tomorrow at 9 remind me").
Confirm the times with preview_schedule first, and find tool addresses with list_tools.
The payload's schema (steps, pipeline.foreach loops, ${...} templates, limits) is in this
tool's input schema and in the resource ordinaut://schemas/pipeline. Everything is
validated before anything is stored: a bad RRULE, cron, timezone or pipeline returns an
error naming the field. Returns the task, with next_run in UTC and local time.""",
        args=TaskCreate,
        result=TaskPublic,
        call=_create,
        example=_CREATE_EXAMPLE,
        help=TASK_FIELD_HELP,
        hide=frozenset({"created_by"}),
        keyed=True,
    ),
    McpTool(
        name="list_tasks",
        title="List tasks",
        description="""List your tasks, newest first, a page at a time (every agent's tasks for an
admin token). Use it to find a task's id or to review what is scheduled. Filter by status
(active, paused, canceled, completed); pass next_cursor back as cursor for the next page.""",
        args=ListTasksArgs,
        result=TaskPage,
        call=_list,
        example={"status": "active", "limit": 20},
        read_only=True,
    ),
    McpTool(
        name="get_task",
        title="Show a task",
        description="""Show one task: its schedule, pipeline, status and next run (UTC and in the
task's timezone). Use it to check a task after changing it.""",
        args=TaskRef,
        result=TaskPublic,
        call=lambda svc, p, a: svc.get_task(p, a.task_id),
        example={"task_id": _TASK_ID},
        read_only=True,
    ),
    McpTool(
        name="update_task",
        title="Change a task",
        description="""Change any subset of a task's fields (title, schedule_kind, schedule_expr,
timezone, payload, priority, retries, ...); give only what changes. A schedule change
recomputes the next run from now. Fields have the same meaning as in create_task. To stop or
pause a task use cancel_task or pause_task instead.""",
        args=UpdateTaskArgs,
        result=TaskPublic,
        call=_update,
        example={"task_id": _TASK_ID, "schedule_expr": "FREQ=DAILY;BYHOUR=9;BYMINUTE=0"},
        help=TASK_FIELD_HELP,
        idempotent=True,
    ),
    McpTool(
        name="run_now",
        title="Run a task now",
        description="""Run a task once, right now, in addition to its schedule (works for active,
paused and completed tasks, not canceled ones). The run is queued at once; follow it with
list_runs(task_id=...) and get_run until its status is succeeded or failed.""",
        args=TaskRef,
        result=RunNowAccepted,
        call=_run_now,
        example={"task_id": _TASK_ID},
        keyed=True,
    ),
    McpTool(
        name="snooze_task",
        title="Snooze a task's next run",
        description="""Move a task's next occurrence later: by `seconds`, or to the instant `until`
(ISO 8601 with offset). Give exactly one of them. Occurrences jumped over are recorded as
skipped runs; the schedule continues normally afterwards. Example: "not today, remind me in
an hour" -> seconds 3600.""",
        args=SnoozeArgs,
        result=TaskPublic,
        call=_snooze,
        example={"task_id": _TASK_ID, "seconds": 3600},
        help={
            "seconds": "Push the next occurrence this many seconds later.",
            "until": "Move the next occurrence to this instant (ISO 8601 with offset).",
        },
    ),
    McpTool(
        name="skip_next",
        title="Skip the next occurrences",
        description="""Drop the next `count` occurrences of a task (default 1), e.g. "skip
tomorrow's briefing". Each is recorded as a skipped run; the schedule then continues.""",
        args=SkipArgs,
        result=TaskPublic,
        call=_skip,
        example={"task_id": _TASK_ID, "count": 1},
        help={"count": "How many upcoming occurrences to drop (1-1000, default 1)."},
    ),
    McpTool(
        name="pause_task",
        title="Pause a task",
        description="""Pause an active task: no new runs start until resume_task (a run already
going finishes). Use it for "stop this for now"; use cancel_task to stop for good.""",
        args=TaskRef,
        result=TaskPublic,
        call=lambda svc, p, a: svc.pause_task(p, a.task_id),
        example={"task_id": _TASK_ID},
    ),
    McpTool(
        name="resume_task",
        title="Resume a paused task",
        description="""Resume a paused task from its schedule. Occurrences missed while paused
follow the task's misfire_policy (run_once by default: one catch-up run).""",
        args=TaskRef,
        result=TaskPublic,
        call=lambda svc, p, a: svc.resume_task(p, a.task_id),
        example={"task_id": _TASK_ID},
    ),
    McpTool(
        name="cancel_task",
        title="Cancel a task for good",
        description="""Cancel a task permanently: its schedule stops, queued runs are canceled and
a running run stops between steps. History stays visible. This cannot be undone (create a
new task instead), so confirm with the user first.""",
        args=TaskRef,
        result=TaskPublic,
        call=lambda svc, p, a: svc.cancel_task(p, a.task_id),
        example={"task_id": _TASK_ID},
        destructive=True,
    ),
)
