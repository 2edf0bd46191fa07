"""The Celery app: queues, routing, reliability settings and the beat entries.

``celery -A ordinaut worker|beat|flower`` finds ``ordinaut.app``; it is configured from the
environment the first time Celery reads its configuration, so importing it connects to
nothing. Tests and ``ordinaut up`` build their own with ``create_app(settings)``.

Queues (prefixed with ORDINAUT_NAMESPACE): ``<ns>.control`` carries dispatch and the
maintenance jobs, ``<ns>.runs`` carries ``execute_run``; give each its own worker so a flood
of runs never starves dispatch.
"""

from __future__ import annotations

import sys
from typing import Any

from celery import Celery
from kombu.entity import Queue

from ordinaut.config import Settings, load_settings
from ordinaut.errors import ConfigError
from ordinaut.runtime import Runtime

BEAT_SCHEDULER = "ordinaut.scheduling.beat:DatabaseScheduler"


def control_queue(settings: Settings) -> str:
    """Queue for dispatch and maintenance tasks."""
    return f"{settings.namespace}.control"


def runs_queue(settings: Settings) -> str:
    """Queue for execute_run."""
    return f"{settings.namespace}.runs"


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings derived from Ordinaut's settings."""
    control, runs = control_queue(settings), runs_queue(settings)
    return {
        "broker_url": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        # a message outliving this is redelivered by Redis even while it runs; the run-claim
        # guard makes the duplicate harmless, and leases (not this) detect lost workers
        "broker_transport_options": {
            "visibility_timeout": max(3600, settings.lease_seconds * 10),
            "global_keyprefix": f"{settings.namespace}:celery:",
        },
        "task_ignore_result": True,
        "result_backend": None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_queues": (Queue(control), Queue(runs)),  # type: ignore[no-untyped-call]
        "task_default_queue": control,
        "task_routes": {"ordinaut.execute_run": {"queue": runs}},
        "timezone": "UTC",
        "enable_utc": True,
        "beat_scheduler": BEAT_SCHEDULER,
        "beat_max_loop_interval": settings.beat_max_interval,
        "beat_schedule": {
            "ordinaut.dispatch": {"task": "ordinaut.dispatch", "schedule": 1.0},
            "ordinaut.reap": {"task": "ordinaut.reap", "schedule": 5.0},
            "ordinaut.sweep": {"task": "ordinaut.sweep", "schedule": 15.0},
        },
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "task_send_sent_event": True,
    }


def create_app(settings: Settings | None = None) -> Celery:
    """A Celery app with Ordinaut's tasks; with no settings, they come from the environment."""
    app = Celery("ordinaut", set_as_current=False)
    holder: dict[str, Runtime] = {}

    if settings is not None:
        app.conf.update(celery_config(settings))
        holder["runtime"] = Runtime(settings, role="celery")
    else:

        def from_environment() -> dict[str, Any]:
            try:
                loaded = load_settings()
            except ConfigError as exc:
                print(f"ordinaut: {exc.message}", file=sys.stderr)
                raise SystemExit(2) from None
            holder["runtime"] = Runtime(loaded, role="celery")
            return celery_config(loaded)

        # evaluated when Celery first reads its configuration, not at import
        app.add_defaults(from_environment)

    def runtime() -> Runtime:
        if "runtime" not in holder:
            _ = app.conf.broker_url  # triggers on_configure
        rt = holder["runtime"]
        rt.after_fork()
        return rt

    app.ordinaut_runtime = runtime  # type: ignore[attr-defined]
    from ordinaut.runs import celery_tasks

    celery_tasks.register(app, runtime)
    return app


def runtime_of(app: Celery) -> Runtime:
    """The Runtime (settings and connections) bound to an app built by create_app."""
    rt: Runtime = app.ordinaut_runtime()
    return rt
