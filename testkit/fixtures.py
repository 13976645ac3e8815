"""Pytest fixtures shared by the test suites (registered by the root ``conftest.py``)."""

from __future__ import annotations

import typing as t
import uuid

import pytest

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
