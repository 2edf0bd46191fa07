"""Celery finds Ordinaut's app and tasks the way Celery users expect."""

from __future__ import annotations

import pytest
from celery.app.utils import find_app

TASKS = {
    "ordinaut.dispatch",
    "ordinaut.execute_run",
    "ordinaut.reap",
    "ordinaut.sweep",
    "ordinaut.relay",
    "ordinaut.trigger",
    "ordinaut.check",
    "ordinaut.webhooks",
    "ordinaut.maintain",
}


def test_celery_dash_a_ordinaut_finds_the_app_and_its_tasks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # settings are read when Celery first reads its configuration; nothing connects here
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    app = find_app("ordinaut")  # what `celery -A ordinaut …` does
    assert set(app.tasks) >= TASKS
    assert app.conf.task_routes["ordinaut.execute_run"] == {"queue": "ordinaut.runs"}


def test_tasks_are_importable_at_module_level() -> None:
    from ordinaut.tasks import (
        check_conditions,
        deliver_webhooks,
        dispatch,
        execute_run,
        maintain,
        reap,
        relay,
        sweep,
        trigger,
    )

    found = (
        dispatch,
        execute_run,
        maintain,
        reap,
        relay,
        sweep,
        trigger,
        check_conditions,
        deliver_webhooks,
    )
    assert {t.name for t in found} == TASKS


def test_every_app_built_for_a_namespace_has_the_tasks() -> None:
    from ordinaut.celery import create_app
    from ordinaut.config import load_settings

    settings = load_settings(
        DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
        REDIS_URL="redis://127.0.0.1:1/0",
        namespace="elsewhere",
    )
    app = create_app(settings)
    assert set(app.tasks) >= TASKS
    assert app.conf.task_default_queue == "elsewhere.control"
