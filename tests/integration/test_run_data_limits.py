"""Reading runs stays small: lists are summaries, large step data is truncated with a marker
and served whole by ``GET /runs/{id}/steps/{step_path}/{part}`` (and MCP ``get_step_data``),
and an event payload over its cap is refused. Runs are executed in-process (execute_run)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut import limits
from ordinaut.store.tables import outbox, step_result, task_run
from tests.integration.conftest import Api, serve
from tests.integration.test_mcp_http import admin_token, mcp_session
from tests.integration.test_tools_http import drive, start_run

BIG = "b" * 100_000  # over the 64 KiB shown inline, under the 1 MiB step caps


def big_run(api: Api, engine: Engine) -> tuple[str, str]:
    """A succeeded run whose step ``s0`` has a 100 kB input and output; (task id, run id)."""
    task_id = start_run(
        api,
        [
            {"id": "s0", "uses": "builtin.echo", "with": {"x": BIG}, "save_as": "s0"},
            {"id": "s1", "uses": "builtin.echo", "with": {"n": 1}},
        ],
    )
    outcome = drive(engine, api)
    assert outcome.status == "succeeded"
    return task_id, str(outcome.run_id)


def test_large_step_data_is_truncated_in_the_run_and_served_whole(api: Api, engine: Engine) -> None:
    task_id, run_id = big_run(api, engine)

    listed = api.admin.get("/runs", params={"task_id": task_id}).json()["items"]
    assert [r["id"] for r in listed] == [run_id]
    assert "output" not in listed[0] and "steps" not in listed[0]

    run = api.admin.get(f"/runs/{run_id}").json()
    s0, s1 = run["steps"]
    for shown in (s0["input"], s0["output"]):
        assert shown["truncated"] is True
        assert shown["bytes"] > limits.INLINE_STEP_DATA_BYTES
        assert len(shown["preview"]) == limits.PREVIEW_CHARS
        assert shown["preview"].startswith('{"x": "bbb')
    assert s1["input"] == s1["output"] == {"n": 1}  # small data as it is
    assert run["output"] == {"n": 1}

    whole = api.admin.get(f"/runs/{run_id}/steps/s0/output")
    assert whole.status_code == 200, whole.text
    body = whole.json()
    assert body["value"] == {"x": BIG} and body["part"] == "output" and body["attempt"] == 1
    assert body["bytes"] == s0["output"]["bytes"]
    assert api.admin.get(f"/runs/{run_id}/steps/s0/input").json()["value"] == {"x": BIG}

    # the same from MCP
    async def over_mcp() -> Any:
        async with mcp_session(api.base_url, admin_token(api)) as s:
            got = await s.call_tool(
                "get_step_data", {"run_id": run_id, "step_path": "s0", "part": "output"}
            )
            page = await s.call_tool("list_runs", {"task_id": task_id})
            return got.structured_content, page.structured_content

    got, page = anyio.run(over_mcp)
    assert got is not None and got["value"] == {"x": BIG}
    assert page is not None and "output" not in page["items"][0]

    assert api.admin.get(f"/runs/{run_id}/steps/nope/output").status_code == 404
    bad = api.admin.get(f"/runs/{run_id}/steps/s0/everything")
    assert bad.status_code == 422 and "part" in bad.text


def test_step_data_has_the_run_s_scopes_and_ownership(api: Api, engine: Engine) -> None:
    _, run_id = big_run(api, engine)
    stranger = api.agent("stranger", ["runs:read"])
    assert stranger.get(f"/runs/{run_id}").status_code == 404
    assert stranger.get(f"/runs/{run_id}/steps/s0/output").status_code == 404
    blind = api.agent("blind", ["tasks:read"])
    assert blind.get(f"/runs/{run_id}/steps/s0/output").status_code == 403


def test_rows_from_before_the_caps_cannot_swamp_the_api(api: Api, engine: Engine) -> None:
    """A 20 MB output written before the caps existed: the run shows a marker, the step
    data endpoint refuses it (413), and neither answer carries it."""
    _, run_id = big_run(api, engine)
    huge = {"blob": "h" * 20_000_000}
    with engine.begin() as conn:
        conn.execute(
            sa.update(step_result)
            .where(step_result.c.run_id == run_id, step_result.c.step_id == "s1")
            .values(output=huge)
        )
        conn.execute(sa.update(task_run).where(task_run.c.id == run_id).values(output=huge))
    shown = api.admin.get(f"/runs/{run_id}")
    assert shown.status_code == 200 and len(shown.content) < 64 * 1024
    assert shown.json()["output"]["bytes"] == len(json.dumps(huge))
    assert shown.json()["steps"][1]["output"]["truncated"] is True
    listed = api.admin.get("/runs")
    assert len(listed.content) < 8 * 1024
    refused = api.admin.get(f"/runs/{run_id}/steps/s1/output")
    assert refused.status_code == 413 and len(refused.content) < 1024
    assert refused.json()["error"]["field"] == "part"


def test_event_payload_over_its_cap_is_refused(api: Api, engine: Engine) -> None:
    cap = api.settings.max_event_payload_bytes
    fits = {"x": "e" * (cap - 20)}
    assert api.admin.post("/events", json={"topic": "t", "payload": fits}).status_code == 202
    over = api.admin.post("/events", json={"topic": "t", "payload": {"x": "e" * cap}})
    assert over.status_code == 413
    error = over.json()["error"]
    assert error["field"] == "payload" and "ORDINAUT_MAX_EVENT_PAYLOAD_BYTES" in error["message"]

    # the cap is a setting; what it refuses leaves no event behind
    small = api.settings.model_copy(update={"max_event_payload_bytes": 2048})
    with serve(small) as base, httpx.Client(base_url=base, headers=api.admin.headers) as client:
        refused = client.post("/events", json={"topic": "t", "payload": {"x": "e" * 3000}})
        assert refused.status_code == 413
        assert client.post("/events", json={"topic": "t", "payload": {"x": "e"}}).status_code == 202
    with engine.connect() as conn:
        sizes = conn.execute(
            sa.select(sa.func.length(sa.cast(outbox.c.payload, sa.Text))).where(
                outbox.c.topic == "event.external.t"
            )
        ).all()
    # the two accepted, none of the refused
    assert len(sizes) == 2 and max(size for (size,) in sizes) < cap + 1024
