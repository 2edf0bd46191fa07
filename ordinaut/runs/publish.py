"""Publishing runs: ``execute_run`` messages for queued runs, pipelined per batch.

``sender`` is any Celery app (this module imports no Celery): dispatch and the sweeper
publish with their worker's app, beat with its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ordinaut.runs.dispatch import Publish, QueuedRun, message_groups

EXECUTE_RUN = "ordinaut.execute_run"


def pool_queue(runs_queue: str, pool: str) -> str:
    """The Celery queue of a worker pool: ``<namespace>.runs.<pool>``."""
    return f"{runs_queue}.{pool}"


def publisher(sender: Any, producer: Any = None) -> Publish:
    """A :data:`~ordinaut.runs.dispatch.Publish` that sends with ``sender`` (one pipelined
    round trip to Redis per batch), on ``producer`` when given (beat keeps its own).

    A run with a worker pool goes to its pool's queue (:func:`pool_queue` of the runs queue
    the app routes ``execute_run`` to); the others follow the app's route.
    """
    routes = getattr(sender.conf, "task_routes", None) or {}
    runs_queue = (routes.get(EXECUTE_RUN) or {}).get("queue", "ordinaut.runs")

    def publish(runs: Sequence[QueuedRun]) -> None:
        with sender.producer_or_acquire(producer) as conn, conn.batch():
            for group in message_groups(runs):
                ids = [str(run.id) for run in group]
                pool = group[0].pool
                extra = {"queue": pool_queue(runs_queue, pool)} if pool else {}
                # argsrepr given: Celery would otherwise saferepr() the args of every message;
                # it is what Flower shows, so it names each run's task too
                sender.send_task(
                    EXECUTE_RUN,
                    args=ids,
                    argsrepr=shown(group),
                    kwargsrepr="{}",
                    priority=min(run.priority for run in group),
                    producer=conn,
                    **extra,
                )

    return publish


SHOWN_TITLE_CHARS = 60


def shown(runs: Sequence[QueuedRun]) -> str:
    """How a message's runs read in Flower: ``'Morning briefing' run 6f1c…`` each."""

    def one(run: QueuedRun) -> str:
        title = run.title if len(run.title) <= SHOWN_TITLE_CHARS else run.title[:57] + "..."
        return f"{title!r} run {run.id}" if title else f"run {run.id}"

    return "; ".join(one(run) for run in runs)
