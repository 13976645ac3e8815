"""The runner's own settings, each declared once here (the README's table is written from it)."""

from __future__ import annotations

import shutil
import typing as t
from dataclasses import dataclass
from pathlib import Path

from data_imports.project import ROOT

if t.TYPE_CHECKING:
    from collections.abc import Mapping

LEVELS = ("warning", "info", "debug")
RUN_TIMEOUT = 6 * 3600
"""Seconds a run may take by default."""


@dataclass(frozen=True)
class Option:
    """One variable the runner or the scheduler reads."""

    name: str
    default: str
    description: str


OPTIONS = (
    Option(
        "DATA_IMPORTS_ENV_FILE",
        "`.env` in the project",
        "The file of variables a run reads (the environment wins over it); Meltano reads it too.",
    ),
    Option(
        "DATA_IMPORTS_LOG_LEVEL",
        "warning",
        "What a run prints besides its start and result: `warning` (warnings, errors, and the "
        "plugins' report lines: one line per stream, backfill progress, gaps filled), `info` "
        "(also the routine lines of Meltano and the SDK, METRIC lines among them), `debug` "
        "(everything, tracebacks on screen too).",
    ),
    Option(
        "DATA_IMPORTS_LOG_DIR",
        "`logs/` in the project",
        "Folder of `run-etl.log` (one block per run, tracebacks included) and its rotated copies.",
    ),
    Option("DATA_IMPORTS_LOG_MAX_KB", "2048", "`run-etl.log` is rotated once it is larger."),
    Option("DATA_IMPORTS_LOG_KEEP", "5", "Rotated copies of `run-etl.log` kept."),
    Option(
        "DATA_IMPORTS_LOCK_DIR",
        "`.meltano/` in the project",
        "Folder of the jobs' locks and of the mark that the system database is migrated.",
    ),
    Option(
        "DATA_IMPORTS_STOP_GRACE",
        "60",
        "Seconds a run has to stop after SIGTERM, SIGINT or SIGHUP (a stop, cron's timeout, "
        "`docker stop`) before its processes are killed.",
    ),
    Option(
        "DATA_IMPORTS_RUN_TIMEOUT",
        str(RUN_TIMEOUT),
        "Seconds a run may take (6 hours: room for a backfill of years). A run still going then "
        "is stopped as SIGTERM stops it (`DATA_IMPORTS_STOP_GRACE`, then killed) and fails, "
        "naming its deadline; what it stored is kept and the next run goes on from there. "
        "0: no deadline.",
    ),
    Option(
        "DATA_IMPORTS_HEALTH_DIR",
        "`.meltano/health` in the project",
        "Container scheduler: folder of its heartbeat and of the last run's result.",
    ),
    Option(
        "DATA_IMPORTS_SCHEDULES",
        "the schedules of `meltano.yml`",
        'Container scheduler: a JSON list of `{"name", "job", "interval"}` that replaces them.',
    ),
    Option(
        "DATA_IMPORTS_BACKUP_KEEP_DAYS",
        "14",
        "Daily backups (`python -m data_imports.backup daily ROOT`): days of backups kept, "
        "today's included; older ones are removed, never the newest complete one.",
    ),
    Option(
        "INFLUXDB_BACKUP_TOKEN",
        "`INFLUXDB_TOKEN`",
        "Backups: the token `influx backup` and `influx restore` use, an operator (all-access) "
        "token, since the pipeline's own token only writes (secret).",
    ),
    Option(
        "MELTANO",
        "`.venv/bin/meltano`, else `meltano` on the PATH",
        "The meltano command.",
    ),
)


class OptionError(ValueError):
    """A runner variable that is not of the form it takes."""


@dataclass(frozen=True)
class Options:
    """The runner's settings, read and checked."""

    log_level: str
    log_dir: Path
    log_max_bytes: int
    log_keep: int
    lock_dir: Path
    stop_grace: float
    run_timeout: float
    """Seconds a run may take; 0: no deadline."""
    meltano: str

    @classmethod
    def read(cls, env: Mapping[str, str], root: Path = ROOT) -> Options:
        """From the environment (with .env).

        Raises:
            OptionError: naming the variable, its value and the form expected.
        """
        level = (env.get("DATA_IMPORTS_LOG_LEVEL") or "warning").lower()
        if level not in LEVELS:
            raise OptionError(f"DATA_IMPORTS_LOG_LEVEL={level!r} takes one of {', '.join(LEVELS)}")
        return cls(
            log_level=level,
            log_dir=Path(env.get("DATA_IMPORTS_LOG_DIR") or root / "logs"),
            log_max_bytes=_whole(env, "DATA_IMPORTS_LOG_MAX_KB", 2048) * 1024,
            log_keep=max(1, _whole(env, "DATA_IMPORTS_LOG_KEEP", 5)),
            lock_dir=Path(env.get("DATA_IMPORTS_LOCK_DIR") or root / ".meltano"),
            stop_grace=float(_whole(env, "DATA_IMPORTS_STOP_GRACE", 60)),
            run_timeout=float(_whole(env, "DATA_IMPORTS_RUN_TIMEOUT", RUN_TIMEOUT)),
            meltano=_meltano(env, root),
        )

    def job_lock(self, job: str) -> Path:
        """The file a run of ``job`` holds locked while it runs (``flock``)."""
        return self.lock_dir / f"run-etl-{job}.lock"


def backup_keep_days(env: Mapping[str, str]) -> int:
    """Days of daily backups kept (``DATA_IMPORTS_BACKUP_KEEP_DAYS``).

    Raises:
        OptionError: naming the variable, its value and the form expected.
    """
    days = _whole(env, "DATA_IMPORTS_BACKUP_KEEP_DAYS", 14)
    if days < 1:
        raise OptionError(
            f"DATA_IMPORTS_BACKUP_KEEP_DAYS={days} takes a whole number of days, 1 or more, e.g. 14"
        )
    return days


def _whole(env: Mapping[str, str], name: str, default: int) -> int:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    if not text.isdigit():
        raise OptionError(f"{name}={text!r} takes a whole number of 0 or more, e.g. {default}")
    return int(text)


def _meltano(env: Mapping[str, str], root: Path) -> str:
    """The meltano command: ``MELTANO``, the project's .venv, else the PATH's ('' if none)."""
    local = root / ".venv" / "bin" / "meltano"
    return env.get("MELTANO") or (str(local) if local.exists() else shutil.which("meltano") or "")
