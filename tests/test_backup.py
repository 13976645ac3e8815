"""Backups and restore: the state IDs, InfluxDB through a stand-in ``influx``, daily retention."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from data_imports import backup
from data_imports.options import OptionError, backup_keep_days
from testkit import expected
from testkit.fixtures import FAKE_END_DATE, FAKE_NOW, FAKE_START_DATE, MELTANO, PUBLICATION_IDS
from testkit.fixtures import meltano as meltano_in
from testkit.nationalgas_data import GAS_QUALITY_SITES
from testkit.processes import REPO_ROOT, process_tree, wait_until

JOB, FLOWS_JOB = "nationalgas-to-influxdb", "nationalgas-flows"
STATE_ID = "dev:tap-nationalgas-to-target-influxdb"
BACKUP = str(REPO_ROOT / "scripts" / "backup.sh")
RESTORE = str(REPO_ROOT / "scripts" / "restore.sh")
OPERATOR_TOKEN = "operator-token-7f3a"
INFLUX_401 = (
    "Error: failed to backup metadata: failed to download metadata snapshot: "
    "401 Unauthorized: read:authorizations is unauthorized"
)
STAND_IN = """\
#!{python}
# A stand-in for the InfluxDB 2.x CLI: it records its arguments and its INFLUX_* variables.
import json, os, sys
from pathlib import Path

with open(os.environ["STAND_IN_LOG"], "a") as log:
    seen = {{k: v for k, v in os.environ.items() if k.startswith("INFLUX_")}}
    log.write(json.dumps({{"argv": sys.argv[1:], "env": seen}}) + "\\n")
if sys.argv[1:] == ["version"]:
    print("Influx CLI 2.7.5 (git: stand-in) build_date: 2024-04-16T14:34:32Z")
elif os.environ.get("STAND_IN_FAIL"):
    print({failure!r}, file=sys.stderr)
    sys.exit(1)
elif sys.argv[1] == "backup":
    folder = Path(sys.argv[-1])
    folder.mkdir(parents=True)
    (folder / "20260329T080000Z.bolt").write_text("metadata")
    (folder / "20260329T080000Z.manifest").write_text("{{}}")
"""


@pytest.fixture
def influx_cli(tmp_path: Path) -> Path:
    """A folder holding the stand-in ``influx``, to put first on the PATH."""
    folder = tmp_path / "stand-in"
    folder.mkdir()
    cli = folder / "influx"
    cli.write_text(STAND_IN.format(python=sys.executable, failure=INFLUX_401))
    cli.chmod(0o755)
    return folder


def influx_calls(env: dict[str, str]) -> list[dict]:
    """What the stand-in ``influx`` was called with, ``version`` left out."""
    log = Path(env["STAND_IN_LOG"])
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return [call for call in calls if call["argv"] != ["version"]]


@pytest.fixture
def env(project_env: dict[str, str], influx_cli: Path, tmp_path: Path) -> dict[str, str]:
    """The project's environment with the stand-in ``influx`` first on the PATH."""
    return {
        **project_env,
        "MELTANO": MELTANO,
        "PATH": f"{influx_cli}:{project_env['PATH']}",
        "STAND_IN_LOG": str(tmp_path / "influx-calls.jsonl"),
    }


def script(
    name: str, env: dict[str, str], *args: str, cwd: Path | str = "/"
) -> subprocess.CompletedProcess[str]:
    """scripts/backup.sh or scripts/restore.sh to its end."""
    return subprocess.run(
        [name, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def last(done: subprocess.CompletedProcess[str]) -> str:
    """The last line a script printed, less its time stamp and level."""
    return done.stdout.strip().splitlines()[-1].split(" backup ", 1)[1]


def states(env: dict[str, str]) -> dict[str, str]:
    """Every state ID and its state, as ``meltano state get`` prints it."""
    listed = meltano_in(env, "state", "list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    ids = listed.stdout.split()
    return {sid: meltano_in(env, "state", "get", sid).stdout for sid in ids}


def published(now: dt.datetime, gas_quality_hours: int) -> dict[str, dict]:
    """What the fake published by ``now`` (from the start date), as the pipeline stores it."""
    state = expected.fake_state(now)
    last_day = dt.date.fromisoformat(FAKE_END_DATE)
    return {
        "gas_quality": expected.gas_quality(state, expected.latest_hours(state, gas_quality_hours)),
        "instantaneous_flow": expected.flows(state),
        "gas_publication": expected.publications(
            state,
            PUBLICATION_IDS,
            last_day - dt.timedelta(days=10),
            last_day,
            dt.datetime.fromisoformat(FAKE_START_DATE),
        ),
    }


def run_etl(env: dict[str, str], job: str) -> subprocess.CompletedProcess[str]:
    """One run of run-etl.sh to its end."""
    return subprocess.run(
        [str(REPO_ROOT / "run-etl.sh"), job],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def records_read(done: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """Per stream, the records the target reported for a run."""
    found = {}
    for line in done.stdout.splitlines():
        if " target-influxdb Stream '" in line:
            stream, rest = line.split(" target-influxdb Stream '", 1)[1].split("': ", 1)
            found[stream] = int(rest.split(" records", 1)[0])
    return found


def test_losing_the_system_database_then_restoring_loses_and_repeats_nothing(
    env, influxdb, bucket, fake_api, tmp_path
):
    now = dt.datetime.fromisoformat(FAKE_NOW)
    for job in (JOB, FLOWS_JOB):
        first = run_etl(env, job)
        assert first.returncode == 0, first.stdout[-3000:]
    assert expected.snapshot(influxdb, bucket) == published(now, 1)
    before = states(env)
    assert set(before) == {STATE_ID, "dev:tap-nationalgas-flows-to-target-influxdb"}

    made = script(BACKUP, env, "backup-1", cwd=tmp_path)  # a folder relative to where it runs
    assert made.returncode == 0, made.stdout + made.stderr
    folder = tmp_path / "backup-1"
    assert last(made) == (
        f"backup in {folder}: 2 state IDs; the InfluxDB server at {influxdb.url} (influxdb/)"
    )
    assert sorted(p.name for p in (folder / "state").iterdir()) == [
        "dev_tap-nationalgas-flows-to-target-influxdb.json",
        "dev_tap-nationalgas-to-target-influxdb.json",
    ]
    assert folder.stat().st_mode & 0o077 == 0

    Path(env["MELTANO_DATABASE_URI"].removeprefix("sqlite:///")).unlink()
    assert states(env) == {}

    restored = script(RESTORE, env, "--state-only", str(folder))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert last(restored) == (
        f"restored from {folder}: InfluxDB left as it is (--state-only); 2 state IDs restored"
    )
    assert states(env) == before  # exactly what `meltano state get` gave before
    assert [call["argv"][0] for call in influx_calls(env)] == ["backup"]  # InfluxDB left alone

    fake_api.reset()
    fake_api.advance(6 * 60)
    later = now + dt.timedelta(hours=6)
    again = {job: run_etl(env, job) for job in (JOB, FLOWS_JOB)}
    for done in again.values():
        assert done.returncode == 0, done.stdout[-3000:]
    after = expected.snapshot(influxdb, bucket)
    assert after == published(later, 7)  # the six hours in between caught up: nothing lost
    # nothing read twice: only the six new hours of gas quality, one window of history
    assert records_read(again[JOB])["gas_quality"] == 6 * len(GAS_QUALITY_SITES)
    assert fake_api.stats()["requests"]["/gasquality/historicdata"] == 1
