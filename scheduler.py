"""Run the schedules of meltano.yml at their cron times: the container's long-running mode.

``python scheduler.py run`` reads the schedules with ``meltano schedule list --format=json``
(meltano.yml stays the one source of truth), computes each next time with croniter, and runs a
due schedule's job through the runner (``data_imports.runner``), never two runs of one job at
once, each in a thread of its own. Every line of a run is printed with its job's name in front.
It writes a heartbeat and the result of the last run to ``DATA_IMPORTS_HEALTH_DIR``. On SIGTERM
or SIGINT it starts no new run and passes the stop on to the runs in flight, which stop within
``DATA_IMPORTS_STOP_GRACE`` seconds (a stopped backfill resumes where it stopped).

``python scheduler.py health`` exits 0 while the heartbeat is fresh and the last run (if any)
did not fail: the container's health check.

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
from dataclasses import dataclass, field
from pathlib import Path

from croniter import croniter

from data_imports.options import OptionError, Options
from data_imports.runner import FAILED, JobRun, RunResult, load_env

PROJECT_DIR = Path(__file__).resolve().parent
HEARTBEAT_SECONDS = 15
STALE_AFTER_SECONDS = 120

Runner = t.Callable[[str, t.TextIO], JobRun]
"""Makes the run of a job whose lines go to the given stream."""


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

    def start(self) -> None:
        """Forget the result of a run of an earlier scheduler (an earlier image, on the volume)."""
        self.last_run.unlink(missing_ok=True)

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
        if last.get("status") == FAILED:
            return False, str(last.get("result") or f"the last run of {last.get('job')} failed")
        return True, f"scheduler running; last run: {last.get('result')}"


class Prefixed:
    """A text stream that writes each line with a prefix (a job's lines among others)."""

    def __init__(self, prefix: str, stream: t.TextIO) -> None:
        """Write to ``stream``."""
        self.prefix, self.stream = prefix, stream

    def write(self, text: str) -> int:
        """Write whole lines, each with the prefix."""
        lines = "".join(f"{self.prefix}{line}\n" for line in text.splitlines() if line)
        self.stream.write(lines)
        return len(text)

    def flush(self) -> None:
        """Flush the stream."""
        self.stream.flush()


@dataclass
class Run:
    """A run in flight, in a thread of its own."""

    schedule: Schedule
    job_run: JobRun
    thread: threading.Thread
    result: list[RunResult] = field(default_factory=list)


def default_runner(job: str, out: t.TextIO) -> JobRun:
    """The runner's run of ``job``."""
    return JobRun(job, out=out)


class Scheduler:
    """Fires due schedules, one run per job at a time, until asked to stop."""

    def __init__(
        self,
        schedules: list[Schedule],
        health: Health,
        runner: Runner = default_runner,
        grace: float = 60,
    ) -> None:
        """``runner`` makes the run of a job; ``grace`` bounds a run's stop."""
        self.schedules = schedules
        self.health = health
        self.runner = runner
        self.grace = grace
        self.stopping = threading.Event()
        self.running: dict[str, Run] = {}

    def stop(self, signum: int, _frame: object) -> None:
        """Signal handler: stop scheduling."""
        log(f"received signal {signum}: no new runs; stopping the runs in flight")
        self.stopping.set()

    def serve(self) -> None:
        """Schedule until stopped, then stop the runs in flight."""
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
        out = t.cast("t.TextIO", Prefixed(f"{schedule.job} | ", sys.stdout))
        job_run = self.runner(schedule.job, out)
        results: list[RunResult] = []
        thread = threading.Thread(
            target=lambda: results.append(job_run.run()), name=schedule.job, daemon=True
        )
        self.running[schedule.job] = Run(schedule, job_run, thread, results)
        thread.start()

    def reap(self) -> None:
        """Record the runs that finished."""
        for job, run in list(self.running.items()):
            if run.thread.is_alive():
                continue
            del self.running[job]
            if not run.result:  # the run raised: its thread printed the traceback
                log(f"schedule {run.schedule.name}: {job} ended without a result")
                self.health.record({"job": job, "status": FAILED, "result": f"{job} crashed"})
                continue
            result = run.result[0]
            log(f"schedule {run.schedule.name}: {result.last_line}")
            self.health.record({"schedule": run.schedule.name, **result.as_dict()})

    def drain(self) -> None:
        """Pass the stop on to the runs in flight and wait for them (each within the grace)."""
        for run in self.running.values():
            run.job_run.stop(signal.SIGTERM)
        deadline = time.monotonic() + self.grace + 30
        for run in self.running.values():
            run.thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self.reap()
        log("stopped")


def main(argv: list[str] | None = None) -> int:
    """``run`` the scheduler, or check its ``health``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "health"])
    args = parser.parse_args(argv)
    health = Health(
        Path(os.environ.get("DATA_IMPORTS_HEALTH_DIR", PROJECT_DIR / ".meltano" / "health"))
    )
    if args.command == "health":
        healthy, reason = health.verdict()
        print(reason)  # noqa: T201
        return 0 if healthy else 1
    try:
        options = Options.read(load_env())
    except OptionError as exc:
        log(str(exc))
        return 2
    schedules = load_schedules(options.meltano)
    if not schedules:
        log("meltano.yml has no job schedules: nothing to run")
        return 1
    health.start()
    scheduler = Scheduler(schedules, health, grace=options.stop_grace)
    signal.signal(signal.SIGTERM, scheduler.stop)
    signal.signal(signal.SIGINT, scheduler.stop)
    scheduler.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
