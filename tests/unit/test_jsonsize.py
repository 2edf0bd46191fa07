"""json_size: the size of a value as compact UTF-8 JSON, found boundedly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ordinaut.jsonsize import fits, json_size


def compact(value: Any) -> int:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return len(text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -17,
        2**63,
        1.5,
        -1e-300,
        float("nan"),
        "",
        "plain",
        'quote " and \\ backslash',
        "control \n\t\x00\x1f chars",
        "ünïcödé and emoji 🎉",
        "lone \udfff surrogate",
        [],
        {},
        [1, "a", None, [True, {"k": "v"}]],
        {"a": {"b": [1, 2, {"c": "é"}]}, "": ""},
        {"n": [1.25, -3, "x" * 1000]},
    ],
)
def test_size_is_the_compact_utf8_json_length(value: Any) -> None:
    assert json_size(value) == compact(value)


def test_shared_references_count_once_per_place() -> None:
    x = {"s": "a" * 1000}
    assert json_size({"a": x, "b": x}) == compact({"a": x, "b": x}) > 2000


def test_stops_at_the_limit_without_walking_everything() -> None:
    # a DAG that doubles 60 times: 2^60 copies of a string when serialised, which no walk
    # could finish; a bounded one returns soon after passing the limit
    value: Any = "a" * 100
    for _ in range(60):
        value = [value, value]
    assert json_size(value, 1024 * 1024) > 1024 * 1024
    assert not fits(value, 1024 * 1024)


def test_a_string_longer_than_what_is_left_is_not_encoded() -> None:
    assert json_size("é" * 10_000_000, 100) > 100


def test_fits_at_the_exact_size() -> None:
    value = {"a": "x" * 10}
    size = compact(value)
    assert fits(value, size) and not fits(value, size - 1)


def test_deep_nesting_does_not_recurse() -> None:
    value: Any = []
    for _ in range(100_000):
        value = [value]
    assert json_size(value) == 200_002
