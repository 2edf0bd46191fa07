"""Opaque pagination cursors: (created_at, id) of the last item, URL-safe."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

from ordinaut.errors import ValidationError
from ordinaut.service.inputs import check_instant


def encode(at: datetime, item_id: uuid.UUID) -> str:
    """The cursor pointing after the item (at, item_id)."""
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{item_id}".encode()).decode().rstrip("=")


def decode(value: str) -> tuple[datetime, uuid.UUID]:
    """Parse a cursor made by ``encode``; ValidationError(field="cursor") otherwise."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        at, item_id = raw.split("|")
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        check_instant(parsed, "cursor")
        return parsed, uuid.UUID(item_id)
    except (ValueError, UnicodeDecodeError, ValidationError):
        raise ValidationError(
            "invalid cursor: pass back a next_cursor value", field="cursor"
        ) from None
