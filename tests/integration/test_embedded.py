"""Embedded PostgreSQL and Redis as real child processes: start, persist, stop, die, recover."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from ordinaut.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from ordinaut.errors import ConfigError
from tests.support import server_dir, wait_for

pytestmark = pytest.mark.timeout(90)

REPO = Path(__file__).resolve().parents[2]


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody has reaped yet counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except OSError:
        return True


def bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def pg_conn(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


@pytest.fixture(scope="module")
def pgdata_template() -> Iterator[Path]:
    """A PGDATA initialised once for the module (initdb is the slow part), cleanly stopped."""
    with server_dir("template") as data_dir:
        with EmbeddedPostgres(data_dir):
            pass
        yield data_dir / "postgres"


@pytest.fixture
def data_dir(server_tmp_path: Path, pgdata_template: Path) -> Path:
    """A data folder holding a copy of the template PGDATA (owned by whoever copies it)."""
    shutil.copytree(pgdata_template, server_tmp_path / "data" / "postgres", symlinks=True)
    return server_tmp_path / "data"


@pytest.fixture
def embedded_pair(data_dir: Path) -> Iterator[tuple[EmbeddedPostgres, EmbeddedRedis]]:
    pg, rd = EmbeddedPostgres(data_dir), EmbeddedRedis(data_dir)
    yield pg, rd
    rd.stop()
    pg.stop()


def test_first_start_runs_initdb_and_creates_the_database(
    server_tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ordinaut.embedded")
    with EmbeddedPostgres(server_tmp_path, database="app db") as pg:
        assert pg.url == f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/app%20db"
        with pg_conn(pg.url) as conn:
            row = conn.execute("SELECT current_database(), current_setting('server_encoding')")
            assert row.fetchone() == ("app db", "UTF8")
    assert (server_tmp_path / "postgres" / "PG_VERSION").exists()
    assert not (server_tmp_path / "postgres.initdb").exists()
    assert any("initialising embedded PostgreSQL" in r.getMessage() for r in caplog.records)


def test_restart_keeps_data_and_ports(
    data_dir: Path, embedded_pair: tuple[EmbeddedPostgres, EmbeddedRedis]
) -> None:
    pg, rd = embedded_pair
    pg_url, redis_url = pg.start(), rd.start()
    with pg_conn(pg_url) as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('still here')")
    client = redis.Redis.from_url(redis_url)
    client.set("kept", "still here")
    client.close()
    pids = (pg.pid, rd.pid)
    assert None not in pids

    rd.stop()
    pg.stop()
    pg.stop()  # idempotent
    assert pg.pid is None and rd.pid is None
    assert all(gone(pid) for pid in pids if pid is not None)
    assert bindable(pg.port) and bindable(rd.port)
    assert not (data_dir / "postgres" / "postmaster.pid").exists()

    pg2, rd2 = EmbeddedPostgres(data_dir), EmbeddedRedis(data_dir)
    try:
        assert pg2.start() == pg_url and rd2.start() == redis_url
        with pg_conn(pg_url) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [("still here",)]
        client = redis.Redis.from_url(redis_url)
        assert client.get("kept") == b"still here"
        client.close()
    finally:
        rd2.stop()
        pg2.stop()
    assert json.loads((data_dir / "ports.json").read_text()) == {
        "postgres": pg.port,
        "redis": rd.port,
    }


def test_a_taken_recorded_port_is_replaced(data_dir: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        (data_dir / "ports.json").write_text(json.dumps({"postgres": taken}))
        with EmbeddedPostgres(data_dir) as pg:
            assert pg.port != taken
    assert json.loads((data_dir / "ports.json").read_text()) == {"postgres": pg.port}


def test_second_server_on_a_running_folder_is_a_config_error(
    data_dir: Path, embedded_pair: tuple[EmbeddedPostgres, EmbeddedRedis]
) -> None:
    pg, rd = embedded_pair
    pg.start()
    rd.start()
    with pytest.raises(ConfigError, match=r"already running \(pid \d+\)"):
        EmbeddedPostgres(data_dir, port=free_port()).start()
    with pytest.raises(ConfigError, match=r"already running \(pid \d+\)"):
        EmbeddedRedis(data_dir, port=free_port()).start()
    assert pg.pid is not None and rd.pid is not None  # the first ones are untouched


def test_a_busy_explicit_port_is_a_config_error(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} on 127.0.0.1 is in use"):
            EmbeddedRedis(tmp_path, port=port).start()


def test_a_server_that_fails_reports_its_log_tail(data_dir: Path) -> None:
    with (data_dir / "postgres" / "postgresql.conf").open("a") as conf:
        conf.write("\nno_such_setting = 1\n")
    pg = EmbeddedPostgres(data_dir)
    with pytest.raises(ConfigError) as caught:
        pg.start()
    message = str(caught.value)
    assert "exited with code" in message and "no_such_setting" in message
    assert "\n" not in message
    assert pg.pid is None


def test_servers_die_with_their_owner(data_dir: Path) -> None:
    owner_script = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "from ordinaut.embedded import EmbeddedPostgres, EmbeddedRedis\n"
        "pg, rd = EmbeddedPostgres(Path(sys.argv[1])), EmbeddedRedis(Path(sys.argv[1]))\n"
        "pg.start(); rd.start()\n"
        "print(json.dumps([pg.pid, rd.pid]), flush=True)\n"
        "time.sleep(600)\n"
    )
    pythonpath = os.environ.get("PYTHONPATH", "")
    owner = subprocess.Popen(
        [sys.executable, "-c", owner_script, str(data_dir)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), pythonpath]))},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline()
        assert line, "the owner process failed to start its servers"
        pg_pid, redis_pid = json.loads(line)
        assert not gone(pg_pid) and not gone(redis_pid)
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        wait_for(lambda: gone(pg_pid), 10, interval=0.05, what="PostgreSQL to die with its owner")
        wait_for(lambda: gone(redis_pid), 10, interval=0.05, what="Redis to die with its owner")
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()
    # the parent-death signal is a clean shutdown: the next start is an ordinary one
    with EmbeddedPostgres(data_dir) as pg, EmbeddedRedis(data_dir) as rd:
        assert pg.pid is not None and rd.pid is not None


def test_a_stale_postmaster_pid_after_a_kill_is_cleared(data_dir: Path) -> None:
    pg = EmbeddedPostgres(data_dir)
    with pg_conn(pg.start()) as conn:
        conn.execute("CREATE TABLE t AS SELECT 42 AS v")
    pid = pg.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    pg.stop()  # reaps the killed child
    lock = data_dir / "postgres" / "postmaster.pid"
    assert lock.exists()

    with EmbeddedPostgres(data_dir) as again, pg_conn(again.url) as conn:
        assert conn.execute("SELECT v FROM t").fetchall() == [(42,)]


def test_a_stale_postmaster_pid_naming_another_program_is_cleared(data_dir: Path) -> None:
    with EmbeddedPostgres(data_dir) as pg:
        lock_text = (data_dir / "postgres" / "postmaster.pid").read_text()
        assert pg.pid is not None
    # As after a reboot: the recorded pid now belongs to some unrelated live process.
    # PostgreSQL alone would refuse to start ("lock file already exists").
    other = subprocess.Popen(["sleep", "60"])
    try:
        _, rest = lock_text.split("\n", 1)
        (data_dir / "postgres" / "postmaster.pid").write_text(f"{other.pid}\n{rest}")
        with EmbeddedPostgres(data_dir) as again:
            assert again.pid is not None
    finally:
        other.kill()
        other.wait()


def test_free_port_prefers_the_given_port_when_free() -> None:
    port = free_port()
    assert free_port(port) == port
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        assert free_port(port) != port


def test_a_killed_server_is_noticed_and_restarts_on_its_port(
    data_dir: Path, embedded_pair: tuple[EmbeddedPostgres, EmbeddedRedis]
) -> None:
    """What `ordinaut up` relies on: its children keep the URLs they were given."""
    pg, rd = embedded_pair
    urls = (pg.start(), rd.start())
    assert pg.exit_code() is None and rd.exit_code() is None
    for pid in (pg.pid, rd.pid):
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
    killed = -signal.SIGKILL
    wait_for(lambda: (pg.exit_code(), rd.exit_code()) == (killed, killed), 10, what="deaths")
    # restarted on the same ports; a port taken meanwhile is an error, not a move
    assert (pg.start(), rd.start()) == urls
    with pg_conn(urls[0]) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with socket.socket() as holder:
        rd.stop()
        holder.bind(("127.0.0.1", rd.port))
        holder.listen()
        with pytest.raises(ConfigError, match=f"port {rd.port} on 127.0.0.1 is in use"):
            rd.start()
