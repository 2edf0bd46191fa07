"""The store moves runs only along the state machine's edges, and says statuses only through
the vocabulary.

Every statement in ``ordinaut/store`` that changes a ``task_run``'s status is written with a
transition declared in :mod:`ordinaut.store.queries.transitions` (its ``SET`` from
``X.assign()``, its ``WHERE`` guard from ``X.guard()``); these tests read the store's source
to prove it, and check every declared edge against :data:`ordinaut.vocabulary.TRANSITIONS`.
Editing a declaration to an edge the table lacks, or writing a status into an UPDATE by
hand, fails here.
"""

from __future__ import annotations

import ast
import importlib
import re
import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy.engine import Connection

from ordinaut import vocabulary
from ordinaut.store import queries
from ordinaut.store.queries import transitions
from ordinaut.vocabulary import INSERTED_AS, TRANSITIONS, RunStatus

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "ordinaut" / "store"

_UPDATE_RUN = re.compile(
    r"\bUPDATE\s+task_run\b(?:\s+(?:AS\s+)?(?!SET\b)\w+)?\s+SET\s+(?P<set>.*?)"
    r"\s(?P<rest>(?:FROM|WHERE|RETURNING)\b(?:(?!\bUPDATE\s+task_run\b).)*)",  # to the next one
    re.IGNORECASE | re.DOTALL,
)
_ASSIGN = re.compile(r"\{(?P<expr>[\w.]+)\.assign\(\)\}")
_INSERT_RUN = re.compile(r"\bINSERT\s+INTO\s+task_run\b", re.IGNORECASE)
_SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b")


@dataclass(frozen=True)
class Sql:
    """One SQL string as written in the source: literal text, ``{expr}`` for each
    interpolated expression."""

    module: str
    line: int
    template: str
    literal_parts: tuple[str, ...]
    placeholders: tuple[ast.expr, ...]

    def where(self) -> str:
        return f"{self.module}:{self.line}"


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def store_sql() -> list[Sql]:
    """Every string or f-string in ``ordinaut/store`` that looks like a SQL statement."""
    found: list[Sql] = []
    for path in sorted(STORE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        skip = {
            id(part)
            for node in ast.walk(tree)
            if isinstance(node, ast.JoinedStr)
            for part in node.values
        }
        skip |= {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }  # docstrings are prose, not statements
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                parts: list[str] = []
                literal: list[str] = []
                holes: list[ast.expr] = []
                for part in node.values:
                    if isinstance(part, ast.Constant):
                        parts.append(str(part.value))
                        literal.append(str(part.value))
                    elif isinstance(part, ast.FormattedValue):
                        parts.append("{" + ast.unparse(part.value) + "}")
                        holes.append(part.value)
                text = "".join(parts)
                item = Sql(_module_name(path), node.lineno, text, tuple(literal), tuple(holes))
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in skip
            ):
                text = node.value
                item = Sql(_module_name(path), node.lineno, text, (text,), ())
            else:
                continue
            if _SQL.search(text):
                found.append(item)
    return found


def _resolve(module: str, expr: str) -> object:
    """The object ``expr`` (a dotted name) names in ``module``."""
    namespace = vars(importlib.import_module(module))
    head, *rest = expr.split(".")
    value = namespace[head]
    for name in rest:
        value = getattr(value, name)
    return value


# --- the declared transitions are edges of the state machine ------------------------------


@pytest.mark.parametrize("move", transitions.DECLARED, ids=lambda t: t.name)
def test_declared_transitions_are_edges_of_the_state_machine(
    move: transitions.Transition,
) -> None:
    illegal = sorted(
        f"{source} → {target}"
        for source, target in move.edges
        if target not in TRANSITIONS.get(source, frozenset())
    )
    assert not illegal, f"transition {move.name!r} moves runs along edges not in TRANSITIONS"
    assert move.sources and move.targets


def test_the_guard_and_the_assignment_render_the_declared_states() -> None:
    assert transitions.CLAIM.guard("r.status") == "r.status = 'queued'"
    assert transitions.CLAIM.assign() == "status = 'running'"
    assert transitions.CANCEL.guard() == (
        "status IN ('deferred', 'queued', 'running', 'waiting_approval')"
    )
    assert transitions.FINISH.assign() == "status = CAST(:target AS run_status)"
    assert transitions.FINISH.bind(RunStatus.FAILED) == {"target": "failed"}
    with pytest.raises(ValueError, match="finish: cannot move a run to queued"):
        transitions.FINISH.bind(RunStatus.QUEUED)


# --- every status UPDATE goes through a declared transition ------------------------------


def status_updates() -> list[tuple[Sql, str | None, str]]:
    """(statement, the transition its SET uses or None, the text after SET) for every
    ``UPDATE task_run`` in the store that changes the status."""
    found: list[tuple[Sql, str | None, str]] = []
    for sql in store_sql():
        for match in _UPDATE_RUN.finditer(sql.template):
            assign = _ASSIGN.search(match["set"])
            if assign is not None or _sets(match["set"]):
                found.append((sql, assign["expr"] if assign else None, match["rest"]))
    return found


def _sets(set_clause: str) -> bool:
    """True when a SET clause (without a transition) assigns the status column."""
    return re.search(r"(^|,)\s*status\s*=", set_clause) is not None


