"""MCP resources: tasks and runs (``ordinaut://tasks/{task_id}``, ``ordinaut://runs/{run_id}``)
and the pipeline language (``ordinaut://schemas/pipeline``).

Reading a task or run gives the same JSON as get_task / get_run, for the calling agent
(scopes and ownership checked by the service); the schema is the document of
``GET /schemas/pipeline``, readable by anyone. ``resources/list`` lists the schema and the
caller's newest tasks, so a client can offer them for attaching to a conversation. Errors
are protocol errors, as the specification has it for resources: no such resource is
``-32602`` (invalid params), no permission is ``-32600`` (invalid request).
"""

from __future__ import annotations

import json
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
PIPELINE_SCHEMA_URI = "ordinaut://schemas/pipeline"

PIPELINE_SCHEMA = types.Resource(
    name="pipeline-schema",
    title="The pipeline language (JSON Schema)",
    uri=PIPELINE_SCHEMA_URI,
    description="JSON Schema of a task's payload (create_task's payload): the steps, loops, "
    "templates and limits a pipeline may use.",
    mime_type=JSON,
)

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
    """The pipeline schema, then the caller's newest tasks (if the token may read tasks)."""
    try:
        tasks, _ = service.list_tasks(principal, limit=LISTED_TASKS)
    except OrdinautError:
        tasks = []
    return [PIPELINE_SCHEMA] + [
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
    """The JSON of the schema, task or run ``uri`` names; MCPError when it cannot be read."""
    if uri == PIPELINE_SCHEMA_URI:
        text = json.dumps(service.pipeline_schema(), ensure_ascii=False)
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type=JSON, text=text)]
        )
    match = _URI.match(uri)
    try:
        if match is None:
            raise NotFound(
                f"no resource {uri}; use ordinaut://tasks/{{id}}, ordinaut://runs/{{id}} "
                f"or {PIPELINE_SCHEMA_URI}"
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
