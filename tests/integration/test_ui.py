"""The dashboard over HTTP (no browser): sign-in cookie, CSRF on every form, what a token may
see, and actions that change the task only through the service."""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordinaut.config import Settings
from ordinaut.runs.budgets import decision
from ordinaut.store import queries
from ordinaut.store.tables import task_run
from tests.integration.conftest import Api
from tests.integration.test_api_runs_agents import add_run
from tests.integration.test_api_tasks import task_body
from tests.integration.test_event_feed import push, sse_events

OPEN: list[httpx.Client] = []
QUIET = "quiet hours 22:00\u201308:00 Europe/Chisinau until 08:00"  # as policy.describe says


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


def browser(api: Api) -> httpx.Client:
    """A browser-like client: keeps cookies, closed after the test."""
    client = httpx.Client(base_url=api.base_url, timeout=10)
    OPEN.append(client)
    return client


def signed_in(api: Api, token: str) -> httpx.Client:
    """A browser-like client signed in with ``token``."""
    client = browser(api)
    form = client.get("/ui/login")
    assert form.status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf
    done = client.post("/ui/login", data={"token": token, "csrf": csrf.group(1)})
    assert done.status_code == 303, done.text
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    return client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def labelled(html: str) -> None:
    """Every visible form field has a label naming it (screen readers, keyboard users)."""
    labels = set(re.findall(r'<label for="([^"]+)"', html))
    fields = re.findall(r"<(?:input|select|textarea)\b([^>]*)>", html)
    for attrs in fields:
        if 'type="hidden"' in attrs:
            continue
        field_id = re.search(r'id="([^"]+)"', attrs)
        assert field_id and field_id.group(1) in labels, f"unlabelled field: {attrs}"
    assert '<html lang="en">' in html and 'name="viewport"' in html


def token_of(client: httpx.Client) -> str:
    return client.headers["Authorization"].removeprefix("Bearer ")


