"""target-influxdb as a process, writing into a real InfluxDB engine."""

from __future__ import annotations

import json
import select
import subprocess
import time
import typing as t
import urllib.request

import pytest

from testkit import singer
from testkit.processes import wait_until

if t.TYPE_CHECKING:
    from testkit.influx import LocalInfluxDB, RemoteInfluxDB2

    Engine = LocalInfluxDB | RemoteInfluxDB2

STREAM = "gas_quality"
PROPERTIES = {
    "site_id": {"type": "integer"},
    "site_name": {"type": ["string", "null"]},
    "published_time": {"type": "string", "format": "date-time"},
    "cv": {"type": ["number", "null"]},
    "n2": {"type": ["number", "null"]},
}
SCHEMA = singer.schema(STREAM, PROPERTIES, ["site_id", "published_time"], ["published_time"])
BASE_S = 1_767_225_600  # 2026-01-01T00:00:00Z


def reading(i: int, cv: object = None) -> dict[str, t.Any]:
    """The i-th reading: 10 sites, one reading per site every 2 minutes."""
    site, step = i % 10, i // 10
    stamp = BASE_S + step * 120
    return singer.record(
        STREAM,
        {
            "site_id": site,
            "site_name": f"SITE {site}",
            "published_time": f"{_iso(stamp)}",
            "cv": 39 + (i % 7) / 4 if cv is None else cv,
            "n2": 1.25,
        },
    )


def _iso(seconds: int) -> str:
    import datetime as dt  # noqa: PLC0415

    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()


def stored(engine: Engine, bucket: str) -> dict[tuple[str, int], dict[str, t.Any]]:
    """Stored gas_quality points by (site_id, time)."""
    return {(p.tags["site_id"], p.time_ns): p.fields for p in engine.points(bucket, STREAM)}


