"""The container's scheduler: schedules from meltano.yml, runs, health, graceful stop."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import scheduler
from data_imports.runner import FAILED, OK, STOPPED, RunResult
from testkit.pipeline import project
from testkit.processes import REPO_ROOT, wait_until

UTC = dt.UTC


def test_schedules_come_from_meltano_yml(monkeypatch):
    monkeypatch.delenv("DATA_IMPORTS_SCHEDULES", raising=False)
    schedules = scheduler.load_schedules(str(Path(sys.executable).parent / "meltano"))
    shipped = project()["schedules"]
    assert len(shipped) >= 3
    assert schedules == [scheduler.Schedule(s["name"], s["job"], s["interval"]) for s in shipped]


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
    health.record({"job": "j", "status": FAILED, "result": "j failed: the cause"})
    assert health.verdict() == (False, "j failed: the cause")
    health.record({"job": "j", "status": STOPPED, "result": "j stopped by SIGTERM"})
    assert health.verdict()[0]
    health.record({"job": "j", "status": OK, "result": "finished j in 3s: 5 points to ..."})
    assert health.verdict()[0]


class FakeRun:
    """A stand-in for a JobRun: takes a while, then ends as told; records starts and stops."""

    def __init__(self, job: str, seconds: float, status: str, log: list[str]) -> None:
        self.job, self.seconds, self.status, self.log = job, seconds, status, log
        self.stopped = threading.Event()

    def run(self) -> RunResult:
        self.log.append(f"start {self.job}")
        stopped = self.stopped.wait(self.seconds)
        status = STOPPED if stopped else self.status
        cause = {FAILED: "target-influxdb could not reach InfluxDB", STOPPED: "stopped by SIGTERM"}
        last = f"{self.job} failed: {cause[FAILED]}" if status == FAILED else f"{self.job} {status}"
        now = dt.datetime.now(UTC)
        return RunResult(self.job, status, cause.get(status, ""), last, now, self.seconds)

    def stop(self, _signum: int) -> None:
        self.log.append(f"stop {self.job}")
        self.stopped.set()


def fake_runner(seconds: float, status: str, log: list[str]):
    return lambda job, _out: FakeRun(job, seconds, status, log)


def test_due_schedules_run_once_at_a_time_and_are_recorded(tmp_path):
    health = scheduler.Health(tmp_path / "health")
    started: list[str] = []
    every_second = scheduler.Schedule("s", "j", "* * * * * *")  # croniter's seconds field
    runner = scheduler.Scheduler([every_second], health, fake_runner(1.5, OK, started), grace=10)
    runner.start(every_second)
    runner.start(every_second)  # still running: skipped
    wait_until(lambda: runner.reap() or not runner.running, "the run to finish", timeout=10)
    assert started == ["start j"]
    last = json.loads(health.last_run.read_text())
    assert (last["job"], last["status"], last["exit_code"]) == ("j", OK, 0)
    assert health.verdict()[0] is False  # no heartbeat yet
    health.beat()
    assert health.verdict() == (True, "scheduler running; last run: j ok")


def test_a_stop_is_passed_on_to_the_runs_in_flight(tmp_path, capsys):
    health = scheduler.Health(tmp_path / "health")
    log: list[str] = []
    every_second = scheduler.Schedule("s", "j", "* * * * * *")
    runner = scheduler.Scheduler([every_second], health, fake_runner(60, OK, log), grace=10)
    thread = threading.Thread(target=runner.serve)
    thread.start()
    wait_until(lambda: log == ["start j"], "the first run", timeout=15)
    runner.stop(signal.SIGTERM, None)
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert log == ["start j", "stop j"]
    out = capsys.readouterr().out
    assert "no new runs; stopping the runs in flight" in out
    assert out.rstrip().endswith("scheduler stopped")
    assert json.loads(health.last_run.read_text())["status"] == STOPPED


def test_a_failed_run_ends_with_its_cause_in_the_log_and_the_health(tmp_path, capsys):
    health = scheduler.Health(tmp_path / "health")
    health.beat()
    runner = scheduler.Scheduler([], health, fake_runner(0, FAILED, []), grace=10)
    runner.start(scheduler.Schedule("s", "j", "* * * * *"))
    wait_until(lambda: runner.reap() or not runner.running, "the run to finish", timeout=10)
    cause = "j failed: target-influxdb could not reach InfluxDB"
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith(f"schedule s: {cause}")
    assert health.verdict() == (False, cause)


def test_the_scheduler_runs_a_real_job_and_stops_it_on_sigterm(project_env, fake_api, tmp_path):
    """scheduler.py run: a due job runs through the runner; SIGTERM stops it, recorded stopped."""
    fake_api.queue_faults([{"path": "/publications/gasday", "hang": 60}])
    env = {
        **project_env,
        "DATA_IMPORTS_SCHEDULES": json.dumps(
            [{"name": "s", "job": "nationalgas-to-influxdb", "interval": "* * * * * *"}]
        ),
        "DATA_IMPORTS_HEALTH_DIR": str(tmp_path / "health"),
        "DATA_IMPORTS_STOP_GRACE": "20",
    }
    # an earlier image's failed run, on the volume: the new scheduler does not inherit it
    (tmp_path / "health").mkdir()
    (tmp_path / "health" / "last-run.json").write_text(json.dumps({"status": FAILED}))
    command = [sys.executable, str(REPO_ROOT / "scheduler.py"), "run"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    wait_until(
        lambda: fake_api.stats()["requests"].get("/publications/gasday", 0) >= 1,
        "the run to reach the hanging request",
        timeout=120,
    )
    assert scheduler.Health(tmp_path / "health").verdict() == (
        True,
        "scheduler running; no run finished yet",
    )
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out[-3000:]
    assert "nationalgas-to-influxdb | " in out  # the run's lines, with its job's name
    assert "stopping nationalgas-to-influxdb: SIGTERM received, passed on to the run" in out
    assert out.rstrip().endswith("scheduler stopped")
    last = json.loads((tmp_path / "health" / "last-run.json").read_text())
    assert last["status"] == STOPPED
    assert last["result"] == "nationalgas-to-influxdb stopped by SIGTERM"


def test_a_scheduled_run_past_its_deadline_is_stopped_and_recorded_failed(
    project_env, fake_api, tmp_path
):
    """The scheduler's runs have the runner's deadline (``DATA_IMPORTS_RUN_TIMEOUT``)."""
    fake_api.queue_faults([{"path": "/publications/gasday", "hang": 120}])
    env = {
        **project_env,
        "DATA_IMPORTS_SCHEDULES": json.dumps(
            [{"name": "s", "job": "nationalgas-to-influxdb", "interval": "* * * * * *"}]
        ),
        "DATA_IMPORTS_HEALTH_DIR": str(tmp_path / "health"),
        "DATA_IMPORTS_STOP_GRACE": "10",
        "DATA_IMPORTS_RUN_TIMEOUT": "30",
    }
    last_run = tmp_path / "health" / "last-run.json"
    first: list[dict] = []

    def first_run_ended() -> bool:
        text = last_run.read_text() if last_run.exists() else ""
        if text.endswith("}"):  # written whole
            first.append(json.loads(text))
        return bool(first)

    command = [sys.executable, str(REPO_ROOT / "scheduler.py"), "run"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        wait_until(first_run_ended, "the first run to end at its deadline", timeout=150)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=90)
    cause = "ran past its deadline of 30 s (DATA_IMPORTS_RUN_TIMEOUT) and was stopped"
    assert first[0]["status"] == FAILED, out[-3000:]
    assert first[0]["result"].startswith(f"nationalgas-to-influxdb failed: {cause}")
    assert 30 <= first[0]["duration"] < 30 + 10 + 20
    assert "stopping nationalgas-to-influxdb: it is past its deadline, passed on to the run" in out
