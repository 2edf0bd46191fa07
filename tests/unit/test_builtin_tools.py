"""Tool specs, schema contracts (format checks included) and the built-in tools."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ordinaut.errors import ToolError, ValidationError
from ordinaut.pipeline.executor import run_pipeline
from ordinaut.pipeline.validate import validate_payload
from ordinaut.tools import builtin, spec
from ordinaut.tools.builtin import BUILTIN_TOOLS, call_builtin
from ordinaut.tools.spec import ToolCall, ToolSpec, Transport

SEND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["chat_id", "text"],
    "properties": {
        "chat_id": {"type": "integer", "minimum": 1},
        "text": {"type": "string", "minLength": 1, "maxLength": 10},
        "to": {"type": "array", "items": {"type": "object", "required": ["name"]}},
        "ts": {"type": "string", "format": "date-time"},
    },
    "additionalProperties": False,
}


def test_builtin_catalog() -> None:
    assert set(BUILTIN_TOOLS) == {
        "builtin.echo",
        "builtin.sleep",
        "pipeline.foreach",
        "policy.quiet_hours",
    }
    for address, tool in BUILTIN_TOOLS.items():
        assert tool.address == address
        assert tool.transport is Transport.BUILTIN
        spec.check_schema(tool.input_schema, field="input_schema")
        spec.check_schema(tool.output_schema, field="output_schema")


def test_transport_values() -> None:
    assert [t.value for t in Transport] == ["http", "mcp", "builtin"]
    assert Transport("mcp") is Transport.MCP


def test_tool_spec_defaults() -> None:
    tool = ToolSpec("a.b", Transport.HTTP, {"type": "object"}, {"type": "object"})
    assert (tool.timeout_seconds, tool.scopes, tool.endpoint, tool.server) == (30.0, (), None, None)


@pytest.mark.parametrize("args", [{}, {"a": 1, "nested": {"b": [1, "ü"]}}])
def test_echo_returns_its_arguments(args: dict[str, Any]) -> None:
    assert call_builtin("builtin.echo", args, sleep=_no_sleep) == args
    assert spec.validate_instance(args, BUILTIN_TOOLS["builtin.echo"].input_schema) is None


@pytest.mark.parametrize("seconds", [0, 0.25, 5, 3600])
def test_sleep_uses_the_injected_sleep(seconds: float) -> None:
    slept: list[float] = []
    assert call_builtin("builtin.sleep", {"seconds": seconds}, sleep=slept.append) == {
        "slept": seconds
    }
    assert slept == [seconds]


@pytest.mark.parametrize(
    "args", [{}, {"seconds": -1}, {"seconds": 3601}, {"seconds": "5"}, {"seconds": True}]
)
def test_sleep_refuses_bad_seconds(args: dict[str, Any]) -> None:
    with pytest.raises(ToolError) as info:
        call_builtin("builtin.sleep", args, sleep=_no_sleep)
    assert info.value.retryable is False
    assert spec.validate_instance(args, BUILTIN_TOOLS["builtin.sleep"].input_schema) is not None


@pytest.mark.parametrize("address", ["pipeline.foreach", "builtin.nope", "x.y"])
def test_call_builtin_refuses_what_it_does_not_run(address: str) -> None:
    with pytest.raises(ToolError) as info:
        call_builtin(address, {}, sleep=_no_sleep)
    assert info.value.retryable is False


def test_builtins_run_through_the_executor() -> None:
    slept: list[float] = []
    payload = {
        "params": {"wait": 2},
        "pipeline": [
            {
                "id": "nap",
                "uses": "builtin.sleep",
                "with": {"seconds": "${params.wait}"},
                "save_as": "nap",
            },
            {
                "id": "say",
                "uses": "builtin.echo",
                "with": {"slept": "${steps.nap.slept}", "msg": "ok"},
            },
        ],
    }
    pipeline = validate_payload(payload, BUILTIN_TOOLS)

    def call_tool(call: ToolCall) -> Any:
        return call_builtin(call.address, call.args, sleep=slept.append)

    clock = lambda: datetime(2025, 1, 1, tzinfo=UTC)  # noqa: E731
    result = run_pipeline(
        pipeline, tools=BUILTIN_TOOLS, call_tool=call_tool, context={}, clock=clock
    )
    assert slept == [2]
    assert result.output == {"slept": 2, "msg": "ok"}


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object"},
        SEND_SCHEMA,
        True,
        {"$defs": {"x": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/x"}}},
        {"prefixItems": [{"type": "integer"}]},
        {"properties": {"child": {"$ref": "#"}}},  # recursion through the instance is fine
        {"$id": "https://example.com/s", "$defs": {"a": {"$id": "a", "type": "string"}}},
        {"$ref": "https://json-schema.org/draft/2020-12/schema"},
        {"const": {"$ref": "#/not-a-reference"}},
    ],
)
def test_check_schema_accepts_valid_schemas(schema: Any) -> None:
    spec.check_schema(schema, field="tool.input_schema")


@pytest.mark.parametrize(
    ("schema", "field"),
    [
        ({"type": "nope"}, "tool.input_schema.type"),
        ({"properties": {"a": {"type": 5}}}, "tool.input_schema.properties.a.type"),
        ({"minLength": -1}, "tool.input_schema.minLength"),
        ({"required": "x"}, "tool.input_schema.required"),
        ({"$ref": "#/nope"}, "tool.input_schema.$ref"),
        ({"properties": {"a": {"$ref": "#/$defs/x"}}}, "tool.input_schema.properties.a.$ref"),
        ({"$ref": "http://127.0.0.1:9/remote.json"}, "tool.input_schema.$ref"),
        ({"$ref": "#", "type": "object"}, "tool.input_schema.$ref"),
        (
            {"properties": {"a": {"$ref": "#/properties/b"}, "b": {"$ref": "#/properties/a"}}},
            "tool.input_schema.properties.b.$ref",
        ),
        ("string", "tool.input_schema"),
        ([], "tool.input_schema"),
        (None, "tool.input_schema"),
    ],
)
def test_check_schema_names_the_bad_part(schema: Any, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        spec.check_schema(schema, field="tool.input_schema")
    assert info.value.field == field


@pytest.mark.parametrize(
    ("instance", "error"),
    [
        ({"chat_id": 1, "text": "hi"}, None),
        ({"chat_id": 1, "text": "hi", "ts": "2025-08-08T08:30:00+03:00"}, None),
        ({"text": "hi"}, "chat_id: 'chat_id' is a required property"),
        ({"chat_id": 1}, "text: 'text' is a required property"),
        ({"chat_id": 0, "text": "hi"}, "chat_id: 0 is less than the minimum of 1"),
        ({"chat_id": "1", "text": "hi"}, "chat_id: '1' is not of type 'integer'"),
        ({"chat_id": 1, "text": "x" * 11}, "text: 'xxxxxxxxxxx' is too long"),
        (
            {"chat_id": 1, "text": "hi", "to": [{"name": "a"}, {}]},
            "to[1].name: 'name' is a required property",
        ),
        (
            {"chat_id": 1, "text": "hi", "zz": 1},
            "zz: Additional properties are not allowed ('zz' was unexpected)",
        ),
        ({"chat_id": 1, "text": "hi", "ts": "yesterday"}, "ts: 'yesterday' is not a 'date-time'"),
        ([1], "(root): [1] is not of type 'object'"),
    ],
)
def test_validate_instance_names_the_field(instance: Any, error: str | None) -> None:
    assert spec.validate_instance(instance, SEND_SCHEMA) == error


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("2025-08-08T08:30:00+03:00", True),
        ("2025-08-08T05:30:00Z", True),
        ("2025-08-08t05:30:00z", True),
        ("2025-08-08T05:30:00.123456-04:30", True),
        ("2016-12-31T23:59:60Z", True),
        ("2025-08-08T08:30:00", False),
        ("2025-08-08", False),
        ("2025-08-08 08:30:00Z", False),
        ("2025-13-01T00:00:00Z", False),
        ("2025-02-30T00:00:00Z", False),
        ("2025-08-08T24:00:00Z", False),
        ("20250808T083000+0300", False),
        ("yesterday", False),
        ("", False),
    ],
)
def test_date_time_format_is_really_checked(value: str, valid: bool) -> None:
    schema = {"type": "string", "format": "date-time"}
    assert (spec.validate_instance(value, schema) is None) is valid


DRAFT7_TUPLE = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "properties": {"pair": {"items": [{"type": "integer"}, {"type": "string"}]}},
}


def test_a_schema_may_name_its_draft() -> None:
    spec.check_schema(DRAFT7_TUPLE, field="s")
    assert spec.validate_instance({"pair": [1, "a"]}, DRAFT7_TUPLE) is None
    assert spec.validate_instance({"pair": [1, 2]}, DRAFT7_TUPLE) == (
        "pair[1]: 2 is not of type 'string'"
    )
    without_draft = {"properties": DRAFT7_TUPLE["properties"]}
    with pytest.raises(ValidationError) as info:
        spec.check_schema(without_draft, field="s")
    assert info.value.field == "s.properties.pair.items"


def test_format_only_applies_to_strings() -> None:
    assert spec.validate_instance(5, {"format": "date-time"}) is None


def test_first_violation_is_structured() -> None:
    violation = spec.first_violation({"chat_id": 1, "text": ""}, SEND_SCHEMA)
    assert violation is not None
    assert (violation.path, violation.keyword) == ("text", "minLength")
    assert str(violation).startswith("text: ")


@pytest.mark.parametrize(
    ("parts", "text"),
    [([], ""), (["a"], "a"), (["a", 0, "b"], "a[0].b"), ([0, 1], "[0][1]")],
)
def test_format_path(parts: list[str | int], text: str) -> None:
    assert spec.format_path(parts) == text


def test_foreach_spec_is_only_a_declaration() -> None:
    assert builtin.FOREACH in BUILTIN_TOOLS


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"unexpected sleep({seconds})")


def test_a_stored_schema_with_a_dangling_ref_is_a_violation_not_a_crash() -> None:
    """Catalog entries stored before registration checked $ref still validate without raising."""
    violation = spec.first_violation({"a": 1}, {"properties": {"a": {"$ref": "#/$defs/gone"}}})
    assert violation is not None and violation.keyword == "$ref"
    assert "does not resolve" in violation.reason
    looping = spec.first_violation({"a": 1}, {"$ref": "#", "type": "object"})
    assert looping is not None and "recurse" in looping.reason
