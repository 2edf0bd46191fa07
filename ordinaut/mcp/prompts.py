"""The ``schedule_task`` prompt: turn a natural-language request into a confirmed task.

It takes the user's request (and optionally their time zone) and gives the model a short
procedure: pick the schedule kind and expression, preview it, confirm with the user, find
the tools, then create the task. Pure text; no I/O.
"""

from __future__ import annotations

import mcp.types as types
from mcp.shared.exceptions import MCPError

from ordinaut.mcp.task_tools import WEEKDAYS_0830

NAME = "schedule_task"

PROMPT = types.Prompt(
    name=NAME,
    title="Schedule a task from a request",
    description="Turn a natural-language request ('every weekday at 8:30 send me the news') "
    "into an Ordinaut task, confirming the schedule with the user first.",
    arguments=[
        types.PromptArgument(
            name="request", description="What the user asked for, in their words.", required=True
        ),
        types.PromptArgument(
            name="timezone",
            description="The user's IANA time zone, e.g. Europe/Chisinau (optional).",
            required=False,
        ),
    ],
)

_STEPS = """Turn this request into an Ordinaut task.

Request: {request}
Time zone: {timezone}

1. Choose the schedule:
   - repeating at wall-clock times -> schedule_kind "rrule" (RFC 5545), e.g. weekdays at
     08:30 is "{weekdays}",
     every day at 07:00 is "FREQ=DAILY;BYHOUR=7;BYMINUTE=0",
     the 1st of each month at 09:00 is "FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=9;BYMINUTE=0";
   - cron is also accepted ("30 8 * * 1-5");
   - a single time -> "once" with an ISO 8601 time ("2026-12-01T09:00:00", read in the
     task's time zone);
   - "when X happens" -> "event" with a topic pattern ("email.received", "calendar.*"),
     fired by publish_event; the pipeline reads ${event.payload.field};
   - "when something becomes true" (a price drops, a site is down) -> "condition": the
     cadence in schedule_expr and condition {"uses": tool, "with": {...}, "when": JMESPath};
     it fires once each time the check turns true.
2. Call preview_schedule with that kind, expression and time zone, and show the user the
   next few times (local time) and any daylight-saving notes. Ask them to confirm.
3. Call list_tools to find the tools the task needs, and build the payload:
   {"pipeline": [{"id": "step1", "uses": "<address>", "with": {...}, "save_as": "out"}]}.
   Later steps can use earlier outputs as ${steps.out.field}.
4. Call create_task with title, schedule_kind, schedule_expr, timezone and payload. Report
   the task id and its next run. If a tool returns an error, fix the field it names and
   retry; do not guess ids, list them with list_tasks.
"""


def render(name: str, arguments: dict[str, str] | None) -> types.GetPromptResult:
    """Prompt ``name`` filled with ``arguments``; MCPError for another name or no ``request``."""
    if name != NAME:
        raise MCPError(types.INVALID_PARAMS, f"unknown prompt {name!r}; prompts/list shows them")
    args = arguments or {}
    request = args.get("request", "").strip()
    if not request:
        raise MCPError(types.INVALID_PARAMS, "the schedule_task prompt needs 'request'")
    tz = args.get("timezone", "").strip() or "the server's default (ask the user if unsure)"
    text = (
        _STEPS.replace("{weekdays}", WEEKDAYS_0830)
        .replace("{timezone}", tz)
        .replace("{request}", request)  # last: the user's text is never re-read
    )
    return types.GetPromptResult(
        description=PROMPT.description,
        messages=[
            types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))
        ],
    )
