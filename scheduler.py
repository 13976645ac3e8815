"""Run the schedules of meltano.yml at their cron times: the container's long-running mode.

``python scheduler.py run`` reads the schedules with ``meltano schedule list --format=json``
(meltano.yml stays the one source of truth), computes each next time with croniter, and starts
``run-etl.sh <job>`` when a schedule is due, never two runs of one job at once. It logs to
stdout, writes a heartbeat and the result of the last run to ``DATA_IMPORTS_HEALTH_DIR``, and on
SIGTERM or SIGINT stops scheduling and lets runs in flight finish within
``DATA_IMPORTS_STOP_GRACE`` seconds before it asks them to stop.

``python scheduler.py health`` exits 0 while the heartbeat is fresh and the last run (if any)
succeeded: the container's health check.

``DATA_IMPORTS_SCHEDULES`` (a JSON list of ``{"name", "job", "interval"}``) replaces the schedules
of meltano.yml, for tests and one-off operation.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import typing as t
from dataclasses import dataclass
from pathlib import Path

from croniter import croniter

PROJECT_DIR = Path(__file__).resolve().parent
HEARTBEAT_SECONDS = 15
STALE_AFTER_SECONDS = 120


RESULTS_DIR = Path(os.environ.get("DATA_IMPORTS_LOCK_DIR") or PROJECT_DIR / ".meltano")
"""Where run-etl.sh leaves the last line of each job's last run (beside its locks)."""


def log(message: str) -> None:
    """One timestamped line on stdout."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"{stamp} scheduler {message}", flush=True)  # noqa: T201


@dataclass(frozen=True)
class Schedule:
    """A Meltano schedule: a job and the cron expression that fires it."""

    name: str
    job: str
    interval: str

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first time after ``moment`` that the schedule fires (UTC)."""
        return t.cast("dt.datetime", croniter(self.interval, moment).get_next(dt.datetime))


