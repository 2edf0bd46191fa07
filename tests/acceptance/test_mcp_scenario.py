"""An agent's whole task lifecycle over MCP, on real processes (API, beat, worker), both transports.

The agent previews "weekdays at 08:30", creates that RRULE task, runs it now and waits for
the worker to finish the run, reads the run's receipt, then snoozes, pauses and cancels the
task. Over HTTP the client talks to /mcp of the stack's API; over stdio it spawns
``python -m ordinaut.cli mcp`` with the test's settings and ``ORDINAUT_TOKEN``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from ordinaut.service.facade import OPERATIONS
from tests.acceptance.conftest import Stack
from tests.support import settings_env, text_of

WEEKDAYS_0830 = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8;BYMINUTE=30"
TZ = "Europe/Chisinau"


@asynccontextmanager
async def over_http(stack: Stack) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {stack.token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(f"{stack.base_url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


@asynccontextmanager
async def over_stdio(stack: Stack, errlog: Path) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "ordinaut.cli", "mcp"],
        env=settings_env(stack.settings, ORDINAUT_TOKEN=stack.token),
    )
    with errlog.open("w") as err:
        async with (
            stdio_client(params, errlog=err) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


async def call(s: ClientSession, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await s.call_tool(tool, args)
    assert not result.is_error, (tool, result.content)
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result.structured_content
    text = text_of(result.content[0])
    assert isinstance(text, str)
    return text


async def scenario(s: ClientSession) -> None:
    assert sorted(t.name for t in (await s.list_tools()).tools) == sorted(OPERATIONS)

    preview = await call(
        s, "preview_schedule", {"kind": "rrule", "expr": WEEKDAYS_0830, "tz": TZ, "count": 5}
    )
    locals_ = [datetime.fromisoformat(o["local"]) for o in preview["occurrences"]]
    assert len(locals_) == 5
    assert all(t.weekday() < 5 and (t.hour, t.minute) == (8, 30) for t in locals_)
    assert all(o["utc"].endswith("Z") for o in preview["occurrences"])

    message = {"message": "good morning", "n": 3}
    task = await call(
        s,
        "create_task",
        {
            "title": "Morning briefing",
            "schedule_kind": "rrule",
            "schedule_expr": WEEKDAYS_0830,
            "timezone": TZ,
            "payload": {"pipeline": [{"id": "greet", "uses": "builtin.echo", "with": message}]},
        },
    )
    task_id = task["id"]
    assert task["status"] == "active"
    assert task["next_run"]["local"] == preview["occurrences"][0]["local"]

    queued = await call(s, "run_now", {"task_id": task_id})
    assert queued["task_id"] == task_id

    deadline = time.monotonic() + 30
    while True:
        page = await call(s, "list_runs", {"task_id": task_id})
        done = [r for r in page["items"] if r["status"] in ("succeeded", "failed")]
        if done:
            break
        assert time.monotonic() < deadline, f"no finished run after 30 s: {page['items']}"
        await anyio.sleep(0.2)
    assert [(r["status"], r["trigger"]) for r in done] == [("succeeded", "manual")]
    run = await call(s, "get_run", {"run_id": done[0]["id"]})
    assert [(st["step_id"], st["status"], st["output"]) for st in run["steps"]] == [
        ("greet", "succeeded", message)
    ]

    snoozed = await call(s, "snooze_task", {"task_id": task_id, "seconds": 3600})
    before = datetime.fromisoformat(task["next_run_at"])
    assert datetime.fromisoformat(snoozed["next_run_at"]) == before + timedelta(hours=1)
    paused = await call(s, "pause_task", {"task_id": task_id})
    assert paused["status"] == "paused"
    canceled = await call(s, "cancel_task", {"task_id": task_id})
    assert (canceled["status"], canceled["next_run_at"]) == ("canceled", None)
    refused = await s.call_tool("run_now", {"task_id": task_id})
    assert error_text(refused) == "status: task is canceled"
    assert (await call(s, "get_task", {"task_id": task_id}))["status"] == "canceled"


def test_task_lifecycle_over_streamable_http(stack: Stack) -> None:
    async def main() -> None:
        async with over_http(stack) as session:
            await scenario(session)

    anyio.run(main)


def test_task_lifecycle_over_stdio(stack: Stack, log_dir: Path) -> None:
    async def main() -> None:
        async with over_stdio(stack, log_dir / "mcp-stdio.log") as session:
            await scenario(session)

    anyio.run(main)
