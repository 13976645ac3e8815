"""The whole pipeline: meltano run of the real jobs, against the fake API and a real InfluxDB."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import typing as t
from pathlib import Path

from tap_nationalgas.feed import FLOW_GROUPS
from testkit import expected
from testkit.fixtures import (
    FAKE_NOW,
    FLOWS_JOB,
    JOB,
    MELTANO,
    meltano,
    published,
)
from testkit.nationalgas_data import GAS_QUALITY_SITES
from testkit.processes import REPO_ROOT

if t.TYPE_CHECKING:
    from testkit.fake_nationalgas import FakeNationalGasProcess

GAS_QUALITY = expected.measurement("gas_quality")
PUBLICATIONS = expected.measurement("publications")
STATE_ID = "dev:tap-nationalgas-to-target-influxdb"
FLOWS_STATE_ID = "dev:tap-nationalgas-flows-to-target-influxdb"


def test_meltano_run_loads_every_stream_then_resumes_without_duplicates(
    project_env,
    influxdb,
    bucket,
    fake_api: FakeNationalGasProcess,
):
    now = dt.datetime.fromisoformat(FAKE_NOW)

    first = meltano(project_env, "run", JOB, FLOWS_JOB)
    assert first.returncode == 0, first.stderr[-3000:]
    stored = expected.snapshot(influxdb, bucket)
    assert stored == published(now)

    state = meltano(project_env, "state", "get", STATE_ID)
    assert state.returncode == 0, state.stderr[-2000:]
    bookmarks = json.loads(state.stdout)["singer_state"]["bookmarks"]
    assert bookmarks["gas_quality"]["replication_key_value"] == "2026-03-29T08:00:00.000000+00:00"
    assert {p["bookmark"] for p in bookmarks["gas_quality"]["partition_bookmarks"]} == {
        "2026-03-29T08:00:00+00:00"
    }
    assert bookmarks["publications"]["pending_gaps"] == []
    flows_state = meltano(project_env, "state", "get", FLOWS_STATE_ID)
    assert flows_state.returncode == 0, flows_state.stderr[-2000:]
    flows = json.loads(flows_state.stdout)["singer_state"]["bookmarks"]["instantaneous_flows"]
    assert flows["replication_key_value"] == "2026-03-29T07:46:00.000000+00:00"
    assert len(flows["partition_bookmarks"]) == sum(len(sites) for _, sites in FLOW_GROUPS)

    second = meltano(project_env, "run", JOB, FLOWS_JOB)
    assert second.returncode == 0, second.stderr[-3000:]
    assert expected.snapshot(influxdb, bucket) == stored

    # Six hours later: new readings, new gas days, and opening linepack of the 27th revised.
    fake_api.advance(6 * 60)
    later = now + dt.timedelta(hours=6)
    third = meltano(project_env, "run", JOB, FLOWS_JOB)
    assert third.returncode == 0, third.stderr[-3000:]
    after = expected.snapshot(influxdb, bucket)
    # the hours between the two runs are caught up from the history endpoint
    new = published(later, 7, since=[now])
    for measurement in expected.MEASUREMENTS:
        assert after[measurement] == new[measurement], measurement
    revised = [f for f in after[PUBLICATIONS].values() if f.get("quality_indicator") == "A"]
    assert revised, "the revised opening linepack replaced its first value"
    assert len(after[PUBLICATIONS]) == len(new[PUBLICATIONS])


def test_a_run_influxdb_refuses_is_recorded_as_failed_and_keeps_the_state(
    project_env, local_influxdb, bucket, fake_api: FakeNationalGasProcess
):
    first = meltano(project_env, "run", JOB)
    assert first.returncode == 0, first.stderr[-3000:]
    state = meltano(project_env, "state", "get", STATE_ID).stdout
    stored = expected.snapshot(local_influxdb, bucket)

    fake_api.advance(60)
    local_influxdb.queue_faults([{"status": 500}])  # the next write of data, not retried
    refused = meltano({**project_env, "TARGET_INFLUXDB_MAX_RETRIES": "0"}, "run", JOB)
    assert refused.returncode != 0
    assert meltano(project_env, "state", "get", STATE_ID).stdout == state
    after = expected.snapshot(local_influxdb, bucket)  # a batch drained beside it may be stored
    for measurement, points in stored.items():
        assert after[measurement].items() >= points.items(), measurement

    series = local_influxdb.query(bucket, 'SELECT * FROM "data_imports_run" GROUP BY "job"')
    assert [s["tags"]["job"] for s in series] == [STATE_ID]
    columns = series[0]["columns"]
    rows = [dict(zip(columns, row, strict=True)) for row in series[0]["values"]]
    runs = sorted({row["time"] for row in rows})
    assert len(runs) == 2
    assert {row["status"] for row in rows if row["time"] == runs[0]} == {"ok"}
    failed = [row for row in rows if row["time"] == runs[1]]
    assert {row["status"] for row in failed} == {"failed"}
    assert sum(row["rejected"] for row in failed) > 0


def test_run_etl_runs_a_job_once_when_started_twice(project_env, influxdb, bucket, tmp_path):
    script = str(REPO_ROOT / "run-etl.sh")
    env = {**project_env, "MELTANO": MELTANO}
    first = subprocess.Popen(
        [script], cwd="/", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert first.stdout is not None
    head = first.stdout.readline()  # a run says it starts once it holds the job's lock
    assert head.endswith(f"run-etl starting {JOB}\n"), head
    second = subprocess.run(
        [script], cwd="/", env=env, capture_output=True, text=True, timeout=120, check=False
    )
    out, _ = first.communicate(timeout=600)

    assert second.returncode == 0
    assert f"another run of {JOB} is in progress" in second.stdout
    assert first.returncode == 0, out[-3000:]
    assert f"run-etl finished {JOB}" in out
    log = (Path(project_env["DATA_IMPORTS_LOG_DIR"]) / "run-etl.log").read_text()
    assert log.count(f"starting {JOB}") == 1
    assert "another run" in log
    assert len(influxdb.points(bucket, GAS_QUALITY)) == len(GAS_QUALITY_SITES)


def test_setup_check_passes_and_names_a_wrong_token(project_env, tmp_path):
    command = [
        sys.executable,
        str(REPO_ROOT / "test_setup.py"),
        "--env-file",
        project_env["TEST_ENV_FILE"],
    ]
    ok = subprocess.run(
        command, env=project_env, capture_output=True, text=True, timeout=300, check=False
    )
    assert ok.returncode == 0, ok.stdout
    assert "FAIL" not in ok.stdout
    assert ok.stdout.count("PASS") == 8

    wrong = {**project_env, "INFLUXDB_TOKEN": "not-the-token-42"}
    bad = subprocess.run(
        command, env=wrong, capture_output=True, text=True, timeout=300, check=False
    )
    assert bad.returncode == 1
    assert "FAIL    token can write" in bad.stdout
    assert "token rejected (401): check INFLUXDB_TOKEN" in bad.stdout
    assert "not-the-token-42" not in bad.stdout


def test_setup_check_names_missing_variables_offline(project_env):
    env = {k: v for k, v in project_env.items() if k not in {"INFLUXDB_TOKEN", "INFLUXDB_BUCKET"}}
    command = [
        sys.executable,
        str(REPO_ROOT / "test_setup.py"),
        "--offline",
        "--env-file",
        env["TEST_ENV_FILE"],
    ]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 1
    assert "not set: INFLUXDB_TOKEN, INFLUXDB_BUCKET" in result.stdout
    assert result.stdout.count("SKIP") == 3


def setup_check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """test_setup.py with this environment, ignoring the checkout's .env."""
    return subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "test_setup.py"),
            *args,
            "--env-file",
            env["TEST_ENV_FILE"],
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_setup_check_passes_file_mode_online_and_offline(project_env):
    env = {**project_env, "INFLUXDB_URL": "", "INFLUXDB_TOKEN": ""}
    online = setup_check(env)
    assert online.returncode == 0, online.stdout
    assert f"file mode: writing files to {REPO_ROOT / 'output'}" in online.stdout
    offline = setup_check(env, "--offline")
    assert offline.returncode == 0, offline.stdout
    assert "FAIL" not in offline.stdout


def test_setup_check_refuses_the_placeholder_token(project_env):
    env = {**project_env, "INFLUXDB_TOKEN": "change-me-local-dev-token"}
    result = setup_check(env, "--offline")
    assert result.returncode == 1
    assert "INFLUXDB_TOKEN is the placeholder of .env.example: replace it" in result.stdout
