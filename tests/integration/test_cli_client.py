"""The CLI client against a real API: tables for people, JSON for scripts, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ordinaut.cli import main
from tests.integration.conftest import Api
from tests.integration.test_api_tasks import task_body

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(api: Api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    token = api.admin.headers["Authorization"].split()[1]
    monkeypatch.setenv("ORDINAUT_URL", api.base_url)
    monkeypatch.setenv("ORDINAUT_TOKEN", token)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_task_commands(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "task.json"
    spec.write_text(json.dumps(task_body(title="from the cli")))
    code, out, _ = cli("task", "create", "-f", str(spec), "--json")
    assert code == 0
    task_id = json.loads(out)["id"]

    code, out, _ = cli("task", "list")
    assert code == 0
    header, row = out.splitlines()[:2]
    assert header.split()[:3] == ["ID", "TITLE", "STATUS"]
    assert task_id in row and "from the cli" in row

    assert cli("task", "pause", task_id, "--json")[0] == 0
    code, out, _ = cli("task", "show", task_id, "--json")
    assert json.loads(out)["status"] == "paused"
    assert cli("task", "resume", task_id)[0] == 0
    code, out, _ = cli("task", "snooze", task_id, "--seconds", "60", "--json")
    assert code == 0 and json.loads(out)["status"] == "active"
    code, out, _ = cli("task", "run-now", task_id, "--json")
    assert code == 0 and json.loads(out)["task_id"] == task_id
    assert cli("task", "cancel", task_id)[0] == 0
    code, out, _ = cli("runs", "--task", task_id, "--json")
    assert code == 0 and json.loads(out) == []


def test_errors_are_one_line(cli: Cli, tmp_path: Path) -> None:
    code, out, err = cli("task", "show", "00000000-0000-0000-0000-000000000000")
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0
    assert "no task" in err and "HTTP 404" in err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(task_body(schedule_expr="FREQ=SOMETIMES")))
    code, _, err = cli("task", "create", "-f", str(bad))
    assert code == 2 and "[schedule_expr]" in err and "HTTP 422" in err
    bad.write_text("{")
    code, _, err = cli("task", "create", "-f", str(bad))
    assert code == 2 and "not valid JSON" in err


def test_agent_commands(cli: Cli) -> None:
    code, out, _ = cli("agent", "create", "scripted", "--scopes", "tasks:read", "--json")
    assert code == 0
    made = json.loads(out)
    assert made["token"].startswith("ord_") and made["scopes"] == ["tasks:read"]
    code, out, _ = cli("agent", "list")
    assert code == 0 and "scripted" in out
    code, out, _ = cli("agent", "rotate", made["id"], "--json")
    assert code == 0 and json.loads(out)["token"] != made["token"]


def test_unreachable_api_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ORDINAUT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("ORDINAUT_TOKEN", "ord_x")
    assert main(["task", "list"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the API" in err and "ordinaut up" in err
