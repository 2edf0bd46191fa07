"""Pure parts of approvals and limits: the approval gate, suspension and resume in the
executor, a schedule in words and its shortest gap, and the agent-limit checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ordinaut.errors import ValidationError
from ordinaut.pipeline.executor import DoneStep, Suspended, run_pipeline
from ordinaut.pipeline.gates import approval_gate
from ordinaut.pipeline.validate import validate_payload
from ordinaut.policy.agent_limits import AgentLimits, Proposal, crossed
from ordinaut.scheduling.recurrence import parse_schedule
from ordinaut.scheduling.words import in_words, shortest_gap
from ordinaut.tools.builtin import BUILTIN_TOOLS
from ordinaut.tools.spec import ToolCall, ToolSpec, Transport
from ordinaut.vocabulary import OnExceed, ResumeAction, RunStatus

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
GUARDED = ToolSpec(
    "pay.send", Transport.HTTP, {"type": "object"}, {"type": "object"}, requires_approval=True
)
TOOLS = {**BUILTIN_TOOLS, GUARDED.address: GUARDED}


def run(payload: dict[str, Any], approved: tuple[str, ...] = (), **kw: Any) -> list[str]:
    calls: list[str] = []

    def call_tool(call: ToolCall) -> Any:
        calls.append(call.step_path)
        return dict(call.args)

    run_pipeline(
        validate_payload(payload, TOOLS),
        tools=TOOLS,
        call_tool=call_tool,
        context={"now": T0},
        clock=lambda: T0,
        gate=approval_gate(approved, lambda: T0),
        **kw,
    )
    return calls


def step(step_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "uses": "builtin.echo", "with": {"id": step_id}, **extra}


def test_a_gated_step_stops_the_pipeline_before_its_call() -> None:
    payload = {"pipeline": [step("a", save_as="a"), step("b", approval="required"), step("c")]}
    calls: list[str] = []
    with pytest.raises(Suspended) as stop:
        calls = run(payload)
    got = stop.value.suspension
    assert (got.status, got.step_path, got.input) == (RunStatus.WAITING_APPROVAL, "b", {"id": "b"})
    assert got.resume_at is None and calls == []


def test_a_timeout_sets_resume_at_and_on_timeout_the_action() -> None:
    gated = step("b", approval="required", approval_timeout_seconds=60, on_timeout="approve")
    with pytest.raises(Suspended) as stop:
        run({"pipeline": [gated]})
    got = stop.value.suspension
    assert got.resume_at == T0 + timedelta(seconds=60) and got.on_resume is ResumeAction.APPROVE
    with pytest.raises(Suspended) as stop:
        run({"pipeline": [{**gated, "on_timeout": "reject"}]})
    assert stop.value.suspension.on_resume is ResumeAction.REJECT


def test_a_tool_that_requires_approval_gates_without_a_flag() -> None:
    payload = {"pipeline": [{"id": "pay", "uses": "pay.send", "with": {"n": 1}}]}
    with pytest.raises(Suspended) as stop:
        run(payload)
    assert "tool 'pay.send'" in stop.value.suspension.reason
    assert run(payload, approved=("pay",)) == ["pay"]


def test_a_resumed_pipeline_skips_done_steps_and_keeps_their_saves() -> None:
    payload = {
        "pipeline": [
            step("a", save_as="a"),
            {
                "id": "b",
                "uses": "builtin.echo",
                "with": {"from_a": "${steps.a.id}"},
                "approval": "required",
            },
        ]
    }
    done = {"a": DoneStep("succeeded", {"id": "from the receipt"})}
    assert run(payload, approved=("b",), done=done) == ["b"]  # a is not called again


def test_approval_fields_are_validated() -> None:
    with pytest.raises(ValidationError) as bad:
        validate_payload({"pipeline": [step("a", approval="maybe")]}, TOOLS)
    assert "approval" in (bad.value.field or "")
    with pytest.raises(ValidationError):
        validate_payload({"pipeline": [step("a", approval_timeout_seconds=0)]}, TOOLS)


@pytest.mark.parametrize(
    ("kind", "expr", "words"),
    [
        ("cron", "* * * * *", "every minute (UTC)"),
        ("cron", "*/15 * * * *", "every 15 minutes (UTC)"),
        ("cron", "30 8 * * *", "every day at 08:30 (UTC)"),
        ("cron", "30 8 * * 1,2", "on Mon, Tue at 08:30 (UTC)"),
        ("cron", "30 8 * * 1-5", "on Mon to Fri at 08:30 (UTC)"),
        ("cron", "0 * * * *", "every hour at minute 0 (UTC)"),
        ("cron", "0 9 1 * *", "cron '0 9 1 * *' (UTC)"),
        (
            "rrule",
            "FREQ=WEEKLY;BYDAY=MO,FR;BYHOUR=9;BYMINUTE=5",
            "every week on Mon, Fri at 09:05 (UTC)",
        ),
        ("rrule", "FREQ=MINUTELY;INTERVAL=5", "every 5 minutes (UTC)"),
        ("once", "2030-01-01T09:00:00Z", "once, at 2030-01-01T09:00:00Z (UTC)"),
    ],
)
def test_schedules_in_words(kind: str, expr: str, words: str) -> None:
    assert in_words(kind, expr, "UTC") == words


@pytest.mark.parametrize(
    ("kind", "expr", "gap"),
    [
        ("cron", "* * * * *", timedelta(minutes=1)),
        ("cron", "0,5 9 * * *", timedelta(minutes=5)),  # the shortest gap, not the usual one
        ("cron", "0 9 * * *", timedelta(days=1)),
        ("once", "2030-01-01T09:00:00Z", None),
    ],
)
def test_shortest_gap(kind: str, expr: str, gap: timedelta | None) -> None:
    schedule = parse_schedule(kind, expr, "UTC", created_at=T0)
    assert shortest_gap(schedule, T0) == gap


LIMITS = AgentLimits.model_validate(
    {
        "max_active_tasks": {"value": 2},
        "min_interval_seconds": {"value": 900, "on_exceed": "approve"},
        "allowed_tools": {"value": ["builtin.*", "mail.send_?"]},
    }
)


@pytest.mark.parametrize(
    ("proposal", "names"),
    [
        (Proposal(active_tasks=2, shortest_gap=timedelta(minutes=15), addresses=[]), []),
        (Proposal(active_tasks=3), ["max_active_tasks"]),
        (Proposal(shortest_gap=timedelta(minutes=1)), ["min_interval_seconds"]),
        (Proposal(addresses=["builtin.echo", "mail.send_1"]), []),
        (Proposal(addresses=["mail.send_all"]), ["allowed_tools"]),
        (Proposal(), []),  # what a request does not change is not checked
    ],
)
def test_limits_crossed(proposal: Proposal, names: list[str]) -> None:
    found = crossed(LIMITS, proposal)
    assert [c.limit for c in found] == names
    by_name = {c.limit: c.on_exceed for c in found}
    if "min_interval_seconds" in by_name:
        assert by_name["min_interval_seconds"] is OnExceed.APPROVE
    if "max_active_tasks" in by_name:
        assert by_name["max_active_tasks"] is OnExceed.REJECT  # the default
