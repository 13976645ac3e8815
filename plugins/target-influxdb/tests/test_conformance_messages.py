"""Conformance: nothing dropped without a word, and messages a person can read.

Each case runs against the real engine; the recorded ones (tests/conformance/msg_*.jsonl) in
both modes (``testkit.conformance``). The checks read the lines a user reads: the run's
stderr, without the time, level and logger columns.
"""

from __future__ import annotations

import typing as t

import pytest

from testkit import singer
from testkit.conformance import case_text, run_file, run_influx
from testkit.influx import LocalInfluxDB

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from testkit.conformance import ModeRun, RunCase
    from testkit.influx import RemoteInfluxDB2

PROPERTIES = {
    "site": {"type": "string"},
    "at": {"type": "string", "format": "date-time"},
    "cv": {"type": ["number", "null"]},
}
AT_0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z in nanoseconds
HOUR = 3600 * 10**9


def logged(run: singer.TargetRun, level: str) -> list[str]:
    """The messages of the lines the run logged at one level (``WARNING``, ``ERROR``)."""
    found = []
    for line in run.log.splitlines():
        parts = line.split(" | ", 3)
        if len(parts) == 4 and parts[1].strip() == level:
            found.append(parts[3].strip())
    return found


def last_line(run: singer.TargetRun) -> str:
    """The message of the last line the run logged."""
    return run.log.strip().splitlines()[-1].split(" | ", 3)[-1].strip()


def stored(mode: ModeRun, measurement: str = "readings") -> list[tuple[int, dict, dict]]:
    """The points of a measurement: time in ns, tags, fields."""
    return [(p.time_ns, p.tags, p.fields) for p in mode.points(measurement)]


def test_undeclared_properties_of_an_open_schema_are_written_by_their_json_type(
    run_case: RunCase,
) -> None:
    """`additionalProperties: true`: each undeclared property is a field, named in a WARNING."""
    both = run_case("msg_undeclared_open")
    for mode in both.modes:
        assert mode.run.returncode == 0, mode.run.log
        assert not mode.load_errors
        assert stored(mode) == [
            (
                AT_0,
                {"site": "a"},
                {"cv": 39.1, "n2": 2.0, "note": "dry, cold", "ok": True, "detail": '{"k":[1,2]}'},
            ),
            (AT_0 + HOUR, {"site": "a"}, {"cv": 39.2, "n2": 2.5}),
        ]
        # an integer and a fraction of one property are one float field: no type conflict
        assert mode.engine.field_types(mode.bucket, "readings")["n2"] == "float"
        assert logged(mode.run, "WARNING") == [
            (
                "Stream 'readings': wrote properties its schema does not declare (it allows "
                "more: additionalProperties), each typed by its JSON value: detail (JSON "
                "string), n2 (float), note (string), ok (boolean)"
            )
        ]
        assert "Traceback" not in mode.run.log
    assert both.influx.run.passed_on == [
        {"bookmarks": {"readings": {"replication_key_value": "2026-01-01T01:00:00Z"}}}
    ]


def test_undeclared_properties_of_a_closed_schema_are_named_once_per_run(run_case: RunCase) -> None:
    """Without `additionalProperties`, an undeclared property is left out with one WARNING,
    also across a second SCHEMA of the stream."""
    both = run_case("msg_undeclared_closed")
    for mode in both.modes:
        assert mode.run.returncode == 0, mode.run.log
        assert not mode.load_errors
        assert [fields for _, _, fields in stored(mode)] == [
            {"cv": 39.1},
            {"cv": 39.2},
            {"cv": 39.3},
        ]
        assert logged(mode.run, "WARNING") == ["No schema for record field 'n2': it is not written"]


def test_a_mapping_under_a_name_no_stream_has_is_named_at_the_end(run_case: RunCase) -> None:
    """`io_composite` for `io-composite`: the run warns, with the streams and the closest name."""
    config = {"mappings": {"io_composite": {"measurement": "composite"}}}
    both = run_case("msg_mapping_typo", config)
    for mode in both.modes:
        assert mode.run.returncode == 0, mode.run.log
        assert not mode.load_errors
        assert [(p.time_ns, p.fields) for p in mode.points("io-composite")] == [
            (AT_0, {"cv": 39.1})
        ]  # the defaults applied
        assert "composite" not in mode.measurements()
        assert logged(mode.run, "WARNING") == [
            (
                "`mappings.io_composite` names no stream of this run, so it was not used "
                "(streams of the run: io-composite; given the defaults: io-composite); did you "
                'mean "io-composite"?'
            )
        ]