def test_every_run_status_update_goes_through_a_declared_transition() -> None:
    used: set[transitions.Transition] = set()
    for sql, expr, rest in status_updates():
        assert expr is not None, (
            f"{sql.where()}: an UPDATE task_run sets status without a transition; write "
            "SET {X.assign()} ... WHERE {X.guard()} with X from store.queries.transitions"
        )
        move = _resolve(sql.module, expr)
        assert move in transitions.DECLARED, (
            f"{sql.where()}: {expr} is not a transition declared in transitions.DECLARED"
        )
        assert re.search(r"\{" + re.escape(expr) + r"\.guard\([^}]*\)\}", rest), (
            f"{sql.where()}: the UPDATE sets status with {expr} but does not guard the "
            f"current status with {expr}.guard(...)"
        )
        used.add(move)
    # the scan found every declared transition in a statement: a missed one means the
    # pattern above stopped recognising statements, not that the store got simpler
    assert used == set(transitions.DECLARED)


def test_no_status_update_of_a_run_is_built_with_sqlalchemy_core() -> None:
    core = re.compile(r"\bupdate\(\s*(?:\w+\.)?task_run\b|\btask_run\.update\(")
    for path in STORE.rglob("*.py"):
        assert not core.search(path.read_text()), (
            f"{path.relative_to(ROOT)}: task_run is updated with SQLAlchemy Core; write the "
            "statement as SQL with a declared transition instead"
        )


def test_a_status_update_written_by_hand_is_caught() -> None:
    # the pattern itself: a hand-written status assignment is recognised, a transition's is
    # told apart, and an UPDATE that leaves status alone is not a status update
    by_hand = "UPDATE task_run AS r SET status = 'failed', error = :e WHERE r.id = :id"
    declared = "UPDATE task_run SET {REAP.assign()}, error = :e WHERE {REAP.guard()}"
    leases = "UPDATE task_run SET leased_until = now() WHERE status = 'queued'"
    for text, expected in ((by_hand, (None, True)), (declared, ("REAP", False))):
        match = _UPDATE_RUN.search(text)
        assert match is not None
        assign = _ASSIGN.search(match["set"])
        assert ((assign["expr"] if assign else None), _sets(match["set"])) == expected
    match = _UPDATE_RUN.search(leases)
    assert match is not None and not _sets(match["set"]) and not _ASSIGN.search(match["set"])


# --- runs are inserted only as queued or skipped -----------------------------------------


@pytest.mark.parametrize("status", list(RunStatus))
def test_runs_are_inserted_only_in_their_first_states(status: RunStatus) -> None:
    if status in INSERTED_AS:
        assert transitions.check_inserted(status.value) is status
        assert transitions.inserted(status) == f"'{status.value}'"
        return
    with pytest.raises(ValueError, match="never inserted"):
        transitions.inserted(status)
    # refused before the statement is sent: no connection is needed to prove it
    no_connection = cast(Connection, object())
    row = {"task_id": uuid.uuid4(), "status": status.value}
    with pytest.raises(ValueError, match="never inserted"):
        queries.insert_runs(no_connection, [row])


def test_every_run_insert_states_its_status_through_inserted() -> None:
    inserts = [sql for sql in store_sql() if _INSERT_RUN.search(sql.template)]
    assert inserts, "no INSERT INTO task_run found: the scan is broken"
    for sql in inserts:
        for hole in sql.placeholders:
            names = {n.id for n in ast.walk(hole) if isinstance(n, ast.Name)}
            if "RunStatus" in names:
                assert isinstance(hole, ast.Call) and ast.unparse(hole.func) == "inserted", (
                    f"{sql.where()}: a run status in an INSERT INTO task_run must go "
                    f"through inserted(...), not {ast.unparse(hole)}"
                )
                status = _resolve(sql.module, ast.unparse(hole.args[0]))
                assert status in INSERTED_AS, f"{sql.where()}: runs are never inserted as {status}"


# --- statuses in SQL come from the vocabulary --------------------------------------------

_VOCABULARY: tuple[type[StrEnum], ...] = (
    vocabulary.RunStatus,
    vocabulary.TaskStatus,
    vocabulary.StepStatus,
    vocabulary.Trigger,
    vocabulary.OverlapPolicy,
    vocabulary.MisfirePolicy,
    vocabulary.BackoffStrategy,
    vocabulary.ScheduleKind,
)
# a quoted word that is not a JSON key (``v->'event'``, ``v->>'status'``)
_QUOTED = re.compile(r"(?<!->)(?<!->>)(?<!-> )'(\w+)'")


def test_store_sql_spells_no_vocabulary_value_by_hand() -> None:
    values: dict[str, str] = {}
    for enum in _VOCABULARY:
        for member in enum:
            values.setdefault(member.value, enum.__name__)
    checked = 0
    for sql in store_sql():
        if sql.module.endswith(".tables"):  # the schema mirrors the migrations' literals
            continue
        checked += 1
        for part in sql.literal_parts:
            for match in _QUOTED.finditer(part):
                word = match[1]
                assert word not in values, (
                    f"{sql.where()}: {match[0]} is a {values[word]} value spelled by hand; "
                    "render it from the enum (store.queries.render.literal / one_of)"
                )
    assert checked > 20  # the scan saw the store's statements


def test_rendered_statements_name_the_statuses_the_planner_needs() -> None:
    # the rendered text keeps constants, so the partial indexes on status still apply
    from ordinaut.store.queries import due_work, run_states, runs

    assert "r.status = 'queued'" in str(run_states._CLAIM_RUN)
    assert "status IN ('queued', 'running')" in str(runs._OPEN_RUNS_BY_KEY)
    assert "status = 'active' AND next_run_at IS NOT NULL" in str(due_work._NEXT_WAKE)
