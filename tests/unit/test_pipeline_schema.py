"""The pipeline's JSON Schema says what the parser accepts: same verdicts, stated limits."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ordinaut.errors import ValidationError
from ordinaut.pipeline.model import DEFAULT_LIMITS, MAX_KEY_TEMPLATE, MAX_TIMEOUT_SECONDS
from ordinaut.pipeline.parse import parse_payload
from ordinaut.pipeline.schema import DIALECT, pipeline_schema

SCHEMA = pipeline_schema()
CHECKER = jsonschema.Draft202012Validator(SCHEMA)


def _step(step_id: str, uses: str = "builtin.echo", /, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "uses": uses, **extra}


def _loop(step_id: str, body: list[Any], **with_: Any) -> dict[str, Any]:
    return {"id": step_id, "uses": "pipeline.foreach", "with": {"body": body, **with_}}


def _payload(*steps: Any, **extra: Any) -> dict[str, Any]:
    return {"pipeline": list(steps), **extra}


def _nested(levels: int) -> dict[str, Any]:
    """``levels`` foreach steps, each the only body step of the one before."""
    step = _step("x")
    for level in range(levels, 0, -1):
        step = _loop(f"f{level}", [step], items=[1])
    return step


ACCEPTED: list[Any] = [
    _payload(_step("a")),
    _payload(_step("a", **{"with": {"x": "${params.x}"}}), params={"x": 1}),
    _payload(
        _step(
            "b",
            **{
                "if": "params.go",
                "save_as": "out",
                "timeout_seconds": 2.5,
                "idempotency_key": "k-${now}",
                "on_error": "continue",
                "retry": {"max_retries": 0, "backoff": "none"},
            },
        )
    ),
    _payload(_step("a", **{"if": None, "save_as": None, "retry": None, "timeout_seconds": None})),
    _payload(_loop("f", [_step("b")], items=[1, 2], max_parallel=16)),
    _payload(_loop("f", [_step("b")], items="${params.list}")),
    _payload(_loop("f", [_step("b")], items_path="$.steps.x.items")),
    _payload(_nested(DEFAULT_LIMITS.max_depth)),
    _payload(
        {**_loop("f", [_loop("g", [_step("c")], items="${item}")], items=[[1]]), "save_as": "r"}
    ),
    _payload(*[_step(f"s{i}") for i in range(DEFAULT_LIMITS.max_steps)]),
]

# payloads the parser refuses for their shape; the schema must refuse them too
SHAPE_ERRORS: list[Any] = [
    [],
    {},
    _payload(),
    {"pipeline": {}},
    _payload(_step("a"), params=[1]),
    _payload(_step("a"), extra=1),
    _payload("step"),
    _payload({"uses": "builtin.echo"}),
    _payload(_step("has space")),
    _payload(_step("x" * 65)),
    _payload({"id": "a"}),
    _payload(_step("a", "")),
    _payload(_step("a", retries=3)),
    _payload(_step("a", **{"with": [1]})),
    _payload(_step("a", **{"if": ""})),
    _payload(_step("a", **{"if": "   "})),
    _payload(_step("a", **{"if": "\x1c"})),  # whitespace to Python's re and str.strip
    _payload(_step("a", save_as="a b")),
    _payload(_step("a", on_error="ignore")),
    _payload(_step("a", on_error=None)),
    _payload(_step("a", timeout_seconds=0)),
    _payload(_step("a", timeout_seconds=MAX_TIMEOUT_SECONDS + 1)),
    _payload(_step("a", timeout_seconds="5")),
    _payload(_step("a", timeout_seconds=True)),
    _payload(_step("a", idempotency_key="")),
    _payload(_step("a", idempotency_key="k" * (MAX_KEY_TEMPLATE + 1))),
    _payload(_step("a", retry=3)),
    _payload(_step("a", retry={})),
    _payload(_step("a", retry={"max_retries": -1})),
    _payload(_step("a", retry={"max_retries": True})),
    _payload(_step("a", retry={"max_retries": 1, "backoff": "linear"})),
    _payload(_step("a", retry={"max_retries": 1, "base": 2})),
    _payload(_loop("f", [_step("b")])),
    _payload(_loop("f", [_step("b")], items=[1], items_path="params.x")),
    _payload(_loop("f", [_step("b")], items_path="")),
    _payload(_loop("f", [_step("b")], items_path=None)),
    _payload(_loop("f", [_step("b")], items=5)),
    _payload(_loop("f", [_step("b")], items=None)),
    _payload(_loop("f", [_step("b")], items=[1], each=1)),
    _payload(_loop("f", [], items=[1])),
    _payload({"id": "f", "uses": "pipeline.foreach", "with": {"items": [1]}}),
    _payload({"id": "f", "uses": "pipeline.foreach"}),
    _payload({"id": "f", "uses": "pipeline.foreach", "with": []}),
    _payload(_loop("f", [_step("b")], items=[1], max_parallel=0)),
    _payload(_loop("f", [_step("b")], items=[1], max_parallel=DEFAULT_LIMITS.max_parallel + 1)),
    _payload({**_loop("f", [_step("b")], items=[1]), "timeout_seconds": 5}),
    _payload({**_loop("f", [_step("b")], items=[1]), "idempotency_key": "k"}),
    _payload(_loop("f", [_step("b")], items=list(range(DEFAULT_LIMITS.max_foreach_items + 1)))),
    _payload(_loop("f", [{"id": "b", "uses": "x", "wiht": {}}], items=[1])),
    _payload(*[_step(f"s{i}") for i in range(DEFAULT_LIMITS.max_steps + 1)]),
]

# rules across steps that a JSON Schema cannot state: the parser alone refuses these
CROSS_STEP_ERRORS: list[tuple[Any, str]] = [
    (_payload(_step("a"), _step("a")), "duplicate step id"),
    (_payload(_step("a"), _loop("f", [_step("a")], items=[1])), "duplicate step id"),
    (
        _payload(
            *[_step(f"s{i}") for i in range(DEFAULT_LIMITS.max_steps - 1)],
            _loop("f", [_step("b")], items=[1]),
        ),
        "at most 50 steps",
    ),
    (_payload(_nested(4)), "may nest at most 3 levels deep"),
]


@pytest.mark.parametrize("payload", ACCEPTED)
def test_both_accept(payload: Any) -> None:
    parse_payload(payload)
    CHECKER.validate(payload)


@pytest.mark.parametrize("payload", SHAPE_ERRORS)
def test_both_refuse(payload: Any) -> None:
    with pytest.raises(ValidationError):
        parse_payload(payload)
    assert not CHECKER.is_valid(payload)


@pytest.mark.parametrize(("payload", "message"), CROSS_STEP_ERRORS)
def test_rules_across_steps_are_the_parsers_alone(payload: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_payload(payload)
    CHECKER.validate(payload)


def test_the_schema_is_2020_12_and_states_the_default_limits() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == DIALECT
    defs = SCHEMA["$defs"]
    assert SCHEMA["properties"]["pipeline"]["maxItems"] == DEFAULT_LIMITS.max_steps
    loop = defs["Foreach"]["properties"]
    assert loop["body"]["maxItems"] == DEFAULT_LIMITS.max_steps
    assert loop["max_parallel"]["maximum"] == DEFAULT_LIMITS.max_parallel
    assert loop["items"]["anyOf"][0]["maxItems"] == DEFAULT_LIMITS.max_foreach_items
    assert defs["ForeachStep"]["properties"]["uses"]["const"] == "pipeline.foreach"
    assert defs["ToolStep"]["properties"]["uses"]["not"] == {"const": "pipeline.foreach"}


def test_every_property_is_described_for_the_agents_that_read_it() -> None:
    objects = [SCHEMA, *(d for d in SCHEMA["$defs"].values() if d.get("type") == "object")]
    assert len(objects) == 5  # the root (Pipeline), ToolStep, ForeachStep, Foreach, StepRetry
    for node in objects:
        assert node.get("description"), node.get("title")
        for name, prop in node["properties"].items():
            assert len(prop.get("description", "")) > 15, (node.get("title"), name)
            assert "title" not in prop, name  # pydantic's titles only repeat the name


def test_schema_is_a_fresh_copy_each_time() -> None:
    first = pipeline_schema()
    first["$defs"].clear()
    assert pipeline_schema() == SCHEMA


# --- property: on any payload, the parser and the schema give the same verdict ----------------

_CROSS_STEP = ("duplicate step id", f"at most {DEFAULT_LIMITS.max_steps} steps", "may nest at most")
_SOMETHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 5000),
    # JSON Schema counts 2.0 as an integer, the parser does not: leave integral floats out
    st.floats(-1, 5000, allow_nan=False).filter(lambda f: not f.is_integer()),
    st.sampled_from(["", " ", "\t", "a", "a b", "x" * 300, "$.", "${params.x}", "fixed"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["k", "body"]), st.integers(), max_size=2),
)


def _one_source(loop: Any) -> Any:
    """Turn the drawn ``source`` into its key (a second source stays: a fault to find)."""
    if not isinstance(loop, dict) or "source" not in loop:
        return loop
    loop = dict(loop)
    key, value = loop.pop("source")
    return {key: value, **loop}


def _maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a ``valid`` value, one time in twenty anything at all."""
    return st.integers(0, 19).flatmap(lambda n: _SOMETHING if n == 0 else valid)


