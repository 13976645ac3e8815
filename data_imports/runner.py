"""Run one Meltano job unattended and return its result as a value.

A run loads ``.env`` (the environment wins), checks the runner's and the plugins' settings,
takes the job's lock, migrates a new system database once, runs ``meltano run`` in a process
group of its own, passes a stop signal on with one grace period, shows the lines worth showing,
records a failed or stopped run on its health points, and appends its block to the rotated log.
Its last line names the result: where the points went, or the cause of the failure.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

from data_imports import events, health, s3state, settings, systemdb
from data_imports.options import OptionError, Options
from data_imports.project import ROOT, Job, Project, ProjectError
from data_imports.runlog import RunLog

if t.TYPE_CHECKING:
    from collections.abc import Mapping

OK, FAILED, STOPPED, SKIPPED = "ok", "failed", "stopped", "skipped"
SOURCE = "run-etl"
"""How the runner names itself in its lines."""


def env_file_of(environ: Mapping[str, str], root: Path = ROOT) -> Path:
    """The file of variables: ``DATA_IMPORTS_ENV_FILE``, else ``.env`` in the project."""
    return Path(environ.get("DATA_IMPORTS_ENV_FILE") or root / ".env")


def load_env(
    root: Path = ROOT, environ: Mapping[str, str] | None = None, env_file: Path | None = None
) -> dict[str, str]:
    """The file of variables (:func:`env_file_of`), overridden by the environment, as in Meltano."""
    given = os.environ if environ is None else environ
    path = env_file or env_file_of(given, root)
    found = dotenv_values(path) if path.is_file() else {}
    return {**{k: v for k, v in found.items() if v is not None}, **given}


@dataclass
class RunResult:
    """How a run ended."""

    job: str
    status: str
    """``ok``, ``failed``, ``stopped``, or ``skipped`` (another run of the job was going on)."""
    cause: str
    last_line: str
    started: dt.datetime
    duration: float
    streams: dict[str, dict[str, t.Any]] = field(default_factory=dict)
    """Per stream, what the target reported: records, points, rejected, skipped, newest."""
    signal: int | None = None

    @property
    def points(self) -> int:
        """Points written by the run."""
        return sum(int(s.get("points") or 0) for s in self.streams.values())

    @property
    def exit_code(self) -> int:
        """0 for ok and skipped, 1 for failed, 128 + the signal for stopped."""
        if self.status == STOPPED:
            return 128 + (self.signal or signal.SIGTERM)
        return 1 if self.status == FAILED else 0

    def as_dict(self) -> dict[str, t.Any]:
        """The result as JSON-ready data (the scheduler's health file)."""
        return {
            "job": self.job,
            "status": self.status,
            "cause": self.cause,
            "result": self.last_line,
            "exit_code": self.exit_code,
            "started": self.started.isoformat(),
            "duration": round(self.duration, 1),
            "points": self.points,
            "streams": self.streams,
        }


class Failure(Exception):  # noqa: N818 (a run's failure, not an error of the runner)
    """A run that cannot go on; the message is its cause."""


class JobRun:
    """One run of a job; :meth:`run` returns its result, :meth:`stop` ends it early."""

    def __init__(
        self,
        job: str,
        *,
        env: Mapping[str, str] | None = None,
        root: Path = ROOT,
        out: t.TextIO | None = None,
    ) -> None:
        """Prepare a run of ``job`` (nothing starts until :meth:`run`)."""
        self.job_name, self.root = job, root
        self.env = load_env(root, env)
        self.out = out or sys.stdout
        self.lines: list[str] = []
        self.started = dt.datetime.now(dt.UTC)
        self._clock = time.monotonic()
        self._stop_signal: int | None = None
        self._deadline_passed = False
        self._process: subprocess.Popen[str] | None = None
        self._guard = threading.Lock()
        self.options: Options | None = None
        self.project: Project | None = None
        self.job: Job | None = None
        self.config: dict[str, dict[str, t.Any]] = {}
        self.reports: dict[str, dict[str, t.Any]] = {}
        self.errors: list[events.Event] = []
        self.exit_codes: dict[str, int] = {}

    # what the run says

    def say(self, message: str, level: int = logging.INFO) -> None:
        """A line of the runner's own, on screen and in the log."""
        self._emit(events.render(_now(), level, SOURCE, message))

    def _emit(self, line: str, *, on_screen: bool = True, detail: str = "") -> None:
        if on_screen:
            print(line, file=self.out, flush=True)
            if detail and self.options and self.options.log_level == "debug":
                print(detail, file=self.out, flush=True)
        self.lines.append(line)
        if detail:
            self.lines.append(detail)

    # stopping

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Pass a stop on to the run; kill it if it has not stopped within the grace period."""
        self._stop(signum, f"{signal.Signals(signum).name} received")

    def _past_deadline(self) -> None:
        """Stop a run still going at its deadline, as a SIGTERM does; it fails, naming why."""
        self._stop(signal.SIGTERM, "it is past its deadline", deadline=True)

    def _stop(self, signum: int, reason: str, *, deadline: bool = False) -> None:
        """The first stop (a signal, or the deadline) wins; a later one changes nothing."""
        with self._guard:
            process = self._process
            if self._stop_signal is not None:
                return
            if deadline and (process is None or process.poll() is not None):
                return  # the run ended on its own, in time
            self._stop_signal, self._deadline_passed = signum, deadline
        if process is None or process.poll() is not None:
            return
        grace = self.options.stop_grace if self.options else 60.0
        at_most = f"at most {grace:.0f}s"
        self.say(f"stopping {self.job_name}: {reason}, passed on to the run ({at_most})")
        _signal_group(process, signal.SIGTERM)
        threading.Thread(target=self._kill_after, args=(process, grace), daemon=True).start()

    def _deadline(self) -> threading.Timer | None:
        """A timer that stops the run at its deadline (``DATA_IMPORTS_RUN_TIMEOUT``), started."""
        assert self.options  # noqa: S101 (set by run)
        if not self.options.run_timeout:
            return None
        left = self.options.run_timeout - (time.monotonic() - self._clock)
        timer = threading.Timer(max(0.0, left), self._past_deadline)
        timer.daemon = True
        timer.start()
        return timer

    def _kill_after(self, process: subprocess.Popen[str], grace: float) -> None:
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            self.say(f"{self.job_name} did not stop within {grace:.0f}s: killed", logging.WARNING)

    # the run

    def run(self) -> RunResult:
        """Run the job to its end and return how it ended (also when the runner itself fails)."""
        try:
            return self._run()
        except Exception as exc:  # noqa: BLE001 (any error of the runner's own ends in a last line)
            self.lines.append(traceback.format_exc().rstrip())
            log = f" (traceback in {self.log_path})" if self.options else ""
            return self._finish(FAILED, f"the runner failed: {type(exc).__name__}: {exc}{log}")

    def _run(self) -> RunResult:
        try:
            self.options = Options.read(self.env, self.root)
        except OptionError as exc:
            return self._finish(FAILED, str(exc))
        try:
            self.project = Project.load(self.root)
            self.job = self.project.job(self.job_name)
        except ProjectError as exc:
            return self._finish(FAILED, str(exc))
        self._keep_private()
        with self.options.job_lock(self.job_name).open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                message = f"another run of {self.job_name} is in progress: this one stops here"
                return self._finish(SKIPPED, message)
            self.say(f"starting {self.job_name}")
            try:
                environ = self._prepare()
                with self._leases():
                    code = self._meltano_run(environ, lock.fileno())
            except Failure as exc:
                return self._finish(FAILED, str(exc))
            except s3state.Held as exc:
                return self._finish(SKIPPED, str(exc))
            return self._conclude(code)

    def _keep_private(self) -> None:
        """Files of the run readable by their owner only: the plugins' config holds the token."""
        assert self.options  # noqa: S101 (set by run)
        os.umask(0o077)
        for folder in (self.root / ".meltano", self.options.lock_dir):
            folder.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):  # a folder of another owner stays as it is
                folder.chmod(0o700)

    def _prepare(self) -> dict[str, str]:
        """Check everything a run needs; return the environment Meltano gets."""
        assert self.options  # noqa: S101 (set by run)
        assert self.project  # noqa: S101
        assert self.job  # noqa: S101
        if not self.options.meltano:
            raise Failure("meltano not found: run ./setup.sh first")
        try:
            checked = settings.check(
                self.project, self.job.plugins, self.env, dt.datetime.now(dt.UTC)
            )
        except ProjectError as exc:
            raise Failure(str(exc)) from None
        self.config = checked.config
        for problem in checked.problems:
            self.say(problem, logging.ERROR)
        if checked.problems:
            more = len(checked.problems) - 1
            raise Failure(checked.problems[0] + (f" (and {more} more above)" if more else ""))
        if problem := systemdb.migrate_once(
            self.options.meltano, self.env, self.root, self.options.lock_dir
        ):
            raise Failure(problem)
        if problem := systemdb.diagnose(systemdb.database_uri(self.env, self.root)):
            raise Failure(problem)
        # The SDK's log level of a plugin (``<PLUGIN>_LOGLEVEL``) sets its METRIC lines' level.
        levels = {"warning": "WARNING", "debug": "DEBUG"}.get(self.options.log_level)
        variables = [f"{p.executable.upper().replace('-', '_')}_LOGLEVEL" for p in self.job.plugins]
        plugin_levels = dict.fromkeys(variables, levels) if levels else {}
        return {**plugin_levels, **self.env, **checked.environ}

    @contextlib.contextmanager
    def _leases(self) -> t.Iterator[None]:
        """Hold the job's states in S3 for the run, so that no other host runs it meanwhile."""
        assert self.project  # noqa: S101 (set by run)
        try:
            with s3state.leases(
                self._state_backend(),
                self._state_id_list(),
                self.job_name,
                env=self.env,
                meltano_yml=self.project.data,
                on_lost=lambda problem: self.say(problem, logging.WARNING),
            ):
                yield
        except s3state.Unusable as exc:
            raise Failure(str(exc)) from None

    def _meltano_run(self, environ: dict[str, str], lock: int) -> int:
        """``meltano run`` in a process group of its own; its lines read as they come.

        Meltano holds the job's lock too (``lock``, inherited), so a runner killed on its own
        does not let another run of the job start while its Meltano goes on.
        """
        assert self.options  # noqa: S101 (set by run)
        config = self.options.lock_dir / f"meltano-logging-{self.options.log_level}.json"
        config.write_text(json.dumps(events.meltano_logging(self.options.log_level)))
        env_file = str(env_file_of(self.env, self.root))
        command = [self.options.meltano, "--env-file", env_file, "--log-config", str(config)]
        command += ["run", "--force"]
        with self._guard:
            if self._stop_signal is not None:
                return 1
            self._process = process = subprocess.Popen(  # noqa: S603 (the project's meltano)
                [*command, self.job_name],
                cwd=self.root,
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                start_new_session=True,
                pass_fds=(lock,),
            )
        assert process.stderr  # noqa: S101 (a pipe)
        deadline = self._deadline()
        try:
            for line in process.stderr:
                if line.strip():
                    self._take(events.Event.parse(line))
            return process.wait()
        finally:
            if deadline:
                deadline.cancel()

    def _take(self, event: events.Event) -> None:
        """Show, keep and learn from one of Meltano's lines."""
        assert self.options  # noqa: S101 (set by run)
        if event.is_report and "stream" in event.fields and "points" in event.fields:
            self.reports[str(event.fields["stream"])] = dict(event.fields)
        if event.level >= logging.ERROR:
            self.errors.append(event)
        if codes := event.fields.get("exit_codes"):
            self.exit_codes.update({str(k): int(v) for k, v in codes.items()})
        line = events.render(event.time or _now(), event.level, event.source, event.message)
        self._emit(line, on_screen=event.shown(self.options.log_level), detail=event.traceback)

    # the end

    def _conclude(self, code: int) -> RunResult:
        if self._deadline_passed:
            assert self.options  # noqa: S101 (set by run)
            return self._finish(FAILED, past_deadline(self.options.run_timeout))
        if self._stop_signal is not None:
            name = signal.Signals(self._stop_signal).name
            return self._finish(STOPPED, f"stopped by {name}")
        if code == 0:
            return self._finish(OK, "")
        return self._finish(FAILED, self._cause(code))

    def _cause(self, code: int) -> str:
        """The cause of a failed ``meltano run``, from what it logged."""
        return (
            self._plugin_cause()
            or self._exit_cause()
            or self._state_cause()
            or systemdb.diagnose(systemdb.database_uri(self.env, self.root))
            or self._meltano_cause(code)
        )

    @property
    def log_path(self) -> Path:
        """The rotated log the run's block goes to."""
        assert self.options  # noqa: S101 (set by run)
        return RunLog(self.options.log_dir, 0, 1).path

    def _plugin_cause(self) -> str:
        """A plugin's verdict: the first error of a plugin's own logger, else any of a plugin's.

        A plugin ends a failed run with one ERROR line of its top logger (``tap-nationalgas``);
        the SDK's and the retry library's errors before it come from the stream loggers.
        """
        plugin_errors = [event for event in self.errors if event.from_plugin]
        verdicts = [event for event in plugin_errors if event.logger and "." not in event.logger]
        for event in verdicts or plugin_errors:
            message = event.message.removeprefix("failed: ")
            if event.fields.get("cause") == "state":
                message += f" (./run-etl.sh --reset-state {self.job_name})"
            elif event.traceback:
                message = f"{event.exception_name} (traceback in {self.log_path})"
            return f"{event.source} {message}"
        return ""

    def _exit_cause(self) -> str:
        """A plugin that ended without a word: killed by a signal, or an exit status."""
        for kind, status in self.exit_codes.items():
            plugin = self._plugin_of(kind)
            if status < 0:
                return f"{plugin} was killed by {signal.Signals(-status).name}"
            return f"{plugin} exited with status {status} without saying why (see {self.log_path})"
        return ""

    def _state_cause(self) -> str:
        """Meltano could not read the job's state: S3 refused it, or the state is not JSON."""
        assert self.project  # noqa: S101 (set by run)
        for event in self.errors:
            if "state_backend" in event.fields:
                for state_id in self._state_id_list():
                    backend, data = self._state_backend(), self.project.data
                    if problem := s3state.probe(backend, state_id, self.env, data):
                        return problem
                return (
                    f"the state of {self._state_ids()} cannot be read ({event.message}): reset "
                    f"it with ./run-etl.sh --reset-state {self.job_name} (the next run starts "
                    "from start_date)"
                )
        return ""

    def _meltano_cause(self, code: int) -> str:
        """What Meltano itself said last, with the exception it carried."""
        for event in self.errors:
            if event.exception_name:
                return f"meltano {event.exception_name} (traceback in {self.log_path})"
        if self.errors:
            return f"meltano {self.errors[0].message} (see {self.log_path})"
        return f"meltano exited with status {code} without saying why (see {self.log_path})"

    def _plugin_of(self, kind: str) -> str:
        assert self.job  # noqa: S101 (set by run)
        task = self.job.tasks[0]
        return task.loader.name if kind == "loaders" else task.extractor.name

    def _state_ids(self) -> str:
        return ", ".join(self._state_id_list())

    def _state_id_list(self) -> list[str]:
        assert self.job  # noqa: S101 (set by run)
        assert self.project  # noqa: S101
        environment = self.project.environment(self.env)
        return [task.state_id(environment) for task in self.job.tasks]

    def _state_backend(self) -> str:
        assert self.project  # noqa: S101 (set by run)
        return systemdb.state_backend(self.env, self.project.data)

    def _finish(self, status: str, cause: str) -> RunResult:
        duration = time.monotonic() - self._clock
        if status == OK:
            last = f"finished {self.job_name} in {duration:.0f}s: {self._where()}"
        elif status == SKIPPED:
            last = cause
        elif status == STOPPED:
            last = f"{self.job_name} {cause}"
        else:
            last = f"{self.job_name} failed: {cause}"
        if status in {FAILED, STOPPED}:
            self._record(status, cause)
        self.say(last, logging.INFO if status in {OK, SKIPPED} else logging.ERROR)
        if self.options:
            RunLog(self.options.log_dir, self.options.log_max_bytes, self.options.log_keep).append(
                self.lines
            )
        streams = {
            name: {k: report.get(k) for k in ("records", "points", "rejected", "skipped", "newest")}
            for name, report in self.reports.items()
        }
        signum = self._stop_signal if status == STOPPED else None
        return RunResult(
            self.job_name, status, cause, last, self.started, duration, streams, signum
        )

    def _where(self) -> str:
        """Where the run's points went: the bucket at its URL, or the files of file mode."""
        target = self._target_config()
        points = sum(int(r.get("points") or 0) for r in self.reports.values())
        if target.get("url"):
            return f'{points} points to bucket "{target.get("bucket")}" at {target["url"]}'
        folder = Path(str(target.get("output_path") or "output"))
        files = [str(folder / f"{name}.lp") for name, r in self.reports.items() if r.get("points")]
        self.say(
            f"INFLUXDB_URL is empty: the points are line protocol in {folder}; load them into "
            f"InfluxDB with: influx write --bucket BUCKET --org ORG --file {folder}/<stream>.lp"
        )
        return f"{points} points to " + (", ".join(files) or f"{folder} (no new points)")

    def _target_config(self) -> dict[str, t.Any]:
        if not self.job:
            return {}
        return self.config.get(self.job.tasks[0].loader.name, {})

    def _record(self, status: str, cause: str) -> None:
        """Put the outcome on the run's health points; a failure to do so is a warning."""
        target = self._target_config()
        if not target or not self.job or not self.project:
            return
        streams: dict[str, int | None] = {
            name: report.get("run_time_us") for name, report in self.reports.items()
        }
        for name in self.job.streams:
            streams.setdefault(name, None)
        problem = health.record_outcome(
            target,
            job=self.job.tasks[0].state_id(self.project.environment(self.env)),
            streams=streams,
            status=status,
            cause=cause,
            ended_us=time.time_ns() // 1000,
        )
        if problem:
            self.say(problem, logging.WARNING)


def past_deadline(seconds: float) -> str:
    """The cause of a run stopped at its deadline."""
    return (
        f"ran past its deadline of {seconds:.0f} s (DATA_IMPORTS_RUN_TIMEOUT) and was stopped; "
        "what it stored is kept, and the next run goes on from there"
    )


def _signal_group(process: subprocess.Popen[str], signum: int) -> None:
    """Send a signal to every process of the run's group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def run_job(job: str, **options: t.Any) -> RunResult:  # noqa: ANN401
    """Run ``job`` once (see :class:`JobRun` for the options)."""
    return JobRun(job, **options).run()
