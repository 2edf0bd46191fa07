"""The agenda tool: what will fire, in order (the ``GET /agenda`` operation)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from ordinaut.mcp.tool import McpTool
from ordinaut.scheduling.agenda import MAX_ITEMS
from ordinaut.service.agenda import DEFAULT_LIMIT, AgendaPage
from ordinaut.service.auth import Principal
from ordinaut.service.facade import Service


class AgendaArgs(BaseModel):
    """The query of ``GET /agenda``."""

    model_config = ConfigDict(extra="forbid", validate_by_name=True, serialize_by_alias=True)

    from_: datetime | None = Field(
        default=None,
        alias="from",
        description="Start of the window (ISO 8601 with offset); default now.",
    )
    to: datetime | None = Field(
        default=None,
        description="End of the window (exclusive); default 24 h after from; at most 31 days.",
    )
    tz: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="IANA zone the local times are shown in (default: the server's).",
    )
    limit: StrictInt = Field(
        default=DEFAULT_LIMIT, ge=1, le=MAX_ITEMS, description=f"Page size, 1-{MAX_ITEMS}."
    )
    cursor: str | None = Field(
        default=None, description="next_cursor from the previous page; omit for the first page."
    )


def _agenda(svc: Service, p: Principal, a: AgendaArgs) -> AgendaPage:
    return svc.agenda(p, start=a.from_, end=a.to, tz=a.tz, limit=a.limit, cursor=a.cursor)


AGENDA_TOOL = McpTool(
    name="agenda",
    title="What will run, in order",
    description="""List every time the caller's active tasks will fire in a window (default
the next 24 hours, at most 31 days), in order, with the task title and the local time: the
answer to "what's on tomorrow?". Times are the scheduler's own (jitter, snoozes and skips
included); notes mark daylight-saving shifts and overdue fires. Pass next_cursor back as
cursor for more.""",
    args=AgendaArgs,
    result=AgendaPage,
    call=_agenda,
    example={"from": "2026-12-03T00:00:00+02:00", "to": "2026-12-04T00:00:00+02:00"},
    read_only=True,
    idempotent=True,
)
