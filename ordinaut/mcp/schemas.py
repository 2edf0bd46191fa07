"""The MCP tools' argument and result models, built on the service's own edge models.

Arguments mirror the HTTP API: a body model (``TaskCreate``, ``TaskUpdate``, ``SnoozeIn``,
``SkipIn``, ``EventIn``) is used as is, or subclassed to add the path parameter
(``task_id`` / ``run_id``); query parameters become fields with the API's bounds. Every
argument model forbids unknown keys, so a misspelt argument is an error, not a silent no-op.

Results are the service's public models (``TaskPublic``, ``RunPublic``, ``RunNowAccepted``,
``EventAccepted``) or small models here for what the service returns as a tuple or a dict
(pages, previews, the tool catalog). ``rendered_schema`` turns a model into the JSON Schema
an MCP client sees.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from ordinaut.scheduling.recurrence import MAX_PREVIEW
from ordinaut.service.models import (
    MAX_STEP_PATH,
    ApprovalPublic,
    ChangePublic,
    RunSummary,
    SkipIn,
    SnoozeIn,
    TaskPublic,
    TaskUpdate,
)
from ordinaut.vocabulary import ChangeStatus, RunStatus, StepPart, TaskStatus

_TASK_ID = "The task's id (a UUID), as returned by create_task or list_tasks."
_RUN_ID = "The run's id (a UUID), as returned by list_runs."
_LIMIT = "Page size, 1-1000 (default 50)."
_CURSOR = "next_cursor from the previous page; omit for the first page."


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- arguments ----------------------------------------------------------------------------


class NoArgs(_Args):
    """No arguments."""


class TaskRef(_Args):
    """One task."""

    task_id: uuid.UUID = Field(description=_TASK_ID)


class RunRef(_Args):
    """One run."""

    run_id: uuid.UUID = Field(description=_RUN_ID)


class RunDecision(_Args):
    """A decision on a run that waits for approval (``POST /runs/{id}/approve|reject``)."""

    run_id: uuid.UUID = Field(description=_RUN_ID)
    comment: str | None = Field(
        default=None, max_length=1000, description="Why; kept in the audit log."
    )


class ListApprovalsArgs(_Args):
    """Paging for list_approvals (the query of ``GET /approvals``)."""

    limit: StrictInt = Field(default=50, ge=1, le=1000, description=_LIMIT)
    cursor: str | None = Field(default=None, description=_CURSOR)


class ChangeDecision(_Args):
    """A decision on a pending change (``POST /changes/{id}/approve|reject``)."""

    change_id: uuid.UUID = Field(description="The change's id, as list_changes shows it.")
    comment: str | None = Field(
        default=None, max_length=1000, description="Why; kept in the audit log."
    )


class ListChangesArgs(_Args):
    """Filters and paging for list_changes (the query of ``GET /changes``)."""

    status: ChangeStatus | None = Field(
        default=ChangeStatus.PENDING, description="Only changes in this status (default pending)."
    )
    limit: StrictInt = Field(default=50, ge=1, le=1000, description=_LIMIT)
    cursor: str | None = Field(default=None, description=_CURSOR)


class StepRef(_Args):
    """One part of a run's step receipt (``GET /runs/{id}/steps/{step_path}/{part}``)."""

    run_id: uuid.UUID = Field(description=_RUN_ID)
    step_path: str = Field(
        min_length=1,
        max_length=MAX_STEP_PATH,
        description="The step's path as get_run shows it (step_path), e.g. 'fetch' or "
        "'loop[2].send'.",
    )
    part: StepPart = Field(description="input (the rendered arguments) or output.")


class UpdateTaskArgs(TaskUpdate):
    """``task_id`` plus any subset of the mutable task fields."""

    task_id: uuid.UUID = Field(description=_TASK_ID)


class SnoozeArgs(SnoozeIn):
    """``task_id`` plus exactly one of ``seconds`` or ``until``."""

    task_id: uuid.UUID = Field(description=_TASK_ID)


class SkipArgs(SkipIn):
    """``task_id`` plus how many occurrences to drop."""

    task_id: uuid.UUID = Field(description=_TASK_ID)


