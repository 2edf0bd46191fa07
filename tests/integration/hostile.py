"""Hostile inputs for the boundary fuzz tests, and a fingerprint of the whole database.

A request is a valid baseline with one to three slots replaced by something hostile: a NUL,
a lone surrogate, nesting past the limit, NaN/Infinity/1e999, huge integers, extreme dates,
wrong types, odd URLs. Body values are spliced in as raw JSON text (so NaN and 5,000-deep
arrays can be sent at all); path and query strings are percent-encoded bytes (so a lone
surrogate arrives as its WTF-8 bytes and a NUL as ``%00``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import psycopg
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from ordinaut.limits import MAX_JSON_DEPTH

SLOT = "\x1eSLOT\x1e"  # placeholder string, replaced by raw JSON text

BAD_CHARS = ["\x00", "\ud800", "\udfff", "\udc00", "\x00\x00"]
DATES = [
    "9999-12-31T23:59:00Z",
    "9999-12-31T23:59:59.999999-14:00",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "1969-12-31T23:59:59Z",
    "9000-01-01T00:00:00Z",
    "8999-12-31T23:59:59Z",
    "0001-01-01",
    "9999-12-31",
    "2026-02-30T09:00:00Z",
    "99999-01-01T00:00:00Z",
]
URLS = [
    "javascript:alert(1)",
    "http://user:pw@127.0.0.1:1/",
    "http://127.0.0.1:1/\r\nX-Injected: 1",
    "http://127.0.0.1:99999/",
    "file:///etc/passwd",
    "http://[::ffff:127.0.0.1]:1/",
    "",
]
SCHEDULES = [
    "DTSTART:99991231T230000Z\nRRULE:FREQ=MINUTELY",
    "DTSTART:00010101T000000Z\nRRULE:FREQ=SECONDLY",
    "FREQ=YEARLY;UNTIL=99991231T235959Z",
    "DTSTART;TZID=Pacific/Kiritimati:99991231T235959\nRRULE:FREQ=DAILY",
    "DTSTART:20260101T000000Z\nRDATE:99991231T235959Z\nRRULE:FREQ=YEARLY;COUNT=1",
    "FREQ=SECONDLY;BYSECOND=0,1,2,3,4,5,6,7,8,9",
    "59 23 31 12 *",
    "* * * * * *",
]
RAW_NUMBERS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1e999",
    "1e308",
    "-0.0",
    "9" * 5000,
    str(2**63),
    str(-(2**63) - 1),
    str(2**31),
    "0",
    "-1",
    "1.5",
    "true",
    "false",
    "null",
]


def nested(depth: int, *, array: bool) -> str:
    """JSON text nested ``depth`` levels deep."""
    return "[" * depth + "]" * depth if array else '{"a":' * depth + "1" + "}" * depth


def _text_with(bad: str, base: str) -> str:
    middle = len(base) // 2
    return base[:middle] + bad + base[middle:]


hostile_text = st.one_of(
    st.sampled_from(BAD_CHARS),
    st.builds(_text_with, st.sampled_from(BAD_CHARS), st.text(max_size=20)),
    st.sampled_from(DATES + URLS + SCHEDULES),
    st.sampled_from(["", " ", "\t", "-1", "0", "true", "null", "x" * 5000, "../..", "%00"]),
    st.text(max_size=40),
)
"""Strings for path and query parameters (and, JSON-encoded, for body values)."""

raw_json = st.one_of(
    hostile_text.map(lambda s: json.dumps(s, ensure_ascii=True)),
    st.sampled_from(RAW_NUMBERS),
    st.builds(
        nested,
        st.sampled_from([MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 250, 2000]),
        array=st.booleans(),
    ),
    st.sampled_from(["[]", "{}", '{"$ref": "#/nope"}', '[{"a\\u0000": 1}]', '{"\\udfff": 1}']),
)
"""Raw JSON text for one body value."""

raw_key = st.one_of(
    st.sampled_from(BAD_CHARS).map(lambda s: json.dumps(s, ensure_ascii=True)),
    st.builds(_text_with, st.sampled_from(BAD_CHARS), st.text(max_size=10)).map(
        lambda s: json.dumps(s, ensure_ascii=True)
    ),
    st.sampled_from(['"created_by"', '"id"', '"$ref"', '""']),
)
"""Raw JSON text for an object key."""


@dataclass(frozen=True)
class Call:
    """One request: path template and parameters, query, and a JSON body (or None)."""

    method: str
    template: str
    path: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None


def json_slots(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every position in ``value`` (itself included) that a hostile value may replace."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from json_slots(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from json_slots(item, (*path, i))


def object_slots(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every object in ``value``, where a hostile key may be added."""
    if isinstance(value, dict):
        yield path
        for key, item in value.items():
            yield from object_slots(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from object_slots(item, (*path, i))


def _edited(value: Any, path: tuple[Any, ...], edit: Callable[[Any], Any]) -> Any:
    """``value`` with ``edit`` applied at ``path``; unchanged when an earlier edit removed it."""
    if not path:
        return edit(value)
    head, rest = path[0], path[1:]
    if isinstance(value, dict) and head in value:
        return {**value, head: _edited(value[head], rest, edit)}
    if isinstance(value, list) and isinstance(head, int) and head < len(value):
        return [*value[:head], _edited(value[head], rest, edit), *value[head + 1 :]]
    return value


def _to(marker: str) -> Callable[[Any], Any]:
    return lambda _: marker


def _adding(key: str) -> Callable[[Any], Any]:
    return lambda old: {**old, key: 1} if isinstance(old, dict) else old


@dataclass(frozen=True)
class Mutation:
    """Replace a body value, add a body key, or set a path or query parameter."""

    where: str  # "value", "key", "path", "query"
    slot: Any
    raw: str


def mutations(call: Call, extra_query: tuple[str, ...] = ()) -> st.SearchStrategy[Mutation]:
    """Hostile changes to ``call``: any body position, key, path or query parameter."""
    options: list[st.SearchStrategy[Mutation]] = []
    if call.body is not None:
        options.append(
            st.builds(
                Mutation, st.just("value"), st.sampled_from(list(json_slots(call.body))), raw_json
            )
        )
        options.append(
            st.builds(
                Mutation, st.just("key"), st.sampled_from(list(object_slots(call.body))), raw_key
            )
        )
    if call.path:
        options.append(
            st.builds(Mutation, st.just("path"), st.sampled_from(sorted(call.path)), hostile_text)
        )
    names = sorted({*call.query, *extra_query})
    if names:
        options.append(st.builds(Mutation, st.just("query"), st.sampled_from(names), hostile_text))
    return st.one_of(options)


def apply(call: Call, changes: list[Mutation]) -> tuple[str, bytes | None]:
    """The URL (path and query, percent-encoded) and the raw body of ``call`` after ``changes``."""
    path, query, body = dict(call.path), dict(call.query), call.body
    splices: list[str] = []
    for change in changes:
        if change.where == "path":
            path[change.slot] = change.raw
        elif change.where == "query":
            query[change.slot] = change.raw
        else:
            marker = f"{SLOT}{len(splices)}"
            edit = _to(marker) if change.where == "value" else _adding(marker)
            body = _edited(body, change.slot, edit)
            splices.append(change.raw)
    url = call.template
    for name, value in path.items():
        url = url.replace("{" + name + "}", _pct(value))
    if query:
        url += "?" + "&".join(f"{_pct(k)}={_pct(v)}" for k, v in query.items())
    if body is None:
        return url, None
    text = json.dumps(body, ensure_ascii=True)
    for i, raw in enumerate(splices):  # a later change may have replaced an earlier one
        text = text.replace(json.dumps(f"{SLOT}{i}", ensure_ascii=True), raw, 1)
    return url, text.encode()


def _pct(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def fingerprint_query(conn: psycopg.Connection[Any]) -> str:
    """One statement giving (table, md5 of all its rows) for every table but alembic's."""
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
        "AND tablename <> 'alembic_version' ORDER BY tablename"
    ).fetchall()
    parts = [
        f"SELECT '{name}', md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) "
        f'FROM "{name}" x'
        for (name,) in rows
    ]
    return " UNION ALL ".join(parts)


class Fingerprint:
    """The content of every table, to show a refused request changed nothing."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self.conn = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
        self.query = fingerprint_query(self.conn)

    def take(self) -> dict[str, str]:
        return {name: digest for name, digest in self.conn.execute(self.query).fetchall()}

    def close(self) -> None:
        self.conn.close()
