"""The executor's byte caps: a step's input and output, and a run's receipts, bounded.

Each test fails the way the issue describes if the caps are gone: the doubling pipeline
runs to the end, amplifying templates build their text, over-cap data reaches a receipt.
"""

from __future__ import annotations

from typing import Any

import pytest

from ordinaut.errors import LimitExceeded, StepError, ToolError
from ordinaut.pipeline.executor import Caps, StepRecord
from tests.unit.test_executor import FakeTools, foreach, payload, run, step

KIB = 1024
MIB = 1024 * KIB


def doubling(seed: int = 100_000, doublings: int = 10) -> dict[str, Any]:
    steps = [step("s0", "builtin.echo", **{"with": {"x": "a" * seed}, "save_as": "s0"})]
    for i in range(1, doublings + 1):
        prev = f"${{steps.s{i - 1}}}"
        steps.append(
            step(f"s{i}", "builtin.echo", **{"with": {"a": prev, "b": prev}, "save_as": f"s{i}"})
        )
    return payload(*steps)


def fails(
    payload_: dict[str, Any], fake: FakeTools | None = None, **kwargs: Any
) -> tuple[LimitExceeded, list[StepRecord], FakeTools]:
    records: list[StepRecord] = []
    fake = fake or FakeTools()
    with pytest.raises(LimitExceeded) as caught:
        run(payload_, fake, on_step=records.append, **kwargs)
    return caught.value, records, fake


def test_doubling_through_references_stops_at_the_input_cap_before_the_call() -> None:
    error, records, fake = fails(doubling())
    # s3's input is 800 kB, s4's would be 1.6 MB: s4 fails before its tool is called
    assert [c.step_path for c in fake.calls] == ["s0", "s1", "s2", "s3"]
    assert error.step_id == "s4" and error.retryable is False and error.code == "limit_exceeded"
    assert error.field == "with"
    assert "limit_exceeded" in error.message and "ORDINAUT_MAX_STEP_INPUT_BYTES" in error.message
    assert str(MIB) in error.message
    failed = records[-1]
    assert (failed.step_path, failed.status, failed.input, failed.output) == (
        "s4",
        "failed",
        None,
        None,
    )


def test_the_caps_are_parameters() -> None:
    _result, fake = run(
        doubling(doublings=5),
        caps=Caps(step_input=8 * MIB, step_output=8 * MIB, run_receipts=64 * MIB),
    )
    assert len(fake.calls) == 6
    error, _, _ = fails(doubling(doublings=5), caps=Caps(step_input=150 * KIB))
    assert error.step_id == "s1"


def test_an_output_over_its_cap_is_dropped_and_never_saved() -> None:
    big = FakeTools(get=lambda call: {"blob": "b" * (2 * MIB)})
    error, records, _ = fails(
        payload(step("a", **{"save_as": "a"}), step("b", **{"with": {"x": "${steps.a}"}})), big
    )
    assert error.step_id == "a" and "ORDINAUT_MAX_STEP_OUTPUT_BYTES" in error.message
    assert error.field == "output"
    assert [(r.step_path, r.status, r.output) for r in records] == [("a", "failed", None)]


def test_on_error_continue_goes_on_without_the_over_cap_output() -> None:
    big = FakeTools(get=lambda call: {"blob": "b" * (2 * MIB)})
    result, _fake = run(
        payload(
            step("a", **{"save_as": "a", "on_error": "continue"}),
            step("b", "builtin.echo", **{"with": {"got": "${steps.a || 'nothing'}"}}),
        ),
        big,
    )
    assert result.output == {"got": "nothing"}


