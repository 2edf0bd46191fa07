"""The dashboard's pages: server-rendered HTML over the same ``Service`` the API uses.

Every page authenticates the session token (:mod:`.session`) as the API authenticates a
bearer token, and calls ``Service`` methods only, so a person sees and changes exactly what
their agent token may. Actions are plain HTML forms (POST, CSRF field, then a redirect
back with a notice), so the pages work without JavaScript; the activity page follows the
event stream (``/ui/events/stream``, Server-Sent Events) with a few lines of script, and
reloads itself without script. No route here is in the OpenAPI document.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Header, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ordinaut.api.deps import Svc
from ordinaut.api.event_stream import sse_response
from ordinaut.api.ui import session
from ordinaut.errors import AuthError, Forbidden, NotFound, OrdinautError, ValidationError
from ordinaut.scheduling.describe import describe
from ordinaut.service.auth import Principal
from ordinaut.service.facade import Service
from ordinaut.service.models import SkipIn, SnoozeIn
from ordinaut.vocabulary import Scope, holds

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/ui", include_in_schema=False)

SNOOZES = {"900": "15 minutes", "3600": "1 hour", "86400": "1 day"}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _local(moment: datetime | None, tz: str) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(ZoneInfo(tz)).strftime("%a %d %b %H:%M:%S")


def _duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    seconds = (end - start).total_seconds()
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _local_iso(moment: str | None, tz: str) -> str:
    """``_local`` for an ISO 8601 text (as policy decisions keep their ``at``)."""
    try:
        return _local(datetime.fromisoformat(moment), tz) if moment else "—"
    except ValueError:
        return str(moment)


templates.env.filters["local"] = _local
templates.env.filters["local_iso"] = _local_iso
templates.env.globals["duration"] = _duration


def _signed_in(svc: Service, request: Request) -> tuple[Principal, str] | None:
    token = session.session_token(request)
    if not token:
        return None
    try:
        principal = svc.authenticate(token)
    except AuthError:
        return None
    svc.check_rate(principal)  # the dashboard counts against the agent's limit, as the API
    return principal, token


def _to_login() -> RedirectResponse:
    response = RedirectResponse("/ui/login", status_code=303)
    session.end(response)
    return response


def _page(
    request: Request, name: str, token: str, status: int = 200, **context: Any
) -> HTMLResponse:
    context.setdefault("notice", request.query_params.get("notice"))
    response = templates.TemplateResponse(
        request, name, {"csrf": session.csrf_for(token), **context}, status_code=status
    )
    response.headers.update(HEADERS)
    return response


def _guarded(
    svc: Service, request: Request, render: Callable[[Principal, str], Response]
) -> Response:
    """Render for the signed-in person; to the sign-in page otherwise; 404 page for what
    they may not see."""
    who = _signed_in(svc, request)
    if who is None:
        return _to_login()
    principal, token = who
    try:
        return render(principal, token)
    except NotFound as exc:
        return _page(request, "missing.html", token, status=404, message=exc.message)
    except (ValidationError, Forbidden) as exc:  # a bad query value, a missing scope
        status = 403 if isinstance(exc, Forbidden) else 422
        return _page(request, "missing.html", token, status=status, message=exc.message)


# --- sign in and out ----------------------------------------------------------------------


def _login_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    """The sign-in form, with a fresh CSRF value in the form and in its cookie."""
    csrf = session.new_login_csrf()
    response = templates.TemplateResponse(
        request, "login.html", {"error": error, "login_csrf": csrf}, status_code=status
    )
    session.set_login_csrf(request, response, csrf)
    response.headers.update(HEADERS)
    return response


@router.get("/login")
def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
def login(
    request: Request,
    svc: Svc,
    token: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not session.login_csrf_ok(request, csrf):
        return _login_page(request, "The form expired; please try again.", 403)
    try:
        svc.authenticate(token.strip())
    except OrdinautError as exc:
        return _login_page(request, exc.message, 401)
    response = RedirectResponse("/ui/", status_code=303)
    session.start(response, request, token.strip())
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    token = session.session_token(request)
    if token and not session.csrf_ok(token, csrf):
        return RedirectResponse("/ui/", status_code=303)
    return _to_login()


# --- pages --------------------------------------------------------------------------------


@router.get("")
@router.get("/")
def agenda_page(
    request: Request,
    svc: Svc,
    days: Annotated[int, Query(ge=1, le=7)] = 1,
    tz: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> Response:
    def render(p: Principal, token: str) -> Response:
        zone = tz or svc.runtime.settings.default_timezone
        start = svc.clock()
        page = svc.agenda(
            p, start=start, end=start + timedelta(days=days), tz=zone, limit=200, cursor=cursor
        )
        groups: dict[str, list[Any]] = {}
        for item in page.items:
            groups.setdefault(item.local.strftime("%A %d %B %Y"), []).append(item)
        return _page(
            request,
            "agenda.html",
            token,
            nav="agenda",
            days=days,
            tz=page.tz,
            groups=groups,
            next_cursor=page.next_cursor,
        )

    return _guarded(svc, request, render)


@router.get("/tasks")
def tasks_page(
    request: Request,
    svc: Svc,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> Response:
    def render(p: Principal, token: str) -> Response:
        items, more = svc.list_tasks(p, limit=50, cursor=cursor)
        rows = []
        for t in items:
            last, _ = svc.list_runs(p, task_id=t.id, limit=1)
            rows.append(
                {
                    "task": t,
                    "words": describe(t.schedule_kind.value, t.schedule_expr, t.timezone),
                    "last": last[0] if last else None,
                }
            )
        return _page(request, "tasks.html", token, nav="tasks", rows=rows, next_cursor=more)

    return _guarded(svc, request, render)


@router.get("/tasks/{task_id}")
def task_page(request: Request, svc: Svc, task_id: uuid.UUID) -> Response:
    def render(p: Principal, token: str) -> Response:
        t = svc.get_task(p, task_id)
        start = svc.clock()
        upcoming = svc.agenda(
            p,
            start=start,
            end=start + timedelta(days=31),
            tz=t.timezone,
            limit=10,
            task_id=task_id,
        ).items
        runs, _ = svc.list_runs(p, task_id=task_id, limit=20)
        return _page(
            request,
            "task.html",
            token,
            nav="tasks",
            task=t,
            words=describe(t.schedule_kind.value, t.schedule_expr, t.timezone),
            upcoming=upcoming,
            runs=runs,
            snoozes=SNOOZES,
        )

    return _guarded(svc, request, render)


ACTIONS: dict[str, Callable[[Service, Principal, uuid.UUID, str], Any]] = {
    "run_now": lambda svc, p, t, _: svc.run_now(p, t),
    "pause": lambda svc, p, t, _: svc.pause_task(p, t),
    "resume": lambda svc, p, t, _: svc.resume_task(p, t),
    "cancel": lambda svc, p, t, _: svc.cancel_task(p, t),
    "skip_next": lambda svc, p, t, _: svc.skip_next(p, t, SkipIn(count=1)),
    "snooze": lambda svc, p, t, s: svc.snooze_task(p, t, SnoozeIn(seconds=int(s))),
}
DONE = {
    "run_now": "Queued a run for now.",
    "pause": "Paused.",
    "resume": "Resumed.",
    "cancel": "Canceled.",
    "skip_next": "Skipped the next occurrence.",
    "snooze": "Snoozed.",
}


def _form_sender(svc: Service, request: Request, csrf: str) -> tuple[Principal, str] | Response:
    """Who posted a form (principal and token), or the answer when nobody may: the sign-in
    page for no session, 403 for a missing or stale CSRF token."""
    who = _signed_in(svc, request)
    if who is None:
        return _to_login()
    _, token = who
    if not session.csrf_ok(token, csrf):
        return _page(
            request, "missing.html", token, status=403, message="The form expired; reload."
        )
    return who


@router.post("/tasks/{task_id}/{action}")
def task_action(
    request: Request,
    svc: Svc,
    task_id: uuid.UUID,
    action: str,
    csrf: Annotated[str, Form(max_length=200)] = "",
    seconds: Annotated[str, Form(max_length=10)] = "3600",
) -> Response:
    checked = _form_sender(svc, request, csrf)
    if isinstance(checked, Response):
        return checked
    principal, token = checked
    back = f"/ui/tasks/{task_id}"
    if action not in ACTIONS or (action == "snooze" and seconds not in SNOOZES):
        return _page(request, "missing.html", token, status=404, message="No such action.")
    try:
        ACTIONS[action](svc, principal, task_id, seconds)
        notice = DONE[action]
    except NotFound as exc:
        return _page(request, "missing.html", token, status=404, message=exc.message)
    except OrdinautError as exc:
        notice = f"Not done: {exc.message}"
    return RedirectResponse(f"{back}?notice={quote(notice)}", status_code=303)


@router.get("/runs/{run_id}")
def run_page(request: Request, svc: Svc, run_id: uuid.UUID) -> Response:
    def render(p: Principal, token: str) -> Response:
        run = svc.get_run(p, run_id)
        task = svc.get_task(p, run.task_id)
        siblings, _ = svc.list_runs(p, task_id=run.task_id, limit=50)
        attempts = [r for r in siblings if r.scheduled_for == run.scheduled_for]
        return _page(
            request,
            "run.html",
            token,
            nav="activity",
            run=run,
            task=task,
            attempts=sorted(attempts, key=lambda r: r.attempt),
            may_decide=holds(p.scopes, Scope.RUNS_APPROVE),
        )

    return _guarded(svc, request, render)


@router.get("/approvals")
def approvals_page(request: Request, svc: Svc) -> Response:
    def render(p: Principal, token: str) -> Response:
        # what waits for a person: not runs already decided (their resume is due)
        waiting, _ = svc.list_approvals(p, limit=100)
        tz = svc.runtime.settings.default_timezone
        return _page(request, "approvals.html", token, nav="approvals", runs=waiting, tz=tz)

    return _guarded(svc, request, render)


RUN_ACTIONS: dict[str, Callable[[Service, Principal, uuid.UUID], Any]] = {
    "approve": lambda svc, p, r: svc.approve_run(p, r),
    "reject": lambda svc, p, r: svc.reject_run(p, r),
}


@router.post("/runs/{run_id}/{action}")
def run_action(
    request: Request,
    svc: Svc,
    run_id: uuid.UUID,
    action: str,
    csrf: Annotated[str, Form(max_length=200)] = "",
    back: Annotated[str, Form(max_length=20)] = "approvals",
) -> Response:
    checked = _form_sender(svc, request, csrf)
    if isinstance(checked, Response):
        return checked
    principal, token = checked
    if action not in RUN_ACTIONS:
        return _page(request, "missing.html", token, status=404, message="No such action.")
    try:
        RUN_ACTIONS[action](svc, principal, run_id)
        notice = (
            "Approved: it resumes at the next dispatch pass."
            if action == "approve"
            else "Rejected."
        )
    except NotFound as exc:
        return _page(request, "missing.html", token, status=404, message=exc.message)
    except OrdinautError as exc:
        notice = f"Not done: {exc.message}"
    page = f"/ui/runs/{run_id}" if back == "run" else "/ui/approvals"  # where the form was
    return RedirectResponse(f"{page}?notice={quote(notice)}", status_code=303)


@router.get("/activity")
def activity_page(
    request: Request, svc: Svc, partial: Annotated[bool, Query()] = False
) -> Response:
    def render(p: Principal, token: str) -> Response:
        runs, _ = svc.list_runs(p, limit=50)
        titles: dict[uuid.UUID, str] = {}
        for run in runs:
            if run.task_id not in titles:
                try:
                    titles[run.task_id] = svc.get_task(p, run.task_id).title
                except NotFound:
                    titles[run.task_id] = str(run.task_id)
        name = "activity_rows.html" if partial else "activity.html"
        tz = svc.runtime.settings.default_timezone
        return _page(request, name, token, nav="activity", runs=runs, titles=titles, tz=tz)

    return _guarded(svc, request, render)


def _session_principal(request: Request, svc: Svc) -> Principal | None:
    """The signed-in person's agent (a dependency: runs in the thread pool), or None."""
    who = _signed_in(svc, request)
    return who[0] if who else None


@router.get("/events/stream")
async def events_stream(
    request: Request,
    svc: Svc,
    who: Annotated[Principal | None, Depends(_session_principal)],
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=50)] = None,
) -> Response:
    """The live feed: ``GET /events/stream`` for the session's token (what it may see),
    every entry as an unnamed SSE message (``EventSource.onmessage``)."""
    if who is None:
        return Response("Sign in first.", status_code=401, media_type="text/plain")
    return sse_response(request, svc, who, after=last_event_id, topic=None, named=False)
