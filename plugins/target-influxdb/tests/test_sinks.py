"""The sink's settings and the SDK behaviour it relies on."""

from __future__ import annotations

import inspect
import logging

import fastjsonschema
import pytest
from singer_sdk.exceptions import InvalidRecord
from singer_sdk.sinks import Sink

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


def test_the_sdk_calls_the_timestamp_hook_as_the_override_expects():
    # InfluxDBSink overrides the SDK's private _parse_timestamps_in_record so that date-times
    # are parsed once, by the encoder. This fails when an SDK upgrade renames the hook, changes
    # its arguments or stops calling it from _validate_and_parse.
    parameters = list(inspect.signature(Sink._parse_timestamps_in_record).parameters)
    assert parameters == ["self", "record", "schema", "treatment"]
    source = inspect.getsource(Sink._validate_and_parse)
    assert "self._parse_timestamps_in_record(" in source


def test_the_sdk_lets_a_validation_error_other_than_invalid_record_through():
    # FastJSONSchemaValidator raises RecordValidationError (not the SDK's InvalidRecord) so
    # that the SDK does not log it with a traceback before the target's one line. This fails
    # when an SDK upgrade catches more than InvalidRecord around the validator.
    source = inspect.getsource(Sink._validate_and_parse)
    assert "self._validator.validate(record)" in source
    assert "except InvalidRecord:" in source
    assert "except Exception" not in source


def test_the_sdk_dispatches_messages_through_the_handlers_the_target_wraps():
    # TargetInfluxDB wraps the SDK's private message handlers to record a failed run. This
    # fails when an SDK upgrade stops dispatching through these names.
    from singer_sdk.plugin_base import BaseSingerReader  # noqa: PLC0415
    from singer_sdk.target_base import Target  # noqa: PLC0415

    dispatch = inspect.getsource(BaseSingerReader.process_lines)
    for handler in ("_process_schema_message", "_process_record_message", "_process_state_message"):
        assert f"self.{handler}" in dispatch
        assert list(inspect.signature(getattr(Target, handler)).parameters) == [
            "self",
            "message_dict",
        ]
    assert "self.process_endofpipe()" in inspect.getsource(BaseSingerReader.listen)


def test_the_sdk_handles_termination_signals_through_the_method_the_target_wraps():
    # TargetInfluxDB wraps the SDK's private _handle_termination so that a stopped run ends
    # with its summaries and health points. This fails when an SDK upgrade stops registering
    # it for SIGTERM, or stops draining and exiting there.
    from singer_sdk.plugin_base import PluginBase  # noqa: PLC0415
    from singer_sdk.target_base import Target  # noqa: PLC0415

    register = inspect.getsource(PluginBase._setup_signal_handlers)
    assert "signal.signal(signal.SIGTERM, self._handle_termination)" in register
    assert list(inspect.signature(Target._handle_termination).parameters) == [
        "self",
        "signum",
        "frame",
    ]
    handler = inspect.getsource(Target._handle_termination)
    assert "self.drain_all(is_endofpipe=True)" in handler
    assert "super()._handle_termination(signum, frame)" in handler


def parse(sink, record):
    """What the SDK does with a record before ``process_record``."""
    parsed = sink._validate_and_parse(dict(record))
    return sink.preprocess_record(parsed, {})


def test_dates_stay_text_and_unknown_fields_are_named_once(tmp_path, caplog):
    target = TargetInfluxDB(config={"output_path": str(tmp_path)}, parse_env_config=False)
    sink = target.get_sink("s", schema=SCHEMA, key_properties=["site_id", "at"])
    record = {"site_id": 1, "at": "2026-03-29T08:00:00+00:00", "cv": None, "extra": 5, "none": None}
    with caplog.at_level(logging.WARNING):
        parsed = parse(sink, record)
        parse(sink, record)
        # a new SCHEMA of the stream: a new sink, the same run
        again = target.add_sink("s", schema=SCHEMA, key_properties=["site_id", "at"])
        assert again is not sink
        parse(again, record)
    assert parsed["at"] == "2026-03-29T08:00:00+00:00"  # parsed once, later, by the encoder
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["No schema for record field 'extra': it is not written"]


def test_a_schema_open_to_more_properties_writes_them_by_json_type(tmp_path, caplog):
    target = TargetInfluxDB(config={"output_path": str(tmp_path)}, parse_env_config=False)
    sink = target.get_sink(
        "s", schema={**SCHEMA, "additionalProperties": True}, key_properties=["site_id", "at"]
    )
    context: dict = {}
    with caplog.at_level(logging.WARNING):
        record = {"site_id": 1, "at": "2026-03-29T08:00:00+00:00", "extra": 5, "time": "x"}
        sink.process_record(parse(sink, record), context)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
    [(line, _)] = context["points"]
    assert line == 's,site_id=1 extra=5.0,time_="x"'


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


def test_the_sdk_keeps_a_new_state_where_the_target_looks_for_it():
    # TargetInfluxDB._process_state_message drains every sink when the SDK has stored a state
    # that changed, which it sees in the SDK's private _latest_state. This fails when an SDK
    # upgrade renames it or stops replacing it only for a state that changed.
    from singer_sdk.target_base import Target  # noqa: PLC0415

    source = inspect.getsource(Target._process_state_message)
    assert "if self._latest_state == state:" in source
    assert "self._latest_state = state" in source
    assert "self._latest_state" in inspect.getsource(Target.drain_all)


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
