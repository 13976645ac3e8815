"""Meltano's system database and state backend: migrated once, diagnosed, a state reset.

Resetting a state that is not JSON is the one place the runner leans on Meltano's internals:
``meltano state clear`` and ``meltano state set`` both read the old state first and fail on it, so
the reset deletes the state's row of the system database's ``state`` table (or the file of the
``file://`` backend) itself, after saving it beside the log. ``tests/test_run_etl.py`` pins that
Meltano reads no state afterwards.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import re
import sqlite3
import subprocess
import typing as t
import urllib.parse
from pathlib import Path

import sqlalchemy

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

BUSY = {"SQLITE_BUSY", "SQLITE_LOCKED"}
UNREADABLE = {"SQLITE_NOTADB", "SQLITE_CORRUPT"}


def database_uri(env: Mapping[str, str], root: Path) -> str:
    """The system database's URI, as Meltano takes it."""
    return env.get("MELTANO_DATABASE_URI") or f"sqlite:///{root / '.meltano' / 'meltano.db'}"


def sqlite_path(uri: str) -> Path | None:
    """The file of a SQLite URI; None for another database."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def diagnose(uri: str, timeout: float = 5.0) -> str:
    """Why the system database cannot be used ('' when it can): locked, unreadable, no access."""
    path = sqlite_path(uri)
    if path is None or not path.exists():
        return ""
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=timeout)) as db:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            db.execute("BEGIN IMMEDIATE")
            db.rollback()
    except sqlite3.Error as exc:
        name = getattr(exc, "sqlite_errorname", "")
        if name in BUSY:
            return (
                f"the system database {path} is locked by another process ({exc}): stop the "
                f"process that holds it (`fuser {path}` names it) and run again"
            )
        if name in UNREADABLE:
            return (
                f"the system database {path} cannot be read ({exc}): restore it from a backup, "
                "or move it aside to start a new one (bookmarks and run history start over)"
            )
        return f"the system database {path} cannot be used ({exc}): check its owner and mode"
    return ""


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def migrate_once(meltano: str, env: Mapping[str, str], root: Path, lock_dir: Path) -> str:
    """Create and migrate a new system database once, under a lock; '' or why it failed.

    The mark of a migrated database names its URI and the meltano executable's time, so a
    new database or a new Meltano is migrated again; two first runs at once migrate it once.
    """
    uri = database_uri(env, root)
    stamp = f"{uri} {Path(meltano).stat().st_mtime_ns if Path(meltano).exists() else 0}"
    key = hashlib.sha256(stamp.encode()).hexdigest()[:16]
    ready = lock_dir / f"run-etl-database-{key}.ready"
    if ready.exists():
        return ""
    with _lock(lock_dir / "run-etl-database.lock"):
        if ready.exists():
            return ""
        failed = _meltano(meltano, ["upgrade", "database"], env, root)
        if failed:
            return diagnose(uri) or f"`meltano upgrade database` failed: {failed}"
        ready.touch()
    return ""


def _meltano(meltano: str, args: list[str], env: Mapping[str, str], root: Path) -> str:
    """Run a meltano command of the project; '' when it succeeded, else its last line."""
    done = subprocess.run(  # noqa: S603 (the project's meltano)
        [meltano, *args],
        cwd=root,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode == 0:
        return ""
    return (done.stderr.strip().splitlines() or ["no output"])[-1][-300:]


def state_backend(env: Mapping[str, str], meltano_yml: Mapping[str, t.Any]) -> str:
    """The state backend's URI: ``MELTANO_STATE_BACKEND_URI``, meltano.yml's, else systemdb."""
    configured = (meltano_yml.get("state_backend") or {}).get("uri")
    return env.get("MELTANO_STATE_BACKEND_URI") or configured or "systemdb"


def reset_state(  # noqa: PLR0913
    state_id: str,
    *,
    env: Mapping[str, str],
    meltano_yml: Mapping[str, t.Any],
    root: Path,
    meltano: str,
    keep_in: Path,
) -> str:
    """Forget one state, also one that is not JSON; return what was done.

    The old state is saved in ``keep_in`` first. Backends other than the system database and
    ``file://`` are cleared with ``meltano state clear``.
    """
    backend = state_backend(env, meltano_yml)
    keep_in.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    saved = keep_in / f"state-{re.sub(r'[^A-Za-z0-9_.-]', '_', state_id)}-{stamp}.txt"
    if backend == "systemdb":
        old = _delete_row(database_uri(env, root), state_id)
    elif backend.startswith("file://"):
        old = _delete_file(Path(urllib.parse.urlsplit(backend).path) / state_id / "state.json")
    else:
        if failed := _meltano(meltano, ["state", "clear", "--force", state_id], env, root):
            return f"could not clear the state of {state_id} in {backend}: {failed}"
        return f"the state of {state_id} is cleared; the next run starts from start_date"
    if old is None:
        return f"{state_id} has no state to reset"
    saved.write_text(old)
    saved.chmod(0o600)
    return (
        f"the state of {state_id} is reset (the old one is kept in {saved}); the next run starts "
        "from start_date"
    )


def _delete_row(uri: str, state_id: str) -> str | None:
    engine = sqlalchemy.create_engine(uri)
    try:
        with engine.begin() as db:
            row = db.execute(
                sqlalchemy.text(
                    "SELECT completed_state, partial_state FROM state WHERE state_id = :id"
                ),
                {"id": state_id},
            ).first()
            if row is None:
                return None
            db.execute(sqlalchemy.text("DELETE FROM state WHERE state_id = :id"), {"id": state_id})
    finally:
        engine.dispose()
    return f"completed_state: {row[0]}\npartial_state: {row[1]}\n"


def _delete_file(path: Path) -> str | None:
    try:
        old = path.read_text(errors="replace")
    except FileNotFoundError:
        return None
    path.unlink()
    return old
