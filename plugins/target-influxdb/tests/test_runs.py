"""The run's health points: one per stream at the end of each run, ok or failed."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import typing as t

from target_influxdb.runs import StreamRun, default_job, run_point, status_point
from target_influxdb.target import writer_from_config
from testkit import singer
from testkit.processes import wait_until

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
    run = StreamRun(records=5, points=3, rejected=1, skipped=1, newest_ns=NEWEST_S * 10**9 + 7)
    line, stamp = run_point(
        "data_imports_run",
        job="dev:a-to-b",
        stream="my stream",
        run=run,
        status="failed",
        static_tags={"source": "nationalgas", "empty": ""},
        host="box",
        now_ns=42,
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


REPORT = "target-influxdb.report"


def summaries(run: singer.TargetRun) -> list[dict[str, t.Any]]:
    """The report logger's lines of a run that logged JSON."""
    return [r for r in singer.log_records(run.log) if r["logger_name"] == REPORT]


def test_each_stream_ends_with_one_summary_carrying_the_run_time_of_its_health_point(tmp_path):
    output = tmp_path / "lp"
    wider = singer.schema(
        STREAM, {**PROPERTIES, "n2": {"type": ["number", "null"]}}, ["site_id"], ["published_time"]
    )
    other = singer.schema("other", PROPERTIES, ["site_id"], ["published_time"])
    messages = [
        SCHEMA,
        other,
        reading(0),
        singer.state({"s": 1}),
        wider,  # a second sink for the stream: still one summary
        reading(1),
        reading(2, cv=None),
        singer.record("other", {"site_id": 2, "published_time": "2026-01-01T03:00:00Z"}),
    ]
    run = singer.run_target(
        tmp_path, {"output_path": str(output)}, messages, env=singer.structured_logging(tmp_path)
    )
    assert run.returncode == 0, run.log
    lines = summaries(run)
    assert [r["level"] for r in lines] == ["info", "info"]
    by_stream = {r["extra"]["stream"]: r for r in lines}
    health = {
        line.split(",stream=")[1].split(" ")[0]: int(line.rsplit(" ", 1)[1])
        for line in (output / "data_imports_run.lp").read_text().splitlines()
    }
    run_time_us = by_stream[STREAM]["extra"]["run_time_us"]
    assert {r["extra"]["run_time_us"] * 1000 for r in lines} == set(health.values())
    assert health == {STREAM: run_time_us * 1000, "other": run_time_us * 1000}
    record = by_stream[STREAM]
    assert record["message"].startswith(
        "Stream 'gas_quality': 3 records, 2 points written, newest 2026-01-01T01:00:00+00:00, in "
    )
    extra = record["extra"]
    assert {k: extra[k] for k in extra if k != "run_time_us"} == {
        "stream": STREAM,
        "records": 3,
        "points": 2,
        "rejected": 0,
        "skipped": 1,
        "newest": "2026-01-01T01:00:00+00:00",
        "status": "ok",
    }
    assert isinstance(run_time_us, int)
    assert by_stream["other"]["extra"]["newest"] is None  # no field: skipped, nothing written
    warnings = [r["message"] for r in singer.log_records(run.log) if r["level"] == "warning"]
    assert sorted(warnings) == [  # one a stream, though gas_quality had two sinks
        "Stream 'gas_quality': skipped 1 records with no field value",
        "Stream 'other': skipped 1 records with no field value",
    ]


def test_without_health_points_the_summary_has_no_run_time(tmp_path):
    config = {"output_path": str(tmp_path / "lp"), "run_measurement": ""}
    run = singer.run_target(
        tmp_path, config, [SCHEMA, reading(0)], env=singer.structured_logging(tmp_path)
    )
    assert run.returncode == 0, run.log
    [summary] = summaries(run)
    assert summary["extra"]["run_time_us"] is None


def test_a_failed_run_ends_with_failed_summaries_then_one_error(
    tmp_path, local_influxdb, target_config
):
    local_influxdb.queue_faults([{"status": 500}])
    config = {**target_config, "max_retries": 0}
    run = singer.run_target(
        tmp_path,
        config,
        [SCHEMA, reading(0), reading(1), singer.state({"s": 1})],
        env=singer.structured_logging(tmp_path),
    )
    assert run.returncode == 1
    records = singer.log_records(run.log)
    [summary] = summaries(run)
    assert summary["extra"]["status"] == "failed"
    assert (summary["extra"]["points"], summary["extra"]["rejected"]) == (0, 2)
    [point] = local_influxdb.points(target_config["bucket"], "data_imports_run")
    assert point.time_ns == summary["extra"]["run_time_us"] * 1000
    assert point.fields["status"] == "failed"
    assert point.fields["cause"].startswith("InfluxDB at ")
    last = records[-1]
    assert (last["level"], last["logger_name"]) == ("error", "target-influxdb")
    assert last["message"].startswith("failed: InfluxDB at ")
    assert "exception" not in last  # an expected failure: one line, no traceback


