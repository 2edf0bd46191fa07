"""The tools for events, schedule previews and the tool catalog (the API's ``misc`` routes).

``list_tools`` shows whatever ``Service.list_tools`` returns: each entry is read by attribute
or key (``address``, ``transport``, ``description``, ``input_schema``, ``output_schema``,
``scopes``, ``timeout_seconds``, and for ``tools:admin`` ``endpoint``, ``server``,
``remote_name``, ``auth``), so the catalog's own types may grow without this changing.
Secrets never appear: catalog entries only name them.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from pydantic import BaseModel

from ordinaut.mcp.schemas import (
    CatalogTool,
    EventsArgs,
    NoArgs,
    PreviewArgs,
    SchedulePreview,
    ToolCatalog,
)
from ordinaut.mcp.task_tools import WEEKDAYS_0830
from ordinaut.mcp.tool import McpTool
from ordinaut.service.auth import Principal
from ordinaut.service.facade import Service
from ordinaut.service.models import EventAccepted, EventIn, EventPage


def _preview(svc: Service, p: Principal, a: PreviewArgs) -> Any:
    return svc.preview_schedule(p, a.kind, a.expr, a.tz, count=a.count, after=a.after)


def _plain(value: Any) -> Any:
    """Frozen containers, models and enums as plain JSON-ready values."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, BaseModel):
        return _plain(value.model_dump())
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [_plain(v) for v in value]
    return value


def _get(entry: Any, name: str) -> Any:
    return entry.get(name) if isinstance(entry, Mapping) else getattr(entry, name, None)


def catalog_entry(entry: Any) -> CatalogTool:
    """One catalog entry as callers see it."""
    fields = {name: _plain(_get(entry, name)) for name in CatalogTool.model_fields}
    return CatalogTool.model_validate({k: v for k, v in fields.items() if v is not None})


def _publish(svc: Service, p: Principal, a: EventIn, key: str | None) -> EventAccepted:
    return svc.publish_event(p, a, idempotency_key=key)


def _events(svc: Service, p: Principal, a: EventsArgs) -> EventPage:
    return svc.list_events(p, after=a.after, topic=a.topic, limit=a.limit)


def _catalog(svc: Service, p: Principal, a: NoArgs) -> ToolCatalog:
    return ToolCatalog(tools=[catalog_entry(t) for t in svc.list_tools(p)])


MISC_TOOLS = (
    McpTool(
        name="publish_event",
        title="Publish an event",
        description="""Publish an external event (needs the events:publish scope). Tasks whose
schedule_kind is event and whose schedule_expr matches the topic run with the payload
available to their pipeline as ${event.payload...}. Use it to tell Ordinaut that something
happened ("the user got home", "an invoice arrived").""",
        args=EventIn,
        result=EventAccepted,
        call=_publish,
        keyed=True,
        example={"topic": "email.received", "payload": {"from": "alice@example.com"}},
        help={
            "topic": "Dot-separated segments of letters, digits and _ : - (e.g. 'email.received').",
            "payload": "Any JSON object (up to 64 KiB).",
        },
    ),
    McpTool(
        name="list_events",
        title="Read the event feed",
        description="""Read what happened, oldest first: task and run changes of this
agent's tasks (task.created, task.run.started, task.run.succeeded, task.run.failed, ...)
and the external events it published (event.external.<topic>); agents:admin sees all. Pass
the answer's next_cursor as after to get only newer events next time.""",
        args=EventsArgs,
        result=EventPage,
        call=_events,
        example={"topic": "task.run.*", "limit": 20},
        read_only=True,
        idempotent=True,
    ),
    McpTool(
        name="preview_schedule",
        title="Preview a schedule",
        description=f"""List the next occurrences of a schedule expression without creating
anything, in UTC and in local time, with notes where daylight-saving time shifts or skips a
time. Use it to confirm a schedule with the user before create_task or update_task, e.g.
"weekdays at 08:30" is kind rrule, expr {WEEKDAYS_0830}. Kinds: rrule, cron ("30 8 * * 1-5")
and once ("2026-12-01T09:00:00" read in tz, or with an offset).""",
        args=PreviewArgs,
        result=SchedulePreview,
        call=_preview,
        example={"kind": "rrule", "expr": WEEKDAYS_0830, "tz": "Europe/Chisinau", "count": 5},
        read_only=True,
        idempotent=True,
    ),
    McpTool(
        name="list_tools",
        title="List the tools a pipeline may use",
        description="""List the tools a task's pipeline steps may call (built-ins, HTTP and MCP
tools in the catalog): the address to put in a step's "uses", what it does, its input and
output JSON Schemas and the scopes it needs. Use it before create_task to build the payload.""",
        args=NoArgs,
        result=ToolCatalog,
        call=_catalog,
        read_only=True,
        idempotent=True,
    ),
)