def expected(indexes: range) -> dict[tuple[str, int], dict[str, t.Any]]:
    """What the readings with these indexes must look like once stored."""
    out = {}
    for i in indexes:
        values = reading(i)["record"]
        stamp = (BASE_S + (i // 10) * 120) * 10**9
        out[(str(values["site_id"]), stamp)] = {
            "site_name": values["site_name"],
            "cv": float(values["cv"]),
            "n2": 1.25,
        }
    return out


@pytest.mark.parametrize("gzip", [True, False])
def test_special_characters_and_types_round_trip_exactly(tmp_path, influxdb, target_config, gzip):
    props = {
        "key": {"type": "string"},
        "at": {"type": "string", "format": "date-time"},
        "name with, comma=eq": {"type": "string"},
        "flt": {"type": "number"},
        "int": {"type": "integer"},
        "flag": {"type": "boolean"},
        "nested": {"type": "object", "properties": {"deep key": {"type": "integer"}}},
    }
    tag_values = [
        "plain",
        "sp ace",
        "com,ma",
        "eq=ual",
        "bäck\\slash",
        "ünïcødé ✓",
        'quo"te',
        "trail\\",
    ]
    strings = [
        'say "hi"',
        "back\\slash",
        "trailing\\",
        "new\nline",
        "tab\tand ✓",
        "",
        "x" * 1000,
        "z",
    ]
    messages = [singer.schema("meas ure,ment", props, ["key", "at"])]
    for i, (tag, text) in enumerate(zip(tag_values, strings, strict=True)):
        messages.append(
            singer.record(
                "meas ure,ment",
                {
                    "key": tag,
                    "at": f"2026-03-29T0{i}:30:00.123456+01:00",
                    "name with, comma=eq": text,
                    "flt": -1.5e-7 * (i + 1),
                    "int": -(2**62) + i,
                    "flag": bool(i % 2),
                    "nested": {"deep key": i},
                },
            )
        )
    run = singer.run_target(tmp_path, {**target_config, "gzip": gzip}, messages)
    assert run.returncode == 0, run.log

    points = {p.tags["key"]: p for p in influxdb.points(target_config["bucket"], "meas ure,ment")}
    # line protocol cannot end a tag value in a backslash: as InfluxDB's client does, the
    # target writes it as an escaped space, so the stored value ends in a space instead
    stored_as = {tag: tag[:-1] + " " if tag.endswith("\\") else tag for tag in tag_values}
    assert sorted(points) == sorted(stored_as.values())
    for i, (tag, text) in enumerate(zip(tag_values, strings, strict=True)):
        point = points[stored_as[tag]]
        assert point.fields == {
            "name with, comma=eq": text,
            "flt": -1.5e-7 * (i + 1),
            "int": -(2**62) + i,
            "flag": bool(i % 2),
            "nested.deep key": i,
        }
        # 0i:30:00.123456 in BST is (0i-1):30 UTC; microseconds kept
        assert point.time_ns == (1_774_744_200 + (i - 1) * 3600) * 10**9 + 123_456_000
    assert influxdb.field_types(target_config["bucket"], "meas ure,ment") == {
        "name with, comma=eq": "string",
        "flt": "float",
        "int": "integer",
        "flag": "boolean",
        "nested.deep key": "integer",
    }


def test_a_whole_number_then_a_fraction_land_as_two_floats(tmp_path, influxdb, target_config):
    messages = [SCHEMA, reading(0, cv=39), reading(10, cv=39.5)]
    run = singer.run_target(tmp_path, target_config, messages)
    assert run.returncode == 0, run.log
    assert [p.fields["cv"] for p in influxdb.points(target_config["bucket"], STREAM)] == [
        39.0,
        39.5,
    ]
    assert influxdb.field_types(target_config["bucket"], STREAM)["cv"] == "float"


def test_resending_the_same_records_adds_no_point(tmp_path, influxdb, target_config):
    messages = [SCHEMA, *(reading(i) for i in range(300)), singer.state({"bookmarks": {"x": 1}})]
    first = singer.run_target(tmp_path, {**target_config, "batch_size": 64}, messages)
    second = singer.run_target(tmp_path, {**target_config, "batch_size": 100}, messages)
    assert first.returncode == second.returncode == 0, second.log
    assert first.passed_on == second.passed_on == [{"bookmarks": {"x": 1}}]
    assert stored(influxdb, target_config["bucket"]) == expected(range(300))


def test_engine_stopped_mid_stream_fails_without_state_and_a_rerun_completes(
    tmp_path,
    local_influxdb: LocalInfluxDB,
    target_config,
):
    config = {**target_config, "batch_size": 50, "max_retries": 1}
    head = [SCHEMA, *(reading(i) for i in range(50)), singer.state({"bookmarks": {"n": 50}})]
    tail = [*(reading(i) for i in range(50, 150)), singer.state({"bookmarks": {"n": 150}})]
    bucket = config["bucket"]

    proc = subprocess.Popen(
        singer.target_command(singer.write_config(tmp_path, config)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    proc.stdin.write(singer.encode(head))
    proc.stdin.flush()
    wait_until(lambda: len(local_influxdb.points(bucket, STREAM)) == 50, "the first batch")
    # the STATE after the first batch is passed on once that batch is stored; wait for it, so
    # that the engine stops after it, not while the target is still reading the head
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    assert ready, "no STATE passed on after the first batch was stored"
    first = proc.stdout.readline()
    local_influxdb.stop_engine()
    stdout, stderr = proc.communicate(singer.encode(tail), timeout=120)

    assert proc.returncode != 0
    states = [json.loads(line) for line in (first + stdout).splitlines()]
    assert states == [{"bookmarks": {"n": 50}}], "no STATE may pass the last written batch"
    assert 'did not accept the batch of stream "gas_quality" after 1 retries' in stderr
    assert "Run health points not written: InfluxDB at" in stderr  # one quick attempt
    assert stderr.strip().splitlines()[-1].split(" | ", 3)[-1].startswith("failed: InfluxDB at")
    local_influxdb.start_engine()
    assert stored(local_influxdb, bucket) == expected(range(50))

    rerun = singer.run_target(tmp_path, config, [*head, *tail])
    assert rerun.returncode == 0, rerun.log
    assert rerun.states[-1] == {"bookmarks": {"n": 150}}
    assert stored(local_influxdb, bucket) == expected(range(150))


def test_a_new_state_is_passed_on_at_once_once_the_points_before_it_are_stored(
    tmp_path, influxdb, target_config
):
    # A tap sends a STATE after each window of a backfill: the target writes the points received
    # before it and passes it on then, not at the end of the input, so that a run killed later
    # (tap, target and Meltano together) keeps the bookmarks of the windows already stored.
    proc = subprocess.Popen(
        singer.target_command(singer.write_config(tmp_path, target_config)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        for n in (30, 60):
            window = [*(reading(i) for i in range(n - 30, n)), singer.state({"n": n})]
            proc.stdin.write(singer.encode([SCHEMA, *window] if n == 30 else window))
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            assert ready, f"no STATE passed on after the window up to {n}"
            assert json.loads(proc.stdout.readline()) == {"n": n}
            assert stored(influxdb, target_config["bucket"]) == expected(range(n))
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_503_with_retry_after_is_retried_and_every_point_written_once(
    tmp_path,
    local_influxdb: LocalInfluxDB,
    target_config,
):
    local_influxdb.queue_faults(
        [{"status": 503, "retry_after": 1}, {"status": 429, "retry_after": 1}]
    )
    run = singer.run_target(tmp_path, target_config, [SCHEMA, *(reading(i) for i in range(40))])
    assert run.returncode == 0, run.log
    assert "Retry in 1s" in run.log
    stats = local_influxdb.proxy_stats()
    assert stats["faults_served"] == 2
    assert stats["queued"] == []
    assert stored(local_influxdb, target_config["bucket"]) == expected(range(40))


def test_a_hanging_write_times_out_and_is_retried(tmp_path, local_influxdb, target_config):
    local_influxdb.queue_faults([{"hang": 3}])
    config = {**target_config, "timeout": 1}
    run = singer.run_target(tmp_path, config, [SCHEMA, *(reading(i) for i in range(20))])
    assert run.returncode == 0, run.log
    assert stored(local_influxdb, config["bucket"]) == expected(range(20))


def test_retries_are_bounded(tmp_path, local_influxdb, target_config):
    local_influxdb.queue_faults([{"status": 503}] * 3)
    run = singer.run_target(tmp_path, target_config, [SCHEMA, reading(0), singer.state({"a": 1})])
    assert run.returncode != 0
    assert run.states == []
    assert "after 2 retries" in run.log
    assert local_influxdb.proxy_stats()["faults_served"] == 3


@pytest.mark.parametrize("status", [200, 302])
def test_a_web_page_where_influxdb_was_due_fails_the_write_and_keeps_the_state(
    tmp_path, local_influxdb: LocalInfluxDB, target_config, status
):
    local_influxdb.queue_faults([{"html": True, "status": status}])
    messages = [SCHEMA, *(reading(i) for i in range(5)), singer.state({"a": 1})]
    run = singer.run_target(tmp_path, target_config, messages)
    assert run.returncode != 0
    assert run.states == []
    if status == 200:
        assert (
            f"{local_influxdb.url} answered 200 text/html; charset=utf-8: this is not the "
            "InfluxDB write API (it answers 204); check INFLUXDB_URL" in run.log
        )
    else:  # a redirect is not followed, and named (see test_security.py)
        assert f"INFLUXDB_URL {local_influxdb.url} answered 302 (redirect to " in run.log
    assert stored(local_influxdb, target_config["bucket"]) == {}


def test_wrong_token_fails_at_once_naming_the_cause_and_never_the_token(
    tmp_path, influxdb, target_config
):
    secret = "wrong-token-0123456789"
    run = singer.run_target(tmp_path, {**target_config, "token": secret}, [SCHEMA, reading(0)])
    assert run.returncode != 0
    assert "InfluxDB rejected the token (401" in run.log
    assert secret not in run.log


def test_unknown_bucket_fails_naming_bucket_and_org(tmp_path, influxdb, target_config):
    config = {**target_config, "bucket": "no_such_bucket"}
    run = singer.run_target(tmp_path, config, [SCHEMA, reading(0)])
    assert run.returncode != 0
    assert f'bucket "no_such_bucket" not found in org "{config["org"]}"' in run.log


def test_type_conflict_fails_naming_the_first_rejected_line(tmp_path, influxdb, target_config):
    as_text = singer.schema(
        STREAM, {**PROPERTIES, "cv": {"type": "string"}}, ["site_id"], ["published_time"]
    )
    assert (
        singer.run_target(tmp_path, target_config, [as_text, reading(0, cv="high")]).returncode == 0
    )
    run = singer.run_target(tmp_path, target_config, [SCHEMA, reading(10, cv=40.5)])
    assert run.returncode != 0
    assert "(422" in run.log
    assert 'first rejected line: gas_quality,site_id=0 site_name="SITE 0",cv=40.5' in run.log


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, 'stream "gas_quality": record has no value for timestamp property "published_time"'),
        (
            "garbage",
            (
                'stream "gas_quality": timestamp property "published_time" has unusable value '
                "'garbage'"
            ),
        ),
    ],
)
def test_missing_or_bad_timestamp_stops_the_run_and_no_state_passes_it(
    tmp_path,
    influxdb,
    target_config,
    value,
    message,
):
    nullable = {**PROPERTIES, "published_time": {"type": ["string", "null"], "format": "date-time"}}
    stream_schema = singer.schema(STREAM, nullable, ["site_id"], ["published_time"])
    bad = singer.record(STREAM, {"site_id": 3, "published_time": value, "cv": 39.1})
    run = singer.run_target(
        tmp_path, target_config, [stream_schema, reading(0), singer.state({"a": 1}), bad]
    )
    assert run.returncode != 0
    assert run.states == [{"a": 1}]  # the state before the bad record, once its point is stored
    assert message in run.log
    assert stored(influxdb, target_config["bucket"]) == expected(range(1))


def test_file_mode_writes_line_protocol_the_engine_accepts(
    tmp_path, influxdb: Engine, target_config
):
    output = tmp_path / "lp"
    run = singer.run_target(
        tmp_path,
        {"output_path": str(output), "batch_size": 7},
        [SCHEMA, *(reading(i) for i in range(30)), singer.state({"s": 1})],
    )
    assert run.returncode == 0, run.log
    assert run.passed_on == [{"s": 1}]
    body = (output / "gas_quality.lp").read_bytes()
    assert body.count(b"\n") == 30
    _post_lines(influxdb, target_config["bucket"], body)
    assert stored(influxdb, target_config["bucket"]) == expected(range(30))


def _post_lines(engine: Engine, bucket: str, body: bytes) -> None:
    url = f"{engine.url}/api/v2/write?org={engine.org}&bucket={bucket}&precision=ns"
    request = urllib.request.Request(
        url, data=body, headers={"Authorization": f"Token {engine.token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 204


def test_missing_connection_settings_are_named(tmp_path):
    run = singer.run_target(tmp_path, {"url": "http://127.0.0.1:9"}, [SCHEMA])
    assert run.returncode != 0
    assert "`url` is set, so these settings are required too: token, org, bucket" in run.log


def last_line(run: singer.TargetRun) -> str:
    """The message of the last line the target logged."""
    return run.log.strip().splitlines()[-1].split(" | ", 3)[-1].strip()


def test_a_closed_port_fails_at_start_up_in_seconds_naming_url_and_fix(tmp_path, target_config):
    config = {**target_config, "url": "http://127.0.0.1:9", "max_retries": 5, "timeout": 30}
    started = time.monotonic()
    run = singer.run_target(tmp_path, config, "")  # before any data arrives
    assert run.returncode == 1
    assert time.monotonic() - started < 15
    assert last_line(run) == (
        "failed: could not reach InfluxDB at http://127.0.0.1:9 (connection refused): start "
        "InfluxDB, or check INFLUXDB_URL (the `url` setting)"
    )
    assert "Traceback" not in run.log
    assert config["token"] not in run.log


def test_a_wrong_token_and_an_unknown_bucket_fail_at_start_up(tmp_path, influxdb, target_config):
    secret = "wrong-token-0123456789"
    wrong_token = singer.run_target(tmp_path, {**target_config, "token": secret}, "")
    assert wrong_token.returncode == 1
    assert last_line(wrong_token).startswith(
        "failed: InfluxDB rejected the token (401 at start-up)"
    )
    assert secret not in wrong_token.log
    no_bucket = singer.run_target(tmp_path, {**target_config, "bucket": "nope"}, "")
    assert no_bucket.returncode == 1
    assert last_line(no_bucket).startswith(
        f'failed: bucket "nope" not found in org "{target_config["org"]}" at {influxdb.url} '
        "(404 at start-up): create it or change the `bucket`/`org` settings"
    )
    assert "Traceback" not in wrong_token.log + no_bucket.log
