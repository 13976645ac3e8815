"""Conformance: recorded Singer message files (tests/conformance/) run in both modes on the engine.

Each case is checked the same way in both modes: into InfluxDB, and as files loaded the way
``influx write --file`` loads them (``testkit.conformance``). The ``spec_`` cases are the
messages of the Singer spec: a SCHEMA sent again mid-stream, ACTIVATE_VERSION, a RECORD before
its SCHEMA, STATE alone, record metadata, ``anyOf`` and nullable types, no key properties,
stream names with dots and dashes, unicode.
"""

from __future__ import annotations

import typing as t

from testkit.conformance import ModeRun, run_both

if t.TYPE_CHECKING:
    from pathlib import Path

    from testkit.conformance import RunCase
    from testkit.influx import LocalInfluxDB, RemoteInfluxDB2

JAN_1 = 1_767_225_600_000_000_000
"""2026-01-01T00:00:00Z in nanoseconds."""
HOUR = 3_600_000_000_000

READINGS_AT_0 = {"bookmarks": {"readings": {"replication_key_value": "2026-01-01T00:00:00Z"}}}
READINGS_AT_1 = {"bookmarks": {"readings": {"replication_key_value": "2026-01-01T01:00:00Z"}}}


def stored(mode: ModeRun, measurement: str = "readings") -> list[tuple[int, dict, dict]]:
    """One mode's points of a measurement as (time, tags, fields), oldest first."""
    return [(p.time_ns, p.tags, p.fields) for p in mode.points(measurement)]


def log_lines(mode: ModeRun, level: str) -> list[str]:
    """The messages of one mode's log lines of a level (``WARNING``, ``ERROR``)."""
    return [
        line.rsplit(" | ", 1)[-1] for line in mode.run.log.splitlines() if f"| {level} " in line
    ]


def assert_ok(mode: ModeRun) -> None:
    """The run succeeded and, in file mode, its files loaded whole."""
    assert mode.run.returncode == 0, mode.run.log
    assert not mode.load_errors
    assert "Traceback" not in mode.run.log


def test_schema_changed_mid_stream_keeps_both_records(run_case: RunCase) -> None:
    """A second SCHEMA adds a property: the records before and after it are both stored."""
    both = run_case("schema_change")
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


def test_a_point_after_a_schema_change_is_not_overwritten_by_the_one_before(
    tmp_path: Path,
    target_config: dict[str, t.Any],
    influxdb: LocalInfluxDB | RemoteInfluxDB2,
) -> None:
    """The same point before and after a SCHEMA change, the new sink full first: the later wins.

    A changed SCHEMA replaces the stream's sink; its points are written then, before the new
    sink writes any, so an older record never lands after a newer one.
    """
    both = run_both(
        tmp_path, target_config, influxdb, "spec_schema_change_order", {"batch_size": 2}
    )
    for mode in both.modes:
        assert mode.run.returncode == 0, mode.run.log
        assert not mode.load_errors
        points = mode.points("readings")
        assert [(p.tags, p.fields) for p in points] == [
            ({"site": "a"}, {"cv": 2.0, "n2": 5.0}),
            ({"site": "a"}, {"cv": 3.0, "n2": 6.0}),
        ]
        assert mode.run.passed_on[-1]["bookmarks"]["readings"]["replication_key_value"] == (
            "2026-01-01T01:00:00Z"
        )
    # written in the order received: the point before the change first, then its newer value
    lines = (tmp_path / "file" / "output" / "readings.lp").read_text().splitlines()
    assert lines == [
        "readings,site=a cv=1.0 1767225600000000000",
        "readings,site=a cv=2.0,n2=5.0 1767225600000000000",
        "readings,site=a cv=3.0,n2=6.0 1767229200000000000",
    ]


def test_type_widened_mid_stream_is_named_and_never_silent(
    tmp_path: Path,
    target_config: dict[str, t.Any],
    influxdb: LocalInfluxDB | RemoteInfluxDB2,
) -> None:
    """A SCHEMA that widens `cv` from integer to number: a WARNING names the field in both modes.

    InfluxDB refuses the float into the integer field: the run fails naming the conflict, the
    STATE after the refused point is not passed on. File mode writes both lines as the schemas
    say (the warning tells that the file will not load whole) and the engine refuses the file.
    """
    both = run_both(tmp_path, target_config, influxdb, "spec_type_widened")
    warning = (
        "Stream 'readings': a new SCHEMA message changes field 'cv' from integer to float: "
        "InfluxDB refuses float values into a field it stores as integer in the same shard"
    )
    for mode in both.modes:
        assert any(line.startswith(warning) for line in log_lines(mode, "WARNING")), mode.run.log
        assert "Traceback" not in mode.run.log

    influx = both.influx
    assert influx.run.returncode == 1
    assert influx.run.passed_on == [READINGS_AT_0]
    assert stored(influx) == [(JAN_1, {"site": "a"}, {"cv": 39})]
    assert influx.engine.field_types(influx.bucket, "readings") == {"cv": "integer"}
    last = influx.run.log.splitlines()[-1]
    assert "| ERROR " in last
    assert 'failed: InfluxDB rejected 1 of 1 points of stream "readings" as invalid' in last
    conflict = 'The field "cv" of measurement "readings" is stored as integer and was sent as float'
    assert conflict in last

    file = both.file
    assert file.run.returncode == 0, file.run.log
    assert file.run.passed_on == [READINGS_AT_0, READINGS_AT_1]
    lines = (tmp_path / "file/output/readings.lp").read_text().splitlines()
    assert lines == [
        f"readings,site=a cv=39i {JAN_1}",
        f"readings,site=a cv=39.5 {JAN_1 + HOUR}",
    ]
    assert len(file.load_errors) == 1
    assert "field type conflict" in file.load_errors[0]


