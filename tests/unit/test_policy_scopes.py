"""The one tool-scope rule, used at creation and again when a run starts."""

from __future__ import annotations

from typing import Any

import pytest

from ordinaut.pipeline.parse import parse_payload
from ordinaut.policy.scopes import first_missing
from ordinaut.tools.spec import ToolSpec, Transport


def _tool(address: str, *scopes: str) -> ToolSpec:
    return ToolSpec(
        address=address,
        transport=Transport.BUILTIN,
        input_schema={"type": "object"},
        output_schema={},
        scopes=tuple(scopes),
    )


TOOLS = {
    "plain.read": _tool("plain.read"),
    "notify.send": _tool("notify.send", "notify"),
    "mail.send": _tool("mail.send", "notify", "mail"),
}


def _pipeline(*steps: dict[str, Any]) -> Any:
    return parse_payload({"pipeline": list(steps)})


SEND = {"id": "send", "uses": "notify.send", "with": {}}
READ = {"id": "read", "uses": "plain.read", "with": {}}
LOOP = {
    "id": "loop",
    "uses": "pipeline.foreach",
    "with": {"items": [1], "body": [{"id": "mail", "uses": "mail.send", "with": {}}]},
}


@pytest.mark.parametrize(
    ("steps", "held", "step_id", "index", "missing"),
    [
        ((READ,), frozenset(), None, None, None),
        ((READ, SEND), frozenset(), "send", 1, {"notify"}),
        ((READ, SEND), frozenset({"notify"}), None, None, None),
        ((SEND,), frozenset({"agents:admin"}), None, None, None),
        ((READ, LOOP), frozenset({"notify"}), "mail", None, {"mail"}),
        ((LOOP,), frozenset(), "mail", None, {"notify", "mail"}),
    ],
)
def test_first_missing_scope(
    steps: tuple[dict[str, Any], ...],
    held: frozenset[str],
    step_id: str | None,
    index: int | None,
    missing: set[str] | None,
) -> None:
    tools = {**TOOLS, "pipeline.foreach": _tool("pipeline.foreach")}
    found = first_missing(_pipeline(*steps), tools, held)
    if step_id is None:
        assert found is None
    else:
        assert found is not None
        assert (found.step.id, found.index, set(found.scopes)) == (step_id, index, missing)