def test_sign_in_needs_the_forms_csrf_and_a_valid_token(api: Api) -> None:
    anon = browser(api)
    assert anon.get("/ui/").headers["location"] == "/ui/login"
    anon.get("/ui/login")
    no_csrf = anon.post("/ui/login", data={"token": token_of(api.admin), "csrf": "x"})
    assert no_csrf.status_code == 403 and "session" not in no_csrf.headers.get("set-cookie", "")
    form = anon.get("/ui/login")
    labelled(form.text)
    wrong = anon.post("/ui/login", data={"token": "ord_nope", "csrf": csrf_of(form.text)})
    assert wrong.status_code == 401
    assert "ordinaut_session" not in wrong.headers.get("set-cookie", "")
    page = signed_in(api, token_of(api.admin)).get("/ui/")
    assert page.status_code == 200 and "<h1>Agenda</h1>" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_each_agent_sees_and_acts_on_its_own_tasks_only(api: Api) -> None:
    alice = api.agent("alice", ["tasks:read", "tasks:write", "runs:read"])
    bob = api.agent("bob", ["tasks:read", "tasks:write", "runs:read"])
    made = alice.post("/tasks", json=task_body(title="Alice's briefing"))
    task_id = made.json()["id"]
    alice_ui = signed_in(api, token_of(alice))
    bob_ui = signed_in(api, token_of(bob))

    listing = alice_ui.get("/ui/tasks").text
    assert "Alice&#39;s briefing" in listing and "weekdays at 08:30 Europe/Chisinau" in listing
    assert "Alice&#39;s briefing" in alice_ui.get("/ui/?days=7").text
    assert "Alice" not in bob_ui.get("/ui/tasks").text
    assert "Alice" not in bob_ui.get("/ui/?days=7").text
    assert bob_ui.get(f"/ui/tasks/{task_id}").status_code == 404
    bad_zone = alice_ui.get("/ui/", params={"tz": "Mars/Olympus"})
    assert bad_zone.status_code == 422 and "unknown time zone" in bad_zone.text
    assert alice_ui.get("/ui/", params={"cursor": "nope"}).status_code == 422

    page = alice_ui.get(f"/ui/tasks/{task_id}")
    assert page.status_code == 200 and page.text.count("<li><time") == 10  # next 10 fires
    labelled(page.text)
    csrf = csrf_of(page.text)
    # a form without the session's CSRF token changes nothing
    forged = alice_ui.post(f"/ui/tasks/{task_id}/pause", data={"csrf": "forged"})
    assert forged.status_code == 403
    assert alice.get(f"/tasks/{task_id}").json()["status"] == "active"
    # bob's session cannot act on alice's task, even with his own valid CSRF token
    bob_csrf = csrf_of(bob_ui.get("/ui/tasks").text)
    assert bob_ui.post(f"/ui/tasks/{task_id}/pause", data={"csrf": bob_csrf}).status_code == 404
    # alice can
    paused = alice_ui.post(f"/ui/tasks/{task_id}/pause", data={"csrf": csrf})
    assert paused.status_code == 303 and "notice=Paused." in paused.headers["location"]
    assert alice.get(f"/tasks/{task_id}").json()["status"] == "paused"
    again = alice_ui.post(f"/ui/tasks/{task_id}/pause", data={"csrf": csrf})
    assert "Not%20done" in again.headers["location"]  # a refused action says why
    assert alice_ui.post(f"/ui/tasks/{task_id}/resume", data={"csrf": csrf}).status_code == 303
    snoozed = alice_ui.post(f"/ui/tasks/{task_id}/snooze", data={"csrf": csrf, "seconds": "86400"})
    assert snoozed.status_code == 303
    assert "superseded by snooze" in alice_ui.get(f"/ui/tasks/{task_id}").text
    bad = alice_ui.post(f"/ui/tasks/{task_id}/snooze", data={"csrf": csrf, "seconds": "-5"})
    assert bad.status_code == 404

    # signing out forgets the session
    out = alice_ui.post("/ui/logout", data={"csrf": csrf})
    assert out.status_code == 303 and 'ordinaut_session=""' in out.headers["set-cookie"]
    assert alice_ui.get("/ui/tasks").headers["location"] == "/ui/login"


def test_the_approvals_inbox_approves_and_rejects_with_csrf(api: Api, engine: Engine) -> None:
    carol = api.agent("carol", ["tasks:read", "tasks:write", "runs:read", "runs:approve"])
    dave = api.agent("dave", ["tasks:read", "runs:read", "runs:approve"])
    task_id = carol.post("/tasks", json=task_body(title="Pay the rent")).json()["id"]
    first, second = (add_run(engine, task_id, "waiting_approval") for _ in range(2))
    carol_ui = signed_in(api, token_of(carol))
    inbox = carol_ui.get("/ui/approvals")
    assert inbox.status_code == 200 and inbox.text.count("Pay the rent") == 2
    labelled(inbox.text)
    csrf = csrf_of(inbox.text)
    assert "Pay the rent" not in signed_in(api, token_of(dave)).get("/ui/approvals").text
    assert carol_ui.post(f"/ui/runs/{first}/approve", data={"csrf": "x"}).status_code == 403
    assert carol.get(f"/runs/{first}").json()["status"] == "waiting_approval"
    done = carol_ui.post(f"/ui/runs/{first}/approve", data={"csrf": csrf})
    assert done.status_code == 303 and "Approved" in done.headers["location"]
    approved = carol.get(f"/runs/{first}").json()  # its resume is due: dispatch queues it
    assert approved["status"] == "waiting_approval" and approved["resume_action"] == "approve"
    assert carol_ui.post(f"/ui/runs/{second}/reject", data={"csrf": csrf}).status_code == 303
    assert carol.get(f"/runs/{second}").json()["status"] == "canceled"
    # decided runs leave the inbox (the approved one waits only for dispatch now);
    # deciding again says why not
    assert "Pay the rent" not in carol_ui.get("/ui/approvals").text
    again = carol_ui.post(f"/ui/runs/{first}/approve", data={"csrf": csrf})
    assert "Not%20done" in again.headers["location"]


