r"""Conformance of line protocol: every instant kept, every name safe, times InfluxDB can hold.

Each case (tests/conformance/lp_*.jsonl) runs in both modes on the real engine: into InfluxDB,
and as files loaded back the way ``influx write --file`` loads them (``testkit.conformance``);
the stored names and values are read back and compared exactly.
"""

from __future__ import annotations

import typing as t

import pytest

from testkit.conformance import BothModes, ModeRun, run_both

if t.TYPE_CHECKING:
    from pathlib import Path

    from testkit.influx import LocalInfluxDB, Point, RemoteInfluxDB2

Engine = t.Union["LocalInfluxDB", "RemoteInfluxDB2"]

JAN_1_NS = 1_767_225_600 * 10**9
"""2026-01-01T00:00:00Z in epoch nanoseconds."""
MIN_NS, MAX_NS = -9_223_372_036_854_775_806, 9_223_372_036_854_775_806
"""The first and last instants InfluxDB stores (int64 nanoseconds less its two sentinels)."""


def succeeded(both: BothModes) -> tuple[ModeRun, ModeRun]:
    """Both runs, each checked to have ended well and (file mode) loaded with no error."""
    for mode in both.modes:
        assert mode.run.returncode == 0, mode.run.log
        assert not mode.load_errors, mode.load_errors
    return both.modes


def data_measurements(mode: ModeRun) -> set[str]:
    """The measurements a run stored, less its health points'."""
    return mode.measurements() - {"data_imports_run"}


def only(points: list[Point]) -> Point:
    """The one point of a measurement."""
    assert len(points) == 1, points
    return points[0]


def test_instants_nanoseconds_apart_are_two_points(
    tmp_path: Path, target_config: dict[str, t.Any], influxdb: Engine
) -> None:
    """`.123456789Z` and `.123456001Z` of one series: both stored, each to the nanosecond."""
    for mode in succeeded(run_both(tmp_path, target_config, influxdb, "lp_nanoseconds")):
        points = mode.points("events")
        assert [(p.time_ns - JAN_1_NS, p.tags, p.fields) for p in points] == [
            (
                123_456_001,
                {"site": "a"},
                {"v": 2.0, "seen": "2026-01-01T00:00:00.123456001Z"},
            ),
            (
                123_456_789,
                {"site": "a"},
                {"v": 1.0, "seen": "2026-01-01T00:00:00.123456789Z"},
            ),
            (1_500_000_000, {"site": "a"}, {"v": 3.0, "seen": "2026-01-01T00:00:01.500000Z"}),
        ]
        assert "newest 2026-01-01T00:00:01+00:00" in mode.run.log
        assert mode.run.passed_on[-1]["bookmarks"]["events"]["replication_key_value"] == (
            "2026-01-01T00:00:01.5Z"
        )


def test_stream_ending_in_a_backslash_keeps_its_tags(
    tmp_path: Path, target_config: dict[str, t.Any], influxdb: Engine
) -> None:
    r"""A stream `m\`: measurement `m ` (as influxdb-client ends a tag value), tag k=a kept."""
    for mode in succeeded(run_both(tmp_path, target_config, influxdb, "lp_measurement_backslash")):
        assert data_measurements(mode) == {"m "}
        point = only(mode.points("m "))
        assert (point.tags, point.fields) == ({"k": "a"}, {"v": 1.0})
        assert "measurement 'm\\\\' stored as 'm '" in mode.run.log


def test_keys_ending_in_a_backslash_are_stored_not_refused(
    tmp_path: Path, target_config: dict[str, t.Any], influxdb: Engine
) -> None:
    r"""A tag key `site\` and a field key `cv\`: stored as `site ` and `cv `, the batch whole."""
    for mode in succeeded(run_both(tmp_path, target_config, influxdb, "lp_key_backslash")):
        point = only(mode.points("readings"))
        assert (point.tags, point.fields) == ({"site ": "a"}, {"cv ": 39.1, "n": 1.0})
        assert mode.run.passed_on[-1]["bookmarks"]["readings"]["replication_key_value"] == (
            "2026-01-01T00:00:00Z"
        )
        warnings = [line for line in mode.run.log.splitlines() if "stored changed" in line]
        assert len(warnings) == 1, mode.run.log
        assert "tag key 'site\\\\' stored as 'site '" in warnings[0]
        assert "field key 'cv\\\\' stored as 'cv '" in warnings[0]


