"""The container's scheduler: schedules from meltano.yml, runs, health, graceful stop."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import scheduler
from testkit.processes import REPO_ROOT, wait_until

UTC = dt.UTC


def test_schedules_come_from_meltano_yml(monkeypatch):
    monkeypatch.delenv("DATA_IMPORTS_SCHEDULES", raising=False)
    schedules = scheduler.load_schedules(str(Path(sys.executable).parent / "meltano"))
    assert schedules == [
        scheduler.Schedule(
            "nationalgas-every-30-minutes", "nationalgas-to-influxdb", "3,33 * * * *"
        ),
        scheduler.Schedule(
            "nationalgas-flows-every-12-minutes", "nationalgas-flows", "0,12,24,36,48 * * * *"
        ),
        scheduler.Schedule("nationalgas-daily-backfill", "nationalgas-backfill", "15 6 * * *"),
    ]


def test_next_times_follow_the_cron_expression():
    every_30 = scheduler.Schedule("s", "j", "*/30 * * * *")
    assert every_30.next_after(dt.datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC)) == dt.datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC
    )
    daily = scheduler.Schedule("s", "j", "15 6 * * *")
    assert daily.next_after(dt.datetime(2026, 3, 29, 6, 15, tzinfo=UTC)) == dt.datetime(
        2026, 3, 30, 6, 15, tzinfo=UTC
    )


def test_an_invalid_cron_expression_is_named(monkeypatch):
    monkeypatch.setenv(
        "DATA_IMPORTS_SCHEDULES", json.dumps([{"name": "x", "job": "j", "interval": "61 * * * *"}])
    )
    with pytest.raises(
        ValueError, match="schedule x: invalid cron expression '61 \\* \\* \\* \\*'"
    ):
        scheduler.load_schedules("meltano")


def test_health_needs_a_fresh_heartbeat_and_a_good_last_run(tmp_path):
    health = scheduler.Health(tmp_path)
    assert health.verdict() == (False, "no heartbeat: the scheduler is not running")
    health.beat()
    assert health.verdict()[0]
    assert not health.verdict(now=time.time() + 600)[0]
    health.record({"job": "j", "exit_code": 1, "finished": "t"})
    assert health.verdict() == (False, "last run of j failed with exit code 1")
    health.record({"job": "j", "exit_code": 0, "finished": "t"})
    assert health.verdict()[0]


def fake_job(tmp_path: Path, seconds: float) -> Path:
    """A stand-in for run-etl.sh that records each start and takes a while."""
    script = tmp_path / "job.sh"
    script.write_text(f'#!/bin/sh\necho "$1" >> {tmp_path}/started\nsleep {seconds}\n')
    script.chmod(0o755)
    return script


def test_due_schedules_run_once_at_a_time_and_are_recorded(tmp_path):
    health = scheduler.Health(tmp_path / "health")
    job = fake_job(tmp_path, 1.5)
    every_second = scheduler.Schedule("s", "j", "* * * * * *")  # croniter's seconds field
    runner = scheduler.Scheduler([every_second], health, [str(job)], grace=10)
    runner.start(every_second)
    runner.start(every_second)  # still running: skipped
    wait_until(lambda: runner.reap() or not runner.running, "the job to finish", timeout=10)
    assert (tmp_path / "started").read_text() == "j\n"
    last = json.loads(health.last_run.read_text())
    assert last["job"] == "j"
    assert last["exit_code"] == 0


def test_sigterm_stops_scheduling_and_lets_the_run_finish(tmp_path):
    job = fake_job(tmp_path, 2)
    env = {
        **os.environ,
        "DATA_IMPORTS_SCHEDULES": json.dumps(
            [{"name": "s", "job": "j", "interval": "* * * * * *"}]
        ),
        "DATA_IMPORTS_HEALTH_DIR": str(tmp_path / "health"),
        "DATA_IMPORTS_STOP_GRACE": "10",
    }
    command = [sys.executable, str(REPO_ROOT / "scheduler.py"), "run", "--job-command", str(job)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    wait_until((tmp_path / "started").exists, "the first run", timeout=15)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "no new runs; waiting for runs in flight" in out
    assert "j finished with exit code 0" in out
    assert out.rstrip().endswith("scheduler stopped")
    assert (tmp_path / "started").read_text() == "j\n"
    assert json.loads((tmp_path / "health" / "last-run.json").read_text())["exit_code"] == 0


def test_a_failed_run_ends_with_its_cause_in_the_log_and_the_health(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(scheduler, "RESULTS_DIR", tmp_path)
    cause = "j failed: target-influxdb could not reach InfluxDB at http://127.0.0.1:9"
    job = tmp_path / "job.sh"
    job.write_text(f'#!/bin/sh\necho "{cause}" > {tmp_path}/run-etl-$1.result\nexit 1\n')
    job.chmod(0o755)
    health = scheduler.Health(tmp_path / "health")
    health.beat()
    runner = scheduler.Scheduler([], health, [str(job)], grace=10)
    runner.start(scheduler.Schedule("s", "j", "* * * * *"))
    wait_until(lambda: runner.reap() or not runner.running, "the job to finish", timeout=10)
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith(f"schedule s: {cause}")
    assert health.verdict() == (False, cause)
