"""Creation-time validation: every bad pipeline is refused with its step and exact field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ordinaut.errors import ValidationError
from ordinaut.pipeline.model import Limits, Pipeline, StepRetry, ToolStep
from ordinaut.pipeline.validate import validate_payload
from ordinaut.tools.builtin import BUILTIN_TOOLS
from ordinaut.tools.spec import ToolSpec, Transport
from ordinaut.vocabulary import BackoffStrategy

OBJECT: dict[str, Any] = {"type": "object"}


def _tool(address: str, input_schema: dict[str, Any] = OBJECT) -> ToolSpec:
    return ToolSpec(address, Transport.HTTP, input_schema, OBJECT)


SEND = {
    "type": "object",
    "required": ["chat_id", "text"],
    "properties": {
        "chat_id": {"type": "integer", "minimum": 1},
        "text": {"type": "string", "minLength": 1, "maxLength": 4096},
        "disable_preview": {"type": "boolean", "default": True},
        "tags": {"type": "array", "maxItems": 2, "items": {"type": "string", "maxLength": 3}},
        "options": {
            "type": "object",
            "properties": {"mode": {"enum": ["a", "b"]}},
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
LIST_EVENTS = {
    "type": "object",
    "required": ["start", "end"],
    "properties": {
        "start": {"type": "string"},
        "end": {"type": "string"},
        "max": {"type": "integer"},
    },
}

TOOLS: dict[str, ToolSpec] = {
    **BUILTIN_TOOLS,
    "google-calendar-mcp.list_events": _tool("google-calendar-mcp.list_events", LIST_EVENTS),
    "weather-mcp.today_forecast": _tool("weather-mcp.today_forecast"),
    "imap-mcp.top_unread": _tool("imap-mcp.top_unread"),
    "llm.plan": _tool("llm.plan"),
    "telegram-mcp.send_message": _tool("telegram-mcp.send_message", SEND),
    "imap-mcp.find_outbound_without_reply": _tool("imap-mcp.find_outbound_without_reply"),
    "llm.rewrite": _tool("llm.rewrite"),
    "gmail-mcp.send_draft": _tool("gmail-mcp.send_draft"),
}

# The seed's two example pipelines (section 10), verbatim.
MORNING_BRIEFING: dict[str, Any] = {
    "params": {
        "date_start_iso": "2025-08-08T00:00:00+03:00",
        "date_end_iso": "2025-08-08T23:59:59+03:00",
    },
    "pipeline": [
        {
            "id": "cal",
            "uses": "google-calendar-mcp.list_events",
            "with": {
                "start": "${params.date_start_iso}",
                "end": "${params.date_end_iso}",
                "max": 50,
            },
            "save_as": "calendar",
        },
        {
            "id": "wx",
            "uses": "weather-mcp.today_forecast",
            "with": {"city": "Chisinau"},
            "save_as": "weather",
        },
        {"id": "mail", "uses": "imap-mcp.top_unread", "with": {"count": 5}, "save_as": "inbox"},
        {
            "id": "plan",
            "uses": "llm.plan",
            "with": {
                "instruction": "From ${steps.calendar.items}, ${steps.weather.summary}, and "
                "${steps.inbox.threads}, prepare a concise day plan with times, 3 must-dos, "
                "blockers, quick wins."
            },
            "save_as": "brief",
        },
        {
            "id": "ping",
            "uses": "telegram-mcp.send_message",
            "with": {"chat_id": 100200300, "text": "${steps.brief.text}", "disable_preview": True},
            "save_as": "sent",
        },
    ],
}
FOLLOW_UP: dict[str, Any] = {
    "pipeline": [
        {"id": "scan", "uses": "imap-mcp.find_outbound_without_reply", "with": {"lookback_days": 7, "min_age_hours": 72, "max_items": 20}, "save_as": "targets"},  # noqa: E501
        {"id": "loop", "uses": "pipeline.foreach", "with": {
            "items_path": "$.steps.targets.items",
            "body": [
                {"id": "draft", "uses": "llm.rewrite", "with": {"instruction": "One-sentence polite follow-up regarding ${item.subject}."}, "save_as": "msg"},  # noqa: E501
                {"id": "send", "uses": "gmail-mcp.send_draft", "with": {"thread_id": "${item.thread_id}", "text": "${steps.msg.text}"}, "save_as": "sent"},  # noqa: E501
            ]}, "save_as": "results"},
    ]
}  # fmt: skip


def _step(step_id: str, uses: str = "builtin.echo", /, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "uses": uses, **extra}


def _foreach(step_id: str, body: list[dict[str, Any]], **with_: Any) -> dict[str, Any]:
    return {"id": step_id, "uses": "pipeline.foreach", "with": {"body": body, **with_}}


def _with_save(step: dict[str, Any], name: str) -> dict[str, Any]:
    return {**step, "save_as": name}


def _payload(*steps: Any, **extra: Any) -> dict[str, Any]:
    return {"pipeline": list(steps), **extra}


def test_seed_morning_briefing_validates() -> None:
    pipeline = validate_payload(copy.deepcopy(MORNING_BRIEFING), TOOLS)
    assert [s.id for s in pipeline.steps] == ["cal", "wx", "mail", "plan", "ping"]
    assert pipeline.params["date_start_iso"] == "2025-08-08T00:00:00+03:00"
    assert pipeline.steps[0].with_ == {
        "start": "${params.date_start_iso}",
        "end": "${params.date_end_iso}",
        "max": 50,
    }
    assert pipeline.steps[4].save_as == "sent"


def test_seed_follow_up_validates() -> None:
    pipeline = validate_payload(copy.deepcopy(FOLLOW_UP), TOOLS)
    loop = pipeline.steps[1]
    assert loop.foreach is not None
    assert loop.foreach.items_path == "steps.targets.items"
    assert [s.id for s in loop.foreach.body] == ["draft", "send"]
    assert loop.foreach.max_parallel == 1
    assert loop.save_as == "results"
    assert [s.id for s in pipeline.walk()] == ["scan", "loop", "draft", "send"]
    assert pipeline.find_step("loop[3].send") is loop.foreach.body[1]
    assert pipeline.find_step("nope") is None


def test_parsed_step_defaults_and_options() -> None:
    pipeline = validate_payload(
        _payload(
            _step("a"),
            _step(
                "b",
                **{
                    "if": "params.go",
                    "timeout_seconds": 5,
                    "on_error": "continue",
                    "idempotency_key": "k-${params.go}",
                    "retry": {"max_retries": 2, "backoff": "fixed"},
                },
            ),
            params={"go": True},
        ),
        TOOLS,
    )
    assert isinstance(pipeline, Pipeline)
    a, b = pipeline.steps
    assert isinstance(a, ToolStep) and isinstance(b, ToolStep)
    assert (a.with_, a.if_, a.save_as, a.timeout_seconds, a.on_error, a.retry, a.foreach) == (
        {}, None, None, None, "fail", None, None,
    )  # fmt: skip
    assert (b.if_, b.timeout_seconds, b.on_error, b.idempotency_key) == (
        "params.go", 5.0, "continue", "k-${params.go}",
    )  # fmt: skip
    assert b.retry == StepRetry(max_retries=2, backoff=BackoffStrategy.FIXED)


@pytest.mark.parametrize(
    "payload",
    [
        # literal arguments that satisfy the schema
        _payload(_step("p", "telegram-mcp.send_message", **{"with": {"chat_id": 1, "text": "hi"}})),
        # template-containing arguments wait for run time, even if the schema wants a number
        _payload(
            _step(
                "p",
                "telegram-mcp.send_message",
                **{"with": {"chat_id": "${params.chat}", "text": "${params.t}"}},
            )
        ),
        _payload(
            _step(
                "p",
                "telegram-mcp.send_message",
                **{"with": {"chat_id": 5, "text": "x", "tags": ["${params.a}"]}},
            )
        ),
        # a container holding a template is still checked for shape (maxItems is fine here)
        _payload(
            _step(
                "p",
                "telegram-mcp.send_message",
                **{"with": {"chat_id": 5, "text": "x", "options": {"mode": "${params.m}"}}},
            )
        ),
        # `||` defaults, event/run/now roots, JMESPath functions in `if`
        _payload(
            _step("a", save_as="a"),
            _step(
                "b",
                **{
                    "if": "length(steps.a.items || `[]`) > `0`",
                    "with": {"x": "${event.id} ${run.attempt} ${now}"},
                },
            ),
        ),
        # body steps may read earlier body saves and steps before the foreach
        _payload(
            _step("a", save_as="outer"),
            _foreach(
                "f",
                [
                    _step("b", save_as="b", **{"with": {"x": "${steps.outer.v}"}}),
                    _step("c", **{"with": {"x": "${steps.b.v} ${item}"}}),
                ],
                items="${steps.outer.list}",
            ),
        ),
        # nested foreach: the inner item is ${item}
        _payload(
            _foreach(
                "f",
                [
                    _foreach(
                        "g", [_step("x", **{"with": {"v": "${item}"}})], items="${item.children}"
                    )
                ],
                items=[{"children": [1]}],
            )
        ),
        # the foreach's own save_as is readable after it
        _payload(
            _with_save(_foreach("f", [_step("b", save_as="b")], items=[1]), "res"),
            _step("c", **{"with": {"x": "${steps.res[0].b}"}}),
        ),
        # an escaped "$${" is a literal, not a template
        _payload(_step("a", **{"with": {"x": "$${steps.nope.x}"}})),
    ],
)
def test_valid_payloads(payload: dict[str, Any]) -> None:
    validate_payload(payload, TOOLS)


# (payload, field, message fragment)
INVALID: list[tuple[Any, str, str]] = [
    # the payload itself
    ([], "payload", "must be an object"),
    ({}, "payload.pipeline", "non-empty list"),
    ({"pipeline": []}, "payload.pipeline", "non-empty list"),
    ({"pipeline": {}}, "payload.pipeline", "non-empty list"),
    (_payload(_step("a"), params=[1]), "payload.params", "'params' must be an object"),
    (_payload(_step("a"), extra=1), "payload.extra", "unknown key 'extra'"),
    # step shape
    (_payload("step"), "payload.pipeline[0]", "must be an object"),
    (_payload({"uses": "builtin.echo"}), "payload.pipeline[0].id", "'id' must be"),
    (_payload(_step("has space")), "payload.pipeline[0].id", "'id' must be"),
    (_payload(_step("x" * 65)), "payload.pipeline[0].id", "'id' must be"),
    (
        _payload(_step("a", retries=3)),
        "payload.pipeline[0].retries",
        "step 'a': unknown key 'retries'",
    ),
    (
        _payload(_step("a"), _step("a")),
        "payload.pipeline[1].id",
        "step 'a': duplicate step id (first used at payload.pipeline[0])",
    ),
    (
        _payload(_step("a"), _foreach("f", [_step("a")], items=[1])),
        "payload.pipeline[1].with.body[0].id",
        "duplicate step id",
    ),
    (_payload({"id": "a"}), "payload.pipeline[0].uses", "'uses' must be a tool address"),
    (
        _payload(_step("a", "nosuch.tool")),
        "payload.pipeline[0].uses",
        "step 'a': unknown tool 'nosuch.tool'",
    ),
    (_payload(_step("a", **{"with": [1]})), "payload.pipeline[0].with", "'with' must be an object"),
    (_payload(_step("a", **{"if": ""})), "payload.pipeline[0].if", "'if' must be"),
    (_payload(_step("a", save_as="a b")), "payload.pipeline[0].save_as", "'save_as' must be"),
    (
        _payload(_step("a", on_error="ignore")),
        "payload.pipeline[0].on_error",
        "'on_error' must be 'fail' or 'continue'",
    ),
    (
        _payload(_step("a", timeout_seconds=0)),
        "payload.pipeline[0].timeout_seconds",
        "'timeout_seconds'",
    ),
    (
        _payload(_step("a", timeout_seconds=3601)),
        "payload.pipeline[0].timeout_seconds",
        "'timeout_seconds'",
    ),
    (
        _payload(_step("a", timeout_seconds="5")),
        "payload.pipeline[0].timeout_seconds",
        "'timeout_seconds'",
    ),
    (
        _payload(_step("a", timeout_seconds=True)),
        "payload.pipeline[0].timeout_seconds",
        "'timeout_seconds'",
    ),
    (
        _payload(_step("a", idempotency_key="")),
        "payload.pipeline[0].idempotency_key",
        "'idempotency_key'",
    ),
    (_payload(_step("a", retry=3)), "payload.pipeline[0].retry", "'retry' must be an object"),
    (
        _payload(_step("a", retry={"max_retries": -1})),
        "payload.pipeline[0].retry.max_retries",
        "'max_retries'",
    ),
    (
        _payload(_step("a", retry={"max_retries": 1, "backoff": "linear"})),
        "payload.pipeline[0].retry.backoff",
        "'backoff'",
    ),
    (
        _payload(_step("a", retry={"max_retries": 1, "base": 2})),
        "payload.pipeline[0].retry.base",
        "unknown key 'base'",
    ),
    # references to steps
    (
        _payload(
            _step("plan", "llm.plan"),
            _step("wx", save_as="weather"),
            _step(
                "ping",
                "telegram-mcp.send_message",
                **{"with": {"chat_id": 1, "text": "${steps.brief.text}"}},
            ),
        ),
        "payload.pipeline[2].with.text",
        "step 'ping': template ${steps.brief.text} refers to 'brief', which no earlier step saves (save_as)",  # noqa: E501
    ),
    (
        _payload(_step("a", **{"with": {"x": "${steps.later.v}"}}), _step("b", save_as="later")),
        "payload.pipeline[0].with.x",
        "refers to 'later', which no earlier step saves (save_as); step 'b' saves it but runs later",  # noqa: E501
    ),
    (
        _payload(_step("a", save_as="me", **{"with": {"x": "${steps.me.v}"}})),
        "payload.pipeline[0].with.x",
        "step 'a' saves it but runs later",
    ),
    (
        _payload(_step("a", **{"if": "steps.later.ok"}), _step("b", save_as="later")),
        "payload.pipeline[0].if",
        "condition 'steps.later.ok' refers to 'later'",
    ),
    (
        _payload(_step("a", idempotency_key="k-${steps.x.id}")),
        "payload.pipeline[0].idempotency_key",
        "refers to 'x'",
    ),
    (
        _payload(
            _foreach("f", [_step("b", save_as="msg")], items=[1]),
            _step("c", **{"with": {"x": "${steps.msg.text}"}}),
        ),
        "payload.pipeline[1].with.x",
        "it is saved per item inside foreach 'f'",
    ),
    (
        _payload(
            _foreach(
                "f",
                [_step("b", **{"with": {"x": "${steps.c.v}"}}), _step("c", save_as="c")],
                items=[1],
            )
        ),
        "payload.pipeline[0].with.body[0].with.x",
        "step 'b': template ${steps.c.v} refers to 'c'",
    ),
    (
        _payload(_step("a", **{"with": {"deep": [{"x": "a ${steps.none.v}"}]}})),
        "payload.pipeline[0].with.deep[0].x",
        "refers to 'none'",
    ),
    # roots and ${item}
    (
        _payload(_step("a", **{"with": {"x": "${item.subject}"}})),
        "payload.pipeline[0].with.x",
        "step 'a': template ${item.subject} uses 'item' outside a pipeline.foreach body",
    ),
    (_payload(_step("a", **{"if": "item"})), "payload.pipeline[0].if", "uses 'item' outside"),
    (
        _payload(_step("a", **{"with": {"x": "${secrets.token}"}})),
        "payload.pipeline[0].with.x",
        "reads 'secrets'; expressions may read only params, steps, item, event, run, now",
    ),
    (
        _payload(_foreach("f", [_step("b")], items_path="item.list")),
        "payload.pipeline[0].with.items_path",
        "uses 'item' outside",
    ),
    # JMESPath and template syntax
    (
        _payload(_step("a", **{"if": "length(params.x"})),
        "payload.pipeline[0].if",
        "invalid JMESPath 'length(params.x'",
    ),
    (_payload(_step("a", **{"if": "${params.x}"})), "payload.pipeline[0].if", "invalid JMESPath"),
    (
        _payload(_step("a", **{"if": "!params.x"})),
        "payload.pipeline[0].if",
        "'!' binds tighter than '.'",
    ),
    (
        _payload(_step("a", **{"with": {"x": "${params.[}"}})),
        "payload.pipeline[0].with.x",
        "invalid JMESPath",
    ),
    (
        _payload(_step("a", **{"with": {"x": "${nosuch(params.a)}"}})),
        "payload.pipeline[0].with.x",
        "unknown function nosuch()",
    ),
    (
        _payload(_step("a", **{"with": {"x": ["ok", "${params.x"]}})),
        "payload.pipeline[0].with.x[1]",
        "no closing '}'",
    ),
    (
        _payload(_step("a", **{"with": {"x": "${}"}})),
        "payload.pipeline[0].with.x",
        "empty template",
    ),
    (
        _payload(_foreach("f", [_step("b")], items_path="$.steps.[")),
        "payload.pipeline[0].with.items_path",
        "invalid JMESPath",
    ),
    (
        _payload(_foreach("f", [_step("b")], items="${params.(}")),
        "payload.pipeline[0].with.items",
        "invalid JMESPath",
    ),
    # literal arguments against the tool's input schema
    (
        _payload(
            _step("p", "telegram-mcp.send_message", **{"with": {"chat_id": "x", "text": "hi"}})
        ),
        "payload.pipeline[0].with.chat_id",
        "step 'p': with.chat_id violates the input schema of telegram-mcp.send_message: "
        "'x' is not of type 'integer'",
    ),
    (
        _payload(_step("p", "telegram-mcp.send_message", **{"with": {"chat_id": 1}})),
        "payload.pipeline[0].with.text",
        "'text' is a required property",
    ),
    (
        _payload(_step("p", "telegram-mcp.send_message", **{"with": {"chat_id": "${params.c}"}})),
        "payload.pipeline[0].with.text",
        "'text' is a required property",
    ),
    (
        _payload(
            _step(
                "p", "telegram-mcp.send_message", **{"with": {"chat_id": 0, "text": "${params.t}"}}
            )
        ),
        "payload.pipeline[0].with.chat_id",
        "less than the minimum of 1",
    ),
    (
        _payload(_step("p", "telegram-mcp.send_message", **{"with": {"chat_id": 1, "text": ""}})),
        "payload.pipeline[0].with.text",
        "should be non-empty",
    ),
    (
        _payload(
            _step(
                "p",
                "telegram-mcp.send_message",
                **{"with": {"chat_id": 1, "text": "${params.t}", "extra": 1}},
            )
        ),
        "payload.pipeline[0].with.extra",
        "Additional properties",
    ),
    (
        _payload(
            _step(
                "p",
                "telegram-mcp.send_message",
                **{"with": {"chat_id": 1, "text": "t", "tags": ["${params.a}", "b", "c"]}},
            )
        ),
        "payload.pipeline[0].with.tags",
        "is too long",
    ),
    (
        _payload(
            _step(
                "p",
                "telegram-mcp.send_message",
                **{"with": {"chat_id": 1, "text": "t", "tags": ["abcd"]}},
            )
        ),
        "payload.pipeline[0].with.tags[0]",
        "is too long",
    ),
    (
        _payload(
            _step(
                "p",
                "telegram-mcp.send_message",
                **{"with": {"chat_id": 1, "text": "t", "tags": ["$${x}"]}},
            )
        ),
        "payload.pipeline[0].with.tags[0]",
        "'${x}' is too long",
    ),
    (
        _payload(
            _step(
                "p",
                "telegram-mcp.send_message",
                **{"with": {"chat_id": 1, "text": "t", "options": {"mode": "c"}}},
            )
        ),
        "payload.pipeline[0].with.options.mode",
        "is not one of",
    ),
    (
        _payload(_step("s", "builtin.sleep", **{"with": {"seconds": 4000}})),
        "payload.pipeline[0].with.seconds",
        "builtin.sleep",
    ),
    (
        _payload(
            _foreach(
                "f",
                [
                    _step(
                        "p",
                        "telegram-mcp.send_message",
                        **{"with": {"chat_id": -1, "text": "${item}"}},
                    )
                ],
                items=[1],
            )
        ),
        "payload.pipeline[0].with.body[0].with.chat_id",
        "step 'p'",
    ),
    # pipeline.foreach shape
    (
        _payload(_foreach("f", [_step("b")])),
        "payload.pipeline[0].with",
        "exactly one of 'items_path' and 'items'",
    ),
    (
        _payload(_foreach("f", [_step("b")], items=[1], items_path="params.x")),
        "payload.pipeline[0].with",
        "exactly one of",
    ),
    (
        _payload(_foreach("f", [_step("b")], items_path="")),
        "payload.pipeline[0].with.items_path",
        "'items_path' must be",
    ),
    (
        _payload(_foreach("f", [_step("b")], items=5)),
        "payload.pipeline[0].with.items",
        "'items' must be a list or a template",
    ),
    (
        _payload(_foreach("f", [_step("b")], items=[1], each=1)),
        "payload.pipeline[0].with.each",
        "unknown key 'each' for pipeline.foreach",
    ),
    (
        _payload(_foreach("f", [], items=[1])),
        "payload.pipeline[0].with.body",
        "non-empty list of steps",
    ),
    (
        _payload({"id": "f", "uses": "pipeline.foreach", "with": {"items": [1]}}),
        "payload.pipeline[0].with.body",
        "non-empty list",
    ),
    (
        _payload(_foreach("f", [_step("b")], items=[1], max_parallel=0)),
        "payload.pipeline[0].with.max_parallel",
        "'max_parallel'",
    ),
    (
        _payload(_foreach("f", [_step("b")], items=[1], max_parallel=17)),
        "payload.pipeline[0].with.max_parallel",
        "1..16",
    ),
    (
        _payload({**_foreach("f", [_step("b")], items=[1]), "timeout_seconds": 5}),
        "payload.pipeline[0].timeout_seconds",
        "not allowed on pipeline.foreach",
    ),
    (
        _payload({**_foreach("f", [_step("b")], items=[1]), "idempotency_key": "k"}),
        "payload.pipeline[0].idempotency_key",
        "not allowed on pipeline.foreach",
    ),
    (
        _payload(_foreach("f", [_step("b")], items=list(range(1001)))),
        "payload.pipeline[0].with.items",
        "at most 1000 items",
    ),
    # nesting depth (3 levels of foreach bodies are allowed, not 4)
    (
        _payload(
            _foreach(
                "f1",
                [
                    _foreach(
                        "f2",
                        [_foreach("f3", [_foreach("f4", [_step("x")], items=[1])], items=[1])],
                        items=[1],
                    )
                ],
                items=[1],
            )
        ),
        "payload.pipeline[0].with.body[0].with.body[0].with.body[0].with.body",
        "step 'f4': pipeline.foreach may nest at most 3 levels deep",
    ),
]


@pytest.mark.parametrize(("payload", "field", "message"), INVALID)
def test_invalid_payloads_name_the_field(payload: Any, field: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_payload(payload, TOOLS)
    assert info.value.field == field
    assert message in info.value.message
    assert info.value.status == 422


def test_three_levels_of_foreach_are_allowed() -> None:
    payload = _payload(
        _foreach(
            "f1", [_foreach("f2", [_foreach("f3", [_step("x")], items=[1])], items=[1])], items=[1]
        )
    )
    validate_payload(payload, TOOLS)


@pytest.mark.parametrize(
    ("limits", "payload", "field", "message"),
    [
        (
            Limits(max_steps=2),
            _payload(_step("a"), _step("b"), _step("c")),
            "payload.pipeline[2]",
            "at most 2 steps",
        ),
        (
            Limits(max_steps=3),
            _payload(_step("a"), _foreach("f", [_step("b"), _step("c")], items=[1])),
            "payload.pipeline[1].with.body[1]",
            "at most 3 steps",
        ),
        (
            Limits(max_foreach_items=2),
            _payload(_foreach("f", [_step("b")], items=[1, 2, 3])),
            "payload.pipeline[0].with.items",
            "at most 2 items",
        ),
        (
            Limits(max_depth=1),
            _payload(_foreach("f", [_foreach("g", [_step("b")], items=[1])], items=[1])),
            "payload.pipeline[0].with.body[0].with.body",
            "at most 1 levels",
        ),
        (
            Limits(max_parallel=2),
            _payload(_foreach("f", [_step("b")], items=[1], max_parallel=3)),
            "payload.pipeline[0].with.max_parallel",
            "1..2",
        ),
    ],
)
def test_limits(limits: Limits, payload: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_payload(payload, TOOLS, limits=limits)
    assert info.value.field == field
    assert message in info.value.message


def test_default_limit_allows_fifty_steps() -> None:
    validate_payload(_payload(*[_step(f"s{i}") for i in range(50)]), TOOLS)
    with pytest.raises(ValidationError, match="at most 50 steps"):
        validate_payload(_payload(*[_step(f"s{i}") for i in range(51)]), TOOLS)


def test_field_prefix_is_configurable() -> None:
    with pytest.raises(ValidationError) as info:
        validate_payload(_payload(_step("a", "nope.x")), TOOLS, field="body.payload")
    assert info.value.field == "body.payload.pipeline[0].uses"


def test_foreach_is_known_even_without_a_catalog_entry() -> None:
    tools = {"builtin.echo": BUILTIN_TOOLS["builtin.echo"]}
    validate_payload(_payload(_foreach("f", [_step("b")], items=[1])), tools)


def test_validation_does_not_change_the_payload() -> None:
    payload = copy.deepcopy(FOLLOW_UP)
    validate_payload(payload, TOOLS)
    assert payload == FOLLOW_UP