def _object(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[Any]:
    """An object with these keys, one time in twenty with an unknown key as well."""
    known = st.fixed_dictionaries(required, optional=optional)
    extra = st.dictionaries(st.just("bogus"), _SOMETHING, max_size=1)
    return _maybe(
        st.tuples(known, st.integers(0, 19), extra).map(
            lambda t: {**t[0], **t[2]} if t[1] == 0 else t[0]
        )
    )


_IDS = _maybe(st.text("abcdefgh_-", min_size=1, max_size=4))
_RETRY = _object(
    {"max_retries": _maybe(st.integers(0, 100))},
    {"backoff": _maybe(st.sampled_from(["fixed", "none", None]))},
)
_COMMON = {
    "if": _maybe(st.sampled_from(["params.go", "length(steps.a) > `0`", None])),
    "save_as": _maybe(st.sampled_from(["out", "a-b_1", None])),
    "on_error": _maybe(st.sampled_from(["fail", "continue"])),
    "retry": _RETRY,
}
_STEPS: st.SearchStrategy[Any] = st.deferred(
    lambda: _maybe(st.lists(st.one_of(_TOOL_STEP, _TOOL_STEP, _LOOP_STEP), min_size=1, max_size=3))
)
_TOOL_STEP: st.SearchStrategy[Any] = _object(
    {"id": _IDS, "uses": _maybe(st.sampled_from(["builtin.echo", "llm.plan"]))},
    {
        **_COMMON,
        "with": _maybe(st.dictionaries(st.sampled_from(["x", "y"]), _SOMETHING, max_size=2)),
        "timeout_seconds": _maybe(st.floats(0.001, 3600) | st.integers(1, 3600)),
        "idempotency_key": _maybe(st.sampled_from(["k", "k-${now}"])),
    },
)
_LOOP = _object(
    {
        "body": _STEPS,
        "source": st.sampled_from(
            [("items_path", "steps.a.items"), ("items_path", "$.params.l"), ("items", [1])]
        ),
    },
    {
        "items": _maybe(st.just("${params.list}")),
        "max_parallel": _maybe(st.integers(1, 16)),
    },
).map(_one_source)
_LOOP_STEP: st.SearchStrategy[Any] = _object(
    {"id": _IDS, "uses": st.just("pipeline.foreach"), "with": _LOOP},
    {**_COMMON, "timeout_seconds": _maybe(st.nothing())},
)
_PAYLOADS = _object(
    {"pipeline": _STEPS},
    {"params": _maybe(st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))},
)


@given(_PAYLOADS)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_parser_and_schema_agree_on_any_payload(payload: Any) -> None:
    try:
        parse_payload(payload)
        problem = None
    except ValidationError as exc:  # anything else would be a 500 at the API
        problem = exc.message
    if problem is None or any(rule in problem for rule in _CROSS_STEP):
        CHECKER.validate(payload)  # valid shape: only cross-step rules can fail
    else:
        assert not CHECKER.is_valid(payload), problem
