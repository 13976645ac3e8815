"""The Singer SDK's standard target tests, against a real InfluxDB engine."""

from __future__ import annotations

import typing as t

import pytest
from singer_sdk.testing import get_target_test_class
from singer_sdk.testing.runners import TargetTestRunner

from target_influxdb.target import TargetInfluxDB

# Every standard test runs; none is excluded. The SDK's test streams carry no timestamp
# property, so they are stamped with the time received (the default would fail them).
StandardTargetTests = get_target_test_class(TargetInfluxDB, config={})


class TestTargetInfluxDB(StandardTargetTests):  # type: ignore[misc,valid-type]
    """Standard target tests, each writing into its own bucket."""

    @pytest.fixture
    def runner(self, target_config: dict[str, t.Any]) -> TargetTestRunner:
        return TargetTestRunner(
            target_class=TargetInfluxDB,
            config={**target_config, "untimed_streams": "receive_time"},
            parse_env_config=False,
        )
