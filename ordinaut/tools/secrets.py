"""Secrets: named values read from the worker's environment at call time, never stored.

A tool or MCP server refers to a secret by name (``TELEGRAM_TOKEN``); :func:`resolve` reads
``ORDINAUT_SECRET_TELEGRAM_TOKEN``. Values never reach the catalog, the API, step receipts or
logs; errors name the variable, never a value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ordinaut.errors import ToolError

PREFIX = "ORDINAUT_SECRET_"
NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")


def variable(name: str) -> str:
    """The environment variable holding secret ``name``."""
    return PREFIX + name


def resolve(name: str, environ: Mapping[str, str], *, field: str = "auth.secret") -> str:
    """The value of secret ``name``; a non-retryable ToolError naming the variable if unset."""
    value = environ.get(variable(name))
    if not value:
        raise ToolError(
            f"secret {name!r} is not set: export {variable(name)} for the worker", field=field
        )
    return value
