"""The pipeline interpreter, driven by an in-memory ``call_tool`` and a ticking clock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ordinaut.errors import StepError, ToolError
from ordinaut.pipeline.executor import (
    Canceled,
    PipelineResult,
    StepRecord,
    run_pipeline,
)
from ordinaut.pipeline.model import Limits
from ordinaut.pipeline.validate import validate_payload
from ordinaut.tools.builtin import BUILTIN_TOOLS
from ordinaut.tools.spec import ToolCall, ToolSpec, Transport

T0 = datetime(2025, 8, 8, 5, 30, tzinfo=UTC)
ANY_OBJECT: dict[str, Any] = {"type": "object"}
SEND_IN = {
    "type": "object",
    "required": ["chat_id", "text"],
    "properties": {"chat_id": {"type": "integer", "minimum": 1}, "text": {"type": "string"}},
}
SEND_OUT = {
    "type": "object",
    "required": ["ok", "ts"],
    "properties": {"ok": {"type": "boolean"}, "ts": {"type": "string", "format": "date-time"}},
}


def _tool(address: str, inp: dict[str, Any] = ANY_OBJECT, out: Any = ANY_OBJECT) -> ToolSpec:
    return ToolSpec(address, Transport.HTTP, inp, out, timeout_seconds=20.0)


TOOLS: dict[str, ToolSpec] = {
    **BUILTIN_TOOLS,
    "t.get": _tool("t.get"),
    "t.list": _tool("t.list", out={"type": "object", "required": ["items"]}),
    "t.send": _tool("t.send", SEND_IN, SEND_OUT),
}
Handler = Callable[[ToolCall], Any]


class FakeTools:
    """An in-memory tool server: records every call, answers from per-address handlers."""

    def __init__(self, **handlers: Handler) -> None:
        self.handlers = handlers
        self.calls: list[ToolCall] = []
        self.lock = threading.Lock()

    def __call__(self, call: ToolCall) -> Any:
        with self.lock:
            self.calls.append(call)
        name = call.address.split(".", 1)[1]
        if name in self.handlers:
            return self.handlers[name](call)
        if name == "send":
            return {"ok": True, "ts": "2025-08-08T08:30:00+03:00", "echo": dict(call.args)}
        return dict(call.args)

    @property
    def paths(self) -> list[str]:
        return [call.step_path for call in self.calls]


class Clock:
    """Deterministic time: each reading is one second after the previous one."""

    def __init__(self) -> None:
        self.now = T0
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            self.now += timedelta(seconds=1)
            return self.now


def run(
    payload: dict[str, Any],
    fake: FakeTools | None = None,
    *,
    context: dict[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[PipelineResult, FakeTools]:
    fake = fake or FakeTools()
    pipeline = validate_payload(payload, TOOLS)
    result = run_pipeline(
        pipeline, tools=TOOLS, call_tool=fake, context=context or {}, clock=Clock(), **kwargs
    )
    return result, fake


def step(step_id: str, uses: str = "t.get", /, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "uses": uses, **extra}


def foreach(step_id: str, body: list[dict[str, Any]], **with_: Any) -> dict[str, Any]:
    return {"id": step_id, "uses": "pipeline.foreach", "with": {"body": body, **with_}}


def payload(*steps: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"params": params or {}, "pipeline": list(steps)}


def test_linear_pipeline_saves_renders_and_records() -> None:
    records: list[StepRecord] = []
    result, fake = run(
        payload(
            step("a", **{"with": {"n": "${params.n}", "list": "${params.list}"}, "save_as": "a"}),
            step(
                "b",
                "t.send",
                **{"with": {"chat_id": "${steps.a.n}", "text": "n=${steps.a.n} ${steps.a.list}"}},
            ),
            params={"n": 7, "list": [1, "ș"]},
        ),
        on_step=records.append,
    )
    assert [c.args for c in fake.calls] == [
        {"n": 7, "list": [1, "ș"]},
        {"chat_id": 7, "text": 'n=7 [1,"ș"]'},
    ]
    assert result.saved == {"a": {"n": 7, "list": [1, "ș"]}}
    assert result.output["echo"] == {"chat_id": 7, "text": 'n=7 [1,"ș"]'}
    assert list(result.steps) == records
    first = records[0]
    assert (first.step_path, first.step_id, first.address, first.status, first.error) == (
        "a", "a", "t.get", "succeeded", None,
    )  # fmt: skip
    assert first.input == {"n": 7, "list": [1, "ș"]}
    assert first.output == {"n": 7, "list": [1, "ș"]}
    assert first.started_at < first.finished_at <= records[1].started_at


@pytest.mark.parametrize(
    ("condition", "runs"),
    [
        ("params.yes", True),
        ("params.no", False),
        ("!(params.no)", True),
        ("!(params.yes)", False),
        ("params.missing", False),
        ("`0`", True),
        ("params.empty", False),
        ("steps.data.items", False),
        ("steps.data.full", True),
        ("length(steps.data.full) > `1`", True),
        ("length(steps.data.full) > `2`", False),
        ("contains(steps.data.full, 'b')", True),
        ("params.n == `3`", True),
        ("event.kind == 'mail'", True),
        ("run.attempt > `1`", False),
    ],
)
def test_conditions(condition: str, runs: bool) -> None:
    result, fake = run(
        payload(
            step("data", **{"with": {"items": [], "full": ["a", "b"]}, "save_as": "data"}),
            step("maybe", **{"if": condition, "save_as": "maybe"}),
            step("after", **{"with": {"x": "${steps.maybe.v || 'skipped'}"}}),
            params={"yes": True, "no": False, "empty": "", "n": 3},
        ),
        context={"event": {"kind": "mail"}, "run": {"attempt": 1}},
    )
    assert ("maybe" in fake.paths) is runs
    assert result.steps[1].status == ("succeeded" if runs else "skipped")
    assert ("maybe" in result.saved) is runs
    assert fake.calls[-1].args == {"x": "skipped"}


def test_a_failing_condition_is_a_step_error() -> None:
    with pytest.raises(StepError) as info:
        run(payload(step("a", **{"if": "length(params.n) > `1`"}), params={"n": 3}))
    assert info.value.field == "if"
    assert info.value.retryable is False


def test_context_roots_and_now() -> None:
    args = {"e": "${event.id}", "r": "${run.id}", "now": "${now}", "p": "${params.p}"}
    _, fake = run(
        payload(step("a", **{"with": args}), params={"p": 1}),
        context={"event": {"id": "e1"}, "run": {"id": "r1"}},
    )
    assert fake.calls[0].args == {"e": "e1", "r": "r1", "now": "2025-08-08T05:30:01+00:00", "p": 1}
    _, fake = run(
        payload(step("a", **{"with": args}), params={"p": 1}),
        context={"event": {"id": 1}, "run": {"id": 2}, "now": T0, "params": {"p": 2}},
    )
    assert fake.calls[0].args == {"e": 1, "r": 2, "now": "2025-08-08T05:30:00+00:00", "p": 2}


FOLLOW_UP: dict[str, Any] = {
    "pipeline": [
        {"id": "scan", "uses": "t.list", "with": {"max_items": 20}, "save_as": "targets"},
        {"id": "loop", "uses": "pipeline.foreach", "with": {
            "items_path": "$.steps.targets.items",
            "body": [
                {"id": "draft", "uses": "t.get", "with": {"text": "Follow-up on ${item.subject}"}, "save_as": "msg"},  # noqa: E501
                {"id": "send", "uses": "t.send", "with": {"chat_id": "${item.id}", "text": "${steps.msg.text}"}, "save_as": "sent"},  # noqa: E501
            ]}, "save_as": "results"},
        {"id": "report", "uses": "t.get", "with": {"count": "${length(steps.results)}"}},
    ]
}  # fmt: skip
TARGETS = {"items": [{"subject": "lunch", "id": 1}, {"subject": "deck", "id": 2}]}


def test_foreach_over_items_path_scopes_saves_per_item() -> None:
    fake = FakeTools(list=lambda call: TARGETS)
    result, fake = run(FOLLOW_UP, fake, idempotency_prefix="task-1:2025-08-08T07:00:00Z")
    assert fake.paths == [
        "scan",
        "loop[0].draft",
        "loop[0].send",
        "loop[1].draft",
        "loop[1].send",
        "report",
    ]
    assert [c.args for c in fake.calls[1:5]] == [
        {"text": "Follow-up on lunch"},
        {"chat_id": 1, "text": "Follow-up on lunch"},
        {"text": "Follow-up on deck"},
        {"chat_id": 2, "text": "Follow-up on deck"},
    ]
    results = result.saved["results"]
    assert [r["msg"] for r in results] == [
        {"text": "Follow-up on lunch"},
        {"text": "Follow-up on deck"},
    ]
    assert [sorted(r) for r in results] == [["msg", "sent"], ["msg", "sent"]]
    assert set(result.saved) == {"targets", "results"}
    assert fake.calls[-1].args == {"count": 2}
    loop = next(r for r in result.steps if r.step_path == "loop")
    assert loop.input == {"items": TARGETS["items"]}
    assert loop.output == results
    assert [r.step_path for r in result.steps] == [
        "scan",
        "loop[0].draft",
        "loop[0].send",
        "loop[1].draft",
        "loop[1].send",
        "loop",
        "report",
    ]
    assert [r.step_id for r in result.steps][1:3] == ["draft", "send"]


@pytest.mark.parametrize(
    ("with_", "expected"),
    [
        ({"items": ["a", "b"]}, ["a", "b"]),
        ({"items": "${params.list}"}, [1, 2, 3]),
        ({"items": ["${params.one}", "x ${params.one}"]}, [1, "x 1"]),
        ({"items_path": "params.list"}, [1, 2, 3]),
        ({"items_path": "$.params.list[?@ > `1`]"}, [2, 3]),
        ({"items_path": "params.empty"}, []),
    ],
)
def test_foreach_items_sources(with_: dict[str, Any], expected: list[Any]) -> None:
    result, fake = run(
        payload(
            {
                **foreach("f", [step("b", **{"with": {"v": "${item}"}, "save_as": "b"})], **with_),
                "save_as": "out",
            },
            params={"list": [1, 2, 3], "one": 1, "empty": []},
        )
    )
    assert [c.args["v"] for c in fake.calls] == expected
    assert result.saved["out"] == [{"b": {"v": v}} for v in expected]


@pytest.mark.parametrize(
    ("with_", "field", "message"),
    [
        ({"items_path": "params.missing"}, "with.items_path", "resolved to nothing"),
        ({"items_path": "params.one"}, "with.items_path", "items must be an array, got number"),
        ({"items": "${params.text}"}, "with.items", "got string"),
        ({"items": "${params.missing}"}, "with.items", "resolved to nothing"),
        ({"items_path": "params.list"}, "with.items_path", "3 items, over the limit of 2"),
    ],
)
def test_foreach_bad_items(with_: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(StepError) as info:
        run(
            payload(
                foreach("f", [step("b")], **with_),
                params={"list": [1, 2, 3], "one": 1, "text": "x"},
            ),
            limits=Limits(max_foreach_items=2),
        )
    assert (info.value.step_id, info.value.field, info.value.retryable) == ("f", field, False)
    assert message in info.value.message


def test_foreach_body_sees_outer_saves_and_nested_items() -> None:
    result, fake = run(
        payload(
            step("cfg", **{"with": {"sig": "-- me"}, "save_as": "cfg"}),
            {**foreach("outer", [
                {**foreach("inner", [step("x", **{"with": {"v": "${item}", "sig": "${steps.cfg.sig}"}, "save_as": "x"})], items_path="item.kids"), "save_as": "inner"},  # noqa: E501
            ], items=[{"kids": [1, 2]}, {"kids": [3]}]), "save_as": "all"},
        )
    )  # fmt: skip
    assert fake.paths == [
        "cfg",
        "outer[0].inner[0].x",
        "outer[0].inner[1].x",
        "outer[1].inner[0].x",
    ]
    assert [c.args for c in fake.calls[1:]] == [{"v": v, "sig": "-- me"} for v in (1, 2, 3)]
    assert result.saved["all"] == [
        {"inner": [{"x": {"v": 1, "sig": "-- me"}}, {"x": {"v": 2, "sig": "-- me"}}]},
        {"inner": [{"x": {"v": 3, "sig": "-- me"}}]},
    ]


def test_max_parallel_runs_items_together_and_keeps_item_order() -> None:
    barrier = threading.Barrier(3, timeout=10)

    def draft(call: ToolCall) -> Any:
        barrier.wait()  # passes only if the three items really run at the same time
        return {"text": f"draft {call.args['n']}"}

    fake = FakeTools(get=draft)
    records: list[StepRecord] = []
    callers: set[int] = set()

    def on_step(record: StepRecord) -> None:
        callers.add(threading.get_ident())
        records.append(record)

    body = [
        step("d", **{"with": {"n": "${item}"}, "save_as": "d"}),
        step("s", "t.send", **{"with": {"chat_id": "${item}", "text": "${steps.d.text}"}}),
    ]
    result, fake = run(
        payload({**foreach("f", body, items=[1, 2, 3], max_parallel=3), "save_as": "out"}),
        fake,
        on_step=on_step,
    )
    assert [r["d"]["text"] for r in result.saved["out"]] == ["draft 1", "draft 2", "draft 3"]
    assert [r.step_path for r in records] == [
        "f[0].d",
        "f[0].s",
        "f[1].d",
        "f[1].s",
        "f[2].d",
        "f[2].s",
        "f",
    ]
    assert callers == {threading.get_ident()}
    assert sorted(fake.paths) == ["f[0].d", "f[0].s", "f[1].d", "f[1].s", "f[2].d", "f[2].s"]


def test_parallel_failure_runs_every_item_and_reports_the_first_by_index() -> None:
    def send(call: ToolCall) -> Any:
        if call.args["chat_id"] in (2, 3):
            raise ToolError(f"chat {call.args['chat_id']} is gone")
        return {"ok": True, "ts": "2025-08-08T08:30:00Z"}

    body = [step("s", "t.send", **{"with": {"chat_id": "${item}", "text": "hi"}})]
    with pytest.raises(StepError) as info:
        run(payload(foreach("f", body, items=[1, 2, 3, 4], max_parallel=2)), FakeTools(send=send))
    assert info.value.step_id == "f[1].s"
    assert "chat 2 is gone" in info.value.message


def _keys(payload_: dict[str, Any], prefix: str) -> list[str]:
    _, fake = run(payload_, FakeTools(list=lambda call: TARGETS), idempotency_prefix=prefix)
    return [call.idempotency_key for call in fake.calls]


def test_default_idempotency_keys_are_prefix_and_step_path() -> None:
    keys = _keys(FOLLOW_UP, "task-1:2025-08-08T07:00:00Z")
    assert keys == [
        "task-1:2025-08-08T07:00:00Z:scan",
        "task-1:2025-08-08T07:00:00Z:loop[0].draft",
        "task-1:2025-08-08T07:00:00Z:loop[0].send",
        "task-1:2025-08-08T07:00:00Z:loop[1].draft",
        "task-1:2025-08-08T07:00:00Z:loop[1].send",
        "task-1:2025-08-08T07:00:00Z:report",
    ]
    assert _keys(FOLLOW_UP, "task-1:2025-08-08T07:00:00Z") == keys  # a retried run reuses them
    assert _keys(FOLLOW_UP, "task-1:2025-08-09T07:00:00Z") != keys  # another occurrence does not
    assert _keys(FOLLOW_UP, "")[:2] == ["scan", "loop[0].draft"]


def test_step_records_carry_the_idempotency_key() -> None:
    result, fake = run(
        payload(step("a", **{"if": "`false`"}), foreach("f", [step("b")], items=[1]), step("c")),
        idempotency_prefix="t:1",
    )
    assert [(r.step_path, r.idempotency_key) for r in result.steps] == [
        ("a", None),
        ("f[0].b", "t:1:f[0].b"),
        ("f", None),
        ("c", "t:1:c"),
    ]
    assert [c.idempotency_key for c in fake.calls] == ["t:1:f[0].b", "t:1:c"]


def test_idempotency_key_template() -> None:
    body = [step("s", idempotency_key="mail-${item.id}-${params.day}")]
    p = payload(
        step("a", idempotency_key="${params.day}"),
        foreach("f", body, items_path="params.items"),
        params={"day": 20250808, "items": [{"id": "x"}, {"id": "y"}]},
    )
    assert _keys(p, "ignored") == ["20250808", "mail-x-20250808", "mail-y-20250808"]
    assert _keys(p, "other") == _keys(p, "ignored")


def test_idempotency_key_template_error_names_the_field() -> None:
    with pytest.raises(StepError) as info:
        run(payload(step("a", idempotency_key="k-${params.missing}")))
    assert info.value.field == "idempotency_key"


def test_timeouts_come_from_the_step_or_the_tool() -> None:
    _, fake = run(payload(step("a", timeout_seconds=3), step("b")))
    assert [c.timeout_seconds for c in fake.calls] == [3.0, 20.0]
    assert [c.step_id for c in fake.calls] == ["a", "b"]


def _flaky(call: ToolCall) -> Any:
    raise ToolError("upstream 503", retryable=True, retry_after=5.0)


def test_tool_error_fails_the_run_keeping_retry_intent() -> None:
    records: list[StepRecord] = []
    with pytest.raises(StepError) as info:
        run(
            payload(step("a", "t.send", **{"with": {"chat_id": 1, "text": "x"}}), step("b")),
            FakeTools(send=_flaky),
            on_step=records.append,
        )
    err = info.value
    assert (err.step_id, err.retryable, err.retry_after) == ("a", True, 5.0)
    assert err.message == "step 'a': upstream 503"
    assert [(r.step_path, r.status, r.error) for r in records] == [
        ("a", "failed", "step 'a': upstream 503")
    ]
    assert records[0].input == {"chat_id": 1, "text": "x"}


def test_on_error_continue_records_the_failure_and_goes_on() -> None:
    result, fake = run(
        payload(
            step(
                "a",
                "t.send",
                on_error="continue",
                save_as="sent",
                **{"with": {"chat_id": 1, "text": "x"}},
            ),
            step("b", **{"with": {"said": "${steps.sent.ok || 'n/a'}"}}),
        ),
        FakeTools(send=_flaky),
    )
    assert [(r.step_path, r.status) for r in result.steps] == [("a", "failed"), ("b", "succeeded")]
    assert result.steps[0].error == "step 'a': upstream 503"
    assert "sent" not in result.saved
    assert fake.calls[-1].args == {"said": "n/a"}
    assert result.output == {"said": "n/a"}


def test_on_error_continue_on_a_foreach_and_inside_its_body() -> None:
    def send(call: ToolCall) -> Any:
        if call.args["chat_id"] == 2:
            raise ToolError("nope")
        return {"ok": True, "ts": "2025-08-08T08:30:00Z"}

    inner = step("s", "t.send", save_as="s", **{"with": {"chat_id": "${item}", "text": "x"}})
    result, _ = run(
        payload(
            {**foreach("f", [{**inner, "on_error": "continue"}], items=[1, 2, 3]), "save_as": "out"}
        ),
        FakeTools(send=send),
    )
    assert [sorted(r) for r in result.saved["out"]] == [["s"], [], ["s"]]
    result, fake = run(
        payload(
            {**foreach("f", [inner], items=[1, 2, 3]), "on_error": "continue", "save_as": "out"},
            step("z"),
        ),
        FakeTools(send=send),
    )
    assert fake.paths == ["f[0].s", "f[1].s", "z"]
    assert [(r.step_path, r.status) for r in result.steps] == [
        ("f[0].s", "succeeded"),
        ("f[1].s", "failed"),
        ("f", "failed"),
        ("z", "succeeded"),
    ]
    assert "out" not in result.saved


@pytest.mark.parametrize(
    ("args", "field", "fragment"),
    [
        (
            {"chat_id": "${params.name}", "text": "x"},
            "with.chat_id",
            "with.chat_id violates the input schema of t.send: 'bob' is not of type 'integer'",
        ),
        ({"chat_id": "${params.zero}", "text": "x"}, "with.chat_id", "less than the minimum"),
        ({"chat_id": 1, "text": "${params.obj}"}, "with.text", "is not of type 'string'"),
        (
            {"chat_id": "${params.half}", "text": "x"},
            "with.chat_id",
            "1.5 is not of type 'integer'",
        ),
    ],
)
def test_input_schema_violation_names_step_and_argument(
    args: dict[str, Any], field: str, fragment: str
) -> None:
    fake = FakeTools()
    with pytest.raises(StepError) as info:
        run(
            payload(
                step("ping", "t.send", **{"with": args}),
                params={"name": "bob", "zero": 0, "half": 1.5, "obj": {}},
            ),
            fake,
        )
    assert (info.value.step_id, info.value.field, info.value.retryable) == ("ping", field, False)
    assert info.value.message.startswith("step 'ping': ")
    assert fragment in info.value.message
    assert fake.calls == []


@pytest.mark.parametrize(
    ("output", "field", "fragment"),
    [
        (
            {"ok": True, "ts": "yesterday"},
            "output.ts",
            "output.ts violates the output schema of t.send: 'yesterday' is not a 'date-time'",
        ),
        ({"ok": True, "ts": "2025-08-08T08:30:00"}, "output.ts", "is not a 'date-time'"),
        ({"ok": "yes", "ts": "2025-08-08T08:30:00Z"}, "output.ok", "is not of type 'boolean'"),
        ({"ts": "2025-08-08T08:30:00Z"}, "output.ok", "'ok' is a required property"),
        (["not", "an", "object"], "output", "is not of type 'object'"),
    ],
)
def test_output_schema_violation_names_step_and_field(
    output: Any, field: str, fragment: str
) -> None:
    records: list[StepRecord] = []
    with pytest.raises(StepError) as info:
        run(
            payload(
                step("ping", "t.send", save_as="sent", **{"with": {"chat_id": 1, "text": "x"}})
            ),
            FakeTools(send=lambda call: output),
            on_step=records.append,
        )
    assert (info.value.step_id, info.value.field, info.value.retryable) == ("ping", field, False)
    assert fragment in info.value.message
    assert records[0].status == "failed"
    assert records[0].output == output


def test_missing_template_value_at_run_time_names_the_field() -> None:
    fake = FakeTools()
    with pytest.raises(StepError) as info:
        run(
            payload(
                step("a", save_as="a"),
                step("b", **{"with": {"deep": ["ok", {"t": "x ${steps.a.nope}"}]}}),
            ),
            fake,
        )
    assert (info.value.step_id, info.value.field) == ("b", "with.deep[1].t")
    assert "${steps.a.nope} resolved to nothing" in info.value.message
    assert fake.paths == ["a"]


def test_unknown_tool_at_run_time() -> None:
    pipeline = validate_payload(payload(step("a")), TOOLS)
    with pytest.raises(StepError) as info:
        run_pipeline(pipeline, tools={}, call_tool=FakeTools(), context={}, clock=Clock())
    assert (info.value.field, info.value.retryable) == ("uses", False)


@pytest.mark.parametrize("cancel_after", [0, 1, 2])
def test_cancellation_between_steps(cancel_after: int) -> None:
    fake = FakeTools()
    records: list[StepRecord] = []
    with pytest.raises(Canceled):
        run(
            payload(step("a"), step("b"), step("c")),
            fake,
            on_step=records.append,
            should_cancel=lambda: len(fake.calls) >= cancel_after,
        )
    assert fake.paths == ["a", "b", "c"][:cancel_after]
    assert [r.step_path for r in records] == ["a", "b", "c"][:cancel_after]


def test_cancellation_inside_a_foreach_body() -> None:
    fake = FakeTools()
    with pytest.raises(Canceled, match=r"f\[1\]\.b"):
        run(
            payload(foreach("f", [step("b")], items=[1, 2, 3])),
            fake,
            should_cancel=lambda: len(fake.calls) >= 1,
        )
    assert fake.paths == ["f[0].b"]


def test_other_exceptions_are_recorded_then_propagate() -> None:
    def boom(call: ToolCall) -> Any:
        raise RuntimeError("bug in a transport")

    records: list[StepRecord] = []
    with pytest.raises(RuntimeError, match="bug in a transport"):
        run(payload(step("a")), FakeTools(get=boom), on_step=records.append)
    assert [(r.status, r.error) for r in records] == [
        ("failed", "RuntimeError: bug in a transport")
    ]


def test_call_tool_gets_its_own_copy_of_the_arguments() -> None:
    def mutate(call: ToolCall) -> Any:
        call.args["list"].append("changed")
        return {}

    p = payload(step("a", **{"with": {"list": "${params.list}"}}), params={"list": [1]})
    result, _ = run(p, FakeTools(get=mutate))
    assert result.steps[0].input == {"list": [1]}


def test_same_inputs_give_the_same_calls_in_the_same_order() -> None:
    first = run(FOLLOW_UP, FakeTools(list=lambda call: TARGETS), idempotency_prefix="p")
    second = run(FOLLOW_UP, FakeTools(list=lambda call: TARGETS), idempotency_prefix="p")
    assert first[1].calls == second[1].calls
    assert first[0] == second[0]


def test_output_is_the_last_succeeded_top_level_step() -> None:
    result, _ = run(payload(step("a", **{"with": {"v": 1}}), step("b", **{"if": "`false`"})))
    assert result.output == {"v": 1}
    result, _ = run(payload(step("a", **{"if": "`false`"})))
    assert result.output is None
    assert result.saved == {}
