"""The Singer SDK's standard tap tests, against the local fake of the National Gas API."""

from __future__ import annotations

import typing as t

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class
from singer_sdk.testing.runners import TapTestRunner

from tap_nationalgas.tap import TapNationalGas
from testkit.fixtures import tap_settings

if t.TYPE_CHECKING:
    from testkit.fake_nationalgas import FakeNationalGasProcess

# The class is built with a placeholder URL (streams are static); each run uses the fake's URL.
StandardTapTests = get_tap_test_class(
    TapNationalGas,
    config=tap_settings("http://127.0.0.1:9/operationaldata/v1"),
    suite_config=SuiteConfig(max_records_limit=None),
)


class TestTapNationalGas(StandardTapTests):  # type: ignore[misc,valid-type]
    """Standard tap tests: every stream synced once from the fake, then checked."""

    @pytest.fixture(scope="class")
    @classmethod
    def runner(cls, nationalgas_api: FakeNationalGasProcess) -> TapTestRunner:
        nationalgas_api.reset()
        runner = TapTestRunner(
            tap_class=TapNationalGas,
            config=tap_settings(nationalgas_api.url),
            suite_config=SuiteConfig(max_records_limit=None),
            parse_env_config=False,
        )
        runner.sync_all()
        return runner
