"""The Celery app: queues, routing, reliability settings and the beat entries.

``celery -A ordinaut worker|beat|flower`` finds :data:`app` here (Celery's convention:
``<package>.celery.app``); it is configured from the environment the first time Celery reads
its configuration, so importing it connects to nothing. The API, tests and ``ordinaut up``
build their own with ``create_app(settings)``. The tasks are in :mod:`ordinaut.tasks`.

Queues (prefixed with ORDINAUT_NAMESPACE): ``<ns>.control`` carries dispatch and the
maintenance jobs, ``<ns>.runs`` carries ``execute_run``; give each its own worker so a flood
of runs never starves dispatch.

Reliability settings, and why:

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only when
  its task has returned, and one whose pool process died is put back. Redelivery is always
  safe: ``execute_run`` claims its run with a conditional UPDATE, and dispatch, reap and
  sweep are idempotent.
- ``worker_prefetch_multiplier = 1``: a worker reserves at most one message per pool
  process, so few runs wait in a busy (or dying) worker's buffer while another worker idles.
  ``worker_disable_prefetch`` (reserve only when a process is free) measured no better here
  and stays off.
- ``visibility_timeout`` (Redis re-queues an unacknowledged message after it, *even while its
  task still runs*) is deliberately long: max(1 h, 10 x lease). Dead workers are detected by
  run leases (``lease_seconds``, heartbeat every third, reaper every half lease), not by the
  broker, so a short timeout would only re-deliver messages of long runs, each one a no-op
  claim. The few messages a killed worker held are restored after it — by then their runs
  were reaped (running) or re-sent by the sweeper (queued, after 5 leases).
- No countdowns or ETAs anywhere: retries wait in due_work (``not_before``), so no message
  has to outlive the visibility timeout.
- Priority reaches the broker: ``execute_run`` is sent with the run's priority, and kombu's
  Redis transport keeps one list per priority step (0, 3, 6, 9) and serves the lowest
  first, so under a backlog Ordinaut priorities 1-2 overtake 3-5, which overtake 6-8 and 9.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from celery import Celery
from celery.apps.beat import Beat
from celery.signals import celeryd_after_setup, celeryd_init, setup_logging
from kombu.entity import Exchange, Queue

import ordinaut.tasks  # noqa: F401  (defines the shared tasks every app gets)
from ordinaut import logs
from ordinaut.config import Settings, load_settings
from ordinaut.errors import ConfigError
from ordinaut.runs.policies import rate_limits_of
from ordinaut.runtime import Runtime, bind

BEAT_SCHEDULER = "ordinaut.beat.scheduler:DatabaseScheduler"


IDLE_POLL_SECONDS = 5


def visibility_timeout(settings: Settings) -> int:
    """Seconds Redis waits before re-queueing an unacknowledged message (see above)."""
    return max(3600, settings.lease_seconds * 10)


def maintain_every(settings: Settings) -> float:
    """Maintenance period: half a lease (1 to 5 s), so a dead worker's run waits at most 1.5
    leases to be reaped."""
    return min(5.0, max(1.0, settings.lease_seconds / 2))


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings derived from Ordinaut's settings."""
    control, runs = settings.control_queue, settings.runs_queue
    return {
        "broker_url": settings.redis_url,
        # kombu's Redis transport, keeping one client per channel (see ordinaut.broker)
        "broker_transport": "ordinaut.broker:Transport",
        "broker_connection_retry_on_startup": True,
        # see the module docstring: leases, not this, detect lost workers
        "broker_transport_options": {
            "visibility_timeout": visibility_timeout(settings),
            "global_keyprefix": f"{settings.namespace}:celery:",
            # BRPOP's timeout: an idle worker asks Redis every 5 s instead of every second
            # (a message still arrives at once; kombu >= 5.6 reads this as the timeout)
            "polling_interval": IDLE_POLL_SECONDS,
        },
        "task_ignore_result": True,
        "result_backend": None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_disable_prefetch": False,
        # each queue on its own direct exchange with its own routing key: a bare Queue(name)
        # would get the default exchange *and* routing key, binding both queues to the same
        # key so every message landed in both
        "task_queues": tuple(
            Queue(name, Exchange(name, type="direct"), routing_key=name)  # type: ignore[no-untyped-call]
            for name in (control, runs)
        ),
        "task_default_queue": control,
        "task_routes": {
            "ordinaut.execute_run": {"queue": runs},
            # condition checks call tools and webhooks wait on receivers: not on control
            "ordinaut.check": {"queue": runs},
            "ordinaut.webhooks": {"queue": runs},
        },
        "timezone": "UTC",
        "enable_utc": True,
        "beat_scheduler": BEAT_SCHEDULER,
        # one periodic entry: the reaper, the sweeper and the dispatch and relay backstops,
        # each only when a read-only look says it has work (beat requests dispatch and relay
        # itself the moment they have work, so this is for lost wake-ups and dead workers)
        "beat_schedule": {
            "ordinaut.maintain": {
                "task": "ordinaut.maintain",
                "schedule": maintain_every(settings),
            },
        },
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        # a "task-sent" event is one more Redis round trip per published run; Flower shows
        # runs from the worker's events (``-E``) without it
        "task_send_sent_event": False,
    }