def test_key_properties_changed_mid_stream_starts_new_series(run_case: RunCase) -> None:
    """A SCHEMA that adds `region` to the key: both records stored, the change a WARNING.

    The point before it keeps `region` as a field, the one after has it as a tag: two series,
    and `region` both a tag and a field of the measurement, as the warning says.
    """
    both = run_case("spec_key_changed")
    warning = (
        "Stream 'readings': a new SCHEMA message changes its tags from ['site'] to "
        "['site', 'region']: the points from now on go to other series than the points before "
        "it, and InfluxDB keeps both"
    )
    query = 'SELECT "cv", "region"::field, "region"::tag, "site"::tag FROM "readings"'
    for mode in both.modes:
        assert_ok(mode)
        assert mode.run.passed_on == [READINGS_AT_0, READINGS_AT_1]
        assert [line for line in log_lines(mode, "WARNING") if line.startswith(warning)], (
            mode.run.log
        )
        assert "'region' is then both a tag and a field of the measurement" in mode.run.log
        series = mode.engine.query(mode.bucket, query)
        rows = [dict(zip(s["columns"], row, strict=True)) for s in series for row in s["values"]]
        assert [
            (int(row["time"]), row["cv"], row["region"], row["region_1"], row["site"])
            for row in rows
        ] == [
            (JAN_1, 39.1, "north", None, "a"),  # region a field
            (JAN_1 + HOUR, 39.2, None, "north", "a"),  # region a tag
        ]


def test_activate_version_is_ignored_once_a_stream_and_the_records_stored(
    run_case: RunCase,
) -> None:
    """ACTIVATE_VERSION: one WARNING for the stream, however many come; every record stored."""
    both = run_case("spec_activate_version")
    for mode in both.modes:
        assert_ok(mode)
        assert mode.run.passed_on == [READINGS_AT_0]
        assert stored(mode) == [
            (JAN_1, {"site": "a"}, {"cv": 39.1}),
            (JAN_1, {"site": "b"}, {"cv": 39.3}),
        ]
        assert log_lines(mode, "WARNING") == [
            (
                "Stream 'readings': ACTIVATE_VERSION ignored: InfluxDB keeps the points of "
                "earlier versions (rows the source deleted stay stored); the records are stored"
            )
        ]


def test_record_before_its_schema_fails_in_one_line(run_case: RunCase) -> None:
    """A RECORD before its SCHEMA: exit 1, one ERROR line naming the stream, no later STATE."""
    both = run_case("spec_record_before_schema")
    for mode in both.modes:
        assert mode.run.returncode == 1
        assert not mode.load_errors
        assert "Traceback" not in mode.run.log
        assert log_lines(mode, "ERROR") == [
            (
                "failed: A record for stream 'readings' was encountered before a corresponding "
                "schema. Check that the Tap correctly implements the Singer spec."
            )
        ]
        assert mode.run.log.splitlines()[-1].endswith(log_lines(mode, "ERROR")[0])
        # the STATE before the record is passed on; none after it
        early = {"bookmarks": {"readings": {"replication_key_value": "2025-12-31T00:00:00Z"}}}
        assert mode.run.passed_on == [early]
        assert mode.measurements() == set()


def test_activate_version_before_its_schema_fails_in_one_line(run_case: RunCase) -> None:
    """ACTIVATE_VERSION before the stream's SCHEMA fails as a RECORD would: one line, no STATE."""
    both = run_case("spec_activate_version_before_schema")
    for mode in both.modes:
        assert mode.run.returncode == 1
        assert "Traceback" not in mode.run.log
        assert log_lines(mode, "ERROR") == [
            (
                "failed: An ACTIVATE_VERSION message for stream 'readings' came before its "
                "SCHEMA message. Check that the Tap correctly implements the Singer spec."
            )
        ]
        assert mode.run.passed_on == []
        assert mode.measurements() == set()


