"""``GET /agenda`` and the ``agenda`` CLI: the caller's fires in order, checked inputs, paging."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

import pytest
import sqlalchemy as sa

from ordinaut.runtime import Runtime
from ordinaut.scheduling.planning import schedule_of
from ordinaut.service.facade import Service
from tests.integration.conftest import Api
from tests.integration.test_api_tasks import task_body


def test_the_agenda_lists_the_callers_fires_in_order_and_pages(api: Api) -> None:
    alice = api.agent("alice", ["tasks:read", "tasks:write"])
    bob = api.agent("bob", ["tasks:read", "tasks:write"])
    hourly = alice.post(
        "/tasks", json=task_body(title="hourly", schedule_kind="cron", schedule_expr="0 * * * *")
    ).json()
    alice.post("/tasks", json=task_body(title="briefing"))
    paused = alice.post(
        "/tasks", json=task_body(title="paused", schedule_kind="cron", schedule_expr="* * * * *")
    ).json()
    assert alice.post(f"/tasks/{paused['id']}/pause").status_code == 200
    bob.post(
        "/tasks", json=task_body(title="bob's", schedule_kind="cron", schedule_expr="0 * * * *")
    )

    start = datetime.now(UTC)
    end = start + timedelta(days=7)
    window = {"from": start.isoformat(), "to": end.isoformat(), "tz": "Asia/Tokyo"}
    whole = alice.get("/agenda", params=window)
    assert whole.status_code == 200, whole.text
    items = whole.json()["items"]
    assert {i["title"] for i in items} == {"hourly", "briefing"}  # not paused, not bob's
    assert [i["at"] for i in items] == sorted(i["at"] for i in items)
    # the hourly task's fires are its schedule's occurrences, shown in the asked zone
    schedule = schedule_of("cron", "0 * * * *", "Europe/Chisinau", start)
    expected = [o.utc for o in islice(schedule.iter_after(start), 7 * 24)]
    mine = [datetime.fromisoformat(i["at"]) for i in items if i["task_id"] == hourly["id"]]
    assert mine == [e for e in expected if e < end]
    assert items[0]["local"].endswith("+09:00")

    # pages of 25 give the same items, once each
    paged: list[dict[str, object]] = []
    params = dict(window, limit="25")
    while True:
        page = alice.get("/agenda", params=params).json()
        paged.extend(page["items"])
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert paged == items

    # the admin sees every agent's active tasks
    titles = {i["title"] for i in api.admin.get("/agenda", params=window).json()["items"]}
    assert titles == {"hourly", "briefing", "bob's"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "to"),
        ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to"),
        ({"from": "2026-01-01T00:00:00"}, "from"),
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"limit": "10001"}, "limit"),
    ],
)
def test_bad_agenda_queries_are_422_naming_the_field(
    api: Api, params: dict[str, str], field: str
) -> None:
    resp = api.admin.get("/agenda", params=params)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["field"] == field


def test_the_cli_prints_the_agenda(api: Api) -> None:
    api.admin.post(
        "/tasks",
        json=task_body(title="every hour", schedule_kind="cron", schedule_expr="0 * * * *"),
    )
    token = api.admin.headers["Authorization"].removeprefix("Bearer ")
    env = dict(os.environ, ORDINAUT_URL=api.base_url, ORDINAUT_TOKEN=token)
    out = subprocess.run(
        [sys.executable, "-m", "ordinaut.cli", "agenda", "--tomorrow", "--tz", "UTC"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["LOCAL", "TITLE"]
    assert len(lines) == 1 + 24 and all("every hour" in line for line in lines[1:])


def test_the_agenda_reads_tasks_in_chunks_only_as_far_as_the_page_needs(api: Api) -> None:
    for minute in range(40):  # forty hourly tasks, one at each of forty minutes
        hourly = {"schedule_kind": "cron", "schedule_expr": f"{minute} * * * *"}
        body = task_body(title=f"m{minute}", **hourly)
        assert api.admin.post("/tasks", json=body).status_code == 201
    settings = api.settings.model_copy(update={"agenda_chunk": 4})
    svc = Service(Runtime(settings), kick_dispatch=lambda: None)
    reads: list[int] = []

    @sa.event.listens_for(svc.runtime.engine, "after_cursor_execute")
    def counted(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "AS earliest" in statement:
            reads.append(cursor.rowcount)

    try:
        admin = svc.authenticate(api.admin.headers["Authorization"].removeprefix("Bearer "))
        # a page of 3 needs 4 fires (the 4th says more follow): the first chunk of 4 tasks,
        # and the next chunk to see that its first task fires after them
        page = svc.agenda(admin, limit=3)
        assert len(page.items) == 3 and page.next_cursor is not None
        assert reads == [4, 4]
        reads.clear()
        whole = svc.agenda(admin, limit=10_000)  # every task: ten chunks, then an empty one
        assert reads == [4] * 10 + [0]
        assert [i.at for i in whole.items] == sorted(i.at for i in whole.items)
        assert len(whole.items) == 40 * 24
        assert whole.items[:3] == page.items
        rest = svc.agenda(admin, limit=10_000, cursor=page.next_cursor)
        assert page.items + rest.items == whole.items

        # the chunks share one snapshot: a task snoozed (moved later) between two chunk
        # reads is not read twice, at its old and its new place
        first_task = whole.items[0].task_id
        snoozed: list[int] = []

        @sa.event.listens_for(svc.runtime.engine, "after_cursor_execute")
        def snooze_once(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            if "AS earliest" in statement and not snoozed:
                moved = api.admin.post(f"/tasks/{first_task}/snooze", json={"seconds": 1800})
                snoozed.append(moved.status_code)

        again = svc.agenda(admin, limit=10_000)
        assert snoozed == [200]
        assert again.items == whole.items
    finally:
        svc.runtime.close()
