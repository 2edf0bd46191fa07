"""MCP resources for tasks and runs: ``ordinaut://tasks/{task_id}`` and ``ordinaut://runs/{run_id}``.

Reading one gives the same JSON as get_task / get_run, for the calling agent (scopes and
ownership checked by the service). ``resources/list`` lists the caller's newest tasks, so a
client can offer them for attaching to a conversation. Errors are protocol errors, as the
specification has it for resources: no such resource is ``-32602`` (invalid params), no
permission is ``-32600`` (invalid request).
"""

from __future__ import annotations

import re
import uuid

import mcp.types as types
from mcp.shared.exceptions import MCPError

from ordinaut.errors import NotFound, OrdinautError, ValidationError
from ordinaut.service.auth import Principal
from ordinaut.service.facade import Service

JSON = "application/json"
LISTED_TASKS = 50
_URI = re.compile(r"^ordinaut://(?P<kind>tasks|runs)/(?P<id>[^/?#]+)$")

TEMPLATES = [
    types.ResourceTemplate(
        name="task",
        title="An Ordinaut task",
        uri_template="ordinaut://tasks/{task_id}",
        description="A task's schedule, pipeline, status and next run (as get_task returns).",
        mime_type=JSON,
    ),
    types.ResourceTemplate(
        name="run",
        title="An Ordinaut run",
        uri_template="ordinaut://runs/{run_id}",
        description="A run with the receipt of every step (as get_run returns).",
        mime_type=JSON,
    ),
]


def listed(service: Service, principal: Principal) -> list[types.Resource]:
    """The caller's newest tasks as resources (none when the token may not read tasks)."""
    try:
        tasks, _ = service.list_tasks(principal, limit=LISTED_TASKS)
    except OrdinautError:
        return []
    return [
        types.Resource(
            name=f"task-{t.id}",
            title=t.title,
            uri=f"ordinaut://tasks/{t.id}",
            description=f"{t.schedule_kind} {t.schedule_expr or ''} ({t.status})".strip(),
            mime_type=JSON,
        )
        for t in tasks
    ]


def read(service: Service, principal: Principal, uri: str) -> types.ReadResourceResult:
    """The JSON of the task or run ``uri`` names; MCPError when it cannot be read."""
    match = _URI.match(uri)
    try:
        if match is None:
            raise NotFound(
                f"no resource {uri}; use ordinaut://tasks/{{id}} or ordinaut://runs/{{id}}"
            )
        try:
            ident = uuid.UUID(match["id"])
        except ValueError:
            raise ValidationError(f"{match['id']!r} is not a UUID", field="id") from None
        if match["kind"] == "tasks":
            text = service.get_task(principal, ident).model_dump_json()
        else:
            text = service.get_run(principal, ident).model_dump_json()
    except (NotFound, ValidationError) as exc:
        raise MCPError(types.INVALID_PARAMS, exc.message, {"uri": uri}) from None
    except OrdinautError as exc:
        raise MCPError(types.INVALID_REQUEST, exc.message, {"uri": uri}) from None
    return types.ReadResourceResult(
        contents=[types.TextResourceContents(uri=uri, mime_type=JSON, text=text)]
    )