@setup_logging.connect(weak=False)  # type: ignore[untyped-decorator]
def _setup_logging(loglevel: int | str | None = None, **_: Any) -> None:
    """Ordinaut's log format in every Celery process (JSON when stderr is not a terminal;
    see :mod:`ordinaut.logs`) instead of Celery's own set-up."""
    role = next((a for a in sys.argv[1:] if a in ("worker", "beat", "flower")), "celery")
    logs.configure(loglevel or "INFO", process=role)


@celeryd_init.connect(weak=False)  # type: ignore[untyped-decorator]
def _early_logging(instance: Any = None, options: dict[str, Any] | None = None, **_: Any) -> None:
    """A worker logs in Ordinaut's format before Celery warns about running as root (the
    warning becomes a log record); in JSON its banner is no line of its own (see below)."""
    logs.configure((options or {}).get("loglevel") or "INFO", process="worker")
    if logs.wants_json() and instance is not None:
        instance.quiet = True


@celeryd_after_setup.connect(weak=False)  # type: ignore[untyped-decorator]
def _banner_at_debug(instance: Any = None, **_: Any) -> None:
    if logs.wants_json() and instance is not None:
        logging.getLogger("ordinaut.worker").debug(
            "%s", instance.startup_info(artlines=False), extra={"event": "celery.banner"}
        )


class _Beat(Beat):  # type: ignore[misc]
    """``celery beat`` without its start-up banner when logging JSON (it is not a JSON line)."""

    def __init__(self, *args: Any, quiet: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, quiet=quiet or logs.wants_json(), **kwargs)


def create_app(settings: Settings | None = None) -> Celery:
    """A Celery app with Ordinaut's tasks; with no settings, they come from the environment."""
    app = Celery("ordinaut", set_as_current=False)
    app.__dict__["Beat"] = app.subclass_with_self(_Beat)  # Celery's cached_property, replaced
    if settings is not None:
        app.conf.update(celery_config(settings))
        fixed = settings
        bind(app, lambda: Runtime(fixed, role="celery"))
        return app

    loaded: list[Settings] = []

    def from_environment() -> dict[str, Any]:
        try:
            loaded.append(load_settings())
            rate_limits_of(loaded[0])  # a malformed ORDINAUT_RATE_LIMITS stops the start
        except ConfigError as exc:
            print(f"ordinaut: {exc.message}", file=sys.stderr)
            raise SystemExit(2) from None
        return celery_config(loaded[0])

    def runtime() -> Runtime:
        if not loaded:
            _ = app.conf.broker_url  # reading the configuration loads the settings
        return Runtime(loaded[0], role="celery")

    # evaluated when Celery first reads its configuration, not at import
    app.add_defaults(from_environment)
    bind(app, runtime)
    return app


# ``celery -A ordinaut …`` finds this app (Celery looks for ``ordinaut.celery.app``). It is
# configured from the environment when Celery first reads its configuration, so importing
# this module connects to nothing.
app = create_app()
