"""A Singer SDK tap nobody here wrote, from PyPI, piped into target-influxdb as Meltano pipes it.

``tap-spreadsheets`` reads local CSV files (no network). It pins an older singer-sdk than this
project, so it lives in its own virtualenv, built once under a cache folder
(``$XDG_CACHE_HOME/data-imports``, else ``~/.cache/data-imports``) and reused by later sessions.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

from testkit.processes import stop_process
from testkit.singer import passed_on, target_command, write_config

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from testkit.influx import LocalInfluxDB, RemoteInfluxDB2

TAP = "tap-spreadsheets"
TAP_VERSION = "1.1.2"
STREAM = "csv_readings"
SDC_COLUMNS = ["_sdc_last_modified", "_sdc_filename", "_sdc_stream", "_sdc_worksheet"]
"""Columns the tap adds to every record; the target is told to leave them out."""

JAN_1 = 1_767_225_600_000_000_000
"""2026-01-01T00:00:00Z in nanoseconds."""
HOUR = 3_600_000_000_000
MODIFIED = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
"""The CSV file's modification time: the tap's replication key value."""

PIPE_TIMEOUT = 120
"""Seconds one ``tap | target`` run may take."""

CSV = """\
site,measured_at,cv,flow
A1,2026-01-01T00:00:00Z,39.1,12
A1,2026-01-01T01:00:00Z,39.25,13
B 2,2026-01-01T00:00:00+01:00,40.5,7
"""


def cache_root() -> Path:
    """The folder that keeps the tap's virtualenv between test sessions."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "data-imports"


def build_venv(folder: Path) -> None:
    """Create a virtualenv in ``folder`` with the tap from PyPI (pip's own index settings)."""
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=300)
    subprocess.run(
        [str(folder / "bin/python"), "-m", "pip", "install", "-q", f"{TAP}=={TAP_VERSION}"],
        check=True,
        timeout=900,
    )
    (folder / ".complete").write_text(f"{TAP}=={TAP_VERSION}\n")


@pytest.fixture(scope="session")
def tap_executable() -> Path:
    """The tap's executable, its virtualenv built on first use (a lock keeps it to one builder)."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    version = f"py{sys.version_info.major}{sys.version_info.minor}"
    folder = root / f"{TAP}-{TAP_VERSION}-{version}"
    with (root / f"{folder.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".complete").is_file():
            build_venv(folder)
    return folder / "bin" / TAP


@pytest.fixture
def csv_folder(tmp_path: Path) -> Path:
    """A folder with one CSV file of readings, modified at :data:`MODIFIED`."""
    folder = tmp_path / "csv"
    folder.mkdir()
    path = folder / "readings.csv"
    path.write_text(CSV)
    stamp = MODIFIED.timestamp()
    os.utime(path, (stamp, stamp))
    return folder


def tap_config(csv_folder: Path) -> dict[str, t.Any]:
    """The tap's settings: one stream from the folder's CSV files, typed by overrides."""
    return {
        "files": [
            {
                "path": str(csv_folder / "*.csv"),
                "format": "csv",
                "table_name": STREAM,
                "primary_keys": ["site", "measured_at"],
                "schema_overrides": {
                    "measured_at": {"format": "date-time"},
                    "cv": {"type": ["number", "null"]},
                    "flow": {"type": ["integer", "null"]},
                },
            }
        ]
    }


class PipeRun(t.NamedTuple):
    """What ``tap | target`` did."""

    tap_returncode: int
    target_returncode: int
    states: list[dict[str, t.Any]]
    tap_log: str
    target_log: str


def run_pipe(
    tmp_path: Path,
    tap: Path,
    tap_settings: Mapping[str, t.Any],
    target_settings: Mapping[str, t.Any],
    state: Mapping[str, t.Any] | None = None,
) -> PipeRun:
    """Run the tap with its stdout piped into the target's stdin, as Meltano runs them."""
    tap_command = [str(tap), "--config", str(write_config(tmp_path, tap_settings, "tap.json"))]
    if state is not None:
        tap_command += ["--state", str(write_config(tmp_path, state, "state.json"))]
    target_config = write_config(tmp_path, target_settings, "target.json")
    tap_err = (tmp_path / "tap.log").open("w+")
    tap_proc = target_proc = None
    try:
        tap_proc = subprocess.Popen(tap_command, stdout=subprocess.PIPE, stderr=tap_err)
        target_proc = subprocess.Popen(
            target_command(target_config),
            stdin=tap_proc.stdout,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert tap_proc.stdout is not None
        tap_proc.stdout.close()  # the target holds the pipe's read end alone
        out, err = target_proc.communicate(timeout=PIPE_TIMEOUT)
        tap_returncode = tap_proc.wait(timeout=PIPE_TIMEOUT)
    finally:
        stop_process(target_proc)
        stop_process(tap_proc)
        tap_err.seek(0)
        tap_log = tap_err.read()
        tap_err.close()
    states = [json.loads(line) for line in out.splitlines() if line.strip()]
    return PipeRun(tap_returncode, target_proc.returncode, states, tap_log, err)


@pytest.fixture
def target_settings(target_config: dict[str, t.Any]) -> dict[str, t.Any]:
    """The target's settings: the test bucket; the CSV's time column as each point's time."""
    return {
        **target_config,
        "mappings": {STREAM: {"timestamp": "measured_at", "exclude": SDC_COLUMNS}},
    }


def test_csv_rows_from_a_pypi_tap_are_stored_and_its_state_passed_on(
    tmp_path: Path,
    tap_executable: Path,
    csv_folder: Path,
    target_settings: dict[str, t.Any],
    influxdb: LocalInfluxDB | RemoteInfluxDB2,
) -> None:
    """Every CSV row is one point (tags, typed fields, UTC time); the tap's STATE is passed on.

    A second run from that state reads nothing new (the file is unchanged): the target passes
    the same STATE on and the points stay as they were.
    """
    run = run_pipe(tmp_path, tap_executable, tap_config(csv_folder), target_settings)
    assert run.tap_returncode == 0, run.tap_log
    assert run.target_returncode == 0, run.target_log
    assert "Traceback" not in run.target_log
    bookmark = {
        "replication_key": "_sdc_last_modified",
        "replication_key_value": "2026-02-01T00:00:00+00:00",
    }
    final = {"bookmarks": {STREAM: bookmark}}
    assert passed_on(run.states) == [final]
    assert f"Stream '{STREAM}': 3 records, 3 points written" in run.target_log

    expected = [
        (JAN_1 - HOUR, {"site": "B 2"}, {"cv": 40.5, "flow": 7}),  # +01:00 in the CSV
        (JAN_1, {"site": "A1"}, {"cv": 39.1, "flow": 12}),
        (JAN_1 + HOUR, {"site": "A1"}, {"cv": 39.25, "flow": 13}),
    ]
    bucket = target_settings["bucket"]
    points = influxdb.points(bucket, STREAM)
    assert [(p.time_ns, p.tags, p.fields) for p in points] == expected
    assert influxdb.field_types(bucket, STREAM) == {"cv": "float", "flow": "integer"}

    again = run_pipe(tmp_path, tap_executable, tap_config(csv_folder), target_settings, final)
    assert (again.tap_returncode, again.target_returncode) == (0, 0), again.target_log
    assert passed_on(again.states) == [final]
    assert f"Stream '{STREAM}': 0 records, 0 points written" in again.target_log
    points = influxdb.points(bucket, STREAM)
    assert [(p.time_ns, p.tags, p.fields) for p in points] == expected