def test_a_runner_sets_status_and_cause_on_the_targets_point(tmp_path, influxdb, target_config):
    run = singer.run_target(
        tmp_path,
        {**target_config, "run_job": "dev:tap-to-target", "static_tags": {"source": "ng"}},
        [SCHEMA, reading(0), reading(1)],
        env=singer.structured_logging(tmp_path),
    )
    assert run.returncode == 0, run.log
    [summary] = summaries(run)
    # what the runner does when the tap failed after the target ended well
    point = status_point(
        "data_imports_run",
        job="dev:tap-to-target",
        stream=summary["extra"]["stream"],
        status="failed",
        cause='tap-nationalgas failed: 500 from "GET /x"',
        time_us=summary["extra"]["run_time_us"],
        static_tags={"source": "ng"},
    )
    writer = writer_from_config(
        {**target_config, "max_retries": None, "rejected_points_path": None}
    )
    assert writer.write_once("data_imports_run", [point]) == (f'bucket "{target_config["bucket"]}"')
    [stored] = influxdb.points(target_config["bucket"], "data_imports_run")
    assert stored.fields["status"] == "failed"
    assert stored.fields["cause"] == 'tap-nationalgas failed: 500 from "GET /x"'
    assert (stored.fields["records"], stored.fields["points"]) == (2, 2)
    assert stored.tags == {
        "host": socket.gethostname(),
        "job": "dev:tap-to-target",
        "source": "ng",
        "stream": STREAM,
    }


def test_a_status_point_has_the_series_of_the_run_point():
    run, _ = run_point(
        "m", job="j", stream="s x", run=StreamRun(), status="ok", static_tags={"job": "x"}, host="h"
    )
    line, stamp = status_point(
        "m", job="j", stream="s x", status="failed", cause='say "no"', time_us=7, host="h"
    )
    assert stamp == 7000  # the run's time in microseconds, the point's in nanoseconds
    assert line == r'm,host=h,job=j,stream=s\ x status="failed",cause="say \"no\""'
    assert run.split(" status=")[0].startswith(line.split(" status=")[0].rsplit(" ", 1)[0])
    assert status_point("m", job="j", stream="s", status="ok", time_us=1, host="h") == (
        'm,host=h,job=j,stream=s status="ok"',
        1000,
    )


def test_the_file_writer_takes_a_status_point_too(tmp_path):
    writer = writer_from_config({"url": "", "output_path": str(tmp_path)})
    point = status_point("data_imports_run", job="j", stream="s", status="failed", time_us=5)
    writer.write_once("data_imports_run", [point])
    assert (tmp_path / "data_imports_run.lp").read_text() == f"{point[0]} 5000\n"


BOOM = """
import sys
from target_influxdb import sinks, target
def boom(self, record, context):
    raise RuntimeError("boom " + "x" * 3000)
sinks.InfluxDBSink.process_record = boom
sys.argv = ["target-influxdb", "--config", sys.argv[1]]
target.main()
"""


def test_an_unexpected_failure_ends_with_one_error_line_and_its_traceback_in_the_log(tmp_path):
    config = singer.write_config(tmp_path, {"output_path": str(tmp_path / "lp")})
    proc = subprocess.run(
        [sys.executable, "-c", BOOM, str(config)],
        input=singer.encode([SCHEMA, reading(0)]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **singer.structured_logging(tmp_path)},
    )
    assert proc.returncode == 1
    assert all(line.startswith("{") for line in proc.stderr.splitlines()), proc.stderr
    records = singer.log_records(proc.stderr)
    last = records[-1]
    assert last["level"] == "error"
    assert last["message"].startswith("failed: RuntimeError: boom xxx")
    assert len(last["message"]) < 1200
    assert last["exception"]["type"] == "RuntimeError"
    assert any(f["function"] == "boom" for f in last["exception"]["traceback"])
    assert [r["extra"]["status"] for r in records if r["logger_name"] == REPORT] == ["failed"]
    (health,) = (tmp_path / "lp" / "data_imports_run.lp").read_text().splitlines()
    assert 'cause="RuntimeError: boom xxx' in health


def test_a_stopped_run_ends_with_its_summaries_and_health_points(tmp_path):
    output = tmp_path / "lp"
    config = singer.write_config(tmp_path, {"output_path": str(output)})
    log = tmp_path / "target.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            singer.target_command(config),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, **singer.structured_logging(tmp_path)},
        )
        assert proc.stdin is not None
        proc.stdin.write(singer.encode([SCHEMA, reading(0), reading(1), singer.state({"s": 1})]))
        proc.stdin.flush()
        wait_until(lambda: "-> measurement" in log.read_text(), "the stream's sink")
        time.sleep(0.5)  # the records are read
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0  # as the SDK has it: drained, then a clean exit
    assert singer.passed_on([json.loads(x) for x in stdout.splitlines()]) == [{"s": 1}]
    assert (output / "gas_quality.lp").read_text().count("\n") == 2
    [summary] = [r for r in singer.log_records(log.read_text()) if r["logger_name"] == REPORT]
    assert (summary["extra"]["status"], summary["extra"]["points"]) == ("failed", 2)
    (health,) = (output / "data_imports_run.lp").read_text().splitlines()
    assert 'status="failed",cause="stopped by SIGTERM"' in health
    assert health.endswith(f" {summary['extra']['run_time_us'] * 1000}")
