"""The ``ordinaut.relay`` Celery task: drain the outbox to Redis Streams (a beat entry)."""

from __future__ import annotations

from collections.abc import Callable

from celery import Celery

from ordinaut.events.relay import relay
from ordinaut.runtime import Runtime


def register(app: Celery, runtime: Callable[[], Runtime]) -> None:
    """Define ``ordinaut.relay`` on ``app``."""

    @app.task(name="ordinaut.relay", ignore_result=True)  # type: ignore[untyped-decorator]
    def relay_outbox() -> int:
        rt = runtime()
        return relay(rt.engine, rt.redis, rt.settings.namespace)
