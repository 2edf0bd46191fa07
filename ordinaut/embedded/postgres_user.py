"""PostgreSQL refuses to run as root: the system user it runs as then, and what it must reach.

Only used as root. PGDATA is given to the user; ancestors it cannot traverse get ``o+x``; the
installation is made world-readable only if it is not already. Nothing else is widened.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
from pathlib import Path

from ordinaut.errors import ConfigError

_log = logging.getLogger("ordinaut.embedded")  # one logger for the whole package

PG_SYSTEM_USER = "embedded_postgres"


def pg_system_user() -> tuple[int, int] | None:
    """(uid, gid) to run PostgreSQL as when we are root, creating the user if needed."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd is None:
            raise ConfigError(
                f"PostgreSQL refuses to run as root and useradd is missing: create a user "
                f"{PG_SYSTEM_USER!r}, or run Ordinaut as a normal user"
            ) from None
        shell = next(
            (s for s in ("/usr/sbin/nologin", "/sbin/nologin") if Path(s).exists()), "/bin/false"
        )
        _log.info("creating system user %s to run embedded PostgreSQL", PG_SYSTEM_USER)
        subprocess.run(
            [
                *(useradd, "--system", "--user-group", "--no-create-home"),
                *("--home-dir", "/nonexistent", "--shell", shell, PG_SYSTEM_USER),
            ],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def _can_traverse(st: os.stat_result, uid: int, gid: int) -> bool:
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def grant_traverse(path: Path, uid: int, gid: int) -> None:
    """Add o+x to the ancestors of ``path`` that user ``uid`` cannot traverse, and only those."""
    for folder in reversed(path.absolute().parents):
        st = folder.stat()
        if not _can_traverse(st, uid, gid):
            _log.info("granting o+x on %s so %s can reach its files", folder, PG_SYSTEM_USER)
            folder.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)


def ensure_readable_install(root: Path, uid: int, gid: int) -> None:
    """Make the PostgreSQL installation usable by user ``uid`` (usually it already is)."""
    grant_traverse(root / "bin", uid, gid)
    sentinels = [root / "bin", root / "lib", root / "share", root / "bin" / "postgres"]
    if all(_can_traverse(p.stat(), uid, gid) for p in sentinels):
        return
    _log.info("granting o+rX under %s so %s can run PostgreSQL", root, PG_SYSTEM_USER)
    for folder, _dirs, files in os.walk(root):
        here = Path(folder)
        here.chmod(stat.S_IMODE(here.stat().st_mode) | stat.S_IROTH | stat.S_IXOTH)
        for name in files:
            file = here / name
            mode = stat.S_IMODE(file.lstat().st_mode)
            if not file.is_symlink():
                file.chmod(mode | stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0))


def chown_tree(root: Path, uid: int, gid: int) -> None:
    """Give ``root`` and everything under it to ``uid``:``gid`` (symlinks themselves)."""
    _log.info("giving %s to %s", root, PG_SYSTEM_USER)
    os.chown(root, uid, gid)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(Path(folder) / name, uid, gid, follow_symlinks=False)
