"""The code stays clean: ruff, mypy --strict (ordinaut, tests, bench), import-linter layers."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_ruff_lint_and_format() -> None:
    lint = _run("ruff", "check", "ordinaut", "tests", "bench")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = _run("ruff", "format", "--check", "ordinaut", "tests", "bench")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@pytest.mark.timeout(600)
def test_mypy_strict() -> None:
    result = _run("mypy", "ordinaut", "tests", "bench")
    assert result.returncode == 0, result.stdout[-5000:]


def test_layer_contracts() -> None:
    """import-linter: layers only point down, the pure core does no I/O, no import circles."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


# SQL is written only in ordinaut/store; the embedded server's bootstrap and the migrations
# (which must spell their own DDL) are the exceptions.
_SQL_ALLOWED = ("ordinaut/store/", "ordinaut/embedded/", "ordinaut/migrations/")
_SQL_BUILDERS = re.compile(
    r"\b(?:sa|sqlalchemy)\.(?:text|select|insert|update|delete|func|tuple_|literal_column)\b"
    r"|\bexec_driver_sql\("
)
# typing names (Connection, Engine, Row) and the errors a caller may catch
_SQLALCHEMY_IMPORTS_ALLOWED = ("sqlalchemy.engine", "sqlalchemy.exc")


def _sql_violations(path: Path) -> list[str]:
    source = path.read_text()
    found = [f"{m[0]!r}" for m in _SQL_BUILDERS.finditer(source)]
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.Import):
            found += [
                f"import {a.name}" for a in node.names if a.name.split(".")[0] == "sqlalchemy"
            ]
        elif (
            isinstance(node, ast.ImportFrom)
            and (node.module or "").split(".")[0] == "sqlalchemy"
            and node.module not in _SQLALCHEMY_IMPORTS_ALLOWED
        ):
            found.append(f"from {node.module} import ...")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("execute", "exec_driver_sql", "scalar", "scalars")
            # a Redis pipeline runs its queued commands with pipe.execute(): not SQL
            and not (isinstance(node.func.value, ast.Name) and node.func.value.id == "pipe")
        ):
            found.append(f"{ast.unparse(node.func)}(...) at line {node.lineno}")
    return found


def test_sql_lives_only_in_the_store() -> None:
    offenders = {}
    for path in sorted((ROOT / "ordinaut").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(_SQL_ALLOWED):
            continue
        if found := _sql_violations(path):
            offenders[rel] = found
    assert not offenders, f"SQL outside ordinaut/store (add a named statement there): {offenders}"


def test_the_sql_check_sees_what_it_forbids() -> None:
    # the store itself builds statements: if the check found nothing there, it is blind
    found = _sql_violations(ROOT / "ordinaut" / "store" / "queries" / "run_states.py")
    assert any("sa.text" in f for f in found)
    assert any("conn.execute" in f for f in found)
    assert any("import sqlalchemy" in f for f in found)
