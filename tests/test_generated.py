"""Each stream and setting has one home, the plugins' code: the README tables and meltano.yml
follow it. A stream's measurement and tags have theirs, meltano.yml, and its fake data the fake's
data generator: the tests take both from there."""

from __future__ import annotations

from testkit import expected
from testkit.nationalgas_data import ROUTES
from testkit.processes import run_script


def test_readme_tables_and_meltano_yml_are_written_from_the_plugins():
    # a fresh interpreter: the SDK's test suites add their own settings to the plugin classes
    check = run_script("sync_from_plugins.py", "--check")
    assert check.returncode == 0, check.stdout + check.stderr


def test_every_stream_is_served_by_the_fake_and_every_selected_one_is_mapped():
    unserved = [s for s, cls in expected.TAP_STREAMS.items() if cls.path not in ROUTES]
    assert unserved == [], "add their paths to testkit.nationalgas_data.ROUTES"
    extractors = [p["name"] for p in expected.PROJECT.data["plugins"]["extractors"]]
    selected = {s for e in extractors for s in expected.extractor_streams(e)}
    assert selected <= expected.TAP_STREAMS.keys()
    unmapped = sorted(selected - expected.MAPPINGS.keys())
    assert unmapped == [], "add a `mappings` entry of target-influxdb in meltano.yml for them"
    assert expected.MAPPINGS.keys() <= expected.TAP_STREAMS.keys()
