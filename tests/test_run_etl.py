"""run-etl.sh after a kill, a stop, and on a new system database: the traps an operator meets."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import time
import typing as t
from pathlib import Path

from testkit import expected
from testkit.fixtures import MELTANO, backfill_batch_records, meltano, start_run_etl
from testkit.nationalgas_data import GAS_QUALITY_SITES
from testkit.processes import REPO_ROOT, process_tree, wait_until

if t.TYPE_CHECKING:
    from testkit.fake_nationalgas import FakeNationalGasProcess

SCRIPT = str(REPO_ROOT / "run-etl.sh")
JOB = "nationalgas-to-influxdb"
JOB_STREAMS = expected.job_streams(JOB)
"""The streams the job reads (meltano.yml)."""
START = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
RUN_DIR = REPO_ROOT / ".meltano" / "run" / "target-influxdb"


def target_config_files() -> list[Path]:
    """The config files Meltano writes for the target while a run is going on."""
    return sorted(RUN_DIR.glob("target.*.config.json")) if RUN_DIR.exists() else []


def start_a_hanging_run(env: dict[str, str], fake: FakeNationalGasProcess) -> subprocess.Popen:
    """A run whose tap waits on an answer that does not come, once its target is configured."""
    fake.queue_faults([{"path": "/publications/gasday", "hang": 60}])
    before = set(target_config_files())
    run = start_run_etl(env)
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


def test_sigterm_is_passed_on_and_the_run_is_logged_and_recorded_as_stopped(
    project_env, influxdb, fake_api: FakeNationalGasProcess
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
    stopped = {
        row["stream"]: row for row in health_points(influxdb, project_env["INFLUXDB_BUCKET"])
    }
    assert {row["status"] for row in stopped.values()} == {"stopped"}
    assert {row["cause"] for row in stopped.values()} == {"stopped by SIGTERM"}
    wait_until(lambda: not set(processes) & set(process_tree(1)), "the run's processes to go", 10)

    fake_api.reset()
    again, _ = run_etl(env)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "another run" not in again.stdout


def test_first_runs_of_two_jobs_at_once_on_a_new_system_database(project_env):
    assert not Path(project_env["MELTANO_DATABASE_URI"].removeprefix("sqlite:///")).exists()
    runs = [start_run_etl(project_env, job) for job in (JOB, "nationalgas-flows")]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    for run, out in zip(runs, outputs, strict=True):
        assert run.returncode == 0, out[-3000:]
        assert "MigrationError" not in out


def run_etl(
    env: dict[str, str], job: str = JOB, **overrides: str
) -> tuple[subprocess.CompletedProcess, float]:
    """One run of run-etl.sh to its end, and how long it took."""
    started = time.monotonic()
    done = subprocess.run(
        [SCRIPT, job],
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


def test_a_normal_run_says_one_line_per_stream_and_where_the_points_went(
    project_env, influxdb, bucket
):
    done, _ = run_etl(project_env)
    assert done.returncode == 0, done.stdout[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0].endswith(f"run-etl starting {JOB}")
    summaries = [line for line in lines if " info    target-influxdb Stream '" in line]
    named = sorted(line.split(" Stream '", 1)[1].split("'", 1)[0] for line in summaries)
    assert named == sorted(JOB_STREAMS), lines  # one line per stream of the job
    assert any(
        "Stream 'gas_quality': 12 records, 12 points written, newest 2026-03-29T08:00:00" in line
        for line in summaries
    ), summaries
    others = set(lines[1:-1]) - set(summaries)
    assert all(" warning meltano " in line for line in others), others  # "No state was found"
    measurements = dict.fromkeys(expected.measurement(stream) for stream in JOB_STREAMS)
    stored = sum(len(influxdb.points(bucket, measurement)) for measurement in measurements)
    assert re.fullmatch(
        f'finished {JOB} in [0-9]+s: {stored} points to bucket "{bucket}" at {influxdb.url}',
        last_line(done),
    ), last_line(done)
    for routine in ("METRIC", "Beginning sync of", "Skipping parse of env var settings"):
        assert routine not in done.stdout
    verbose, _ = run_etl(project_env, DATA_IMPORTS_LOG_LEVEL="info")
    for routine in ("METRIC", "Beginning sync of", "Skipping parse of env var settings"):
        assert routine in verbose.stdout
    log = (Path(project_env["DATA_IMPORTS_LOG_DIR"]) / "run-etl.log").read_text()
    blocks = log.strip().split("\n\n")
    assert len(blocks) == 2
    assert all(b.splitlines()[0].endswith(f"starting {JOB}") for b in blocks)
    assert all(f"finished {JOB} in " in b.splitlines()[-1] for b in blocks)


def test_a_comma_list_is_read_as_a_list(project_env, influxdb, bucket):
    done, _ = run_etl(project_env, TAP_NATIONALGAS_PUBLICATION_IDS="PUBOB637, PUBOB603")
    assert done.returncode == 0, done.stdout[-3000:]
    stored = {p.tags["publication_id"] for p in influxdb.points(bucket, "gas_publication")}
    assert stored == {"PUBOB637", "PUBOB603"}


def test_warnings_show_as_warnings_and_sink_drains_do_not(project_env, fake_api):
    fake_api.queue_faults([{"path": "/publications/gasday", "body": []}])
    done, _ = run_etl(project_env, TARGET_INFLUXDB_BATCH_SIZE="5")
    assert done.returncode == 0, done.stdout[-3000:]
    gaps = [line for line in done.stdout.splitlines() if "the answers lack" in line]
    assert gaps, done.stdout
    assert all(" warning tap-nationalgas " in line for line in gaps)
    assert "Draining" not in done.stdout
    fake_api.reset()
    verbose, _ = run_etl(project_env, TARGET_INFLUXDB_BATCH_SIZE="5", DATA_IMPORTS_LOG_LEVEL="info")
    assert " info    target-influxdb Target sink for 'publications' is full" in verbose.stdout


def health_points(engine, bucket: str) -> list[dict]:
    """The data_imports_run points, oldest first."""
    series = engine.query(bucket, 'SELECT * FROM "data_imports_run" GROUP BY *')
    rows = []
    for one in series:
        columns = one["columns"]
        rows += [{**one["tags"], **dict(zip(columns, row, strict=True))} for row in one["values"]]
    return sorted(rows, key=lambda row: row["time"])


def test_a_run_that_fails_in_the_tap_is_recorded_as_failed_with_its_cause(
    project_env, influxdb, bucket, fake_api
):
    fake_api.queue_faults([{"path": "/publications/gasday", "status": 500, "count": 9}])
    done, _ = run_etl(project_env, TAP_NATIONALGAS_MAX_RETRIES="1")
    assert done.returncode == 1
    cause = last_line(done).removeprefix(f"{JOB} failed: ")
    assert cause.startswith("tap-nationalgas 500 Internal Server Error from POST")
    latest = {row["stream"]: row for row in health_points(influxdb, bucket)}
    assert set(latest) == set(JOB_STREAMS)
    assert {row["status"] for row in latest.values()} == {"failed"}
    assert {row["cause"] for row in latest.values()} == {cause}
    assert latest["gas_quality"]["job"] == "dev:tap-nationalgas-to-target-influxdb"


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


def test_a_backfill_stopped_by_sigterm_resumes_where_it_stopped(
    project_env, fake_api, influxdb, bucket
):
    """A STATE follows each batch file the target stored; a stop resumes from the last one."""
    history, job = "/gasquality/historicdata", "nationalgas-backfill"
    env = {**project_env, "TAP_NATIONALGAS_START_DATE": "2026-02-01T00:00:00Z"}
    per_window = 2 * 24 * len(GAS_QUALITY_SITES)
    batch = backfill_batch_records()
    # the first batch file fills up within window `full` (17 whole windows and part of the
    # 18th with 12 sites); the API then answers one more window and hangs on the next
    full = batch // per_window + 1
    fake_api.queue_faults([{"path": history}] * full + [{"path": history, "hang": 60}])
    run = start_run_etl(env, job)

    def first_batch_stored() -> bool:
        return (
            fake_api.stats()["requests"].get(history, 0) > full
            and len(influxdb.points(bucket, "gas_quality")) >= batch
        )

    wait_until(first_batch_stored, "the first batch file stored", timeout=120)
    time.sleep(2)  # the STATE after the first batch file follows its points
    os.kill(run.pid, signal.SIGTERM)
    out, _ = run.communicate(timeout=120)
    assert run.returncode == 143, out[-3000:]
    state = meltano(env, "state", "get", "dev:tap-nationalgas-backfill-to-target-influxdb")
    assert state.returncode == 0, state.stderr[-2000:]
    sites = json.loads(state.stdout)["singer_state"]["bookmarks"]["gas_quality_history"]
    # the bookmark covers the whole windows of the file: the 18th window's part is read again
    last_whole = START + dt.timedelta(days=2 * (full - 1), hours=-1)
    assert {p["bookmark"] for p in sites["partition_bookmarks"]} == {last_whole.isoformat()}
    covered = [
        p
        for p in influxdb.points(bucket, "gas_quality")
        if p.time_ns <= int(last_whole.timestamp()) * 10**9
    ]
    assert len(covered) == (full - 1) * per_window  # every reading the bookmark covers is stored

    fake_api.reset()
    again, _ = run_etl(env, job)
    assert again.returncode == 0, again.stdout[-3000:]
    resumed = f"window {last_whole:%Y-%m-%d} to {last_whole + dt.timedelta(days=1):%Y-%m-%d}"
    assert f"gas_quality_history: {resumed}, 1 of " in again.stdout
    assert "window 2026-02-01" not in again.stdout
    hours = int((dt.datetime(2026, 3, 29, 8, tzinfo=dt.UTC) - START).total_seconds() // 3600) + 1
    assert len(influxdb.points(bucket, "gas_quality")) == hours * len(GAS_QUALITY_SITES)
