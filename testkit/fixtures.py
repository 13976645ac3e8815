"""Pytest fixtures shared by the test suites (registered by the root ``conftest.py``)."""

from __future__ import annotations

import typing as t
import uuid

import pytest

from testkit.fake_nationalgas import FakeNationalGasProcess
from testkit.influx import LocalInfluxDB, RemoteInfluxDB2, influxdb_from_env

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
