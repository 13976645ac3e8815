"""Conformance: recorded Singer message files (tests/conformance/) run in both modes on the engine.

Each case is checked the same way in both modes: into InfluxDB, and as files loaded the way
``influx write --file`` loads them (``testkit.conformance``).
"""

from __future__ import annotations

import typing as t

from testkit.conformance import run_both

if t.TYPE_CHECKING:
    from pathlib import Path

    from testkit.influx import LocalInfluxDB, RemoteInfluxDB2


def test_schema_changed_mid_stream_keeps_both_records(
    tmp_path: Path,
    target_config: dict[str, t.Any],
    influxdb: LocalInfluxDB | RemoteInfluxDB2,
) -> None:
    """A second SCHEMA adds a property: the records before and after it are both stored."""
    both = run_both(tmp_path, target_config, influxdb, "schema_change")
    for mode in both.modes:
        assert mode.run.returncode == 0, mode.run.log
        assert not mode.load_errors
        points = mode.points("readings")
        assert [(p.tags, p.fields) for p in points] == [
            ({"site": "a"}, {"cv": 39.1}),
            ({"site": "a"}, {"cv": 39.2, "n2": 1.5}),
        ]
    assert both.influx.run.passed_on[-1]["bookmarks"]["readings"]["replication_key_value"] == (
        "2026-01-01T01:00:00Z"
    )
