"""The sink's settings and the SDK behaviour it relies on."""

from __future__ import annotations

import io
import json
import logging

import fastjsonschema
import pytest
from singer_sdk.exceptions import InvalidRecord

from target_influxdb.batches import UnsupportedMessageError
from target_influxdb.sinks import FastJSONSchemaValidator, RecordValidationError
from target_influxdb.target import TargetInfluxDB
from testkit import singer

SCHEMA = {
    "type": "object",
    "properties": {
        "site_id": {"type": "integer"},
        "at": {"type": "string", "format": "date-time"},
        "cv": {"type": ["number", "null"]},
    },
}


def sink_for(tmp_path, **config):
    target = TargetInfluxDB(config={"output_path": str(tmp_path), **config}, parse_env_config=False)
    return target.get_sink("s", schema=SCHEMA, key_properties=["site_id", "at"])


@pytest.mark.parametrize(("setting", "validator"), [(True, FastJSONSchemaValidator), (False, None)])
def test_validate_records_turns_validation_on_and_off(tmp_path, setting, validator):
    sink = sink_for(tmp_path, validate_records=setting)
    found = sink.get_validator()
    assert found is None if validator is None else isinstance(found, validator)


def listen(target: TargetInfluxDB, messages: list[dict]) -> None:
    """Run the target in this process on these messages, as ``target-influxdb`` reads stdin."""
    target.listen(io.StringIO(singer.encode(messages)))


def test_date_times_reach_the_encoder_as_sent_and_unknown_fields_are_named_once(tmp_path, caplog):
    # The SDK would parse the date-times a sink's schema declares into microsecond datetimes;
    # the sink shows it none, so the nanoseconds reach the point.
    target = TargetInfluxDB(config={"output_path": str(tmp_path)}, parse_env_config=False)
    at = "2026-03-29T08:00:00.123456789Z"
    record = singer.record("s", {"site_id": 1, "at": at, "cv": 39, "extra": 5, "none": None})
    declared = {**SCHEMA["properties"], "cv": {"type": ["number", "null"], "description": "CV"}}
    messages = [
        singer.schema("s", SCHEMA["properties"], ["site_id", "at"], ["at"]),
        record,
        record,
        singer.schema("s", declared, ["site_id", "at"], ["at"]),  # a new sink, the same run
        record,
    ]
    with caplog.at_level(logging.WARNING):
        listen(target, messages)
    assert (tmp_path / "s.lp").read_text().splitlines() == [
        "s,site_id=1 cv=39.0 1774771200123456789"
    ] * 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["No schema for record field 'extra': it is not written"]


def test_every_message_type_reaches_the_target_through_the_reader(tmp_path, capsys, caplog):
    # The target hooks into the messages through its reader's public process_lines, which
    # the SDK hands its handler of each message type.
    target = TargetInfluxDB(config={"output_path": str(tmp_path)}, parse_env_config=False)
    messages = [
        singer.schema("s", SCHEMA["properties"], ["site_id", "at"], ["at"]),
        singer.record("s", {"site_id": 1, "at": "2026-03-29T08:00:00Z", "cv": 39}),
        {"type": "ACTIVATE_VERSION", "stream": "s", "version": 1},
        singer.state({"s": 1}),
        singer.state({"s": 1}),
        {"type": "FOO"},
        singer.state({"s": 2}),
    ]
    with caplog.at_level(logging.WARNING), pytest.raises(UnsupportedMessageError, match="FOO"):
        listen(target, messages)
    passed_on = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert passed_on == [{"s": 1}]  # once, after its point was written; none after FOO
    assert (tmp_path / "s.lp").read_text() == "s,site_id=1 cv=39.0 1774771200000000000\n"
    assert any("ACTIVATE_VERSION ignored" in r.getMessage() for r in caplog.records)
    [health] = (tmp_path / "data_imports_run.lp").read_text().splitlines()
    assert 'status="failed"' in health


def test_a_record_failing_validation_fails_the_run_in_one_line(tmp_path):
    # The validator raises RecordValidationError, not the SDK's InvalidRecord, so that the SDK
    # does not log it with a traceback before the target's one line.
    config = {"output_path": str(tmp_path / "out"), "validate_records": True}
    messages = [
        singer.schema("s", SCHEMA["properties"], ["site_id", "at"], ["at"]),
        singer.record("s", {"site_id": "one", "at": "2026-03-29T08:00:00Z", "cv": 39}),
    ]
    run = singer.run_target(tmp_path, config, messages)
    assert run.returncode == 1
    errors = [line for line in run.log.splitlines() if "ERROR" in line]
    assert len(errors) == 1, run.log
    assert 'property "site_id" value "one" is not of type integer' in errors[0]
    assert "Traceback" not in run.log


