"""Pytest fixtures shared by the test suites (registered by the root ``conftest.py``)."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import subprocess
import sys
import typing as t
import uuid
from pathlib import Path

import pytest
import yaml

from testkit import expected
from testkit.conformance import RunCase, run_both
from testkit.fake_nationalgas import FakeNationalGasProcess
from testkit.influx import LocalInfluxDB, RemoteInfluxDB2, influxdb_from_env
from testkit.processes import REPO_ROOT
from testkit.s3 import LocalS3

MELTANO = str(Path(sys.executable).parent / "meltano")
PUBLICATION_IDS = ["PUBOB637", "PUBOB603", "PUBOB693"]

if t.TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalInfluxDB | RemoteInfluxDB2]:
    """A real InfluxDB for the whole test session (local engine, or INFLUXDB_TEST_URL)."""
    engine = influxdb_from_env(tmp_path_factory.mktemp("influxdb"))
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture
def local_influxdb(influxdb: LocalInfluxDB | RemoteInfluxDB2) -> Iterator[LocalInfluxDB]:
    """The local engine, for tests that inject faults or stop the engine."""
    if not isinstance(influxdb, LocalInfluxDB):
        pytest.skip("fault injection and engine restarts need the local engine and proxy")
    influxdb.clear_faults()
    try:
        yield influxdb
    finally:
        influxdb.clear_faults()
        if not influxdb.engine_running:
            influxdb.start_engine()


@pytest.fixture
def bucket(influxdb: LocalInfluxDB | RemoteInfluxDB2) -> str:
    """A new, empty bucket for one test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    influxdb.create_bucket(name)
    return name


@pytest.fixture
def target_config(influxdb: LocalInfluxDB | RemoteInfluxDB2, bucket: str) -> dict[str, t.Any]:
    """target-influxdb settings that write into this test's bucket, with quick retries."""
    return {
        "url": influxdb.url,
        "token": influxdb.token,
        "org": influxdb.org,
        "bucket": bucket,
        "max_retries": 2,
        "retry_interval": 0.1,
        "max_retry_delay": 2,
        "timeout": 10,
    }


@pytest.fixture
def run_case(
    tmp_path: Path, target_config: dict[str, t.Any], influxdb: LocalInfluxDB | RemoteInfluxDB2
) -> RunCase:
    """Run a recorded conformance case in both modes, into this test's bucket."""
    return functools.partial(run_both, tmp_path, target_config, influxdb)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3]:
    """A local S3-compatible server (moto's) for the whole test session."""
    server = LocalS3(tmp_path_factory.mktemp("s3")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: LocalS3) -> str:
    """A new, empty bucket of the local S3 server for one test."""
    name = f"state-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(name)
    return name


FAKE_NOW = "2026-03-29T09:00:00+01:00"
"""The fake API's clock in tests: the morning the UK moved to BST, so data has both offsets."""
FAKE_START_DATE = "2026-03-26T00:00:00Z"
FAKE_END_DATE = "2026-03-29"


@pytest.fixture(scope="session")
def nationalgas_api() -> Iterator[FakeNationalGasProcess]:
    """The fake National Gas API for the whole session, its clock at :data:`FAKE_NOW`."""
    fake = FakeNationalGasProcess(now=FAKE_NOW, flags=("--string-numbers", "--nulls"))
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_api(nationalgas_api: FakeNationalGasProcess) -> FakeNationalGasProcess:
    """The fake API reset for one test: clock at the start, no faults, counters at zero."""
    nationalgas_api.reset()
    return nationalgas_api


@pytest.fixture(scope="session")
def meltano_installed() -> None:
    """The plugins are installed in the project's .meltano (quick when they already are)."""
    subprocess.run(
        [MELTANO, "install"], cwd=REPO_ROOT, check=True, capture_output=True, timeout=600
    )


@pytest.fixture
def project_env(
    tmp_path: Path,
    meltano_installed: None,  # noqa: ARG001 (installs the plugins first)
    influxdb: LocalInfluxDB | RemoteInfluxDB2,
    bucket: str,
    fake_api: FakeNationalGasProcess,
) -> dict[str, str]:
    """Environment of a Meltano run: fake API, this test's bucket, its own system database."""
    return meltano_env(tmp_path, fake_api, influxdb, bucket)


