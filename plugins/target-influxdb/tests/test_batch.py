"""BATCH messages: the SDK's batch files loaded through the encoder and the delivery rules.

Cases ``tests/conformance/batch_*.jsonl`` name their files under ``@BATCHES@``, the folder the
test writes them to; each runs in both modes on the real engine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import io
import json
import signal
import subprocess
import sys
import time
import typing as t

import pytest

from target_influxdb.reader import FloatSingerReader
from testkit import expected, singer
from testkit.conformance import run_both
from testkit.influx import write_lines
from testkit.pipeline import BACKFILL, Pipeline
from testkit.processes import REPO_ROOT, stop_process, wait_until

if t.TYPE_CHECKING:
    from pathlib import Path

    from testkit.fake_nationalgas import FakeNationalGasProcess
    from testkit.influx import LocalInfluxDB, RemoteInfluxDB2

STREAM = "readings"
PROPERTIES = {
    "site": {"type": "string"},
    "at": {"type": "string", "format": "date-time"},
    "cv": {"type": ["number", "null"]},
    "count": {"type": ["integer", "null"]},
    "name": {"type": ["string", "null"]},
}
SCHEMA = singer.schema(STREAM, PROPERTIES, ["site", "at"], ["at"])
STATE_1 = singer.state({"bookmarks": {STREAM: {"replication_key_value": "1"}}})
STATE_2 = singer.state({"bookmarks": {STREAM: {"replication_key_value": "2"}}})


def reading(minute: int, site: str = "a") -> dict[str, t.Any]:
    """One record of a batch file: a reading at 2026-01-01T00:<minute>:00Z."""
    return {
        "site": site,
        "at": f"2026-01-01T00:{minute:02d}:00Z",
        "cv": 39 + minute / 8,
        "count": minute,
        "name": f'Ünïcode, "quoted" {minute}',
    }


def write_batch(path: Path, records: list[dict[str, t.Any]], *, gzipped: bool = True) -> str:
    """A batch file as the SDK writes it (one JSON record a line); its ``file://`` URL."""
    body = "".join(json.dumps(r) + "\n" for r in records).encode()
    path.write_bytes(gzip.compress(body) if gzipped else body)
    return path.as_uri()


def batch(urls: list[str], compression: str = "gzip", fmt: str = "jsonl") -> dict[str, t.Any]:
    """A BATCH message of the readings stream."""
    return {
        "type": "BATCH",
        "stream": STREAM,
        "encoding": {"format": fmt, "compression": compression},
        "manifest": urls,
    }


def as_stored(record: dict[str, t.Any]) -> tuple[dict[str, str], dict[str, t.Any]]:
    """Tags and fields of a reading once stored."""
    fields = {"cv": float(record["cv"]), "count": record["count"], "name": record["name"]}
    return {"site": record["site"]}, fields


def test_gzip_batch_stored_exactly_in_both_modes(
    tmp_path: Path, target_config: dict[str, t.Any], influxdb: LocalInfluxDB | RemoteInfluxDB2
) -> None:
    """Two gzip files of one BATCH: every record once, a batch record wins over an earlier RECORD.

    ``batch_size`` 7 makes a file's points go in several writes, and one record with no field
    value is skipped and counted, as a RECORD's would be.
    """
    folder = tmp_path / "batches"
    folder.mkdir()
    first = [reading(m) for m in range(30)]
    second = [reading(m, "b") for m in range(30, 60)]
    skipped = {"site": "b", "at": "2026-01-01T00:59:30Z"}
    write_batch(folder / "readings-1.json.gz", first)
    write_batch(folder / "readings-2.json.gz", [*second, skipped])
    both = run_both(
        tmp_path,
        target_config,
        influxdb,
        "batch_gzip",
        config={"batch_size": 7},
        placeholders={"@BATCHES@": str(folder)},
    )
    for mode in both.modes:
        assert mode.run.returncode == 0, mode.run.log
        assert not mode.load_errors
        points = mode.points(STREAM)
        assert [(p.tags, p.fields) for p in points] == [as_stored(r) for r in first + second]
        # the RECORD and the 61 batch records; its point and the 60 of the batch written
        assert "Stream 'readings': 62 records, 61 points written" in mode.run.log
        assert "skipped 1 records with no field value" in mode.run.log
    assert [s["bookmarks"][STREAM]["replication_key_value"] for s in both.influx.run.passed_on] == [
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:59:00Z",
    ]
    assert (folder / "readings-1.json.gz").exists()  # `delete_batch_files` is off by default


