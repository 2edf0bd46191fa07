"""``Service``: every Ordinaut operation once, each in its own transaction.

The HTTP API, the MCP server and the CLI are thin adapters over this class; a test compares
``OPERATIONS`` with what each adapter exposes so they cannot drift. Side effects that must
follow a commit (asking a worker to dispatch now) happen here, after the transaction ends.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import redis
from sqlalchemy.engine import Connection
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ordinaut import limits
from ordinaut.clock import utcnow
from ordinaut.errors import AuthError, ChangePending, RateLimited, Unavailable
from ordinaut.pipeline.schema import pipeline_schema
from ordinaut.policy.agent_limits import AgentLimits
from ordinaut.runtime import Runtime
from ordinaut.service import (
    agenda,
    agents,
    approvals,
    changes,
    context,
    events,
    policies,
    run_ops,
    runs,
    schedule_ops,
    task_ops,
    tasks,
    tools,
)
from ordinaut.service import auth as auth_
from ordinaut.service.auth import Principal
from ordinaut.service.auth_cache import FailureThrottle, TokenCache
from ordinaut.service.idempotency import replay_or_run
from ordinaut.service.models import (
    AgentCreate,
    AgentLimitsPublic,
    AgentPolicies,
    AgentPublic,
    ApprovalPublic,
    BudgetsReport,
    BudgetsRule,
    ChangePublic,
    CheckPublic,
    DeliveryPage,
    EventAccepted,
    EventIn,
    EventPage,
    QuietHoursRule,
    RunNowAccepted,
    RunPublic,
    RunSummary,
    SkipIn,
    SnoozeIn,
    StepData,
    TaskCreate,
    TaskPublic,
    TaskUpdate,
    WebhookIn,
)
from ordinaut.service.tools import ToolCreate, ToolPublic
from ordinaut.tools import redact
from ordinaut.vocabulary import StepPart

# the operations agents use; the API and the MCP server must each expose all of them
OPERATIONS = (
    "create_task",
    "list_tasks",
    "get_task",
    "update_task",
    "run_now",
    "snooze_task",
    "skip_next",
    "pause_task",
    "resume_task",
    "cancel_task",
    "list_checks",
    "list_runs",
    "get_run",
    "get_step_data",
    "cancel_run",
    "approve_run",
    "reject_run",
    "list_approvals",
    "list_changes",
    "approve_change",
    "reject_change",
    "publish_event",
    "list_events",
    "preview_schedule",
    "list_tools",
    "agenda",
    "set_quiet_hours",
    "set_budgets",
    "get_budgets",
)


log = logging.getLogger("ordinaut.service")

# what the database layer raises when PostgreSQL is down, restarting or out of connections
DATABASE_DOWN = (OperationalError, InterfaceError, PoolTimeout)
DATABASE_RETRY_AFTER = 5


class Service:
    """Ordinaut's operations over one Runtime."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        kick_dispatch: Callable[[], None],
        kick_relay: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.runtime = runtime
        self.clock = clock
        self._kick = kick_dispatch
        self._kick_relay = kick_relay  # an event was recorded: relay (and trigger) it now
        # secrets are read from the environment at call time by the tools; so are they here
        self.redactor = redact.redactor_for(os.environ)
        settings = runtime.settings
        self._tokens = TokenCache(settings.auth_cache_seconds)
        self._failures = FailureThrottle(settings.auth_failures_per_minute, window=60.0)

    @contextmanager
    def _tx(self, *, snapshot: bool = False) -> Iterator[Connection]:
        """One transaction (``snapshot``: REPEATABLE READ, for several reads that must agree);
        PostgreSQL being unreachable is ``Unavailable`` (503), not a bug."""
        engine = self.runtime.engine
        if snapshot:
            engine = engine.execution_options(isolation_level="REPEATABLE READ")
        try:
            with engine.begin() as conn:
                yield conn
        except DATABASE_DOWN as exc:
            log.warning(
                "database unavailable: %s", type(getattr(exc, "orig", None) or exc).__name__
            )
            raise Unavailable(
                "the database is unavailable; retry shortly", retry_after=DATABASE_RETRY_AFTER
            ) from exc

    def authenticate(self, token: str | None) -> Principal:
        """The agent owning ``token``: AuthError (401) when missing, unknown or revoked.

        Answers are remembered briefly (found or not), and a client address past its failed
        attempts gets RateLimited (429) without a lookup, unless the token was valid recently
        (:mod:`ordinaut.service.auth_cache`).
        """
        if not token:
            raise AuthError(auth_.MISSING)
        now, address = time.monotonic(), context.client_address.get()
        key = auth_.hash_token(token)
        known = self._tokens.get(key, now)
        if known is not None and known.principal is not None:
            return known.principal
        if not self._tokens.recently_valid(key, now):
            self._failures.check(address, now)
        if known is None:
            with self._tx() as conn:
                found = auth_.lookup(conn, key)
            self._tokens.put(key, found, now)
            if found is not None:
                return found
        self._failures.failed(address, now)
        raise AuthError(auth_.UNKNOWN)

    def check_rate(self, p: Principal) -> None:
        """Count one request for ``p``; RateLimited past the per-minute limit.

        A fixed one-minute window per agent in Redis; when Redis is unreachable the request
        goes through (the limit protects the service, it is not a security boundary).
        """
        limit = self.runtime.settings.rate_limit_per_minute
        if not limit:
            return
        now = self.clock()
        key = self.runtime.key("ratelimit", str(p.agent_id), now.strftime("%Y%m%d%H%M"))
        try:
            pipe = self.runtime.redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, 120)
            count = int(pipe.execute()[0])
        except redis.RedisError:
            log.warning("rate limit check skipped: Redis unavailable")
            return
        if count > limit:
            raise RateLimited(
                f"more than {limit} requests this minute; retry in {60 - now.second} s",
                retry_after=60 - now.second,
            )

    # --- tasks ---------------------------------------------------------------------------

    def create_task(
        self, p: Principal, body: TaskCreate, *, idempotency_key: str | None = None
    ) -> TaskPublic:
        """Create a task, or (past one of the agent's limits with on_exceed "approve") keep
        it as a pending change: ChangePending, raised once that change is committed."""
        with self._tx() as conn:
            change = changes.gate_create(
                conn,
                p,
                body,
                now=self.clock(),
                default_tz=self.runtime.settings.default_timezone,
                idempotency_key=idempotency_key,
            )
            if change is not None:
                message = changes.pending_message(change)
                pending = ChangePending(message, change.model_dump(mode="json"))
            else:
                return replay_or_run(
                    conn,
                    p,
                    idempotency_key,
                    "create_task",
                    body.model_dump(mode="json"),
                    TaskPublic,
                    lambda: tasks.create_task(
                        conn,
                        p,
                        body,
                        now=self.clock(),
                        default_tz=self.runtime.settings.default_timezone,
                    ),
                )
        raise pending

    def list_tasks(
        self, p: Principal, *, status: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[TaskPublic], str | None]:
        with self._tx() as conn:
            return tasks.list_tasks(conn, p, status=status, limit=limit, after=cursor)

    def get_task(self, p: Principal, task_id: uuid.UUID) -> TaskPublic:
        with self._tx() as conn:
            return tasks.get_task(conn, p, task_id)

    def update_task(self, p: Principal, task_id: uuid.UUID, body: TaskUpdate) -> TaskPublic:
        """Change a task, or keep the change pending (ChangePending), as create_task."""
        with self._tx() as conn:
            change = changes.gate_update(conn, p, task_id, body, now=self.clock())
            if change is None:
                return task_ops.update_task(conn, p, task_id, body, now=self.clock())
        raise ChangePending(changes.pending_message(change), change.model_dump(mode="json"))

    # --- changes a person approves, agent limits ------------------------------------------

    def list_changes(
        self,
        p: Principal,
        *,
        status: str | None = "pending",
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[ChangePublic], str | None]:
        with self._tx() as conn:
            return changes.list_changes(conn, p, status=status, limit=limit, after=cursor)

    def approve_change(
        self, p: Principal, change_id: uuid.UUID, comment: str | None = None
    ) -> ChangePublic:
        return self._decide_change(p, change_id, approve=True, comment=comment)

    def reject_change(
        self, p: Principal, change_id: uuid.UUID, comment: str | None = None
    ) -> ChangePublic:
        return self._decide_change(p, change_id, approve=False, comment=comment)

    def _decide_change(
        self, p: Principal, change_id: uuid.UUID, *, approve: bool, comment: str | None
    ) -> ChangePublic:
        with self._tx() as conn:
            return changes.decide_change(
                conn,
                p,
                change_id,
                approve=approve,
                now=self.clock(),
                default_tz=self.runtime.settings.default_timezone,
                comment=comment,
            )

    def get_agent_limits(self, p: Principal, agent_id: uuid.UUID) -> AgentLimitsPublic:
        with self._tx() as conn:
            return changes.get_limits(conn, p, agent_id)

    def set_agent_limits(
        self, p: Principal, agent_id: uuid.UUID, limits: AgentLimits
    ) -> AgentLimitsPublic:
        with self._tx() as conn:
            return changes.set_limits(conn, p, agent_id, limits)

    def run_now(
        self, p: Principal, task_id: uuid.UUID, *, idempotency_key: str | None = None
    ) -> RunNowAccepted:
        with self._tx() as conn:
            result = replay_or_run(
                conn,
                p,
                idempotency_key,
                "run_now",
                str(task_id),
                RunNowAccepted,
                lambda: task_ops.run_now(conn, p, task_id, now=self.clock()),
            )
        self._kick()
        return result

    def snooze_task(self, p: Principal, task_id: uuid.UUID, body: SnoozeIn) -> TaskPublic:
        with self._tx() as conn:
            return schedule_ops.snooze(conn, p, task_id, body, now=self.clock())

    def skip_next(self, p: Principal, task_id: uuid.UUID, body: SkipIn) -> TaskPublic:
        with self._tx() as conn:
            return schedule_ops.skip_next(conn, p, task_id, body, now=self.clock())

    def pause_task(self, p: Principal, task_id: uuid.UUID) -> TaskPublic:
        with self._tx() as conn:
            return task_ops.set_status(conn, p, task_id, "pause", now=self.clock())

    def resume_task(self, p: Principal, task_id: uuid.UUID) -> TaskPublic:
        with self._tx() as conn:
            return task_ops.set_status(conn, p, task_id, "resume", now=self.clock())

    def cancel_task(self, p: Principal, task_id: uuid.UUID) -> TaskPublic:
        with self._tx() as conn:
            return task_ops.set_status(conn, p, task_id, "cancel", now=self.clock())

    def list_checks(
        self, p: Principal, task_id: uuid.UUID, *, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[CheckPublic], str | None]:
        with self._tx() as conn:
            return tasks.list_checks(conn, p, task_id, limit=limit, after=cursor)

    # --- runs ----------------------------------------------------------------------------

    def list_runs(
        self,
        p: Principal,
        *,
        task_id: uuid.UUID | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[RunSummary], str | None]:
        with self._tx() as conn:
            return runs.list_runs(
                conn, p, task_id=task_id, status=status, limit=limit, after=cursor
            )

    def get_run(self, p: Principal, run_id: uuid.UUID) -> RunPublic:
        with self._tx() as conn:
            return runs.get_run(conn, p, run_id)

    def get_step_data(
        self, p: Principal, run_id: uuid.UUID, step_path: str, part: StepPart
    ) -> StepData:
        with self._tx() as conn:
            return runs.get_step_data(
                conn, p, run_id, step_path, part, max_bytes=limits.MAX_SERVED_STEP_DATA_BYTES
            )

    def cancel_run(self, p: Principal, run_id: uuid.UUID) -> RunPublic:
        with self._tx() as conn:
            return run_ops.cancel_run(conn, p, run_id, now=self.clock())

    def approve_run(self, p: Principal, run_id: uuid.UUID, comment: str | None = None) -> RunPublic:
        with self._tx() as conn:
            result = run_ops.decide_run(
                conn, p, run_id, approve=True, now=self.clock(), comment=comment
            )
        self._kick()  # the dispatch pass resumes it
        return result

    def reject_run(self, p: Principal, run_id: uuid.UUID, comment: str | None = None) -> RunPublic:
        with self._tx() as conn:
            return run_ops.decide_run(
                conn, p, run_id, approve=False, now=self.clock(), comment=comment
            )

    def list_approvals(
        self, p: Principal, *, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[ApprovalPublic], str | None]:
        with self._tx() as conn:
            return approvals.list_approvals(conn, p, now=self.clock(), limit=limit, after=cursor)

    # --- events, schedules, tools ----------------------------------------------------------

    def publish_event(
        self, p: Principal, body: EventIn, *, idempotency_key: str | None = None
    ) -> EventAccepted:
        with self._tx() as conn:
            accepted = replay_or_run(
                conn,
                p,
                idempotency_key,
                "publish_event",
                body.model_dump(mode="json"),
                EventAccepted,
                lambda: events.publish_event(
                    conn,
                    p,
                    body,
                    now=self.clock(),
                    max_bytes=self.runtime.settings.max_event_payload_bytes,
                    redactor=self.redactor,
                ),
            )
        self._kick_relay()
        return accepted

    def list_events(
        self,
        p: Principal,
        *,
        after: str | None = None,
        topic: str | None = None,
        limit: int = 100,
    ) -> EventPage:
        return events.list_events(
            self.runtime.redis,
            self.runtime.settings.namespace,
            p,
            events.owner_lookup(self._tx, p),
            after=after,
            topic=topic,
            limit=limit,
        )

    def follow_events(
        self, p: Principal, *, after: str | None = None, topic: str | None = None
    ) -> events.EventFollower:
        """A live feed for ``GET /events/stream`` (not an MCP tool: MCP has no stream)."""
        return events.EventFollower(
            self.runtime.redis,
            self.runtime.settings.namespace,
            p,
            events.owner_lookup(self._tx, p),
            after=after,
            topic=topic,
        )

    def preview_schedule(
        self,
        p: Principal | None,
        kind: str,
        expr: str,
        tz: str | None = None,
        *,
        count: int = 10,
        after: datetime | None = None,
    ) -> dict[str, Any]:
        del p  # any authenticated agent may preview
        zone = tz or self.runtime.settings.default_timezone
        return schedule_ops.preview_schedule(
            kind, expr, zone, count=count, after=after, now=self.clock()
        )

    def agenda(
        self,
        p: Principal,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        tz: str | None = None,
        limit: int = agenda.DEFAULT_LIMIT,
        cursor: str | None = None,
        task_id: uuid.UUID | None = None,
    ) -> agenda.AgendaPage:
        """The caller's fires in ``[start, end)`` (default the next 24 h), in order; only
        ``task_id``'s when given (the dashboard's task page). Its chunked reads of the tasks
        share one snapshot, so a task beat moves meanwhile is read once."""
        with self._tx(snapshot=True) as conn:
            return agenda.agenda(
                conn,
                p,
                start=start,
                end=end,
                tz=tz or self.runtime.settings.default_timezone,
                limit=limit,
                after=cursor,
                now=self.clock(),
                task_id=task_id,
                grace=timedelta(seconds=self.runtime.settings.misfire_grace_seconds),
                cap=self.runtime.settings.misfire_cap,
                chunk=self.runtime.settings.agenda_chunk,
            )

    def pipeline_schema(self) -> dict[str, Any]:
        """The JSON Schema of a task payload; public, like the OpenAPI document.

        Not in OPERATIONS: MCP serves it as the resource ``ordinaut://schemas/pipeline``
        (and inside create_task's input schema), not as a tool.
        """
        return pipeline_schema()

    def list_tools(self, p: Principal) -> list[ToolPublic]:
        with self._tx() as conn:
            return tools.list_tools(conn, p)

    def register_tool(self, p: Principal, body: ToolCreate, *, replace: bool = False) -> ToolPublic:
        with self._tx() as conn:
            return tools.register_tool(conn, p, body, replace=replace)

    def delete_tool(self, p: Principal, address: str) -> None:
        with self._tx() as conn:
            tools.delete_tool(conn, p, address)

    # --- policies ------------------------------------------------------------------------

    def set_quiet_hours(
        self, p: Principal, agent_id: uuid.UUID, body: QuietHoursRule
    ) -> AgentPolicies:
        with self._tx() as conn:
            return policies.set_quiet_hours(
                conn, p, agent_id, body, default_tz=self.runtime.settings.default_timezone
            )

    def set_budgets(self, p: Principal, agent_id: uuid.UUID, body: BudgetsRule) -> AgentPolicies:
        with self._tx() as conn:
            return policies.set_budgets(
                conn, p, agent_id, body, default_tz=self.runtime.settings.default_timezone
            )

    def get_budgets(self, p: Principal) -> BudgetsReport:
        with self._tx() as conn:
            return policies.get_budgets(conn, p, now=self.clock())

    # --- agents and audit ----------------------------------------------------------------

    def create_agent(self, p: Principal, body: AgentCreate) -> AgentPublic:
        # no Idempotency-Key here: replaying would mean storing the new token in clear
        with self._tx() as conn:
            return agents.add_agent(conn, p, body)

    def list_agents(self, p: Principal) -> list[AgentPublic]:
        with self._tx() as conn:
            return agents.list_agents(conn, p)

    def me(self, p: Principal) -> AgentPublic:
        with self._tx() as conn:
            return agents.me(conn, p)

    def rotate_token(self, p: Principal, agent_id: uuid.UUID) -> AgentPublic:
        with self._tx() as conn:
            result = agents.rotate_token(conn, p, agent_id)
        self._tokens.forget_agent(agent_id)
        return result

    def revoke_agent(self, p: Principal, agent_id: uuid.UUID) -> AgentPublic:
        with self._tx() as conn:
            result = agents.revoke_agent(conn, p, agent_id, now=self.clock())
        self._tokens.forget_agent(agent_id)
        return result

    def set_webhook(self, p: Principal, agent_id: uuid.UUID, body: WebhookIn) -> AgentPublic:
        with self._tx() as conn:
            return agents.set_webhook(conn, p, agent_id, body)

    def list_deliveries(
        self, p: Principal, agent_id: uuid.UUID, *, limit: int = 50, cursor: str | None = None
    ) -> DeliveryPage:
        with self._tx() as conn:
            return agents.list_deliveries(conn, p, agent_id, limit=limit, after=cursor)

    def list_audit(
        self, p: Principal, *, subject_id: uuid.UUID | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        with self._tx() as conn:
            return events.list_audit(conn, p, subject_id=subject_id, limit=limit)
