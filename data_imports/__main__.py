"""``python -m data_imports [JOB]``: one run of a job, as cron starts it (``run-etl.sh``).

``--reset-state JOB`` forgets the job's state (also one that is not JSON), so that its next run
starts from ``start_date``.
"""

from __future__ import annotations

import argparse
import fcntl
import signal
import sys

from data_imports import systemdb
from data_imports.options import OptionError, Options
from data_imports.project import ROOT, Project, ProjectError
from data_imports.runner import JobRun, load_env


def main(argv: list[str] | None = None) -> int:
    """Run a job (or reset its state); return the exit code."""
    project = Project.load()
    parser = argparse.ArgumentParser(prog="run-etl.sh", description=__doc__.splitlines()[0])
    parser.add_argument("job", nargs="?", default=(project.job_names or [""])[0])
    parser.add_argument(
        "--reset-state", action="store_true", help="forget the job's state, then stop"
    )
    args = parser.parse_args(argv)
    if args.reset_state:
        return reset_state(project, args.job)
    run = JobRun(args.job)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda received, _frame: run.stop(received))
    return run.run().exit_code


def reset_state(project: Project, job_name: str) -> int:
    """Reset the state of every task of a job, holding the job's lock."""
    env = load_env()
    try:
        options = Options.read(env)
        job = project.job(job_name)
    except (OptionError, ProjectError) as exc:
        print(f"run-etl: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    options.lock_dir.mkdir(parents=True, exist_ok=True)
    with options.job_lock(job_name).open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"run-etl: a run of {job_name} is in progress: reset it when it ends")  # noqa: T201
            return 1
        environment = project.environment(env)
        for task in job.tasks:
            done = systemdb.reset_state(
                task.state_id(environment),
                env=env,
                meltano_yml=project.data,
                root=ROOT,
                meltano=options.meltano,
                keep_in=options.log_dir,
            )
            print(f"run-etl: {done}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