def test_a_mapping_for_a_stream_not_selected_is_only_noted(
    tmp_path: Path, target_config: dict[str, t.Any], influxdb: LocalInfluxDB | RemoteInfluxDB2
) -> None:
    """Every stream of the run has its mapping: a mapping of another stream is an INFO line."""
    config = {"mappings": {"io-composite": {}, "gas_quality": {"measurement": "gq"}}}
    run = run_influx(tmp_path, target_config, influxdb, case_text("msg_mapping_typo"), config).run
    assert run.returncode == 0, run.log
    assert logged(run, "WARNING") == []
    assert (
        "`mappings.gas_quality` names no stream of this run, so it was not used (streams of "
        "the run: io-composite)"
    ) in logged(run, "INFO")


def test_a_record_that_breaks_its_schema_is_named_in_one_line(run_case: RunCase) -> None:
    """Stream, property, value and the record's key, once, no traceback; the run fails before
    the STATE after the record, and the points before it are stored."""
    both = run_case("msg_invalid_record")
    for mode in both.modes:
        assert mode.run.returncode == 1
        assert not mode.load_errors
        assert last_line(mode.run) == (
            'failed: stream "readings": property "cv" value "abc" is not of type number or '
            "null (record key: site=a, at=2026-01-01T01:00:00Z)"
        )
        assert logged(mode.run, "ERROR") == [last_line(mode.run)]
        assert "Traceback" not in mode.run.log
        assert "Validation Error" not in mode.run.log
        assert stored(mode) == [(AT_0, {"site": "a"}, {"cv": 39.1})]
        assert mode.run.passed_on == [
            {"bookmarks": {"readings": {"replication_key_value": "2026-01-01T00:00:00Z"}}}
        ]


def test_a_key_property_the_schema_lacks_blames_the_schema_not_the_mappings(
    run_case: RunCase,
) -> None:
    both = run_case("msg_key_not_in_schema")
    for mode in both.modes:
        assert mode.run.returncode == 1
        assert last_line(mode.run) == (
            'failed: stream "readings": key property "site_id" is not in the stream\'s schema '
            "(it has: site, at, cv); the tap sends an inconsistent SCHEMA: fix the tap, or set "
            "`mappings.readings.tags` to the properties to write as tags"
        )
        assert logged(mode.run, "ERROR") == [last_line(mode.run)]
        assert "Traceback" not in mode.run.log
        assert mode.run.passed_on == []
        assert "readings" not in mode.measurements()


BIG = "x" * 1_000_000


def test_a_rejected_point_with_a_1_mb_tag_is_quoted_once_and_short(
    tmp_path: Path, target_config: dict[str, t.Any], influxdb: LocalInfluxDB | RemoteInfluxDB2
) -> None:
    """InfluxDB refuses the point (its series key is too long) and quotes it: the ERROR line
    quotes it once, cut to a few hundred characters; the other point of the batch is stored."""
    messages = [
        singer.schema("readings", PROPERTIES, ["site", "at"], ["at"]),
        singer.record("readings", {"site": "a", "at": "2026-01-01T00:00:00Z", "cv": 39.1}),
        singer.record("readings", {"site": BIG, "at": "2026-01-01T00:00:00Z", "cv": 39.2}),
    ]
    mode = run_influx(tmp_path, target_config, influxdb, singer.encode(messages))
    assert mode.run.returncode == 1
    [error] = logged(mode.run, "ERROR")
    assert len(error) < 1000, error
    assert error.startswith(
        'failed: InfluxDB rejected 1 of 2 points of stream "readings" as invalid (422 '
    )
    assert error.count("xxxxxxxxxx ... (") == 1  # the line once, cut in the middle
    assert "; first rejected line: readings,site=xxxxxxxxxx" in error
    assert "Traceback" not in mode.run.log
    assert max(len(line) for line in mode.run.log.splitlines()) < 1000
    assert stored(mode) == [(AT_0, {"site": "a"}, {"cv": 39.1})]