def test_state_only_input_passes_every_state_on(run_case: RunCase) -> None:
    """Only STATE messages: each passed on in order, nothing written, no health point."""
    both = run_case("spec_state_only")
    second = {"bookmarks": {"readings": {"replication_key_value": "2026-01-02T00:00:00Z"}}}
    for mode in both.modes:
        assert_ok(mode)
        assert mode.run.passed_on == [READINGS_AT_0, second]
        assert mode.measurements() == set()
        assert log_lines(mode, "WARNING") == []


def test_final_state_with_no_records_is_passed_on(run_case: RunCase) -> None:
    """A SCHEMA, then a STATE and no record: the STATE passed on, the stream's health point 0."""
    both = run_case("spec_final_state_no_records")
    for mode in both.modes:
        assert_ok(mode)
        assert mode.run.passed_on == [READINGS_AT_0]
        assert mode.measurements() == {"data_imports_run"}
        (health,) = mode.points("data_imports_run")
        assert health.tags["stream"] == "readings"
        assert (health.fields["records"], health.fields["points"]) == (0, 0)
        assert health.fields["status"] == "ok"
        assert "Stream 'readings': 0 records, 0 points written, newest none" in mode.run.log


def test_record_metadata_time_extracted_and_version_are_not_fields(run_case: RunCase) -> None:
    """`time_extracted` and `version` on a RECORD: the record stored, neither becomes a field."""
    both = run_case("spec_record_metadata")
    for mode in both.modes:
        assert_ok(mode)
        assert mode.run.passed_on == [READINGS_AT_0]
        assert stored(mode) == [
            (JAN_1, {"site": "a"}, {"cv": 39.1}),
            (JAN_1, {"site": "b"}, {"cv": 39.3}),
        ]
        assert log_lines(mode, "WARNING") == []


def test_anyof_and_nullable_types(run_case: RunCase) -> None:
    """`anyOf` with null and `["null", T]` types take T; nulls are left out; mixed is a string."""
    both = run_case("spec_anyof_nullable")
    for mode in both.modes:
        assert_ok(mode)
        assert mode.run.passed_on == [READINGS_AT_1]
        assert stored(mode) == [
            (
                JAN_1,
                {"site": "a"},
                {"code": "A1", "count": 3, "cv": 39.0, "note": "x", "ok": True},
            ),
            (JAN_1 + HOUR, {"site": "a"}, {"code": "7"}),
        ]
        assert mode.engine.field_types(mode.bucket, "readings") == {
            "code": "string",
            "count": "integer",
            "cv": "float",
            "note": "string",
            "ok": "boolean",
        }


def test_no_key_properties_writes_untagged_points(run_case: RunCase) -> None:
    """`key_properties: []`: no tags, every property a field, time from the replication key."""
    both = run_case("spec_no_key_properties")
    for mode in both.modes:
        assert_ok(mode)
        assert mode.run.passed_on == [READINGS_AT_1]
        assert stored(mode) == [
            (JAN_1, {}, {"cv": 39.1, "site": "a"}),
            (JAN_1 + HOUR, {}, {"cv": 39.2, "site": "b"}),
        ]
        assert "Stream 'readings' -> measurement 'readings', tags [], timestamp at" in (
            mode.run.log
        )


def test_stream_names_with_dots_and_dashes_are_measurement_names(run_case: RunCase) -> None:
    """`public.gas-quality` and `dbo-flows.v2` are stored under those very names."""
    both = run_case("spec_stream_names")
    for mode in both.modes:
        assert_ok(mode)
        assert mode.run.passed_on == [
            {
                "bookmarks": {
                    "public.gas-quality": {"replication_key_value": "2026-01-01T00:00:00Z"},
                    "dbo-flows.v2": {"replication_key_value": "2026-01-01T00:00:00Z"},
                }
            }
        ]
        assert mode.measurements() == {"public.gas-quality", "dbo-flows.v2", "data_imports_run"}
        assert stored(mode, "public.gas-quality") == [(JAN_1, {"site": "a"}, {"cv": 39.1})]
        assert stored(mode, "dbo-flows.v2") == [(JAN_1, {"site": "a"}, {"flow": 1.5})]
        health = mode.points("data_imports_run")
        assert sorted(p.tags["stream"] for p in health) == ["dbo-flows.v2", "public.gas-quality"]


def test_unicode_names_and_values_round_trip(run_case: RunCase) -> None:
    """Non-ASCII tag keys, tag values and string fields are stored as they were sent."""
    both = run_case("spec_unicode")
    for mode in both.modes:
        assert_ok(mode)
        assert mode.run.passed_on == [
            {"bookmarks": {"mesures": {"replication_key_value": "2026-01-01T00:00:00Z"}}}
        ]
        assert stored(mode, "mesures") == [
            (
                JAN_1,
                {"région": "Île-de-France", "site": "Zürich"},
                {"cv": 39.1, "nom": "Gaz naturel — «H» ガス 🔥"},
            ),
            (JAN_1, {"région": "関東", "site": "東京"}, {"cv": 40.0, "nom": "Ωμέγα"}),
        ]