class ListTasksArgs(_Args):
    """Filters and paging for list_tasks (the query of ``GET /tasks``)."""

    status: TaskStatus | None = Field(default=None, description="Only tasks in this status.")
    limit: StrictInt = Field(default=50, ge=1, le=1000, description=_LIMIT)
    cursor: str | None = Field(default=None, description=_CURSOR)


class ListRunsArgs(_Args):
    """Filters and paging for list_runs (the query of ``GET /runs``)."""

    task_id: uuid.UUID | None = Field(default=None, description="Only runs of this task.")
    status: RunStatus | None = Field(default=None, description="Only runs in this status.")
    limit: StrictInt = Field(default=50, ge=1, le=1000, description=_LIMIT)
    cursor: str | None = Field(default=None, description=_CURSOR)


class PreviewArgs(_Args):
    """The query of ``GET /schedules/preview``."""

    kind: Literal["cron", "rrule", "once"] = Field(description="The schedule_kind to preview.")
    expr: str = Field(max_length=4000, description="The schedule_expr to preview.")
    tz: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="IANA time zone the expression is read in (default: the server's).",
    )
    count: StrictInt = Field(
        default=10, ge=1, le=MAX_PREVIEW, description="How many occurrences (default 10)."
    )
    after: datetime | None = Field(
        default=None,
        description="List occurrences strictly after this instant (ISO 8601 with offset); "
        "default now.",
    )


# --- results ------------------------------------------------------------------------------


class TaskPage(BaseModel):
    """A page of tasks, newest first."""

    items: list[TaskPublic]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at end.")


class ApprovalPage(BaseModel):
    """A page of runs waiting for approval, oldest first."""

    items: list[ApprovalPublic]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at end.")


class ChangePage(BaseModel):
    """A page of changes, oldest first."""

    items: list[ChangePublic]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at end.")


class RunPage(BaseModel):
    """A page of runs, newest first."""

    items: list[RunSummary]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at end.")


class Occurrence(BaseModel):
    """One fire time in UTC and in the schedule's zone, with a DST note when one applies."""

    utc: datetime
    local: datetime
    note: str | None = None


class SchedulePreview(BaseModel):
    """The next occurrences of an expression and the DST notes that apply to them."""

    occurrences: list[Occurrence]
    notes: list[str]


class CatalogTool(BaseModel):
    """A tool a pipeline step may use: ``uses`` takes its address."""

    address: str
    transport: str
    description: str = ""
    input_schema: dict[str, Any] = Field(default_factory=dict)
    output_schema: dict[str, Any] = Field(default_factory=dict)
    scopes: list[str] = Field(default_factory=list)
    timeout_seconds: float | None = None
    # where the tool lives (endpoint and auth are shown to tools:admin only)
    endpoint: str | None = None
    server: str | None = None
    remote_name: str | None = None
    auth: dict[str, str] | None = None


class ToolCatalog(BaseModel):
    """Every tool a pipeline may use."""

    tools: list[CatalogTool]


# --- schema rendering ---------------------------------------------------------------------


def rendered_schema(
    model: type[BaseModel],
    *,
    mode: Literal["validation", "serialization"],
    help: dict[str, str] | None = None,
    hide: frozenset[str] = frozenset(),
    first: tuple[str, ...] = ("task_id", "run_id"),
) -> dict[str, Any]:
    """``model``'s JSON Schema without pydantic's titles, ids first, ``help`` filled in."""
    schema: dict[str, Any] = _untitled(model.model_json_schema(mode=mode))
    props: dict[str, Any] = schema.get("properties", {})
    for name, text in (help or {}).items():
        props[name].setdefault("description", text)
    ordered = {k: props[k] for k in first if k in props}
    ordered.update((k, v) for k, v in props.items() if k not in ordered and k not in hide)
    schema["properties"] = ordered
    if "required" in schema:
        schema["required"] = [r for r in schema["required"] if r not in hide]
    schema.setdefault("type", "object")
    return schema


def _untitled(node: Any, *, in_properties: bool = False) -> Any:
    """Drop ``title`` keywords (pydantic's, repeating the names) but keep properties named so."""
    if isinstance(node, dict):
        names = ("properties", "$defs")
        return {
            key: _untitled(value, in_properties=not in_properties and key in names)
            for key, value in node.items()
            if in_properties or key != "title"
        }
    if isinstance(node, list):
        return [_untitled(item) for item in node]
    return node