def test_a_record_error_with_a_1_mb_tag_is_short_in_both_modes(
    tmp_path: Path, target_config: dict[str, t.Any], influxdb: LocalInfluxDB | RemoteInfluxDB2
) -> None:
    """A record the target cannot make a point of (no timestamp) names its 1 MB tag cut short."""
    nullable_time = {**PROPERTIES, "at": {"type": ["string", "null"], "format": "date-time"}}
    messages = singer.encode(
        [
            singer.schema("readings", nullable_time, ["site", "at"], ["at"]),
            singer.record("readings", {"site": BIG, "at": None, "cv": 39.2}),
        ]
    )
    for mode in (
        run_influx(tmp_path, target_config, influxdb, messages),
        run_file(tmp_path, influxdb, messages),
    ):
        assert mode.run.returncode == 1
        [error] = logged(mode.run, "ERROR")
        assert error.startswith(
            'failed: stream "readings": record has no value for timestamp property "at" '
            "(tags {'site': 'xxxx"
        )
        assert "characters left out" in error
        assert len(error) < 400, error
        assert "Traceback" not in mode.run.log


@pytest.fixture(scope="module")
def engine_token_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalInfluxDB]:
    """An engine whose proxy takes the token ``in``, a word of most messages."""
    engine = LocalInfluxDB(tmp_path_factory.mktemp("token_in"), token="in").start()  # noqa: S106
    try:
        yield engine
    finally:
        engine.stop()


def _config(engine: LocalInfluxDB, **settings: t.Any) -> dict[str, t.Any]:
    return {
        "url": engine.url,
        "token": engine.token,
        "org": engine.org,
        "bucket": "readings_db",
        "max_retries": 0,
        "timeout": 10,
        **settings,
    }


def test_a_short_token_leaves_a_missing_bucket_message_whole(
    tmp_path: Path, engine_token_in: LocalInfluxDB
) -> None:
    config = _config(engine_token_in, bucket="nope")
    run = singer.run_target(tmp_path, config, [])
    assert run.returncode == 1
    url = engine_token_in.url
    assert last_line(run) == (
        f'failed: bucket "nope" not found in org "testkit" at {url} (404 at start-up): create '
        "it or change the `bucket`/`org` settings"
    )
    assert "***" not in run.log


@pytest.mark.parametrize("token", ["a", "wrong-token-which-is-long-enough"])
def test_a_wrong_token_is_named_in_whole_words_and_not_shown(
    tmp_path: Path, engine_token_in: LocalInfluxDB, token: str
) -> None:
    """A one-character token and a long one, both refused (401): the message is whole."""
    engine_token_in.create_bucket("readings_db")
    run = singer.run_target(tmp_path, _config(engine_token_in, token=token), [])
    assert run.returncode == 1
    assert last_line(run) == (
        "failed: InfluxDB rejected the token (401 at start-up): set a valid `token` for "
        f'bucket "readings_db" in org "testkit" at {engine_token_in.url}'
    )
    if len(token) > 1:
        assert token not in run.log


def test_a_short_token_leaves_a_refusal_message_whole(
    tmp_path: Path, engine_token_in: LocalInfluxDB
) -> None:
    """Token ``in``: a field type conflict (422) is told in whole words (input, integer)."""
    engine_token_in.create_bucket("conflict_db")
    config = _config(engine_token_in, bucket="conflict_db")
    as_integer = {**PROPERTIES, "cv": {"type": ["integer", "null"]}}
    first = [
        singer.schema("readings", as_integer, ["site", "at"], ["at"]),
        singer.record("readings", {"site": "a", "at": "2026-01-01T00:00:00Z", "cv": 39}),
    ]
    assert singer.run_target(tmp_path, config, first).returncode == 0
    second = [
        singer.schema("readings", PROPERTIES, ["site", "at"], ["at"]),
        singer.record("readings", {"site": "a", "at": "2026-01-01T00:00:00Z", "cv": 39.5}),
    ]
    run = singer.run_target(tmp_path, config, second)
    assert run.returncode == 1
    assert last_line(run).startswith(
        'failed: InfluxDB rejected 1 of 1 points of stream "readings" as invalid (422 '
    )
    assert (
        'input field "cv" on measurement "readings" is type float, already exists as type '
        "integer dropped=1); first rejected line: readings,site=a cv=39.5 1767225600000000000. "
        'The field "cv" of measurement "readings" is stored as integer and was sent as float.'
    ) in last_line(run)
    assert "***" not in run.log
