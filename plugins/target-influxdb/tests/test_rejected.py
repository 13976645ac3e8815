"""Points InfluxDB refuses as invalid, against a real engine: named, then set aside and loaded."""

from __future__ import annotations

import datetime as dt
import json
import re
import typing as t

from testkit import singer
from testkit.influx import run_influx_delete, run_influx_write

STREAM = "gas_quality"
PROPERTIES = {
    "site_id": {"type": "integer"},
    "site_name": {"type": ["string", "null"]},
    "published_time": {"type": "string", "format": "date-time"},
    "cv": {"type": ["number", "null"]},
    "n2": {"type": ["number", "null"]},
}
AS_INTEGER = {**PROPERTIES, "cv": {"type": ["integer", "null"]}}
KEYS = ["site_id", "published_time"]
WEEK_1_S = 1_767_225_600  # 2026-01-01T00:00:00Z, a Thursday: in the week from Monday 2025-12-29
WEEK_2_S = 1_767_571_200  # 2026-01-05T00:00:00Z, the next Monday: another shard
OTHER = "site_notes"


def reading(site: int, stamp_s: int, cv: float) -> dict[str, t.Any]:
    """One gas quality reading."""
    published = dt.datetime.fromtimestamp(stamp_s, dt.UTC).isoformat()
    return singer.record(
        STREAM,
        {"site_id": site, "site_name": f"SITE {site}", "published_time": published, "cv": cv},
    )


def week_1(steps: int, cv: float) -> list[dict[str, t.Any]]:
    """10 sites every 2 minutes from Thursday 2026-01-01 00:00."""
    return [reading(s, WEEK_1_S + i * 120, cv) for i in range(steps) for s in range(10)]


def stored_integer_cv() -> list[dict[str, t.Any]]:
    """What an earlier run stored: cv as an integer, for 20 readings of week 1."""
    return [singer.schema(STREAM, AS_INTEGER, KEYS, ["published_time"]), *week_1(2, 39)]