def load_schedules(meltano: str) -> list[Schedule]:
    """The job schedules: ``DATA_IMPORTS_SCHEDULES`` if set, else those of meltano.yml."""
    override = os.environ.get("DATA_IMPORTS_SCHEDULES")
    if override:
        entries = json.loads(override)
    else:
        listed = subprocess.run(  # noqa: S603
            [meltano, "schedule", "list", "--format=json"],
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        entries = [
            {"name": s["name"], "job": s["job"]["name"], "interval": s["cron_interval"]}
            for s in json.loads(listed.stdout)["schedules"]["job"]
        ]
    schedules = [Schedule(e["name"], e["job"], e["interval"]) for e in entries]
    for schedule in schedules:
        if not croniter.is_valid(schedule.interval):
            raise ValueError(
                f"schedule {schedule.name}: invalid cron expression {schedule.interval!r}"
            )
    return schedules


class Health:
    """The heartbeat and the last run's result, as files the health check reads."""

    def __init__(self, folder: Path) -> None:
        """Use (and create) ``folder``."""
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.heartbeat = folder / "heartbeat"
        self.last_run = folder / "last-run.json"

    def beat(self) -> None:
        """Record that the scheduler is alive."""
        self.heartbeat.write_text(dt.datetime.now(dt.UTC).isoformat())

    def record(self, result: dict[str, t.Any]) -> None:
        """Record the result of a finished run."""
        self.last_run.write_text(json.dumps(result))

    def verdict(self, now: float | None = None) -> tuple[bool, str]:
        """(healthy, reason)."""
        if not self.heartbeat.exists():
            return False, "no heartbeat: the scheduler is not running"
        age = (now or time.time()) - self.heartbeat.stat().st_mtime
        if age > STALE_AFTER_SECONDS:
            return False, f"heartbeat is {age:.0f}s old"
        if not self.last_run.exists():
            return True, "scheduler running; no run finished yet"
        last = json.loads(self.last_run.read_text())
        if last.get("exit_code") != 0:
            return False, last.get("result") or (
                f"last run of {last.get('job')} failed with exit code {last.get('exit_code')}"
            )
        return (
            True,
            f"scheduler running; last run of {last.get('job')} succeeded at {last.get('finished')}",
        )


@dataclass
class Run:
    """A run in flight."""

    schedule: Schedule
    process: subprocess.Popen[bytes]
    started: dt.datetime


class Scheduler:
    """Fires due schedules, one run per job at a time, until asked to stop."""

    def __init__(
        self, schedules: list[Schedule], health: Health, command: list[str], grace: float
    ) -> None:
        """``command`` runs one job; the job name is appended."""
        self.schedules = schedules
        self.health = health
        self.command = command
        self.grace = grace
        self.stopping = threading.Event()
        self.running: dict[str, Run] = {}

    def stop(self, signum: int, _frame: object) -> None:
        """Signal handler: stop scheduling."""
        log(f"received signal {signum}: no new runs; waiting for runs in flight")
        self.stopping.set()

    def serve(self) -> None:
        """Schedule until stopped, then drain."""
        now = dt.datetime.now(dt.UTC)
        due = {s: s.next_after(now) for s in self.schedules}
        for schedule, when in due.items():
            nxt = f"{when:%Y-%m-%dT%H:%M:%SZ}"
            log(
                f"schedule {schedule.name}: job {schedule.job} at {schedule.interval!r}, next {nxt}"
            )
        while not self.stopping.is_set():
            self.health.beat()
            self.reap()
            now = dt.datetime.now(dt.UTC)
            for schedule, when in due.items():
                if when <= now:
                    self.start(schedule)
                    due[schedule] = schedule.next_after(now)
            wake = min([*due.values(), now + dt.timedelta(seconds=HEARTBEAT_SECONDS)])
            self.stopping.wait(max(0.0, min((wake - now).total_seconds(), 1.0)))
        self.drain()

    def start(self, schedule: Schedule) -> None:
        """Start a run of the schedule's job, unless one is in flight."""
        if schedule.job in self.running:
            log(f"schedule {schedule.name}: {schedule.job} is still running; this time is skipped")
            return
        log(f"schedule {schedule.name}: starting {schedule.job}")
        # its own process group: a stop signal reaches run-etl.sh, meltano and the plugins at once
        process = subprocess.Popen(  # noqa: S603
            [*self.command, schedule.job],
            cwd=PROJECT_DIR,
            start_new_session=True,
        )
        self.running[schedule.job] = Run(schedule, process, dt.datetime.now(dt.UTC))

    def reap(self) -> None:
        """Record the runs that finished."""
        for job, run in list(self.running.items()):
            code = run.process.poll()
            if code is None:
                continue
            del self.running[job]
            finished = dt.datetime.now(dt.UTC)
            result = self.result_of(job, run.started)
            log(f"schedule {run.schedule.name}: {job} finished with exit code {code}")
            if code and result:
                log(f"schedule {run.schedule.name}: {result}")  # the cause, last
            self.health.record(
                {
                    "schedule": run.schedule.name,
                    "job": job,
                    "exit_code": code,
                    "result": result,
                    "started": run.started.isoformat(),
                    "finished": finished.isoformat(),
                }
            )

    def result_of(self, job: str, started: dt.datetime) -> str:
        """The last line of a run of ``job`` (run-etl.sh keeps it), if that run wrote one."""
        path = RESULTS_DIR / f"run-etl-{job}.result"
        try:
            if path.stat().st_mtime < started.timestamp() - 1:
                return ""
            return path.read_text().strip()
        except OSError:
            return ""

    def drain(self) -> None:
        """Let runs in flight finish within the grace period, then ask them to stop."""
        deadline = time.monotonic() + self.grace
        while self.running and time.monotonic() < deadline:
            self.health.beat()
            time.sleep(0.5)
            self.reap()
        for job, run in self.running.items():
            log(f"{job} still running after {self.grace:.0f}s: asking it to stop")
            os.killpg(run.process.pid, signal.SIGTERM)
        for run in self.running.values():
            try:
                run.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                run.process.kill()
        self.reap()
        log("stopped")


def meltano_executable() -> str:
    """The project's meltano: the virtual environment's, else the one on PATH."""
    local = PROJECT_DIR / ".venv" / "bin" / "meltano"
    return os.environ.get("MELTANO") or (str(local) if local.exists() else "meltano")


def main(argv: list[str] | None = None) -> int:
    """``run`` the scheduler, or check its ``health``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "health"])
    parser.add_argument(
        "--job-command",
        default=str(PROJECT_DIR / "run-etl.sh"),
        help="command that runs one job, given the job name (default: run-etl.sh)",
    )
    args = parser.parse_args(argv)
    health = Health(
        Path(os.environ.get("DATA_IMPORTS_HEALTH_DIR", PROJECT_DIR / ".meltano" / "health"))
    )
    if args.command == "health":
        healthy, reason = health.verdict()
        print(reason)  # noqa: T201
        return 0 if healthy else 1
    schedules = load_schedules(meltano_executable())
    if not schedules:
        log("meltano.yml has no job schedules: nothing to run")
        return 1
    scheduler = Scheduler(
        schedules,
        health,
        [args.job_command],
        float(os.environ.get("DATA_IMPORTS_STOP_GRACE", "120")),
    )
    signal.signal(signal.SIGTERM, scheduler.stop)
    signal.signal(signal.SIGINT, scheduler.stop)
    scheduler.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
