"""The input boundary (ordinaut.service.inputs): what it refuses, and that it names the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordinaut.errors import MalformedRequest, ValidationError
from ordinaut.limits import EARLIEST, LATEST, MAX_JSON_DEPTH
from ordinaut.service import inputs


def nested(depth: int, leaf: Any = 1) -> str:
    """JSON text of ``depth`` objects nested under the key ``a``."""
    return '{"a":' * depth + json.dumps(leaf) + "}" * depth


def refused(raw: str | bytes) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        inputs.parse_json(raw.encode() if isinstance(raw, str) else raw)
    return caught.value


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        ('{"title": "a\\u0000b"}', "title", "NUL"),
        ('{"payload": {"params": {"a\\u0000": 1}}}', "payload.params.a\\u0000", "NUL"),
        ('{"payload": {"x": ["ok", "\\udfff"]}}', "payload.x[1]", "lone surrogate (\\udfff)"),
        ('{"k\\ud800": 1}', "k\\ud800", "lone surrogate"),
        ('{"params": {"a": NaN}}', "params.a", "NaN is not a JSON number"),
        ('{"a": [Infinity]}', "a[0]", "Infinity"),
        ('{"a": -Infinity}', "a", "-Infinity"),
        ('{"a": 1e999}', "a", "too large"),
        ('{"a": -1E400}', "a", "too large"),
        ('{"a": ' + "9" * 5000 + "}", "a", "5000 digits"),
        ('"\\u0000"', "body", "NUL"),
    ],
)
def test_refuses_what_cannot_be_stored_naming_the_field(raw: str, field: str, reason: str) -> None:
    error = refused(raw)
    assert error.field == field
    assert reason in error.message
    assert error.status == 422


def test_a_surrogate_pair_is_one_character_and_passes() -> None:
    assert inputs.parse_json(b'{"e": "\\ud83d\\ude00"}') == {"e": "\U0001f600"}


def test_nesting_up_to_the_limit_passes_and_one_more_level_is_refused() -> None:
    assert inputs.parse_json(nested(MAX_JSON_DEPTH).encode())
    error = refused(nested(MAX_JSON_DEPTH + 1))
    assert error.field == ".".join(["a"] * MAX_JSON_DEPTH)
    assert f"deeper than {MAX_JSON_DEPTH}" in error.message


def test_nesting_deeper_than_python_can_parse_is_refused_not_crashed() -> None:
    error = refused("[" * 100_000 + "]" * 100_000)
    assert error.field == "body" and "deeper" in error.message


@pytest.mark.parametrize("raw", [b"{", b'{"a": 1,}', b"\xff\xfe{}", b"{'a': 1}", b"\xef\xbb\xbf{}"])
def test_what_is_not_json_at_all_is_a_400(raw: bytes) -> None:
    with pytest.raises(MalformedRequest) as caught:
        inputs.parse_json(raw)
    assert caught.value.status == 400 and caught.value.code == "bad_request"


def test_check_json_walks_parsed_values_with_a_base_field() -> None:
    with pytest.raises(ValidationError) as caught:
        inputs.check_json({"ok": [1, {"x": float("nan")}]}, "arguments")
    assert caught.value.field == "arguments.ok[1].x"
    inputs.check_json({"fine": ["text", 1, 2.5, None, True, {"é": "ü"}]})


@pytest.mark.parametrize(
    ("moment", "ok"),
    [
        (EARLIEST, True),
        (LATEST - timedelta(microseconds=1), True),
        (LATEST, False),
        (EARLIEST - timedelta(microseconds=1), False),
        (datetime(9999, 12, 31, 23, 59, tzinfo=UTC), False),
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))), False),
        (datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-14))), False),
        (datetime(2026, 3, 29, 3, 0), True),  # naive: read as UTC
    ],
)
def test_instants_outside_the_documented_range_are_refused(moment: datetime, ok: bool) -> None:
    if ok:
        inputs.check_instant(moment, "after")
        return
    with pytest.raises(ValidationError) as caught:
        inputs.check_instant(moment, "after")
    assert caught.value.field == "after" and "1970-01-01 to 9000-01-01" in caught.value.message


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("javascript:alert(1)", "http:// or https://"),
        ("ftp://example.com/", "http:// or https://"),
        ("http://", "http:// or https://"),
        ("http://127.0.0.1:1/\r\nX-Injected: 1", "control characters"),
        ("http://127.0.0.1/a b", "spaces"),
        ("http://user:pw@127.0.0.1/", "credentials"),
        ("http://@127.0.0.1/", "credentials"),
        ("http://127.0.0.1:99999/", "out of range"),
    ],
)
def test_urls_are_plain_http_without_credentials_or_line_breaks(url: str, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        inputs.check_http_url(url, "endpoint")
    assert caught.value.field == "endpoint" and reason in caught.value.message


def test_plain_urls_pass() -> None:
    for url in ("http://127.0.0.1:8080/tool", "https://example.com/a?b=c#d", "http://[::1]:80/"):
        assert inputs.check_http_url(url, "endpoint") == url


_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20,
)
_BAD = st.sampled_from(["\x00", "\ud800", "\udfff", "a\x00b", "x\udc00"])


def _plant(value: Any, bad: str, choice: int) -> tuple[Any, bool]:
    """``value`` with ``bad`` planted in one string, key or new entry; True when planted."""
    if isinstance(value, str):
        return value + bad, True
    if isinstance(value, list) and value:
        i = choice % len(value)
        inner, done = _plant(value[i], bad, choice // 3)
        return [*value[:i], inner, *value[i + 1 :]], done
    if isinstance(value, dict):
        if value and choice % 2:
            key = sorted(value)[choice % len(value)]
            inner, done = _plant(value[key], bad, choice // 3)
            if done:
                return {**value, key: inner}, True
        return {**value, f"k{bad}": 1}, True
    return [value, bad], True


@settings(max_examples=300, deadline=None)
@given(_JSON, _BAD, st.integers(min_value=0, max_value=10**6))
def test_any_json_with_a_planted_nul_or_surrogate_is_refused(
    value: Any, bad: str, choice: int
) -> None:
    planted, _ = _plant(value, bad, choice)
    raw = json.dumps({"body": planted}, ensure_ascii=True).encode()
    with pytest.raises(ValidationError) as caught:
        inputs.parse_json(raw)
    assert caught.value.field is not None and caught.value.field.startswith("body")


@settings(max_examples=300, deadline=None)
@given(_JSON)
def test_any_clean_json_passes_unchanged(value: Any) -> None:
    raw = json.dumps({"body": value}, ensure_ascii=True).encode()
    assert inputs.parse_json(raw) == json.loads(raw)