def test_the_run_page_shows_policy_decisions_and_the_approval_to_decide(
    api: Api, engine: Engine
) -> None:
    erin = api.agent("erin", ["tasks:read", "tasks:write", "runs:read"])
    task_id = erin.post("/tasks", json=task_body(title="Send the invoice")).json()["id"]
    run_id = add_run(engine, task_id, "waiting_approval")
    at = datetime(2026, 12, 2, 21, 30, tzinfo=UTC)  # 23:30 in Europe/Chisinau
    with engine.begin() as conn:
        conn.execute(
            sa.update(task_run)
            .where(task_run.c.id == run_id)
            .values(
                suspended_step="send",
                suspended_input={"to": "billing@example.com", "amount": 1250},
                suspend_reason="approval needed: payments",
            )
        )
        queries.add_decision(
            conn,
            uuid.UUID(run_id),
            decision(
                "deferred",
                "quiet_hours",
                QUIET,
                at,
                step="send",
            ),
        )
        queries.add_decision(
            conn,
            uuid.UUID(run_id),
            decision("skipped", "budgets", "budget runs_per_day 50 of 50", at),
        )
    own = signed_in(api, token_of(erin)).get(f"/ui/runs/{run_id}")
    assert own.status_code == 200
    labelled(own.text)
    page = html.unescape(own.text)
    assert "Policy decisions" in page
    assert QUIET in page
    assert "budget runs_per_day 50 of 50" in page and "Wed 02 Dec 23:30:00" in page
    assert page.index("deferred") < page.index("skipped")  # oldest first
    assert "Waiting for approval" in page and "approval needed: payments" in page
    assert '"to": "billing@example.com"' in page  # the rendered arguments
    assert f"approve-{run_id}" not in page and "needs the runs:approve scope" in page

    boss_ui = signed_in(api, token_of(api.admin))
    boss = boss_ui.get(f"/ui/runs/{run_id}").text
    assert f'id="approve-{run_id}"' in boss and f'id="reject-{run_id}"' in boss
    done = boss_ui.post(f"/ui/runs/{run_id}/approve", data={"csrf": csrf_of(boss), "back": "run"})
    assert done.status_code == 303
    assert done.headers["location"].startswith(f"/ui/runs/{run_id}?notice=Approved")
    assert erin.get(f"/runs/{run_id}").json()["resume_action"] == "approve"
    after = boss_ui.get(f"/ui/runs/{run_id}").text
    assert "Approved; it goes on" in after and f'id="approve-{run_id}"' not in after


def test_the_activity_page_follows_the_event_stream_the_token_may_see(
    api: Api, engine: Engine, settings: Settings
) -> None:
    scopes = ["tasks:read", "tasks:write", "runs:read", "events:publish"]
    alice, bob = api.agent("alice", scopes), api.agent("bob", scopes)
    alice_ui = signed_in(api, token_of(alice))
    page = alice_ui.get("/ui/activity")
    assert 'id="feed" data-stream="/ui/events/stream"' in page.text
    assert '<noscript><meta http-equiv="refresh"' in page.text  # the no-script fallback
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    script = alice_ui.get("/ui/static/app.js").text
    assert "new EventSource(" in script and "onmessage" in script
    assert browser(api).get("/ui/events/stream").status_code == 401  # signed out

    with alice_ui.stream("GET", "/ui/events/stream") as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        got: list[dict[str, Any]] = []
        for item in sse_events(resp, 2):
            if item.get("comment") == "connected":  # the stream's place is taken: publish
                for who, n in ((alice, 1), (bob, 2), (alice, 3)):
                    sent = who.post("/events", json={"topic": "ui.hello", "payload": {"n": n}})
                    assert sent.status_code == 202
                push(engine, settings)
            elif "data" in item:
                got.append(item)
    assert [json.loads(e["data"])["payload"]["payload"]["n"] for e in got] == [1, 3]
    assert all("event" not in e for e in got)  # unnamed: EventSource.onmessage gets them