def test_plain_batch_stored_exactly_in_both_modes(
    tmp_path: Path, target_config: dict[str, t.Any], influxdb: LocalInfluxDB | RemoteInfluxDB2
) -> None:
    """An uncompressed JSONL file (``compression: none``) is stored the same way."""
    folder = tmp_path / "batches"
    folder.mkdir()
    records = [reading(m) for m in range(60)]
    write_batch(folder / "readings-1.jsonl", records, gzipped=False)
    both = run_both(
        tmp_path, target_config, influxdb, "batch_plain", placeholders={"@BATCHES@": str(folder)}
    )
    for mode in both.modes:
        assert mode.run.returncode == 0, mode.run.log
        assert not mode.load_errors
        assert [(p.tags, p.fields) for p in mode.points(STREAM)] == [as_stored(r) for r in records]
    assert both.influx.run.passed_on[-1]["bookmarks"][STREAM]["replication_key_value"] == (
        "2026-01-01T00:59:00Z"
    )


def test_batch_files_deleted_once_stored(
    tmp_path: Path, target_config: dict[str, t.Any], influxdb: LocalInfluxDB | RemoteInfluxDB2
) -> None:
    """With ``delete_batch_files``, each file is gone once its points are stored."""
    url = write_batch(tmp_path / "r.json.gz", [reading(1), reading(2)])
    run = singer.run_target(
        tmp_path, {**target_config, "delete_batch_files": True}, [SCHEMA, batch([url]), STATE_1]
    )
    assert run.returncode == 0, run.log
    assert len(influxdb.points(target_config["bucket"], STREAM)) == 2
    assert not (tmp_path / "r.json.gz").exists()


def test_state_after_a_batch_waits_for_its_points(
    tmp_path: Path, target_config: dict[str, t.Any], local_influxdb: LocalInfluxDB
) -> None:
    """A write of the batch's points fails: the STATE after the BATCH is never passed on."""
    url = write_batch(tmp_path / "r.json.gz", [reading(m) for m in range(10)])
    local_influxdb.queue_faults([{"status": 503}] * 3)  # max_retries 2: 3 answers fail it
    messages = [SCHEMA, STATE_1, batch([url]), STATE_2]
    run = singer.run_target(tmp_path, {**target_config, "delete_batch_files": True}, messages)
    assert run.returncode != 0
    assert run.passed_on == [STATE_1["value"]], run.log
    assert 'did not accept the batch of stream "readings"' in run.log
    assert (tmp_path / "r.json.gz").exists()  # not stored: the file stays
    assert local_influxdb.points(target_config["bucket"], STREAM) == []


def test_a_file_of_several_batches_is_stored_whole(
    tmp_path: Path, target_config: dict[str, t.Any], influxdb: LocalInfluxDB | RemoteInfluxDB2
) -> None:
    """Written 4 points a write, each while the next 4 are encoded: all stored, then the STATE."""
    records = [reading(m) for m in range(14)]
    url = write_batch(tmp_path / "r.json.gz", records)
    config = {**target_config, "batch_size": 4}
    run = singer.run_target(tmp_path, config, [SCHEMA, STATE_1, batch([url]), STATE_2])
    assert run.returncode == 0, run.log
    assert run.passed_on == [STATE_1["value"], STATE_2["value"]]
    stored = influxdb.points(target_config["bucket"], STREAM)
    assert [(p.tags, p.fields) for p in stored] == [as_stored(r) for r in records]
    assert "14 records, 14 points written" in run.log