def meltano_env(
    tmp_path: Path,
    fake_api: FakeNationalGasProcess,
    influxdb: LocalInfluxDB | RemoteInfluxDB2,
    bucket: str,
) -> dict[str, str]:
    """Environment of Meltano runs that keep their system database and logs in ``tmp_path``."""
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    return {
        **os.environ,
        "TAP_NATIONALGAS_API_URL": fake_api.url,
        "TAP_NATIONALGAS_START_DATE": FAKE_START_DATE,
        "TAP_NATIONALGAS_END_DATE": FAKE_END_DATE,
        "TAP_NATIONALGAS_PUBLICATION_IDS": json.dumps(PUBLICATION_IDS),
        "TAP_NATIONALGAS_RETRY_INTERVAL": "1",
        "INFLUXDB_URL": influxdb.url,
        "INFLUXDB_TOKEN": influxdb.token,
        "INFLUXDB_ORG": influxdb.org,
        "INFLUXDB_BUCKET": bucket,
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path}/meltano.db",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
        "DATA_IMPORTS_LOG_DIR": str(tmp_path / "logs"),
        "DATA_IMPORTS_LOCK_DIR": str(tmp_path / "locks"),
        "TEST_ENV_FILE": str(empty_env),
        "DATA_IMPORTS_ENV_FILE": str(empty_env),
    }


def meltano(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run meltano in the project with an environment of :func:`meltano_env` (no .env read)."""
    return subprocess.run(
        [MELTANO, "--env-file", env["TEST_ENV_FILE"], *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def tap_settings(api_url: str) -> dict[str, t.Any]:
    """tap-nationalgas settings for the fake API, with quick retries."""
    return {
        "api_url": api_url,
        "start_date": FAKE_START_DATE,
        "end_date": FAKE_END_DATE,
        "max_retries": 2,
        "retry_interval": 0.1,
        "max_retry_delay": 2,
        "request_timeout": 5,
    }


@pytest.fixture
def tap_config(fake_api: FakeNationalGasProcess) -> dict[str, t.Any]:
    """tap-nationalgas settings for this test's fake API."""
    return tap_settings(fake_api.url)


RUN_ETL = str(REPO_ROOT / "run-etl.sh")
JOB = "nationalgas-to-influxdb"
FLOWS_JOB = "nationalgas-flows"


def published(
    now: dt.datetime,
    gas_quality_hours: int = 1,
    *,
    flows: bool = True,
    since: t.Sequence[dt.datetime] = (),
) -> dict[str, dict]:
    """What the fake published by ``now`` (from the start date), as the pipeline must store it.

    ``flows=False``: as the job ``nationalgas-to-influxdb`` alone stores it (no flows).
    ``since``: the clocks of the runs of the jobs before the one at ``now``. The streams that
    read whatever their path serves store what it served at each run
    (:func:`testkit.expected.served`); gas quality and publications are stated here.
    """
    data = expected.fake_data(now)
    last = dt.date.fromisoformat(FAKE_END_DATE)
    streams = expected.job_streams(JOB, FLOWS_JOB) if flows else expected.job_streams(JOB)
    runs = [(streams, moment) for moment in [*since, now]]
    stated = {
        expected.measurement("gas_quality"): expected.gas_quality(
            data, expected.latest_hours(data, gas_quality_hours)
        ),
        expected.measurement("publications"): expected.publications(
            data,
            PUBLICATION_IDS,
            last - dt.timedelta(days=10),
            last,
            dt.datetime.fromisoformat(FAKE_START_DATE),
        ),
    }
    return {
        measurement: stated[measurement]
        if measurement in stated
        else expected.served(runs, measurement)
        for measurement in expected.MEASUREMENTS
    }


def start_run_etl(env: dict[str, str], job: str = JOB) -> subprocess.Popen[str]:
    """run-etl.sh in a session of its own, as cron starts it."""
    return subprocess.Popen(
        [RUN_ETL, job],
        cwd="/",
        env={**env, "MELTANO": MELTANO},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def backfill_batch_records() -> int:
    """Records per batch file of the backfill (``batch_config`` of tap-nationalgas-backfill)."""
    project = yaml.safe_load((REPO_ROOT / "meltano.yml").read_text())
    backfill = next(
        p for p in project["plugins"]["extractors"] if p["name"] == "tap-nationalgas-backfill"
    )
    return int(backfill["config"]["batch_config"]["batch_size"])
