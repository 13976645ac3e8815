"""Backups of Meltano's state and of InfluxDB, their restore, and daily backups kept for N days.

``python -m data_imports.backup backup DIR`` writes one backup into DIR, a new folder: every state
ID of Meltano's state backend as ``meltano state get`` gives it (``state/<id>.json``), the whole
InfluxDB server as ``influx backup`` makes it (``influxdb/``) where the variables reach one, and
last ``manifest.json``: when, which state IDs, what was not backed up and why. A backup cut short
has no manifest, so it is never taken for a backup. The state is read before InfluxDB, so the
points of a backup are never older than its bookmarks: a restored pipeline reads again what came
in between (points written again overwrite themselves) and loses nothing.

``restore [--state-only] DIR`` brings a backup back while it holds every job's lock (a run going on
makes it refuse): first InfluxDB (``influx restore --full``, into a new InfluxDB), then each state
(``meltano state set --force``). ``daily ROOT`` makes ``ROOT/<UTC date>`` when today's backup is
missing (a partial one is built under a hidden name and renamed when whole), removes the backups
older than ``DATA_IMPORTS_BACKUP_KEEP_DAYS``, sleeps, and stops on SIGTERM or SIGINT.

The InfluxDB CLI gets its host, token and organization through its environment (``INFLUX_HOST``,
``INFLUX_TOKEN``, ``INFLUX_ORG``), never on its command line. Its token is
``INFLUXDB_BACKUP_TOKEN`` (an operator token: ``influx backup`` reads every bucket and the
server's metadata), else ``INFLUXDB_TOKEN``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

from data_imports import events, systemdb
from data_imports.options import OptionError, Options, backup_keep_days
from data_imports.project import ROOT, Project, ProjectError
from data_imports.runner import env_file_of, load_env
from target_influxdb.writers import redact

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

logger = logging.getLogger("data_imports.backup")

FORMAT = "data-imports backup 1"
"""What ``manifest.json`` says it is; a restore takes no other folder."""
MANIFEST = "manifest.json"
STATES = "state"
INFLUXDB = "influxdb"
BACKED_UP, SKIPPED, FAILED = "backed up", "skipped", "failed"
PARTIAL = ".partial-"
"""The prefix of a daily backup being made; it is renamed to its date once whole."""
INCOMPLETE = ".incomplete"
"""The suffix of a daily backup whose InfluxDB part failed; it is never the day's backup."""
DATED = re.compile(r"(\d{4}-\d{2}-\d{2})(\.incomplete)?")
INSTALL_INFLUX = (
    "install the InfluxDB 2.x CLI `influx` (influx-cli, "
    "https://docs.influxdata.com/influxdb/v2/tools/influx-cli/)"
)
BACKUP_TOKEN = "INFLUXDB_BACKUP_TOKEN"  # noqa: S105 (the name of the variable)
"""The variable of the operator token the InfluxDB CLI gets; ``INFLUXDB_TOKEN`` when unset."""
MELTANO_TIMEOUT = 600.0
INFLUX_TIMEOUT = 6 * 3600.0
"""Seconds an ``influx backup`` or ``influx restore`` may take (a few years of data)."""
KILL_AFTER = 10.0
"""Seconds a command has to end after SIGTERM before it is killed."""
RETRY = 3600.0
"""Seconds before a failed daily backup is tried again."""


class BackupError(Exception):
    """A backup or restore that cannot go on; the message is one line, its cause and fix."""


class Stopped(Exception):  # noqa: N818 (a stop, not an error)
    """A stop signal arrived."""