def test_a_write_failing_while_the_next_batch_is_encoded_fails_the_run(
    tmp_path: Path, target_config: dict[str, t.Any], local_influxdb: LocalInfluxDB
) -> None:
    """The second write of a file fails: the run fails, the STATE after the BATCH never goes."""
    url = write_batch(tmp_path / "r.json.gz", [reading(m) for m in range(12)])
    # the first write goes through; the second fails its three attempts (max_retries 2)
    local_influxdb.queue_faults([{"hang": 0.01}] + [{"status": 503}] * 3)
    config = {**target_config, "batch_size": 4, "delete_batch_files": True}
    run = singer.run_target(tmp_path, config, [SCHEMA, STATE_1, batch([url]), STATE_2])
    assert run.returncode == 1
    assert run.passed_on == [STATE_1["value"]], run.log
    assert 'did not accept the batch of stream "readings"' in run.log
    assert "Traceback" not in run.log
    assert (tmp_path / "r.json.gz").exists()
    stored = local_influxdb.points(target_config["bucket"], STREAM)
    assert [p.fields["count"] for p in stored] == [0, 1, 2, 3]  # the first write alone
    # the start-up check, the first write and the second's three attempts: none after them
    assert local_influxdb.proxy_stats()["write_requests"] == 1 + 1 + 3


def test_rejected_points_of_a_batch_set_aside(
    tmp_path: Path, target_config: dict[str, t.Any], influxdb: LocalInfluxDB | RemoteInfluxDB2
) -> None:
    """A batch point InfluxDB refuses (a field type conflict) goes to ``rejected_points_path``."""
    bucket = target_config["bucket"]
    write_lines(influxdb, bucket, b"readings,site=a count=1.5 1767225660000000000")  # a float
    url = write_batch(tmp_path / "r.json.gz", [reading(0), reading(1), reading(2)])
    rejected = tmp_path / "rejected.lp"
    config = {**target_config, "rejected_points_path": str(rejected)}
    run = singer.run_target(tmp_path, config, [SCHEMA, batch([url]), STATE_2])
    assert run.returncode == 0, run.log
    assert run.passed_on == [STATE_2["value"]]
    # the field's type is kept per shard: every point of the batch in that week is refused
    assert [line.split(" ")[-1] for line in rejected.read_text().splitlines()] == [
        "1767225600000000000",
        "1767225660000000000",
        "1767225720000000000",
    ]
    assert "3 records, 0 points written" in run.log


@pytest.mark.parametrize(
    ("message", "cause"),
    [
        pytest.param(batch(["file:///nonexistent/r.json.gz"]), "no such file", id="missing"),
        pytest.param(batch(["@HERE@/bad.json.gz"]), "not a complete gzip file", id="not-gzip"),
        pytest.param(batch(["@HERE@/bad.json.gz"], "none"), "not JSON lines", id="not-json"),
    ],
)
def test_unreadable_batch_file_fails_in_one_line(
    tmp_path: Path,
    target_config: dict[str, t.Any],
    influxdb: LocalInfluxDB | RemoteInfluxDB2,
    message: dict[str, t.Any],
    cause: str,
) -> None:
    """A missing or broken manifest file: one ERROR line naming stream, file and encoding."""
    (tmp_path / "bad.json.gz").write_text("not json\n")
    message = json.loads(json.dumps(message).replace("@HERE@", tmp_path.as_uri()))
    run = singer.run_target(tmp_path, target_config, [SCHEMA, STATE_1, message, STATE_2])
    assert run.returncode == 1
    assert run.passed_on == [STATE_1["value"]]
    errors = [line for line in run.log.splitlines() if "ERROR" in line]
    assert len(errors) == 1, run.log
    url = message["manifest"][0]
    encoding = f"jsonl+{message['encoding']['compression']}"
    assert (
        f'failed: stream "readings": batch file {url} ({encoding}) could not be read' in (errors[0])
    )
    assert cause in errors[0]
    assert "Traceback" not in run.log