def test_every_position_keeps_commas_spaces_equals_quotes_and_backslashes(
    tmp_path: Path, target_config: dict[str, t.Any], influxdb: Engine
) -> None:
    """Each name position and string values, with every character line protocol escapes."""
    measurement = 'a,b c=d"e\\f'
    for mode in succeeded(run_both(tmp_path, target_config, influxdb, "lp_names")):
        assert data_measurements(mode) == {measurement}
        point = only(mode.points(measurement))
        assert point.tags == {
            "k ": "plain",  # a final backslash: a space
            'a,b=c d"e': 'v,= "q ',
            "mid": 'a ,b c =d  "e',  # a backslash that would escape what follows: a space
            "path": "C:\\dir\\file",  # other backslashes kept
        }
        assert point.fields == {
            "f ": 1.0,
            'f,= "x': 2.0,
            "p\\q": 3.0,
            "n\\nl": 4.0,  # a newline in a key: the two characters \n
            "s": 'say "hi", a=b \\ back\nslash\r\ttab\\',  # a string value keeps everything
            "u": "é ü 日本 ✓",
        }
        warnings = [line for line in mode.run.log.splitlines() if "stored changed" in line]
        assert len(warnings) == 1, mode.run.log
        for change in (
            "tag key 'k\\\\' stored as 'k '",
            "field key 'n\\nl' stored as 'n\\\\nl'",
            "tag value 'a\\\\,b c\\\\=d \\\\\"e' stored as 'a ,b c =d  \"e'",
        ):
            assert change in warnings[0]
        assert "path" not in warnings[0]


def test_newline_in_a_tag_value_and_non_ascii_in_json(
    tmp_path: Path, target_config: dict[str, t.Any], influxdb: Engine
) -> None:
    r"""A tag value's newline is stored as `\n` (two characters) and said; JSON keeps `é`."""
    for mode in succeeded(run_both(tmp_path, target_config, influxdb, "lp_newline_json")):
        point = only(mode.points("notes"))
        assert point.tags == {"site": "line1\\nline2"}
        assert point.fields == {
            "v": 1.0,
            "detail": '{"name":"Bacton é ü 日本","quote":"\\"\\\\"}',
            "tags": '["Ø","✓"]',
        }
        assert "tag value 'line1\\nline2' stored as 'line1\\\\nline2'" in mode.run.log


def test_the_first_and_last_instants_influxdb_stores_are_kept(
    tmp_path: Path, target_config: dict[str, t.Any], influxdb: Engine
) -> None:
    """1677-09-21T00:12:43.145224194Z and 2262-04-11T23:47:16.854775806Z: both stored."""
    for mode in succeeded(run_both(tmp_path, target_config, influxdb, "lp_time_bounds")):
        assert [(p.time_ns, p.fields) for p in mode.points("events")] == [
            (MIN_NS, {"v": 1.0}),
            (MAX_NS, {"v": 2.0}),
        ]


@pytest.mark.parametrize(
    ("case", "value"),
    [
        ("lp_time_before", "1677-09-21T00:12:43.145224193Z"),
        ("lp_time_after", "2262-04-11T23:47:16.854775807Z"),
    ],
)
def test_a_time_influxdb_cannot_hold_fails_the_run_in_both_modes(
    tmp_path: Path, target_config: dict[str, t.Any], influxdb: Engine, case: str, value: str
) -> None:
    """The run fails at the record, naming stream, property, value and tags; nothing after it."""
    both = run_both(tmp_path, target_config, influxdb, case)
    for mode in both.modes:
        assert mode.run.returncode != 0
        assert not mode.load_errors, mode.load_errors  # no broken line in the file
        failed = [line for line in mode.run.log.splitlines() if "failed:" in line]
        assert len(failed) == 1, mode.run.log
        assert (
            f'stream "events": timestamp property "at" has value {value!r}, outside the times '
            "InfluxDB can store (1677-09-21T00:12:43.145224194Z to "
            "2262-04-11T23:47:16.854775806Z) (tags {'site': 'b'})"
        ) in failed[0]
        assert "Traceback" not in mode.run.log
        assert mode.run.passed_on == [
            {"bookmarks": {"events": {"replication_key_value": "2026-01-01T00:00:00Z"}}}
        ]
        assert [(p.tags, p.fields) for p in mode.points("events")] == [({"site": "a"}, {"v": 1.0})]