def test_the_run_receipts_cap_counts_every_input_and_output() -> None:
    # each echo step holds 2 x 200 kB (input and output): the fourth passes 1.5 MiB
    steps = [step(f"e{i}", "builtin.echo", **{"with": {"x": "c" * 200_000}}) for i in range(6)]
    error, records, fake = fails(payload(*steps), caps=Caps(run_receipts=MIB + MIB // 2))
    assert error.step_id == "e3" and "ORDINAUT_MAX_RUN_RECEIPT_BYTES" in error.message
    assert len(fake.calls) == 4  # e3's input fit; its output would not
    assert records[-1].output is None


def test_interpolated_text_is_counted_while_it_is_built() -> None:
    # 5,000 references to a 100 kB string inside one text: 500 MB if it were built
    text = "${steps.s0.x}" * 5000
    error, _, fake = fails(
        payload(
            step("s0", "builtin.echo", **{"with": {"x": "a" * 100_000}, "save_as": "s0"}),
            step("s1", "builtin.echo", **{"with": {"t": text}}),
        )
    )
    assert error.step_id == "s1" and error.field == "with.t"
    assert "builds more than" in error.message and "ORDINAUT_MAX_STEP_INPUT_BYTES" in error.message
    assert len(fake.calls) == 1


@pytest.mark.parametrize(
    "expression",
    [
        "join('', [" + ", ".join(["steps.s0.x"] * 5000) + "])",  # one string of 50 MB
        "to_string([" + ", ".join(["steps.s0"] * 5000) + "])",  # JSON text of 50+ MB
        "[" + ", ".join(["reverse(steps.s0.x)"] * 5000) + "]",  # 5,000 new 10 kB strings
        "map(&[" + ", ".join(["@"] * 500) + "], steps.s0.list)",  # 5,000 lists of 500
        "steps.s0.list[*].[" + ", ".join(["@"] * 500) + "]",  # the same as a projection
    ],
    ids=["join", "to_string", "reverse", "map", "projection"],
)
def test_jmespath_that_builds_is_counted_as_it_builds(expression: str) -> None:
    seed = {"x": "a" * 10_000, "list": list(range(5000))}
    error, _, fake = fails(
        payload(
            step("s0", "builtin.echo", **{"with": seed, "save_as": "s0"}),
            step("s1", "builtin.echo", **{"with": {"v": f"${{{expression}}}"}}),
        ),
        caps=Caps(step_input=64 * KIB),
    )
    assert error.step_id == "s1" and "builds more than" in error.message
    assert len(fake.calls) == 1


def test_a_condition_is_bounded_too() -> None:
    condition = "length(join('', [" + ", ".join(["steps.s0.x"] * 5000) + "])) > `0`"
    error, _, _ = fails(
        payload(
            step("s0", "builtin.echo", **{"with": {"x": "a" * 100_000}, "save_as": "s0"}),
            step("s1", "builtin.echo", **{"if": condition, "with": {}}),
        )
    )
    assert error.step_id == "s1" and error.field == "if"


def test_small_templates_are_not_affected() -> None:
    result, _ = run(
        payload(
            step(
                "s0", "builtin.echo", **{"with": {"x": "a" * 1000, "l": [1, 2, 3]}, "save_as": "s0"}
            ),
            step(
                "s1",
                "builtin.echo",
                **{
                    "with": {
                        "j": "${join('-', [steps.s0.x, steps.s0.x])}",
                        "m": "${map(&[@, @], steps.s0.l)}",
                        "t": "n=${steps.s0.l}",
                    }
                },
            ),
        )
    )
    assert result.output == {
        "j": "a" * 1000 + "-" + "a" * 1000,
        "m": [[1, 1], [2, 2], [3, 3]],
        "t": "n=[1,2,3]",
    }


def test_foreach_items_and_results_are_capped() -> None:
    items = [{"s": "i" * 100_000}] * 20  # 2 MB of items (one object, twenty places)
    error, _, fake = fails(
        payload(
            step("s0", "builtin.echo", **{"with": {"items": items}, "save_as": "s0"}),
            foreach(
                "loop",
                [step("e", "builtin.echo", **{"with": {"v": "${item}"}})],
                items_path="steps.s0.items",
            ),
        ),
        caps=Caps(step_input=4 * MIB, step_output=MIB),
    )
    assert error.step_id == "s0" and error.field == "output"
    error, _, fake = fails(
        payload(
            foreach(
                "loop",
                [step("e", "builtin.echo", **{"with": {"v": "${item}"}, "save_as": "e"})],
                items=["x" * 100_000] * 20,
            ),
        ),
        caps=Caps(step_input=4 * MIB, step_output=MIB),
    )
    # every item's step fits; the loop's result (twenty saved outputs) does not
    assert error.step_id == "loop" and error.field == "output"
    assert len(fake.calls) == 20


def test_limit_errors_are_step_errors_that_are_never_retried() -> None:
    error, _, _ = fails(doubling())
    assert isinstance(error, StepError) and not error.retryable and error.retry_after is None


def test_errors_count_toward_the_run_receipts_cap() -> None:
    """Steps that fail with long errors (kept up to 4,096 characters each) under on_error:
    continue fill the run's receipts too; past the cap the next step fails on it."""

    def refuse(call: Any) -> Any:
        raise ToolError("no: " + "x" * 100_000)

    error, records, fake = fails(
        payload(foreach("loop", [step("e", **{"on_error": "continue"})], items=list(range(100)))),
        FakeTools(get=refuse),
        caps=Caps(run_receipts=64 * KIB),
    )
    # 16 errors of 4,096 characters fill 64 KiB: from the 17th item on, each step fails on the
    # cap before its call, and so does the loop's own result
    assert len(fake.calls) == 16
    limited = [r for r in records if r.error and "ORDINAUT_MAX_RUN_RECEIPT_BYTES" in r.error]
    assert limited[0].step_path == "loop[16].e" and len(limited) == 100 - 16 + 1
    assert error.step_id == "loop"