def float_run() -> list[dict[str, t.Any]]:
    """A run that sends cv as a float: 30 readings of week 1, 10 of week 2, and another stream."""
    note = {"site_id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}}
    note |= {"note": {"type": "string"}}
    return [
        singer.schema(STREAM, PROPERTIES, KEYS, ["published_time"]),
        singer.schema(OTHER, note, ["site_id", "at"], ["at"]),
        *week_1(3, 40.5),  # no STATE between the weeks: one batch of both (a STATE drains)
        *(reading(s, WEEK_2_S, 40.25) for s in range(10)),
        singer.record(OTHER, {"site_id": 1, "at": "2026-01-05T06:00:00Z", "note": "ok"}),
        singer.state({"bookmarks": {STREAM: "week 2"}}),
    ]


def stored(engine: t.Any, bucket: str) -> dict[tuple[str, int], dict[str, t.Any]]:
    """Stored gas_quality points by (site_id, time in seconds), their fields as InfluxQL returns
    them (the engine's own types: a field stored as integer in one shard and float in another
    has one type in ``field_types``)."""
    found = {}
    for series in engine.query(bucket, 'SELECT * FROM "gas_quality" GROUP BY "site_id"'):
        for values in series["values"]:
            row = dict(zip(series["columns"], values, strict=True))
            fields = {k: v for k, v in row.items() if k != "time" and v is not None}
            found[series["tags"]["site_id"], row["time"] // 10**9] = fields
    return found


def health(engine: t.Any, bucket: str) -> dict[str, dict[str, t.Any]]:
    """The last run's health point of each stream."""
    return {p.tags["stream"]: p.fields for p in engine.points(bucket, "data_imports_run")}


def last_line(run: singer.TargetRun) -> str:
    """The message of the last line the target logged."""
    return run.log.strip().splitlines()[-1].split(" | ", 3)[-1].strip()


def test_a_type_conflict_fails_naming_field_types_line_and_fixes(tmp_path, influxdb, target_config):
    bucket = target_config["bucket"]
    assert singer.run_target(tmp_path, target_config, stored_integer_cv()).returncode == 0

    run = singer.run_target(tmp_path, target_config, float_run())

    assert run.returncode == 1
    assert run.states == []
    line = last_line(run)
    assert line.startswith(
        'failed: InfluxDB rejected 30 of 40 points of stream "gas_quality" as invalid (422 '
    )
    assert (
        'input field "cv" on measurement "gas_quality" is type float, already exists as type '
        "integer dropped=30); first rejected line: gas_quality,site_id=0 "
    ) in line
    assert " 1767225600000000000. " in line  # the line as influx write takes it
    assert (
        'The field "cv" of measurement "gas_quality" is stored as integer and was sent as float'
    ) in line
    assert (
        f"influx delete --bucket {bucket} --org {target_config['org']} --start "
        "2025-12-29T00:00:00Z --stop 2026-01-04T23:59:59.999999999Z --predicate "
        "'_measurement=\"gas_quality\"'"
    ) in line
    assert line.endswith(
        "or set `rejected_points_path` to set refused points aside in a file and go on"
    )
    assert "Traceback" not in run.log
    # the points of week 2 in the same batch were stored, once; week 1 kept its integers
    after = stored(influxdb, bucket)
    assert {k: v["cv"] for k, v in after.items() if k[1] == WEEK_2_S} == {
        (str(s), WEEK_2_S): 40.25 for s in range(10)
    }
    assert {v["cv"] for k, v in after.items() if k[1] < WEEK_2_S} == {39}
    assert len(after) == 30
    report = health(influxdb, bucket)[STREAM]
    assert (report["status"], report["points"], report["rejected"]) == ("failed", 10, 30)
    assert report["cause"].startswith("InfluxDB rejected 30 of 40 points")

    # the stream map the message gives writes the field under a new name, and the run goes on
    stream_maps = json.loads(re.search(r"`stream_maps` = (\{.*?\}\}); or", line)[1])  # type: ignore[index]
    assert stream_maps == {STREAM: {"cv_float": "cv", "cv": "__NULL__"}}
    renamed = singer.run_target(
        tmp_path, {**target_config, "stream_maps": stream_maps}, float_run()
    )
    assert renamed.returncode == 0, renamed.log
    assert renamed.states[-1] == {"bookmarks": {STREAM: "week 2"}}
    assert influxdb.field_types(bucket, STREAM)["cv_float"] == "float"
    assert len([f for f in stored(influxdb, bucket).values() if "cv_float" in f]) == 40


def test_refused_points_wait_in_the_file_and_load_after_the_documented_fix(
    tmp_path, influxdb, target_config
):
    bucket = target_config["bucket"]
    assert singer.run_target(tmp_path, target_config, stored_integer_cv()).returncode == 0
    path = tmp_path / "rejected" / "points.lp"
    config = {**target_config, "rejected_points_path": str(path)}

    run = singer.run_target(tmp_path, config, float_run())

    assert run.returncode == 0, run.log
    assert run.states[-1] == {"bookmarks": {STREAM: "week 2"}}
    lines = path.read_text().splitlines()
    assert len(lines) == 30
    keys = {(re.search(r"site_id=(\d+)", x)[1], int(x.rsplit(" ", 1)[1]) // 10**9) for x in lines}  # type: ignore[index]
    assert keys == {(str(s), WEEK_1_S + i * 120) for i in range(3) for s in range(10)}
    assert all(re.search(r"[ ,]cv=40\.5[ ,]", x) for x in lines)
    warning = next(x for x in run.log.splitlines() if "set aside in" in x)
    assert "WARNING" in warning
    assert f"30 points InfluxDB refused as invalid were set aside in {path}" in warning
    report = health(influxdb, bucket)
    assert (report[STREAM]["status"], report[STREAM]["points"]) == ("ok", 10)
    assert report[STREAM]["rejected"] == 30
    assert report[OTHER]["points"] == 1
    assert len(stored(influxdb, bucket)) == 30  # 20 integers of week 1, 10 floats of week 2

    # the fix the warning gives: delete the conflicting week, then load the file
    deletes = re.findall(r"influx delete .*?--predicate '[^']*'", warning)
    assert len(deletes) == 1
    for command in deletes:
        run_influx_delete(influxdb, command)
    load = re.search(r"then (influx write .*?) \(then remove", warning)[1]  # type: ignore[index]
    assert load == f"influx write --bucket {bucket} --org {config['org']} --file {path}"
    assert not path.with_name("points.lp.stored").exists()  # nothing else stored in that week
    run_influx_write(influxdb, load)

    expected = {(str(s), WEEK_1_S + i * 120): 40.5 for i in range(3) for s in range(10)}
    expected |= {(str(s), WEEK_2_S): 40.25 for s in range(10)}
    assert {k: v["cv"] for k, v in stored(influxdb, bucket).items()} == expected
    assert influxdb.field_types(bucket, STREAM)["cv"] == "float"
    assert [p.fields for p in influxdb.points(bucket, OTHER)] == [{"note": "ok"}]


def test_a_refused_line_is_quoted_short_and_kept_whole(tmp_path, influxdb, target_config):
    props = {"name": {"type": "string"}, "at": {"type": "string", "format": "date-time"}}
    props |= {"v": {"type": "number"}}
    huge = "x" * 1_000_000
    messages = [
        singer.schema("big", props, ["name", "at"], ["at"]),
        singer.record("big", {"name": huge, "at": "2026-01-01T00:00:00Z", "v": 1.5}),
        singer.record("big", {"name": "small", "at": "2026-01-01T00:00:00Z", "v": 2.5}),
        singer.state({"s": 1}),
    ]
    failed = singer.run_target(tmp_path, target_config, messages)
    assert failed.returncode == 1
    assert failed.states == []
    assert len(failed.log) < 10_000
    line = last_line(failed)
    assert line.startswith('failed: InfluxDB rejected 1 of 2 points of stream "big" as invalid')
    assert "first rejected line: big,name=xxx" in line
    assert "characters left out" in line

    path = tmp_path / "rejected.lp"
    kept = singer.run_target(
        tmp_path, {**target_config, "rejected_points_path": str(path)}, messages
    )
    assert kept.returncode == 0, kept.log[-3000:]
    assert kept.passed_on == [{"s": 1}]
    assert path.read_text() == f"big,name={huge} v=1.5 1767225600000000000\n"
    assert [p.tags["name"] for p in influxdb.points(target_config["bucket"], "big")] == ["small"]
    assert len(kept.log) < 10_000


def test_file_mode_has_nothing_to_set_aside(tmp_path):
    output, path = tmp_path / "lp", tmp_path / "rejected.lp"
    config = {"output_path": str(output), "rejected_points_path": str(path)}
    run = singer.run_target(tmp_path, config, [*stored_integer_cv(), *float_run()])
    assert run.returncode == 0, run.log
    assert (output / "gas_quality.lp").read_text().count("\n") == 60
    assert not path.exists()