def test_unsupported_encoding_fails_in_one_line(
    tmp_path: Path, target_config: dict[str, t.Any]
) -> None:
    """A parquet batch: one line naming the stream, the file and the encoding."""
    message = batch(["file:///tmp/r.parquet"], compression="none", fmt="parquet")
    run = singer.run_target(tmp_path, target_config, [SCHEMA, message, STATE_2])
    assert run.returncode == 1
    assert run.passed_on == []
    assert (
        'failed: stream "readings": batch files file:///tmp/r.parquet are encoded as '
        "parquet+none, which this target cannot read"
    ) in run.log
    assert "Traceback" not in run.log


def test_batch_of_a_mapped_stream_fails(tmp_path: Path, target_config: dict[str, t.Any]) -> None:
    """Stream maps do not apply to batch files: a mapped stream sent as a BATCH fails, named."""
    url = write_batch(tmp_path / "r.json.gz", [reading(1)])
    config = {**target_config, "stream_maps": {STREAM: {"cv": "cv * 2"}}}
    run = singer.run_target(tmp_path, config, [SCHEMA, batch([url]), STATE_2])
    assert run.returncode == 1
    assert 'stream "readings" arrives in BATCH files, and stream maps change it' in run.log
    assert run.passed_on == []


def test_batch_validated_like_records(tmp_path: Path, target_config: dict[str, t.Any]) -> None:
    """A batch record that breaks the schema fails the run as the same RECORD would."""
    url = write_batch(tmp_path / "r.json.gz", [reading(1), {**reading(2), "count": "two"}])
    config = {**target_config, "validate_records": True}
    run = singer.run_target(tmp_path, config, [SCHEMA, batch([url]), STATE_2])
    assert run.returncode == 1
    assert 'property "count" value "two" is not of type integer' in run.log
    assert run.passed_on == []


def test_unknown_message_type_fails_naming_it(
    tmp_path: Path, target_config: dict[str, t.Any], influxdb: LocalInfluxDB | RemoteInfluxDB2
) -> None:
    """A message type the target has no handler for stops the run before the next STATE."""
    record = singer.record(STREAM, reading(1))
    run = singer.run_target(
        tmp_path, target_config, [SCHEMA, record, STATE_1, {"type": "FOO"}, STATE_2]
    )
    assert run.returncode == 1
    assert run.passed_on == [STATE_1["value"]]
    errors = [line for line in run.log.splitlines() if "ERROR" in line]
    assert len(errors) == 1, run.log
    assert "failed: a Singer message of type 'FOO' cannot be handled" in errors[0]
    assert "Traceback" not in run.log
    health = influxdb.points(target_config["bucket"], "data_imports_run")
    assert [p.fields["status"] for p in health] == ["failed"]


def test_batch_records_are_flattened_as_records_are(
    tmp_path: Path, target_config: dict[str, t.Any], influxdb: LocalInfluxDB | RemoteInfluxDB2
) -> None:
    """With `flattening_enabled`, a batch file's nested records are stored as RECORDs are."""
    properties = {
        **PROPERTIES,
        "gas": {"type": "object", "properties": {"cv": {"type": "number"}}},
    }
    record = {**reading(1), "gas": {"cv": 39.5}}
    url = write_batch(tmp_path / "readings-1.json.gz", [record])
    schema = singer.schema(STREAM, properties, ["site", "at"], ["at"])
    config = {**target_config, "flattening_enabled": True, "flattening_max_depth": 1}
    stored = []
    for n, messages in enumerate([[schema, singer.record(STREAM, record)], [schema, batch([url])]]):
        bucket = f"flat_{n}"
        influxdb.create_bucket(bucket)
        run = singer.run_target(tmp_path, {**config, "bucket": bucket}, [*messages, STATE_1])
        assert run.returncode == 0, run.log
        [point] = influxdb.points(bucket, STREAM)
        stored.append((point.tags, point.fields))
    assert stored[0] == stored[1]
    assert stored[0][1]["gas__cv"] == 39.5


