"""Ordinaut: time, state and discipline for a personal fleet of AI agents.

``ordinaut.app`` is the Celery app (``celery -A ordinaut worker``); it is built on first
access so that importing the package connects to nothing and loads no Celery.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_app: Any = None


def __getattr__(name: str) -> Any:
    global _app
    if name in ("app", "celery"):
        if _app is None:
            from ordinaut.celery_app import create_app

            _app = create_app()
        return _app
    raise AttributeError(f"module 'ordinaut' has no attribute {name!r}")
