"""Python values as the JSON text that one ``jsonb`` parameter carries (batches, receipts)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any


def dumps(value: Any) -> str:
    """JSON text of ``value``: datetimes in ISO 8601, other unknown values as ``str``."""
    return json.dumps(value, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def iso(value: datetime | None) -> str | None:
    """``value`` in ISO 8601 (None stays None), as a batch row field."""
    return None if value is None else value.isoformat()
