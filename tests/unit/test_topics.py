"""Event topic patterns: ``*`` is one segment, ``#`` any number; validation names the field."""

from __future__ import annotations

import pytest

from ordinaut.errors import ValidationError
from ordinaut.scheduling.topics import check_pattern, matches


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("email.received", "email.received", True),
        ("email.received", "email.received.late", False),
        ("email.received", "Email.received", False),
        ("calendar.*", "calendar.created", True),
        ("calendar.*", "calendar", False),
        ("calendar.*", "calendar.event.moved", False),
        ("*.urgent", "mail.urgent", True),
        ("*.urgent", "urgent", False),
        ("*", "anything", True),
        ("*", "two.segments", False),
        ("calendar.#", "calendar", True),
        ("calendar.#", "calendar.created", True),
        ("calendar.#", "calendar.event.moved", True),
        ("calendar.#", "calendars.x", False),
        ("#", "a.b.c", True),
        ("#.done", "job.x.done", True),
        ("#.done", "done", True),
        ("a.*.c", "a.b.c", True),
        ("a.*.c", "a.c", False),
        ("a.b", "aXb", False),  # a dot is a separator, not a regex wildcard
    ],
)
def test_matches(pattern: str, topic: str, expected: bool) -> None:
    assert matches(pattern, topic) is expected


@pytest.mark.parametrize(
    "pattern", ["", "a..b", ".a", "a.", "a*.b", "a.#x", "a b", "x" * 201, "mail.réçu"]
)
def test_bad_patterns_name_the_field(pattern: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_pattern(pattern)
    assert caught.value.field == "schedule_expr"