def test_the_reader_hands_unknown_types_to_its_hooks_else_refuses_them() -> None:
    """With the target's hooks an unknown type goes to them; without, a ValueError names it."""
    seen: list[dict[str, t.Any]] = []

    class Hooks:
        def handlers(self, sdk_handlers):
            return dict(sdk_handlers)

        def unknown_message(self, message_dict):
            seen.append(message_dict)

        def reading(self):
            return contextlib.nullcontext()

    reader = FloatSingerReader()
    reader.hooks = Hooks()
    counts = reader.process_lines(io.StringIO('{"type": "FOO"}\n'), {})
    assert seen == [{"type": "FOO"}]
    assert counts == {"FOO": 1}
    with pytest.raises(ValueError, match="FOO"):
        FloatSingerReader().process_lines(io.StringIO('{"type": "FOO"}\n'), {})


def batch_files_before_each_state(messages: list[dict[str, t.Any]]) -> list[tuple[dict, dict]]:
    """For each STATE: the newest time per (stream, partition) of the batch files before it."""
    newest: dict[tuple[str, str], str] = {}
    out = []
    for message in messages:
        if message["type"] == "BATCH":
            for url in message["manifest"]:
                path = url.removeprefix("file://")
                with gzip.open(path, "rt") as lines:
                    for line in lines:
                        key, moment = partition(message["stream"], json.loads(line))
                        newest[key] = max(newest.get(key, moment), moment)
        elif message["type"] == "STATE":
            out.append((message["value"], dict(newest)))
    return out


def partition(stream: str, record: dict[str, t.Any]) -> tuple[tuple[str, str], str]:
    """A backfill record's partition and bookmark value, as the tap keeps them."""
    if stream == "publications":
        return (stream, str(record["publication_id"])), record["generated_time"]
    return (stream, str(record["site_id"])), record["published_time"]


def instant(text: str) -> dt.datetime:
    """An ISO 8601 instant, aware."""
    return dt.datetime.fromisoformat(text)


def test_tap_backfill_in_batches_equals_record_mode(
    tmp_path: Path,
    fake_api: FakeNationalGasProcess,
    tap_config: dict[str, t.Any],
    influxdb: LocalInfluxDB | RemoteInfluxDB2,
    target_config: dict[str, t.Any],
) -> None:
    """The backfill job with ``batch_config``: the same points and final state as RECORDs.

    Small batch files (100 records) make many BATCH messages; every STATE the tap sends covers
    only records of files announced before it (no partition bookmark ahead of the data), and
    the target deletes each file once stored.
    """
    start = {"start_date": "2026-02-01T00:00:00+00:00", "end_date": "2026-02-09"}
    records_bucket = target_config["bucket"]
    by_records = Pipeline(tmp_path / "records", {**tap_config, **start}, target_config)
    (tmp_path / "records").mkdir()
    assert by_records.run(BACKFILL).ok

    batches = tmp_path / "batches"
    batch_config = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": str(batches)},
        "batch_size": 100,
    }
    batch_bucket = f"{records_bucket}_b"
    influxdb.create_bucket(batch_bucket)
    batch_target = {**target_config, "bucket": batch_bucket, "delete_batch_files": True}
    (tmp_path / "batch").mkdir()
    in_batches = Pipeline(tmp_path / "batch", {**tap_config, **start}, batch_target)
    messages = [
        json.loads(line)
        for line in in_batches.tap_in_process(BACKFILL, {"batch_config": batch_config}).splitlines()
    ]
    kinds = {m["type"] for m in messages}
    assert "BATCH" in kinds
    assert "RECORD" not in kinds
    for state, newest in batch_files_before_each_state(messages):
        for stream, stream_state in state.get("bookmarks", {}).items():
            for entry in stream_state.get("partition_bookmarks", []):
                have = newest.get((stream, entry["key"]))
                assert have is not None, (stream, entry)
                assert instant(entry["bookmark"]) <= instant(have), (stream, entry, have)
    loaded = in_batches.load("".join(json.dumps(m) + "\n" for m in messages))
    assert loaded.target_code == 0, loaded.log[-4000:]
    assert list(batches.iterdir()) == []

    stored = expected.snapshot(influxdb, batch_bucket)
    assert stored == expected.snapshot(influxdb, records_bucket)
    assert len(stored["gas_quality"]) > 1000
    assert stored["gas_publication"]
    assert loaded.states[-1] == by_records.states[BACKFILL]