class Commands:
    """Runs commands one at a time; :meth:`stop` ends the running one and any to come.

    :meth:`stop` is called from a signal handler, so it takes no lock: it sets a flag and
    signals the running command, and :meth:`run` looks at the flag once its command started.
    """

    def __init__(self) -> None:
        """No command running, not stopping."""
        self._stopping = False
        self.signal: int | None = None
        self._current: subprocess.Popen[str] | None = None

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop: end the running command (killed after :data:`KILL_AFTER` s) and the waits."""
        if self.signal is None:
            self.signal = signum
        self._stopping = True
        if (process := self._current) is not None:
            _end(process)

    def stopping(self) -> bool:
        """True once a stop came."""
        return self._stopping

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less when a stop comes (within a second)."""
        deadline = time.monotonic() + seconds
        while not self.stopping() and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 1.0))

    def run(
        self, args: list[str], *, env: Mapping[str, str], cwd: Path, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """Run ``args`` to its end and return what it printed.

        Raises:
            Stopped: when a stop came before or during the command.
            BackupError: when it did not end within ``timeout`` seconds.
        """
        if self.stopping():
            raise Stopped
        self._current = process = subprocess.Popen(  # noqa: S603 (meltano or influx, found)
            args,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        if self.stopping():  # the stop came as it started
            _end(process)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.communicate()
            name = f"{Path(args[0]).name} {args[1]}"
            raise BackupError(f"`{name}` did not end within {timeout:.0f}s: killed") from None
        finally:
            self._current = None
        if self.stopping():
            raise Stopped
        return subprocess.CompletedProcess(args, process.returncode, out, err)


def _end(process: subprocess.Popen[str]) -> None:
    """SIGTERM to a command's process group, SIGKILL if it has not ended :data:`KILL_AFTER` s on."""
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        threading.Thread(target=_kill_after, args=(process,), daemon=True).start()


def _signal_group(process: subprocess.Popen[str], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def _kill_after(process: subprocess.Popen[str]) -> None:
    try:
        process.wait(timeout=KILL_AFTER)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)


@dataclass
class Setup:
    """The project, its variables (``.env`` under the environment) and its meltano command."""

    root: Path
    env: dict[str, str]
    options: Options
    project: Project
    commands: Commands = field(default_factory=Commands)

    @classmethod
    def load(
        cls,
        root: Path = ROOT,
        environ: Mapping[str, str] | None = None,
        commands: Commands | None = None,
    ) -> Setup:
        """Read the variables and meltano.yml as a run does.

        Raises:
            OptionError: a runner variable of the wrong form.
            ProjectError: meltano.yml cannot be read.
            BackupError: no meltano command.
        """
        env = load_env(root, environ)
        options = Options.read(env, root)
        if not options.meltano:
            raise BackupError("meltano not found: run ./setup.sh first")
        return cls(root, env, options, Project.load(root), commands or Commands())

    def meltano(self, *args: str) -> str:
        """Run a meltano command in the project, as the runner does; return what it printed.

        Raises:
            BackupError: naming the command and the last line it printed.
        """
        env_file = str(env_file_of(self.env, self.root))
        done = self.commands.run(
            [self.options.meltano, "--env-file", env_file, *args],
            env=self.env,
            cwd=self.root,
            timeout=MELTANO_TIMEOUT,
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1][-300:]
            raise BackupError(f"`meltano {' '.join(args)}` failed: {last}")
        return done.stdout

    def migrate(self) -> None:
        """Create and migrate a new system database once, as a run does.

        Raises:
            BackupError: why it cannot be used.
        """
        self.options.lock_dir.mkdir(parents=True, exist_ok=True)
        if problem := systemdb.migrate_once(
            self.options.meltano, self.env, self.root, self.options.lock_dir
        ):
            raise BackupError(problem)


# InfluxDB


@dataclass(frozen=True)
class Influx:
    """The ``influx`` CLI and the environment that gives it the host, token and organization."""

    cli: str
    env: dict[str, str]
    token_variable: str

    def run(self, setup: Setup, *args: str) -> None:
        """Run ``influx ARGS``.

        Raises:
            BackupError: naming the token's variable and the CLI's own cause.
        """
        done = setup.commands.run(
            [self.cli, *args], env=self.env, cwd=setup.root, timeout=INFLUX_TIMEOUT
        )
        if done.returncode == 0:
            return
        lines = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()
        cause = redact(lines[-1].strip()[-300:], self.env["INFLUX_TOKEN"])
        hint = ""
        if re.search(r"\b(401|403)\b|unauthori[sz]ed|forbidden", cause, re.IGNORECASE):
            hint = f": {self.token_variable} must hold an operator (all-access) token"
            if self.token_variable != BACKUP_TOKEN:
                hint = ": set INFLUXDB_BACKUP_TOKEN to an operator (all-access) token"
        raise BackupError(
            f"`influx {args[0]}` failed with the token of {self.token_variable}: {cause}{hint}"
        )


@dataclass(frozen=True)
class NoInflux:
    """Why there is no InfluxDB to back up; ``expected`` in file mode, a warning otherwise."""

    why: str
    expected: bool = False


def influx_access(env: Mapping[str, str]) -> Influx | NoInflux:
    """The InfluxDB CLI set up from the variables, or why there is none.

    Raises:
        BackupError: InfluxDB is configured but no token is set.
    """
    url = (env.get("INFLUXDB_URL") or "").strip()
    if not url:
        why = "INFLUXDB_URL is empty (file mode: the points are files, not in InfluxDB)"
        return NoInflux(why, expected=True)
    variable = BACKUP_TOKEN if env.get(BACKUP_TOKEN) else "INFLUXDB_TOKEN"
    token = env.get(variable) or ""
    if not token:
        raise BackupError(
            "INFLUXDB_BACKUP_TOKEN is not set (nor INFLUXDB_TOKEN): set it to an operator token "
            f"of the InfluxDB at {url}"
        )
    cli = shutil.which("influx", path=env.get("PATH"))
    if not cli:
        return NoInflux(f"no `influx` on the PATH: {INSTALL_INFLUX}")
    cli_env = {**env, "INFLUX_HOST": url, "INFLUX_TOKEN": token}
    if org := (env.get("INFLUXDB_ORG") or "").strip():
        cli_env["INFLUX_ORG"] = org
    version = subprocess.run(  # noqa: S603 (the influx found on the PATH)
        [cli, "version"],
        env=cli_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=30,
        check=False,
    )
    if not version.stdout.startswith("Influx CLI"):
        return NoInflux(f"{cli} is not the InfluxDB 2.x CLI: {INSTALL_INFLUX}")
    return Influx(cli, cli_env, variable)


def _back_up_influxdb(folder: Path, setup: Setup) -> dict[str, t.Any]:
    """``influx backup`` of the whole server into ``folder/influxdb``; the manifest's entry."""
    try:
        influx = influx_access(setup.env)
    except BackupError as exc:
        return {"status": FAILED, "why": str(exc)}
    if isinstance(influx, NoInflux):
        level = logging.INFO if influx.expected else logging.WARNING
        logger.log(level, "InfluxDB part skipped: %s", influx.why)
        return {"status": SKIPPED, "why": influx.why}
    host = influx.env["INFLUX_HOST"]
    logger.info("backing up the InfluxDB server at %s (influx backup)", host)
    entry = {"host": host, "scope": "full", "path": INFLUXDB, "token": influx.token_variable}
    try:
        influx.run(setup, "backup", str(folder / INFLUXDB))
    except BackupError as exc:
        return {**entry, "status": FAILED, "why": str(exc)}
    return {**entry, "status": BACKED_UP}


# the state


def _file_name(state_id: str, taken: set[str]) -> str:
    """A file name of its own for a state ID (``dev:tap-x-to-y`` -> ``dev_tap-x-to-y.json``)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", state_id)
    name, n = f"{stem}.json", 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}.json"
    taken.add(name)
    return name


def _back_up_states(folder: Path, setup: Setup) -> dict[str, t.Any]:
    """Every state ID into ``folder/state``; the manifest's entry."""
    ids = [line.strip() for line in setup.meltano("state", "list").splitlines() if line.strip()]
    (folder / STATES).mkdir()
    saved: list[dict[str, str]] = []
    empty: list[str] = []
    missed: list[dict[str, str]] = []
    taken: set[str] = set()
    for state_id in ids:
        try:
            text = setup.meltano("state", "get", state_id).strip()
            state = json.loads(text)
        except (BackupError, json.JSONDecodeError) as exc:
            logger.warning("the state of %s is not backed up: %s", state_id, exc)
            missed.append({"id": state_id, "why": str(exc)})
            continue
        if not state:
            empty.append(state_id)
            continue
        name = _file_name(state_id, taken)
        (folder / STATES / name).write_text(text + "\n")
        saved.append({"id": state_id, "file": f"{STATES}/{name}"})
    if saved:
        logger.info("%d state IDs backed up: %s", len(saved), ", ".join(s["id"] for s in saved))
    else:
        logger.info("no state ID to back up: no job has run yet")
    return {"backed_up": saved, "empty": empty, "not_backed_up": missed}


# a backup


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_json(path: Path, data: object) -> None:
    """Write a JSON file whole or not at all."""
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(data, indent=2) + "\n")
    part.replace(path)


def backup(folder: Path, setup: Setup) -> dict[str, t.Any]:
    """Write one backup into ``folder`` (new or empty); return its manifest.

    Raises:
        BackupError: a part failed (the manifest, written, says which) or nothing could be read.
        Stopped: a stop arrived; the folder has no manifest.
    """
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BackupError(f"{folder} is not an empty folder: give a new one for the backup")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    started = _now()
    setup.migrate()
    states = _back_up_states(folder, setup)
    influxdb = _back_up_influxdb(folder, setup)
    manifest = {
        "format": FORMAT,
        "started": started.isoformat(timespec="seconds"),
        "finished": _now().isoformat(timespec="seconds"),
        "complete": influxdb["status"] != FAILED,
        "meltano_environment": setup.project.environment(setup.env),
        "states": states,
        "influxdb": influxdb,
    }
    _write_json(folder / MANIFEST, manifest)
    if influxdb["status"] == FAILED:
        raise BackupError(f"the backup in {folder} lacks InfluxDB: {influxdb['why']}")
    return manifest


def is_complete(folder: Path) -> bool:
    """True for a whole backup: a manifest that says so."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(manifest, dict)
        and manifest.get("format") == FORMAT
        and bool(manifest.get("complete"))
    )


# a restore


def read_backup(folder: Path) -> dict[str, t.Any]:
    """The manifest of the backup in ``folder``.

    Raises:
        BackupError: ``folder`` is not a backup, naming what is missing.
    """
    path = folder / MANIFEST
    if not folder.is_dir():
        raise BackupError(f"{folder} is not a backup: there is no such folder")
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise BackupError(
            f"{folder} is not a backup: it has no {MANIFEST} (a backup writes it last, so one "
            "cut short has none)"
        ) from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{folder} is not a backup: {path} is not the manifest of one")
    wanted = [entry["file"] for entry in manifest["states"]["backed_up"]]
    if manifest["influxdb"]["status"] == BACKED_UP:
        wanted.append(INFLUXDB)
    if missing := [name for name in wanted if not (folder / name).exists()]:
        raise BackupError(f"{folder} is not a whole backup: {', '.join(missing)} missing")
    return manifest


@contextlib.contextmanager
def every_job_locked(setup: Setup) -> Iterator[None]:
    """Hold the lock of every job of meltano.yml, so that no run starts meanwhile.

    Raises:
        BackupError: a run is going on.
    """
    setup.options.lock_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as locks:
        for job in setup.project.job_names:
            lock = locks.enter_context(setup.options.job_lock(job).open("a"))
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BackupError(
                    f"a run of {job} is in progress: restore once it has ended (stop the "
                    "scheduler first, so that no run starts)"
                ) from None
        yield


def restore(folder: Path, setup: Setup, *, state_only: bool = False) -> list[str]:
    """Bring the backup in ``folder`` back; return what was done, one line each.

    Raises:
        BackupError: ``folder`` is not a backup, a run is going on, or a part failed.
        Stopped: a stop arrived.
    """
    manifest = read_backup(folder)
    done: list[str] = []
    with every_job_locked(setup):
        influxdb = manifest["influxdb"]
        if influxdb["status"] == BACKED_UP and not state_only:
            done.append(_restore_influxdb(folder, setup, influxdb))
        elif influxdb["status"] == BACKED_UP:
            done.append("InfluxDB left as it is (--state-only)")
        else:
            done.append(f"the backup holds no InfluxDB ({influxdb['status']}: {influxdb['why']})")
        setup.migrate()
        for entry in manifest["states"]["backed_up"]:
            state_id, path = entry["id"], folder / entry["file"]
            setup.meltano("state", "set", "--force", state_id, "--input-file", str(path))
            logger.info("the state of %s is restored", state_id)
        done.append(f"{len(manifest['states']['backed_up'])} state IDs restored")
    return done


def _restore_influxdb(folder: Path, setup: Setup, entry: Mapping[str, t.Any]) -> str:
    """``influx restore --full``: the whole server of the backup, into the InfluxDB configured."""
    influx = influx_access(setup.env)
    if isinstance(influx, NoInflux):
        raise BackupError(
            f"the backup holds InfluxDB, but {influx.why}; or restore the state alone with "
            "--state-only"
        )
    host = influx.env["INFLUX_HOST"]
    logger.info(
        "restoring the InfluxDB server of %s into %s (influx restore --full)", entry["host"], host
    )
    influx.run(setup, "restore", "--full", str(folder / INFLUXDB))
    return f"InfluxDB restored into {host} (the whole server, its tokens included)"


# daily backups


def prune(root: Path, today: dt.date, keep_days: int) -> list[str]:
    """Remove the dated backups older than ``keep_days`` (today's included), never the newest
    complete one; return the names removed. A partial backup is not dated, so never counts.
    """  # noqa: D205 (the summary says it whole)
    first_kept = today - dt.timedelta(days=keep_days - 1)
    dated: list[tuple[dt.date, Path]] = []
    for path in root.iterdir():
        if path.is_dir() and (match := DATED.fullmatch(path.name)):
            with contextlib.suppress(ValueError):
                dated.append((dt.date.fromisoformat(match[1]), path))
    complete = [(day, p) for day, p in dated if p.name == day.isoformat() and is_complete(p)]
    newest = max(complete)[1] if complete else None
    removed = []
    for day, path in sorted(dated):
        if day < first_kept and path != newest:
            shutil.rmtree(path)
            removed.append(path.name)
    return removed


def daily_backup(root: Path, setup: Setup, today: dt.date) -> bool:
    """Make today's backup ``root/<date>`` unless it is there; True when it is, whole.

    Raises:
        Stopped: a stop arrived; the partial backup is removed.
    """
    done = root / today.isoformat()
    if is_complete(done):
        return True
    work = root / f"{PARTIAL}{today.isoformat()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        backup(work, setup)
    except Stopped:
        shutil.rmtree(work, ignore_errors=True)
        raise
    except BackupError as exc:
        logger.error("the backup of %s failed: %s", today, exc)  # noqa: TRY400 (one line)
        if (work / MANIFEST).exists():
            failed = root / f"{today.isoformat()}{INCOMPLETE}"
            shutil.rmtree(failed, ignore_errors=True)
            work.rename(failed)
        shutil.rmtree(work, ignore_errors=True)
        return False
    if done.exists():  # a folder of that name that is not a whole backup
        shutil.rmtree(done)
    work.rename(done)
    logger.info("backup of %s done: %s", today, done)
    return True


def _until_tomorrow(now: dt.datetime) -> float:
    """Seconds until a minute past the next midnight UTC."""
    tomorrow = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(0, 1), dt.UTC)
    return max(1.0, (tomorrow - now).total_seconds())


def daily(
    root: Path,
    commands: Commands,
    *,
    environ: Mapping[str, str] | None = None,
    project_root: Path = ROOT,
    clock: Callable[[], dt.datetime] = _now,
) -> int:
    """Keep daily backups in ``root`` until a stop; return the exit code.

    Each day (and at start) it backs up into ``root/<UTC date>`` when that is missing, then
    removes the backups older than ``DATA_IMPORTS_BACKUP_KEEP_DAYS``. A failed day is tried
    again after :data:`RETRY` seconds.
    """
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    with (root / ".daily.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.error("another daily backup into %s is running: this one stops", root)  # noqa: TRY400
            return 1
        for stale in root.glob(f"{PARTIAL}*"):  # cut short by a kill
            shutil.rmtree(stale, ignore_errors=True)
        logger.info("daily backups into %s", root)
        while not commands.stopping():
            try:
                whole = _one_day(root, commands, environ, project_root, clock().date())
            except Stopped:
                break
            wait = _until_tomorrow(clock()) if whole else RETRY
            commands.sleep(wait)
    name = signal.Signals(commands.signal or signal.SIGTERM).name
    logger.info("daily backups stopped by %s", name)
    return 0


def _one_day(
    root: Path,
    commands: Commands,
    environ: Mapping[str, str] | None,
    project_root: Path,
    today: dt.date,
) -> bool:
    """Today's backup and the removal of old ones; True when today's backup is whole."""
    try:
        setup = Setup.load(project_root, environ, commands)
        keep = backup_keep_days(setup.env)
    except (BackupError, OptionError, ProjectError) as exc:
        logger.error("no backup: %s", exc)  # noqa: TRY400 (one line)
        return False
    whole = daily_backup(root, setup, today)
    for name in prune(root, today, keep):
        logger.info("removed the backup %s (older than %d days)", name, keep)
    return whole


# the command line


class _Lines(logging.Formatter):
    """Lines as the runner prints them: time, level, ``backup``, message."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = dt.datetime.fromtimestamp(record.created, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return events.render(stamp, record.levelno, "backup", record.getMessage())


def _summary(folder: Path, manifest: Mapping[str, t.Any]) -> str:
    influxdb = manifest["influxdb"]
    states = len(manifest["states"]["backed_up"])
    if influxdb["status"] == BACKED_UP:
        part = f"the InfluxDB server at {influxdb['host']} ({INFLUXDB}/)"
    else:
        part = f"InfluxDB skipped: {influxdb['why']}"
    return f"backup in {folder}: {states} state IDs; {part}"


def main(argv: list[str] | None = None) -> int:
    """Back up, restore, or keep daily backups; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m data_imports.backup", description=__doc__.splitlines()[0]
    )
    commands_of = parser.add_subparsers(dest="command", required=True)
    commands_of.add_parser("backup", help="write one backup into DIR").add_argument("dir")
    restoring = commands_of.add_parser("restore", help="bring the backup in DIR back")
    restoring.add_argument("--state-only", action="store_true", help="leave InfluxDB as it is")
    restoring.add_argument("dir")
    commands_of.add_parser("daily", help="keep daily backups in ROOT").add_argument("root")
    args = parser.parse_args(argv)

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_Lines())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    os.umask(0o077)  # a backup holds the server's tokens
    commands = Commands()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda received, _frame: commands.stop(received))
    folder = Path(args.dir if args.command != "daily" else args.root).absolute()
    try:
        if args.command == "daily":
            return daily(folder, commands)
        setup = Setup.load(commands=commands)
        if args.command == "backup":
            logger.info("%s", _summary(folder, backup(folder, setup)))
        else:
            logger.info(
                "restored from %s: %s",
                folder,
                "; ".join(restore(folder, setup, state_only=args.state_only)),
            )
    except (BackupError, OptionError, ProjectError, OSError) as exc:
        logger.error("%s", exc)  # noqa: TRY400 (one line, no traceback)
        return 1
    except Stopped:
        name = signal.Signals(commands.signal or signal.SIGTERM).name
        logger.error("%s of %s stopped by %s", args.command, folder, name)  # noqa: TRY400
        return 128 + (commands.signal or signal.SIGTERM)
    return 0


if __name__ == "__main__":
    sys.exit(main())
