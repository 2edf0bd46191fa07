"""The schema, as SQLAlchemy Core tables. Alembic revisions must produce exactly this.

All times are UTC ``timestamptz``. ``task.next_run_at`` is what beat scans (partial index on
active tasks); ``due_work`` holds one row per occurrence waiting for dispatch
(``UNIQUE (task_id, run_at)``); ``task_run`` is one attempt of one occurrence, moved through
its states by conditional UPDATEs; ``step_result`` is the receipt of each pipeline step;
``outbox`` carries events to Redis Streams, written in the same transaction as the change.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

NOW = sa.text("now()")
UUID_DEFAULT = sa.text("gen_random_uuid()")

schedule_kind = pg.ENUM(
    "cron", "rrule", "once", "event", "condition", name="schedule_kind", metadata=metadata
)
run_status = pg.ENUM(
    "queued",
    "running",
    "succeeded",
    "failed",
    "canceled",
    "skipped",
    "waiting_approval",
    "deferred",
    name="run_status",
    metadata=metadata,
)

agent = sa.Table(
    "agent",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True, server_default=UUID_DEFAULT),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("scopes", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("token_hash", sa.Text, nullable=True, unique=True),
    sa.Column("webhook_url", sa.Text, nullable=True),
    # the HMAC-SHA256 key webhook deliveries are signed with (shown once, never returned again)
    sa.Column("webhook_secret", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    # the agent's default quiet hours and its budget (ordinaut.policy); None: no rule
    sa.Column("quiet_hours", pg.JSONB, nullable=True),
    sa.Column("budgets", pg.JSONB, nullable=True),
    # what the agent may create without a person (ordinaut.policy.agent_limits); NULL: no limit
    sa.Column("limits", pg.JSONB, nullable=True),
)

# the first response to a create request carrying an Idempotency-Key, replayed for retries
api_idempotency = sa.Table(
    "api_idempotency",
    metadata,
    sa.Column(
        "agent_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey("agent.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("operation", sa.Text, nullable=False),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("response", pg.JSONB, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
)

task = sa.Table(
    "task",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True, server_default=UUID_DEFAULT),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_by", pg.UUID(as_uuid=True), sa.ForeignKey("agent.id"), nullable=False),
    sa.Column("schedule_kind", schedule_kind, nullable=False),
    sa.Column("schedule_expr", sa.Text, nullable=True),
    sa.Column("timezone", sa.Text, nullable=False, server_default="Europe/Chisinau"),
    sa.Column("payload", pg.JSONB, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="active"),
    sa.Column("priority", sa.Integer, nullable=False, server_default="5"),
    sa.Column("dedupe_key", sa.Text, nullable=True),
    sa.Column("dedupe_window_seconds", sa.Integer, nullable=False, server_default="0"),
    sa.Column("max_retries", sa.Integer, nullable=False, server_default="3"),
    sa.Column("backoff_strategy", sa.Text, nullable=False, server_default="exponential_jitter"),
    sa.Column("concurrency_key", sa.Text, nullable=True),
    sa.Column("concurrency_limit", sa.Integer, nullable=False, server_default="1"),
    sa.Column("overlap_policy", sa.Text, nullable=False, server_default="allow"),
    sa.Column("misfire_policy", sa.Text, nullable=False, server_default="run_once"),
    sa.Column("jitter_seconds", sa.Integer, nullable=False, server_default="0"),
    sa.Column("timeout_seconds", sa.Integer, nullable=True),
    # event tasks: a JMESPath filter over the payload, and other agents whose events fire it
    sa.Column("event_filter", sa.Text, nullable=True),
    sa.Column(
        "event_sources", pg.ARRAY(pg.UUID(as_uuid=True)), nullable=False, server_default="{}"
    ),
    # condition tasks: the check, a cooldown, the last result and firing, the next check
    sa.Column("condition", pg.JSONB, nullable=True),
    sa.Column("cooldown_seconds", sa.Integer, nullable=True),
    sa.Column("condition_state", sa.Boolean, nullable=True),
    sa.Column("condition_fired_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True),
    # policies (ordinaut.policy): quiet hours override the agent's; both budgets apply
    sa.Column("quiet_hours", pg.JSONB, nullable=True),
    sa.Column("budgets", pg.JSONB, nullable=True),
    # runs go to the Celery queue <namespace>.runs.<worker_pool> (None: the common queue)
    sa.Column("worker_pool", sa.Text, nullable=True),
    # the nominal next occurrence (schedule math continues from here) and when it fires
    # (occurrence + jitter, or a snoozed instant); beat scans next_run_at
    sa.Column("next_occurrence_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    sa.CheckConstraint(
        "status IN ('active', 'paused', 'canceled', 'completed')", name="status_known"
    ),
    sa.CheckConstraint("priority BETWEEN 1 AND 9", name="priority_range"),
    sa.CheckConstraint("max_retries >= 0", name="max_retries_nonnegative"),
    sa.CheckConstraint("concurrency_limit >= 1", name="concurrency_limit_positive"),
    sa.CheckConstraint("overlap_policy IN ('allow', 'skip', 'queue')", name="overlap_policy_known"),
    sa.CheckConstraint(
        "misfire_policy IN ('run_once', 'skip', 'run_all')", name="misfire_policy_known"
    ),
    sa.CheckConstraint(
        "backoff_strategy IN ('exponential_jitter', 'exponential', 'fixed', 'none')",
        name="backoff_strategy_known",
    ),
)
sa.Index(
    "ix_task_next_run_at_active",
    task.c.next_run_at,
    postgresql_where=sa.text("status = 'active' AND next_run_at IS NOT NULL"),
)
sa.Index("ix_task_created_by_created_at", task.c.created_by, task.c.created_at)
sa.Index(
    "ix_task_next_check_at_active",
    task.c.next_check_at,
    postgresql_where=sa.text(
        "status = 'active' AND schedule_kind = 'condition' AND next_check_at IS NOT NULL"
    ),
)
sa.Index(
    "ix_task_event_kind",
    task.c.created_by,
    postgresql_where=sa.text("schedule_kind = 'event' AND status IN ('active', 'paused')"),
)

due_work = sa.Table(
    "due_work",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "task_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey("task.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # the occurrence this work is for; with task_id it identifies the work exactly once
    sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
    # earliest start (jitter, retry backoff); dispatch ignores rows before it
    sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
    sa.Column("trigger", sa.Text, nullable=False, server_default="schedule"),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
    sa.Column("priority", sa.Integer, nullable=False, server_default="5"),
    sa.Column("event", pg.JSONB, nullable=True),
    sa.Column("locked_by", sa.Text, nullable=True),
    sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    sa.UniqueConstraint("task_id", "run_at"),
)
sa.Index("ix_due_work_priority_not_before", due_work.c.priority, due_work.c.not_before)
sa.Index("ix_due_work_not_before", due_work.c.not_before)

task_run = sa.Table(
    "task_run",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True, server_default=UUID_DEFAULT),
    sa.Column(
        "task_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey("task.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("status", run_status, nullable=False, server_default="queued"),
    sa.Column("trigger", sa.Text, nullable=False, server_default="schedule"),
    sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
    sa.Column("priority", sa.Integer, nullable=False, server_default="5"),
    sa.Column("concurrency_key", sa.Text, nullable=True),
    sa.Column("dedupe_key", sa.Text, nullable=True),
    sa.Column("event", pg.JSONB, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("lease_owner", sa.Text, nullable=True),
    sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
    # earliest start that was asked for (jitter, retry backoff); lag is measured from here
    sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
    # when the due_work row behind this run was written: beat → due_work → publish → start
    sa.Column("work_created_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("success", sa.Boolean, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("output", pg.JSONB, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    sa.Column("worker_pool", sa.Text, nullable=True),
    # policy decisions about this run, oldest first: {"what", "at", "why", ...}
    sa.Column("decisions", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    # suspension (see ordinaut.runs.suspension): the last time the run stopped before a step,
    # which step, its rendered arguments and why; at resume_at, resume_action happens
    sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("suspended_step", sa.Text, nullable=True),
    sa.Column("suspended_input", pg.JSONB, nullable=True),
    sa.Column("suspend_reason", sa.Text, nullable=True),
    sa.Column("resume_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("resume_action", sa.Text, nullable=True),
    # step paths whose approval gate this run has passed
    sa.Column("approved_steps", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
    # the pipeline's ${now}, fixed at the first start so a resumed run renders the same
    sa.Column("pipeline_now", sa.DateTime(timezone=True), nullable=True),
    # who made the current resume due (a person's approve); NULL: its timeout did
    sa.Column("decided_by", pg.UUID(as_uuid=True), sa.ForeignKey("agent.id"), nullable=True),
    sa.CheckConstraint(
        "resume_action IS NULL OR resume_action IN ('resume', 'approve', 'reject')",
        name="resume_action_known",
    ),
)
sa.Index(
    "ix_task_run_resume_at",
    task_run.c.resume_at,
    postgresql_where=sa.text("resume_at IS NOT NULL"),
)
sa.Index("ix_task_run_task_id_created_at", task_run.c.task_id, task_run.c.created_at)
# finished runs to roll up into metric_rollup, and the open ones (finished_at IS NULL)
sa.Index("ix_task_run_finished_at", task_run.c.finished_at)
# one run per scheduled occurrence and attempt, whoever writes it (beat or dispatch)
sa.Index(
    "ux_task_run_occurrence",
    task_run.c.task_id,
    task_run.c.scheduled_for,
    task_run.c.attempt,
    unique=True,
    postgresql_where=sa.text("trigger IN ('schedule', 'catch_up') AND status <> 'skipped'"),
)
sa.Index(
    "ix_task_run_open",
    task_run.c.status,
    task_run.c.leased_until,
    postgresql_where=sa.text("status IN ('queued', 'running')"),
)
sa.Index(
    "ix_task_run_dedupe_key_scheduled_for",
    task_run.c.dedupe_key,
    task_run.c.scheduled_for,
    postgresql_where=sa.text("dedupe_key IS NOT NULL"),
)
sa.Index(
    "ix_task_run_concurrency_key_open",
    task_run.c.concurrency_key,
    postgresql_where=sa.text("status IN ('queued', 'running') AND concurrency_key IS NOT NULL"),
)

step_result = sa.Table(
    "step_result",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "run_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey("task_run.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("step_path", sa.Text, nullable=False),
    sa.Column("step_id", sa.Text, nullable=False),
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
    sa.Column("idempotency_key", sa.Text, nullable=True),
    # served from the outcome of an earlier attempt with the same idempotency key: no call made
    sa.Column("cached", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("input", pg.JSONB, nullable=True),
    sa.Column("output", pg.JSONB, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Index("ix_step_result_run_id", step_result.c.run_id)
sa.Index(
    "ix_step_result_idempotency_key_succeeded",
    step_result.c.idempotency_key,
    postgresql_where=sa.text("status = 'succeeded' AND idempotency_key IS NOT NULL"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("actor_agent_id", pg.UUID(as_uuid=True), sa.ForeignKey("agent.id"), nullable=True),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("subject_id", pg.UUID(as_uuid=True), nullable=True),
    sa.Column("details", pg.JSONB, nullable=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
)
sa.Index("ix_audit_log_subject_id", audit_log.c.subject_id)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("payload", pg.JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    # external events: when the trigger consumer turned them into work (ordinaut.events.trigger)
    sa.Column("triggered_at", sa.DateTime(timezone=True), nullable=True),
)
sa.Index("ix_outbox_unpublished", outbox.c.id, postgresql_where=sa.text("published_at IS NULL"))
sa.Index(
    "ix_outbox_untriggered",
    outbox.c.id,
    postgresql_where=sa.text("triggered_at IS NULL AND topic LIKE 'event.external.%'"),
)

# one row per (task, event) the trigger consumer turned into work: a re-delivered stream
# entry starts nothing twice (see ordinaut.events.trigger)
event_fire = sa.Table(
    "event_fire",
    metadata,
    sa.Column(
        "task_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey("task.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("event_id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
)
sa.Index("ix_event_fire_fired_at", event_fire.c.fired_at)

# one row per check of a condition task: its result and why it did or did not fire
condition_check = sa.Table(
    "condition_check",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "task_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey("task.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=False),
    sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("result", sa.Boolean, nullable=True),
    sa.Column("fired", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("output", pg.JSONB, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)
sa.Index("ix_condition_check_task_id_id", condition_check.c.task_id, condition_check.c.id)

# one row per (agent, event) its webhook is sent: status, attempts and each attempt's outcome
webhook_delivery = sa.Table(
    "webhook_delivery",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "agent_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey("agent.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("outbox_id", sa.BigInteger, nullable=False),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("attempt_log", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("agent_id", "outbox_id"),
    sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status_known"),
)
sa.Index(
    "ix_webhook_delivery_pending",
    webhook_delivery.c.next_attempt_at,
    postgresql_where=sa.text("status = 'pending'"),
)

# --- policies (see ordinaut.policy) -----------------------------------------------------
# usage against budgets: one counter (runs, tool_calls, llm_tokens) per subject (an agent or
# a task) and period (a local day or month in the budget's zone)
budget_usage = sa.Table(
    "budget_usage",
    metadata,
    sa.Column("subject_id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("counter", sa.Text, primary_key=True),
    sa.Column("period", sa.Text, primary_key=True),
    sa.Column("used", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
)

# tool calls under shared rate limits: started_at for the per-minute window; held_until is
# set while a call holds a concurrency slot (a crashed worker's slot frees itself then)
rate_call = sa.Table(
    "rate_call",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("run_id", pg.UUID(as_uuid=True), nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("held_until", sa.DateTime(timezone=True), nullable=True),
)
sa.Index("ix_rate_call_key_started_at", rate_call.c.key, rate_call.c.started_at)

# quiet hours "digest": the calls of one task's step deferred to the same end, merged; the
# first run to get there leads (makes the one call), the others' arguments join ``items``
digest_call = sa.Table(
    "digest_call",
    metadata,
    sa.Column(
        "task_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey("task.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("step_path", sa.Text, primary_key=True),
    sa.Column("until", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("leader_run_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("items", pg.JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
)
sa.Index("ix_digest_call_leader_run_id", digest_call.c.leader_run_id)
# a create or update of a task that crossed one of its agent's limits with on_exceed
# "approve": kept here, not applied, until a person approves (then applied as if made then)
pending_change = sa.Table(
    "pending_change",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True, server_default=UUID_DEFAULT),
    sa.Column(
        "agent_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey("agent.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("task_id", pg.UUID(as_uuid=True), nullable=True),
    sa.Column("body", pg.JSONB, nullable=False),
    sa.Column("diff", pg.JSONB, nullable=False),
    sa.Column("exceeded", pg.JSONB, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),
    sa.Column("idempotency_key", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("decided_by", pg.UUID(as_uuid=True), sa.ForeignKey("agent.id"), nullable=True),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("result_task_id", pg.UUID(as_uuid=True), nullable=True),
    sa.CheckConstraint("kind IN ('create_task', 'update_task')", name="kind_known"),
    sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status_known"),
    sa.UniqueConstraint("agent_id", "idempotency_key"),
)
sa.Index(
    "ix_pending_change_status_created_at", pending_change.c.status, pending_change.c.created_at
)
# --- metrics (see ordinaut.store.queries.metrics) -----------------------------------------
# counters of what finished up to metric_watermark.rolled_until: kind "runs" (label: status),
# "steps" (label: tool address; le: a duration bucket, or +Inf with the seconds summed) and
# "step_success" (label: tool address); /metrics adds what finished after the watermark

metric_rollup = sa.Table(
    "metric_rollup",
    metadata,
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("label", sa.Text, primary_key=True),
    sa.Column("le", sa.Double, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("seconds", sa.Double, nullable=False, server_default="0"),
)

metric_watermark = sa.Table(
    "metric_watermark",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True),
    sa.Column("rolled_until", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("id = 1", name="one_row"),
)

# --- tool catalog (see ordinaut.tools.catalog) ------------------------------------------
# MCP servers are configured once (a streamable HTTP url, or a stdio command); tools of
# transport "http" or "mcp" are registered by address. Built-in tools live in code, not here.
# Secrets are referenced by name only (auth.secret, env values {"secret": NAME}).

mcp_server = sa.Table(
    "mcp_server",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("url", sa.Text, nullable=True),
    sa.Column("command", sa.Text, nullable=True),
    sa.Column("args", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("env", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("auth", pg.JSONB, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    sa.CheckConstraint("(url IS NULL) <> (command IS NULL)", name="url_or_command"),
)

tool = sa.Table(
    "tool",
    metadata,
    sa.Column("address", sa.Text, primary_key=True),
    sa.Column("transport", sa.Text, nullable=False),
    sa.Column("endpoint", sa.Text, nullable=True),
    sa.Column("server", sa.Text, sa.ForeignKey("mcp_server.name"), nullable=True),
    sa.Column("remote_name", sa.Text, nullable=True),
    sa.Column("input_schema", pg.JSONB, nullable=False),
    sa.Column("output_schema", pg.JSONB, nullable=False),
    sa.Column("timeout_seconds", sa.Double, nullable=False, server_default="30"),
    sa.Column("scopes", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("cost_hints", pg.JSONB, nullable=True),
    sa.Column("auth", pg.JSONB, nullable=True),
    # every call of this tool waits for a person's approval (see ordinaut.pipeline.gates)
    sa.Column("requires_approval", sa.Boolean, nullable=False, server_default=sa.false()),
    # runs of tasks using this tool go to <namespace>.runs.<worker_pool> (ordinaut.policy)
    sa.Column("worker_pool", sa.Text, nullable=True),
    sa.Column("created_by", pg.UUID(as_uuid=True), sa.ForeignKey("agent.id"), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    sa.CheckConstraint("transport IN ('http', 'mcp')", name="transport_known"),
    sa.CheckConstraint("transport <> 'http' OR endpoint IS NOT NULL", name="http_has_endpoint"),
    sa.CheckConstraint(
        "transport <> 'mcp' OR (server IS NOT NULL AND remote_name IS NOT NULL)",
        name="mcp_has_server",
    ),
    sa.CheckConstraint("timeout_seconds > 0", name="timeout_positive"),
)
sa.Index("ix_tool_server", tool.c.server)
