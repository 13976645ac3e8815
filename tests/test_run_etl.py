"""run-etl.sh after a kill, a stop, and on a new system database: the traps an operator meets."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import typing as t
from pathlib import Path

from testkit.fixtures import MELTANO
from testkit.processes import REPO_ROOT, process_tree, wait_until

if t.TYPE_CHECKING:
    from testkit.fake_nationalgas import FakeNationalGasProcess

SCRIPT = str(REPO_ROOT / "run-etl.sh")
JOB = "nationalgas-to-influxdb"
RUN_DIR = REPO_ROOT / ".meltano" / "run" / "target-influxdb"


def start(env: dict[str, str], job: str = JOB) -> subprocess.Popen[str]:
    """run-etl.sh in a session of its own, as cron starts it."""
    return subprocess.Popen(
        [SCRIPT, job],
        cwd="/",
        env={**env, "MELTANO": MELTANO},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def target_config_files() -> list[Path]:
    """The config files Meltano writes for the target while a run is going on."""
    return sorted(RUN_DIR.glob("target.*.config.json")) if RUN_DIR.exists() else []


def start_a_hanging_run(env: dict[str, str], fake: FakeNationalGasProcess) -> subprocess.Popen:
    """A run whose tap waits on an answer that does not come, once its target is configured."""
    fake.queue_faults([{"path": "/publications/gasday", "hang": 60}])
    before = set(target_config_files())
    run = start(env)
    wait_until(lambda: bool(set(target_config_files()) - before), "the target's config file", 60)
    wait_until(lambda: fake.stats()["requests"].get("/publications/gasday", 0) >= 1, "the hang", 60)
    return run


def readable_by_others(root: Path) -> list[Path]:
    """Files under ``root`` that users other than the owner can read."""
    return [p for p in root.rglob("*") if p.is_file() and p.stat().st_mode & 0o044]


def test_a_killed_run_leaves_no_token_readable_and_the_next_run_takes_over(
    project_env, fake_api: FakeNationalGasProcess
):
    token = project_env["INFLUXDB_TOKEN"]
    run = start_a_hanging_run(project_env, fake_api)
    for pid in process_tree(run.pid):  # everything: the runner, meltano, the plugins
        os.kill(pid, signal.SIGKILL)
    run.communicate(timeout=30)
    wait_until(lambda: not process_tree(run.pid), "the killed run's processes to go", 10)

    meltano_dir = REPO_ROOT / ".meltano"
    assert meltano_dir.stat().st_mode & 0o077 == 0
    assert all(p.stat().st_mode & 0o077 == 0 for p in target_config_files())
    exposed = [
        p for p in readable_by_others(meltano_dir / "run") if token in p.read_text(errors="replace")
    ]
    assert exposed == []

    fake_api.reset()
    again, took = run_etl(project_env)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "already running" not in again.stdout.lower()
    assert took < 120


def test_sigterm_is_passed_on_and_the_run_is_logged_as_stopped(
    project_env, fake_api: FakeNationalGasProcess
):
    env = {**project_env, "DATA_IMPORTS_STOP_GRACE": "5"}
    run = start_a_hanging_run(env, fake_api)
    processes = process_tree(run.pid)
    started = time.monotonic()
    os.kill(run.pid, signal.SIGTERM)  # run-etl.sh alone, as cron's timeout does
    out, _ = run.communicate(timeout=60)
    assert run.returncode == 143, out[-3000:]
    assert time.monotonic() - started < 30
    log = (Path(project_env["DATA_IMPORTS_LOG_DIR"]) / "run-etl.log").read_text()
    assert f"stopping {JOB}: SIGTERM received, passed on to the run" in log
    assert f"{JOB} stopped by SIGTERM" in log
    assert out.strip().splitlines()[-1].endswith(f"run-etl {JOB} stopped by SIGTERM")
    wait_until(lambda: not set(processes) & set(process_tree(1)), "the run's processes to go", 10)

    fake_api.reset()
    again, _ = run_etl(env)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "another run" not in again.stdout


def test_first_runs_of_two_jobs_at_once_on_a_new_system_database(project_env):
    assert not Path(project_env["MELTANO_DATABASE_URI"].removeprefix("sqlite:///")).exists()
    runs = [start(project_env, job) for job in (JOB, "nationalgas-flows")]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    for run, out in zip(runs, outputs, strict=True):
        assert run.returncode == 0, out[-3000:]
        assert "MigrationError" not in out


def run_etl(env: dict[str, str], **overrides: str) -> tuple[subprocess.CompletedProcess, float]:
    """One run of run-etl.sh to its end, and how long it took."""
    started = time.monotonic()
    done = subprocess.run(
        [SCRIPT, JOB],
        cwd="/",
        env={**env, "MELTANO": MELTANO, **overrides},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done, time.monotonic() - started


def last_line(done: subprocess.CompletedProcess) -> str:
    """The last line run-etl.sh printed, less its time stamp."""
    return done.stdout.strip().splitlines()[-1].split(" run-etl ", 1)[1]


def test_a_normal_run_says_one_line_per_stream_and_keeps_its_log_in_one_block(project_env):
    done, _ = run_etl(project_env)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "METRIC" not in done.stdout
    assert "Traceback" not in done.stdout
    assert "Skipping parse of env var settings" not in done.stdout
    lines = done.stdout.strip().splitlines()
    assert lines[0].endswith(f"run-etl starting {JOB}")
    summaries = lines[1:-1]  # nothing else between the start and the result
    assert len(summaries) == 2, summaries  # gas_quality and publications
    assert all(" points written, newest " in line for line in summaries)
    assert "Stream 'gas_quality': 12 records, 12 points written, newest 2026-03-29T08:00:00" in (
        summaries[0] + summaries[1]
    )
    assert last_line(done).startswith(f"finished {JOB} in ")
    verbose, _ = run_etl(project_env, DATA_IMPORTS_LOG_VERBOSE="1")
    assert "METRIC" in verbose.stdout
    log = (Path(project_env["DATA_IMPORTS_LOG_DIR"]) / "run-etl.log").read_text()
    blocks = log.strip().split("\n\n")
    assert len(blocks) == 2
    assert all(b.splitlines()[0].endswith(f"starting {JOB}") for b in blocks)
    assert all(f"finished {JOB} in " in b.splitlines()[-1] for b in blocks)


def test_the_log_is_rotated_and_bounded(project_env):
    log_dir = Path(project_env["DATA_IMPORTS_LOG_DIR"])
    log_dir.mkdir(parents=True)
    (log_dir / "run-etl.log").write_text("x" * 3000 + "\n")
    env = {**project_env, "DATA_IMPORTS_LOG_MAX_KB": "0", "DATA_IMPORTS_LOG_KEEP": "2"}
    for _ in range(3):
        done, _ = run_etl(env)
        assert done.returncode == 0, done.stdout[-3000:]
    kept = sorted(p.name for p in log_dir.glob("run-etl.log*"))
    assert kept == ["run-etl.log", "run-etl.log.1", "run-etl.log.2"]