def test_a_schema_open_to_more_properties_writes_them_by_json_type(tmp_path, caplog):
    target = TargetInfluxDB(config={"output_path": str(tmp_path)}, parse_env_config=False)
    message = singer.schema("s", SCHEMA["properties"], ["site_id", "at"], ["at"])
    message["schema"]["additionalProperties"] = True
    record = {"site_id": 1, "at": "2026-03-29T08:00:00+00:00", "extra": 5, "time": "x"}
    with caplog.at_level(logging.WARNING):
        listen(target, [message, singer.record("s", record)])
    assert not [r for r in caplog.records if "No schema" in r.getMessage()]
    assert any("does not declare" in r.getMessage() for r in caplog.records)
    assert (tmp_path / "s.lp").read_text() == (
        's,site_id=1 extra=5.0,time_="x" 1774771200000000000\n'
    )


def test_a_validation_error_names_stream_property_value_and_key():
    validator = FastJSONSchemaValidator(SCHEMA, "s", ["site_id", "at"])
    record = {"site_id": 1, "at": "2026-03-29T08:00:00Z", "cv": "x" * 500}
    with pytest.raises(RecordValidationError) as raised:
        validator.validate(record)
    text = str(raised.value)
    assert text.startswith('stream "s": property "cv" value "xxxx')
    assert text.endswith(
        'xxx" is not of type number or null (record key: site_id=1, at=2026-03-29T08:00:00Z)'
    )
    assert "characters left out" in text
    assert len(text) < 250


def test_a_missing_required_property_names_the_record():
    schema = {**SCHEMA, "required": ["cv"]}
    with pytest.raises(RecordValidationError, match=r'^stream "s": record must contain'):
        FastJSONSchemaValidator(schema, "s").validate({"site_id": 1})


def test_without_failing_a_validation_error_is_the_sdks_invalid_record():
    validator = FastJSONSchemaValidator(SCHEMA, "s", fail=False)
    with pytest.raises(InvalidRecord) as raised:
        validator.validate({"site_id": "one"})
    assert str(raised.value) == (
        'Record Message Validation Error: stream "s": property "site_id" value "one" is not '
        "of type integer"
    )


def test_a_stream_renamed_by_a_stream_map_keeps_its_timestamp(tmp_path, influxdb, target_config):
    props = {
        "site_id": {"type": "integer"},
        "published_time": {"type": "string", "format": "date-time"},
        "cv": {"type": "number"},
    }
    messages = [
        singer.schema("s", props, ["site_id", "published_time"], ["published_time"]),
        singer.record("s", {"site_id": 1, "published_time": "2026-03-29T08:00:00Z", "cv": 39}),
    ]
    config = {**target_config, "stream_maps": {"s": {"__alias__": "renamed"}}}
    run = singer.run_target(tmp_path, config, messages)
    assert run.returncode == 0, run.log
    [point] = influxdb.points(target_config["bucket"], "renamed")
    assert point.time_ns == 1_774_771_200 * 10**9
    assert point.fields == {"cv": 39.0}


TYPE_SETS = ["integer", "number", "string", "boolean", "null", ["number", "null"], "array"]
VALUES = [None, True, 0, 10**30, 1.0, 1.5, "x", [], {}]


@pytest.mark.parametrize("declared", TYPE_SETS)
def test_a_type_only_schema_accepts_and_refuses_as_the_full_check(declared):
    # the validator answers from the value types it knows valid; each answer must be the full
    # check's, asked twice so that the second answer comes from what the first one learnt
    schema = {"type": "object", "properties": {"p": {"type": declared}, "q": {"type": "string"}}}
    full = fastjsonschema.compile(schema, use_default=False, use_formats=False)
    validator = FastJSONSchemaValidator(schema, "s")
    records = [{"q": "a"}, {}, *({"p": value, "q": "a"} for value in VALUES)]
    for record in records * 2:
        try:
            full(record)
        except fastjsonschema.JsonSchemaValueException:
            with pytest.raises(RecordValidationError):
                validator.validate(record)
        else:
            validator.validate(record)


@pytest.mark.parametrize(
    ("schema", "valid", "invalid"),
    [
        ({"properties": {"p": {"type": "integer", "minimum": 0}}}, {"p": 1}, {"p": -1}),
        ({"properties": {"p": {"type": "integer"}}, "required": ["p"]}, {"p": 1}, {}),
        (
            {"properties": {"p": {"type": "integer"}}, "additionalProperties": False},
            {"p": 1},
            {"p": 1, "other": 2},
        ),
        (
            {"properties": {"p": {"type": "object", "properties": {"x": {"type": "integer"}}}}},
            {"p": {"x": 1}},
            {"p": {"x": "one"}},
        ),
    ],
)
def test_a_schema_that_checks_more_than_types_is_checked_in_full_every_time(schema, valid, invalid):
    validator = FastJSONSchemaValidator(schema, "s")
    validator.validate(valid)
    with pytest.raises(RecordValidationError):
        validator.validate(invalid)


def test_an_integral_float_is_an_integer_and_a_fraction_is_not_after_it():
    validator = FastJSONSchemaValidator(SCHEMA, "s")
    validator.validate({"site_id": 1.0})
    with pytest.raises(RecordValidationError, match=r'property "site_id" value 1\.5'):
        validator.validate({"site_id": 1.5})
