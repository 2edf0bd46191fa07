"""``ordinaut mcp``: the stdio server as a real child process, driven by the mcp SDK client.

It finds its servers in the env file of a running ``ordinaut up`` when DATABASE_URL and
REDIS_URL are unset, acts as the token's agent, and refuses to start (one line on stderr,
exit 2, nothing on stdout) without a valid token.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from ordinaut.cli import main
from ordinaut.cli.up import ENV_FILE
from ordinaut.config import Settings
from ordinaut.service.facade import OPERATIONS
from tests.support import bootstrap_admin, settings_env, text_of

MCP = [sys.executable, "-m", "ordinaut.cli", "mcp"]
ECHO = {"pipeline": [{"id": "hi", "uses": "builtin.echo", "with": {"message": "hi"}}]}


def test_stdio_server_uses_the_env_file_of_ordinaut_up(settings: Settings, tmp_path: Path) -> None:
    token = bootstrap_admin(settings)
    (tmp_path / ENV_FILE).write_text(
        f"DATABASE_URL={settings.database_url}\nREDIS_URL={settings.redis_url}\n"
    )
    env = settings_env(settings)
    del env["DATABASE_URL"], env["REDIS_URL"]
    params = StdioServerParameters(
        command=MCP[0], args=[*MCP[1:], "--data-dir", str(tmp_path), "--token", token], env=env
    )

    async def main() -> None:
        with (tmp_path / "stderr.log").open("w") as err:
            async with (
                stdio_client(params, errlog=err) as (read, write),
                ClientSession(read, write) as s,
            ):
                init = await s.initialize()
                assert init.server_info.name == "ordinaut"
                assert sorted(t.name for t in (await s.list_tools()).tools) == sorted(OPERATIONS)
                made = await s.call_tool(
                    "create_task",
                    {
                        "title": "from stdio",
                        "schedule_kind": "cron",
                        "schedule_expr": "30 8 * * 1-5",
                        "timezone": "UTC",
                        "payload": ECHO,
                    },
                )
                assert not made.is_error, made.content
                assert made.structured_content is not None
                task_id = made.structured_content["id"]
                got = await s.call_tool("get_task", {"task_id": task_id})
                assert got.structured_content == made.structured_content
                bad = await s.call_tool(
                    "update_task", {"task_id": task_id, "timezone": "Mars/Base"}
                )
                assert bad.is_error
                assert text_of(bad.content[0]).startswith("timezone: ")

    anyio.run(main)


def test_stdio_server_refuses_to_start_without_a_valid_token(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ORDINAUT_TOKEN", raising=False)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    assert main(["mcp"]) == 2
    missing = capsys.readouterr()
    assert missing.out == ""
    assert missing.err.startswith("ordinaut: no token: pass --token or set ORDINAUT_TOKEN")
    assert main(["mcp", "--token", "ord_nope"]) == 2
    wrong = capsys.readouterr()
    assert (wrong.out, wrong.err) == ("", "ordinaut: unknown or revoked token\n")
