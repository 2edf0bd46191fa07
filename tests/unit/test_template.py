"""Template rendering: types, nesting, text, missing paths, defaults, escaping, expressions."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ordinaut.errors import OrdinautError
from ordinaut.pipeline import template
from ordinaut.pipeline.template import TemplateError

CTX: dict[str, Any] = {
    "params": {
        "n": 3,
        "f": 1.5,
        "zero": 0,
        "yes": True,
        "no": False,
        "s": "hello",
        "empty": "",
        "city": "Chișinău",
        "obj": {"a": 1, "b": [1, 2]},
        "list": ["x", "y"],
        "nothing": None,
    },
    "steps": {"cal": {"items": [{"t": "09:00"}, {"t": "10:00"}]}, "brief": {"text": "plan"}},
    "item": {"subject": "Re: lunch", "id": 7},
    "event": {"type": "email.received"},
    "run": {"id": "r-1", "attempt": 2},
    "now": "2025-08-08T05:30:00+00:00",
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # a whole-string template keeps the JSON type of its value
        ("${params.n}", 3),
        ("${params.f}", 1.5),
        ("${params.zero}", 0),
        ("${params.yes}", True),
        ("${params.no}", False),
        ("${params.s}", "hello"),
        ("${params.empty}", ""),
        ("${params.obj}", {"a": 1, "b": [1, 2]}),
        ("${params.list}", ["x", "y"]),
        ("${steps.cal.items}", [{"t": "09:00"}, {"t": "10:00"}]),
        ("${steps.cal.items[1].t}", "10:00"),
        ("${ params.n }", 3),
        # inside longer text values are written as text
        ("n=${params.n}", "n=3"),
        ("f=${params.f}", "f=1.5"),
        ("${params.yes}/${params.no}", "true/false"),
        ("obj ${params.obj}", 'obj {"a":1,"b":[1,2]}'),
        ("list ${params.list}", 'list ["x","y"]'),
        ("${params.s}, ${params.s}!", "hello, hello!"),
        ("[${params.empty}]", "[]"),
        # unicode passes through unchanged, also inside JSON text
        ("${params.city}", "Chișinău"),
        ("în ${params.city} ☀", "în Chișinău ☀"),
        ('${params.obj} ${`["ș"]`}', '{"a":1,"b":[1,2]} ["ș"]'),
        # the other context roots
        ("${item.subject}", "Re: lunch"),
        ("${item}", {"subject": "Re: lunch", "id": 7}),
        ("${now}", "2025-08-08T05:30:00+00:00"),
        ("at ${now}", "at 2025-08-08T05:30:00+00:00"),
        ("${event.type}", "email.received"),
        ("${run.attempt}", 2),
        # explicit defaults and literals
        ("${params.missing || 'none'}", "none"),
        ("${params.nothing || `42`}", 42),
        ("x=${params.missing || `[]`}", "x=[]"),
        ("${`5`}", 5),
        ("${'}'}", "}"),
        ('${`{"a": "}"}`}', {"a": "}"}),
        ("${{n: params.n, s: params.s}}", {"n": 3, "s": "hello"}),
        ("${length(steps.cal.items)}", 2),
        ("${join(', ', params.list)}", "x, y"),
        # escaping and plain dollars
        ("$${params.n}", "${params.n}"),
        ("cost $${x} and ${params.n}", "cost ${x} and 3"),
        ("$5 and $$ and $", "$5 and $$ and $"),
        ("", ""),
        ("no templates", "no templates"),
        # non-strings are returned as they are
        (5, 5),
        (None, None),
        (True, True),
        (2.5, 2.5),
    ],
)
def test_render(value: Any, expected: Any) -> None:
    assert template.render(value, CTX) == expected


def test_render_walks_dicts_and_lists_and_keeps_keys() -> None:
    value = {
        "${params.s}": "${params.n}",
        "nested": {"list": ["${params.obj.a}", "a ${params.s}", 7, {"deep": "${item.id}"}]},
        "tuple": ("${params.f}",),
    }
    assert template.render(value, CTX) == {
        "${params.s}": 3,
        "nested": {"list": [1, "a hello", 7, {"deep": 7}]},
        "tuple": [1.5],
    }


def test_render_does_not_mutate_its_input() -> None:
    value = {"a": ["${params.n}", {"b": "${params.s}"}]}
    before = copy.deepcopy(value)
    template.render(value, CTX)
    assert value == before


@pytest.mark.parametrize(
    ("value", "expression"),
    [
        ("${params.missing}", "params.missing"),
        ("${params.nothing}", "params.nothing"),
        ("text ${steps.nope.text}", "steps.nope.text"),
        ({"a": ["${item.missing}"]}, "item.missing"),
        ("${steps.cal.items[5]}", "steps.cal.items[5]"),
        ("${params.n} and ${params.gone}", "params.gone"),
    ],
)
def test_nothing_is_an_error_never_null_text(value: Any, expression: str) -> None:
    with pytest.raises(TemplateError) as info:
        template.render(value, CTX)
    assert info.value.expression == expression
    assert "resolved to nothing" in info.value.message
    assert "null" not in str(template.render("${params.missing || 'x'}", CTX))


def test_template_error_is_an_ordinaut_error() -> None:
    assert issubclass(TemplateError, OrdinautError)


@pytest.mark.parametrize(
    "value",
    ["${params.n", "a ${}", "${ }", "${'unterminated}", "${`1`"],
)
def test_malformed_templates_are_errors(value: str) -> None:
    with pytest.raises(TemplateError):
        template.render(value, CTX)


def test_runtime_jmespath_failure_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="failed"):
        template.render("${length(params.n)}", CTX)


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("foo(", "invalid JMESPath"),
        ("a[", "invalid JMESPath"),
        ("a.", "invalid JMESPath"),
        ("", "invalid JMESPath"),
        ("${a}", "invalid JMESPath"),
        ("nosuch(a)", "unknown function nosuch()"),
        ("length(nope(a))", "unknown function nope()"),
        ("!params.flag", "'!' binds tighter than '.'"),
        ("a && !steps.x.ok", "wrap the path in parentheses"),
    ],
)
def test_compile_expr_rejects_invalid_jmespath(expr: str, reason: str) -> None:
    with pytest.raises(TemplateError) as info:
        template.compile_expr(expr)
    assert reason in info.value.message
    assert info.value.expression == expr


def test_compile_expr_returns_a_compiled_expression() -> None:
    assert template.compile_expr("params.n").search(CTX) == 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", []),
        ("${a.b}", [("", "a.b")]),
        ({"x": "${a}", "y": ["k ${b} ${c}", 3]}, [(".x", "a"), (".y[0]", "b"), (".y[0]", "c")]),
        ({"x": "$${not.a.template}"}, []),
        ([{"deep": {"er": "${item}"}}], [("[0].deep.er", "item")]),
        (42, []),
    ],
)
def test_find_templates(value: Any, expected: list[tuple[str, str]]) -> None:
    assert template.find_templates(value) == expected


def test_find_templates_reports_where_a_malformed_template_is() -> None:
    with pytest.raises(TemplateError) as info:
        template.find_templates({"a": [1, "${oops"]}, ".with")
    assert info.value.field == ".with.a[1]"


@pytest.mark.parametrize(
    ("expr", "paths"),
    [
        ("params.x", [("params", "x")]),
        ("steps.brief.text", [("steps", "brief", "text")]),
        ("steps.targets.items[0].x", [("steps", "targets", "items")]),
        ('steps."my-step".x', [("steps", "my-step", "x")]),
        ("item", [("item",)]),
        ("params.x || 'none'", [("params", "x")]),
        ("length(steps.cal.items) > `0`", [("steps", "cal", "items")]),
        ("steps.a.items[?b == `1`].c", [("steps", "a", "items")]),
        ("steps.a | b", [("steps", "a")]),
        ("{x: params.a, y: item.b}", [("params", "a"), ("item", "b")]),
        ("[now, run.id]", [("now",), ("run", "id")]),
        ("event.ok && steps.s.ok", [("event", "ok"), ("steps", "s", "ok")]),
        ("!(params.flag)", [("params", "flag")]),
        ("sort_by(steps.a.list, &name)", [("steps", "a", "list")]),
        ("`5`", []),
        ("@", []),
    ],
)
def test_root_paths(expr: str, paths: list[tuple[str, ...]]) -> None:
    assert template.root_paths(expr) == paths


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        (False, False),
        ("", False),
        ([], False),
        ({}, False),
        (True, True),
        (0, True),
        (0.0, True),
        ("false", True),
        ([0], True),
        ({"a": None}, True),
    ],
)
def test_truthy_follows_jmespath(value: Any, expected: bool) -> None:
    assert template.truthy(value) is expected


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("s", "s"),
        (1, "1"),
        (1.25, "1.25"),
        (True, "true"),
        ({"k": "ü"}, '{"k":"ü"}'),
        ([1, "a"], '[1,"a"]'),
    ],
)
def test_as_text(value: Any, text: str) -> None:
    assert template.as_text(value) == text
