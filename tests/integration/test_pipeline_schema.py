"""The pipeline schema as agents get it: GET /schemas/pipeline, the OpenAPI document, MCP.

A real API on loopback (and its /mcp endpoint through the SDK's ClientSession) serves the
schema; every example payload validates against what is served and parses; the MCP
create_task input schema carries the step definitions; and a payload the schema accepts
still meets the creation-time checks it cannot express (references, duplicate ids, tools).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest

from ordinaut.pipeline.parse import parse_payload
from tests.integration.conftest import Api
from tests.integration.test_mcp_http import admin_token, mcp_session
from tests.support import text_of

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_TASKS = sorted(
    path.name for path in EXAMPLES.glob("*.json") if "payload" in json.loads(path.read_text())
)


def served_schema(api: Api) -> dict[str, Any]:
    """The schema from GET /schemas/pipeline, fetched without a token."""
    response = api.make_client(None).get("/schemas/pipeline")
    assert response.status_code == 200, response.text
    schema: dict[str, Any] = response.json()
    return schema


def test_examples_are_found() -> None:
    assert EXAMPLE_TASKS == ["follow-up-manager.json", "morning-briefing.json"]


@pytest.mark.parametrize("example", EXAMPLE_TASKS)
def test_every_example_validates_against_the_served_schema_and_parses(
    api: Api, example: str
) -> None:
    schema = served_schema(api)
    jsonschema.Draft202012Validator.check_schema(schema)
    payload = json.loads((EXAMPLES / example).read_text())["payload"]
    jsonschema.Draft202012Validator(schema).validate(payload)
    pipeline = parse_payload(payload)
    assert [s.id for s in pipeline.steps] == [s["id"] for s in payload["pipeline"]]
    broken = {**payload, "pipeline": [{**payload["pipeline"][0], "with": "not an object"}]}
    assert not jsonschema.Draft202012Validator(schema).is_valid(broken)


def test_the_openapi_payload_is_the_served_schema(api: Api) -> None:
    served = served_schema(api)
    spec = api.make_client(None).get("/openapi.json").json()
    components = spec["components"]["schemas"]
    for body in ("TaskCreate", "TaskUpdate"):
        payload = components[body]["properties"]["payload"]
        refs = {payload.get("$ref"), *(option.get("$ref") for option in payload.get("anyOf", []))}
        assert "#/components/schemas/Pipeline" in refs, body
    for name in ("ToolStep", "ForeachStep", "Foreach", "StepRetry"):
        assert _plain(components[name]) == _as_component(served["$defs"][name]), name
    operation = spec["paths"]["/schemas/pipeline"]["get"]
    assert operation["operationId"] == "pipeline_schema"
    assert "security" not in operation


def test_mcp_create_task_input_schema_describes_steps(api: Api) -> None:
    async def main() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        async with mcp_session(api.base_url, admin_token(api)) as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
            read = await session.read_resource("ordinaut://schemas/pipeline")
            resource = json.loads(text_of(read.contents[0]))
            return tools["create_task"].input_schema, tools["update_task"].input_schema, resource

    create, update, resource = anyio.run(main)
    defs = create["$defs"]
    assert create["properties"]["payload"]["$ref"] == "#/$defs/Pipeline"
    assert update["properties"]["payload"]["$ref"] == "#/$defs/Pipeline"
    steps = defs["Pipeline"]["properties"]["pipeline"]["items"]["oneOf"]
    assert steps == [{"$ref": "#/$defs/ToolStep"}, {"$ref": "#/$defs/ForeachStep"}]
    tool_step = defs["ToolStep"]["properties"]
    assert {"id", "uses", "with", "if", "save_as", "retry", "on_error"} <= set(tool_step)
    assert "${" in tool_step["with"]["description"]
    loop = defs["ForeachStep"]["properties"]
    assert loop["uses"]["const"] == "pipeline.foreach"
    assert loop["with"]["$ref"] == "#/$defs/Foreach"
    assert defs["Foreach"]["properties"]["body"]["items"]["oneOf"] == steps
    assert resource == served_schema(api)

    # an agent can check a whole create_task call against the listed schema alone
    body = json.loads((EXAMPLES / "follow-up-manager.json").read_text())
    jsonschema.Draft202012Validator(create).validate(body)
    body["payload"]["pipeline"][1]["with"]["max_parallel"] = 0
    assert not jsonschema.Draft202012Validator(create).is_valid(body)


SCHEMA_VALID_BUT_WRONG = [
    (
        [
            {"id": "a", "uses": "builtin.echo", "save_as": "first"},
            {"id": "b", "uses": "builtin.echo", "with": {"text": "${steps.nothing.text}"}},
        ],
        "payload.pipeline[1].with.text",
        "step 'b': template ${steps.nothing.text} refers to 'nothing', which no earlier step "
        "saves (save_as)",
    ),
    (
        [{"id": "a", "uses": "builtin.echo"}, {"id": "a", "uses": "builtin.echo"}],
        "payload.pipeline[1].id",
        "step 'a': duplicate step id (first used at payload.pipeline[0])",
    ),
    (
        [{"id": "a", "uses": "nowhere.nothing"}],
        "payload.pipeline[0].uses",
        "step 'a': unknown tool 'nowhere.nothing'",
    ),
    (
        [{"id": "a", "uses": "builtin.echo", "if": "length(params.x"}],
        "payload.pipeline[0].if",
        "invalid JMESPath",
    ),
]


@pytest.mark.parametrize(("steps", "field", "message"), SCHEMA_VALID_BUT_WRONG)
def test_schema_valid_payloads_still_get_the_creation_time_checks(
    api: Api, steps: list[dict[str, Any]], field: str, message: str
) -> None:
    payload = {"pipeline": steps}
    jsonschema.Draft202012Validator(served_schema(api)).validate(payload)
    body = {"title": "t", "schedule_kind": "cron", "schedule_expr": "0 9 * * *"}
    response = api.admin.post("/tasks", json={**body, "payload": payload})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert message in error["message"]
    assert api.admin.get("/tasks").json()["items"] == []


def _plain(node: Any) -> Any:
    """``node`` without titles and null defaults, which FastAPI and pydantic write apart."""
    if isinstance(node, dict):
        return {
            k: _plain(v)
            for k, v in node.items()
            if k != "title" and not (k == "default" and v is None)
        }
    if isinstance(node, list):
        return [_plain(item) for item in node]
    return node


def _as_component(node: Any) -> Any:
    """A served definition as an OpenAPI component: refs to components, plain."""
    return _plain(json.loads(json.dumps(node).replace("#/$defs/", "#/components/schemas/")))