def test_tap_stopped_while_batching_sends_no_state_beyond_its_batch_files(
    tmp_path: Path,
    fake_api: FakeNationalGasProcess,
    tap_config: dict[str, t.Any],
    target_config: dict[str, t.Any],
) -> None:
    """SIGTERM while the API hangs: the tap's last STATE is the one after its last BATCH.

    The SDK sends the tap's whole state on SIGTERM; with records of a settled window still
    waiting for their batch file, that state would run ahead of every file announced.
    """
    history = "/gasquality/historicdata"
    fake_api.queue_faults([{"path": history}] * 2 + [{"path": history, "hang": 30}])
    batch_config = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": str(tmp_path / "batches")},
        "batch_size": 100,  # 576 records a window: a file ends inside each window
    }
    start = {"start_date": "2026-02-01T00:00:00+00:00", "batch_config": batch_config}
    config = singer.write_config(tmp_path, {**tap_config, **start}, "batching-tap.json")
    pipeline = Pipeline(tmp_path, tap_config, target_config)
    out = tmp_path / "tap.out"
    catalog = str(pipeline.catalog(BACKFILL))
    command = [
        sys.executable,
        "-m",
        "tap_nationalgas",
        "--config",
        str(config),
        "--catalog",
        catalog,
    ]
    with out.open("w") as stdout, (tmp_path / "tap.err").open("w") as stderr:
        tap = subprocess.Popen(command, stdout=stdout, stderr=stderr)
        try:
            wait_until(
                lambda: fake_api.stats()["requests"].get(history, 0) >= 3,
                "the tap waiting on the third window",
                timeout=60,
            )
            time.sleep(1)
            tap.send_signal(signal.SIGTERM)
            assert tap.wait(timeout=30) == 0
        finally:
            stop_process(tap)
    messages = [json.loads(line) for line in out.read_text().splitlines()]
    assert [m["type"] for m in messages].count("BATCH") == 2 * 576 // 100
    assert messages[-1]["type"] == "STATE"
    assert messages[-2]["type"] == "BATCH"
    for state, newest in batch_files_before_each_state(messages):
        for entry in state["bookmarks"]["gas_quality_history"].get("partition_bookmarks", []):
            have = newest.get(("gas_quality_history", entry["key"]))
            assert have is not None, entry
            assert instant(entry["bookmark"]) <= instant(have), entry


def test_meltano_backfill_job_writes_batches() -> None:
    """meltano.yml: the backfill extractor writes gzip JSONL batches; the loader deletes them."""
    import yaml  # noqa: PLC0415

    project = yaml.safe_load((REPO_ROOT / "meltano.yml").read_text())
    extractors = {p["name"]: p for p in project["plugins"]["extractors"]}
    batch_config = extractors[BACKFILL]["config"]["batch_config"]
    assert batch_config["encoding"] == {"format": "jsonl", "compression": "gzip"}
    assert batch_config["storage"]["root"].endswith(".meltano/run/batches")
    assert "batch_config" not in (extractors["tap-nationalgas"].get("config") or {})
    loader = project["plugins"]["loaders"][0]
    assert "batch" in loader["capabilities"]
    assert loader["config"]["delete_batch_files"] is True
