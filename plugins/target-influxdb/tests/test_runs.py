"""The run's health points: one per stream at the end of each run, ok or failed."""

from __future__ import annotations

import re
import socket
import typing as t

from target_influxdb.runs import StreamRun, default_job, run_point
from testkit import singer

STREAM = "gas_quality"
PROPERTIES = {
    "site_id": {"type": "integer"},
    "published_time": {"type": "string", "format": "date-time"},
    "cv": {"type": ["number", "null"]},
}
SCHEMA = singer.schema(STREAM, PROPERTIES, ["site_id", "published_time"], ["published_time"])
NEWEST_S = 1_767_229_200  # 2026-01-01T01:00:00Z


def reading(hour: int, cv: float | None = 39.5) -> dict[str, t.Any]:
    """Site 1 at 00:00 plus ``hour`` hours of 2026-01-01."""
    stamp = f"2026-01-01T{hour:02d}:00:00+00:00"
    return singer.record(STREAM, {"site_id": 1, "published_time": stamp, "cv": cv})


def fields_of(line: str) -> dict[str, str]:
    """The field set of one line-protocol line (no spaces in these values), by key."""
    field_set = line.split(" ")[1]
    return dict(pair.split("=", 1) for pair in field_set.split(","))


def health_rows(engine: t.Any, bucket: str) -> list[dict[str, t.Any]]:
    """The data_imports_run points of a bucket, with their tags."""
    return [{**p.tags, **p.fields} for p in engine.points(bucket, "data_imports_run")]


def test_the_job_is_the_state_id_meltano_gives_the_run():
    env = {"MELTANO_EXTRACTOR_NAME": "tap-nationalgas", "MELTANO_LOADER_NAME": "target-influxdb"}
    assert default_job({**env, "MELTANO_ENVIRONMENT": "prod"}) == (
        "prod:tap-nationalgas-to-target-influxdb"
    )
    assert default_job(env) == "tap-nationalgas-to-target-influxdb"
    assert default_job({}) == "target-influxdb"


def test_a_point_has_the_counts_newest_second_duration_and_status():
    run = StreamRun(records=5, points=3, rejected=1, skipped=1, newest_us=NEWEST_S * 10**6 + 7)
    line, stamp = run_point(
        "data_imports_run",
        job="dev:a-to-b",
        stream="my stream",
        run=run,
        status="failed",
        static_tags={"source": "nationalgas", "empty": ""},
        host="box",
        now_us=42,
    )
    assert stamp == 42
    assert line.startswith(
        r"data_imports_run,host=box,job=dev:a-to-b,source=nationalgas,stream=my\ stream "
    )
    fields = fields_of(line.replace(r"\ ", "_"))
    assert {k: v for k, v in fields.items() if k != "duration"} == {
        "records": "5i",
        "points": "3i",
        "rejected": "1i",
        "skipped": "1i",
        "status": '"failed"',
        "newest": f"{NEWEST_S}i",
    }
    assert re.fullmatch(r"\d+\.\d{3}", fields["duration"])
    assert "newest" not in run_point("m", job="j", stream="s", run=StreamRun(), status="ok")[0]


def test_file_mode_writes_the_run_to_its_own_file(tmp_path):
    output = tmp_path / "lp"
    messages = [SCHEMA, reading(0), reading(1), reading(2, cv=None), singer.state({"s": 1})]
    run = singer.run_target(tmp_path, {"output_path": str(output), "run_job": "nightly"}, messages)
    assert run.returncode == 0, run.log
    assert (output / "gas_quality.lp").read_text().count("\n") == 2
    (line,) = (output / "data_imports_run.lp").read_text().splitlines()
    assert line.startswith(
        f"data_imports_run,host={socket.gethostname()},job=nightly,stream=gas_quality "
    )
    fields = fields_of(line)
    assert (fields["records"], fields["points"], fields["skipped"]) == ("3i", "2i", "1i")
    assert (fields["rejected"], fields["status"]) == ("0i", '"ok"')
    assert fields["newest"] == f"{NEWEST_S}i"
    assert "skipped 1 records with no field value" in run.log


def test_a_stream_whose_schema_changes_mid_run_is_one_run(tmp_path):
    output = tmp_path / "lp"
    wider = singer.schema(
        STREAM, {**PROPERTIES, "n2": {"type": ["number", "null"]}}, ["site_id"], ["published_time"]
    )
    messages = [SCHEMA, reading(0), singer.state({"s": 1}), wider, reading(1), reading(2)]
    run = singer.run_target(tmp_path, {"output_path": str(output)}, messages)
    assert run.returncode == 0, run.log
    (line,) = (output / "data_imports_run.lp").read_text().splitlines()
    fields = fields_of(line)
    assert (fields["records"], fields["points"]) == ("3i", "3i")


def test_an_empty_measurement_name_writes_no_health_point(tmp_path):
    output = tmp_path / "lp"
    config = {"output_path": str(output), "run_measurement": ""}
    run = singer.run_target(tmp_path, config, [SCHEMA, reading(0)])
    assert run.returncode == 0, run.log
    assert sorted(p.name for p in output.iterdir()) == ["gas_quality.lp"]


def test_two_runs_store_two_points_and_a_refused_batch_one_failed(
    tmp_path, influxdb, target_config
):
    bucket = target_config["bucket"]
    for hour in (0, 1):
        run = singer.run_target(tmp_path, target_config, [SCHEMA, reading(hour)])
        assert run.returncode == 0, run.log
    as_text = singer.schema(STREAM, {**PROPERTIES, "cv": {"type": "string"}}, ["site_id"], [])
    refused = singer.run_target(
        tmp_path,
        {**target_config, "mappings": {STREAM: {"timestamp": "published_time"}}},
        [
            as_text,
            singer.record(
                STREAM, {"site_id": 1, "published_time": "2026-01-01T05:00:00Z", "cv": "x"}
            ),
        ],
    )
    assert refused.returncode == 1
    rows = sorted(health_rows(influxdb, bucket), key=lambda r: r["status"] == "failed")
    assert [(r["status"], r["records"], r["points"], r["rejected"]) for r in rows] == [
        ("ok", 1, 1, 0),
        ("ok", 1, 1, 0),
        ("failed", 1, 0, 1),
    ]
    assert rows[1]["newest"] == NEWEST_S
    assert {r["job"] for r in rows} == {"target-influxdb"}
    assert refused.log.strip().splitlines()[-1].split(" | ", 3)[-1].startswith("failed: ")
