"""Record -> line protocol, without any engine."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest

from target_influxdb.lineprotocol import (
    PointEncoder,
    RecordError,
    StreamMapping,
    batch_precision,
    escape_key,
    escape_measurement,
    render_lines,
    stored_name,
    to_epoch_ns,
    undeclared_field,
)

SCHEMA = {
    "properties": {
        "site": {"type": "string"},
        "at": {"type": "string", "format": "date-time"},
        "cv": {"type": ["number", "null"]},
        "count": {"type": "integer"},
        "ok": {"type": "boolean"},
        "note": {"type": ["string", "null"]},
        "detail": {"type": "object", "properties": {"wi": {"type": "number"}}},
        "blob": {"type": "object"},
        "items": {"type": "array", "items": {"type": "string"}},
        "mixed": {"type": ["string", "number"]},
    },
}
MAPPING = StreamMapping(measurement="gas quality", tags=("site",), timestamp="at")
AT = "2026-08-11T07:45:00+01:00"
AT_NS = 1_786_430_700_000_000_000


def encoder(mapping: StreamMapping = MAPPING, **static: str) -> PointEncoder:
    return PointEncoder("gq", SCHEMA, mapping, static)


def test_types_come_from_the_schema_not_the_value():
    line, ts = encoder().encode(
        {"site": "A", "at": AT, "cv": 39, "count": decimal.Decimal(3), "ok": False, "note": "x"},
    )
    assert line == r'gas\ quality,site=A cv=39.0,count=3i,ok=false,note="x"'
    assert ts == AT_NS


def test_decimal_numbers_keep_their_digits():
    line, _ = encoder().encode({"site": "A", "at": AT, "cv": decimal.Decimal("39.41")})
    assert line.endswith("cv=39.41")


def test_nested_objects_are_flattened_and_arrays_become_json():
    line, _ = encoder().encode(
        {
            "site": "A",
            "at": AT,
            "detail": {"wi": 50},
            "blob": {"b": 1, "a": [2]},
            "items": ["x", "y"],
        },
    )
    assert 'detail.wi=50.0,blob="{\\"a\\":[2],\\"b\\":1}",items="[\\"x\\",\\"y\\"]"' in line


def test_date_time_fields_are_written_in_utc_and_bad_ones_named():
    enc = PointEncoder(
        "s",
        {
            "properties": {
                "at": {"type": "string"},
                "sched": {"type": "string", "format": "date-time"},
            }
        },
        StreamMapping(measurement="m", tags=(), timestamp="at"),
    )
    line, _ = enc.encode({"at": AT, "sched": "2026-08-11T07:58:00+01:00"})
    assert line == 'm sched="2026-08-11T06:58:00Z"'
    with pytest.raises(
        RecordError, match=r'property "sched" value \'soon\' is not a valid datetime'
    ):
        enc.encode({"at": AT, "sched": "soon"})


def test_mixed_types_are_written_as_strings():
    line, _ = encoder().encode({"site": "A", "at": AT, "mixed": 4.5})
    assert line.endswith('mixed="4.5"')


def test_escaping_of_every_part():
    enc = PointEncoder(
        "s",
        {
            "properties": {
                "t k": {"type": "string"},
                "f,=k": {"type": "string"},
                "at": {"type": "string"},
            }
        },
        StreamMapping(measurement="m,1 x=y", tags=("t k",), timestamp="at"),
    )
    line, _ = enc.encode({"t k": "v,= \\", "f,=k": 'say "hi" \\ back\nslash', "at": AT})
    # the tag value ends in a backslash: it is written as a space, so the space before the
    # fields still ends the tag set (influxdb-client writes the same)
    assert line == r'm\,1\ x=y,t\ k=v\,\=\ \  f\,\=k="say \"hi\" \\ back' + "\nslash" + '"'
    assert enc.stats.changed_names == {("tag value", "v,= \\"): "v,=  "}


@pytest.mark.parametrize(
    ("name", "stored", "as_key", "as_measurement"),
    [
        ("plain", "plain", "plain", "plain"),
        ("m\\", "m ", r"m\ ", r"m\ "),  # a final backslash: a space, escaped
        ("a\\\\", "a  ", r"a\ \ ", r"a\ \ "),  # a run of them
        ("a\\,b", "a ,b", r"a\ \,b", r"a\ \,b"),  # one that would escape a comma
        ("a\\=b", "a =b", r"a\ \=b", r"a\ =b"),  # an equals sign
        ('a\\"b', 'a "b', r'a\ "b', r'a\ "b'),  # a double quote
        ("C:\\dir\\x", "C:\\dir\\x", "C:\\dir\\x", "C:\\dir\\x"),  # others: kept
        ("a\nb\tc\rd", r"a\nb\tc\rd", r"a\nb\tc\rd", r"a\nb\tc\rd"),  # two characters
        ("a\\\n", r"a\\n", r"a\\n", r"a\\n"),  # a backslash before a newline: kept
    ],
)
def test_names_line_protocol_cannot_carry(name, stored, as_key, as_measurement):
    assert stored_name(name) == stored
    assert escape_key(name) == as_key
    assert escape_measurement(name) == as_measurement


def test_names_stored_changed_are_noted_once_each():
    enc = PointEncoder(
        "s",
        {"properties": {"at": {"type": "string"}, "k\\": {"type": "string"}, "v\\": {}}},
        StreamMapping(measurement="m\\", tags=("k\\",), timestamp="at"),
        {"src": "x\ny"},
    )
    for _ in range(2):
        enc.encode({"at": AT, "k\\": "a\\", "v\\": 1})
    assert enc.stats.changed_names == {
        ("measurement", "m\\"): "m ",
        ("tag value", "x\ny"): r"x\ny",
        ("tag key", "k\\"): "k ",
        ("field key", "v\\"): "v ",
        ("tag value", "a\\"): "a ",
    }
    assert enc.stats.changed_names_text().startswith("measurement 'm\\\\' stored as 'm '; ")


def test_json_fields_keep_non_ascii_characters():
    line, _ = encoder().encode({"site": "A", "at": AT, "blob": {"n": "é日"}, "items": ["Ø"]})
    assert line.endswith('blob="{\\"n\\":\\"é日\\"}",items="[\\"Ø\\"]"')


def test_nulls_and_non_finite_values_are_left_out_and_counted():
    enc = encoder()
    line, _ = enc.encode(
        {"site": "A", "at": AT, "cv": float("nan"), "count": 2**63, "note": None, "ok": True}
    )
    assert line.endswith(" ok=true")
    assert enc.stats.values_not_storable == 2


def test_record_without_fields_is_skipped():
    enc = encoder()
    assert enc.encode({"site": "A", "at": AT, "cv": None}) is None


def test_empty_tag_values_are_left_out_and_static_tags_added():
    line, _ = encoder(source="nationalgas").encode({"site": "", "at": AT, "ok": True})
    assert line.startswith(r"gas\ quality,source=nationalgas ok=true")


def test_tags_are_rendered_by_their_schema_type():
    schema = {
        "properties": {
            "at": {"type": "string"},
            "level": {"type": "number"},
            "n": {"type": "integer"},
            "day": {"type": "string", "format": "date-time"},
            "v": {"type": "boolean"},
            "list": {"type": "array"},
        },
    }
    enc = PointEncoder("s", schema, StreamMapping("m", ("level", "n", "day", "list"), "at"))
    first, _ = enc.encode(
        {"at": AT, "level": 39, "n": 3, "day": "2026-08-11T05:00:00+01:00", "v": True}
    )
    again, _ = enc.encode(
        {"at": AT, "level": 39.0, "n": 3, "day": "2026-08-11T04:00:00Z", "v": True}
    )
    assert first == again == r"m,day=2026-08-11T04:00:00Z,level=39.0,n=3 v=true"
    listed, _ = enc.encode({"at": AT, "list": ["a b", 1], "v": False})
    assert listed == r'm,list=["a\ b"\,1] v=false'


def test_reserved_time_key_is_renamed():
    enc = PointEncoder(
        "s",
        {"properties": {"at": {"type": "string"}, "time": {"type": "number"}}},
        StreamMapping(measurement="m", tags=(), timestamp="at"),
    )
    line, _ = enc.encode({"at": AT, "time": 1})
    assert line == "m time_=1.0"
    assert enc.stats.renamed_keys == {"time"}


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        ({"site": "A"}, 'no value for timestamp property "at"'),
        ({"site": "A", "at": ""}, 'no value for timestamp property "at"'),
        ({"site": "A", "at": "yesterday"}, "unusable value 'yesterday'"),
    ],
)
def test_missing_or_bad_timestamp_stops_with_stream_property_and_value(record, fragment):
    with pytest.raises(RecordError, match='stream "gq"') as error:
        encoder().encode({**record, "ok": True})
    assert fragment in str(error.value)
    assert "'site': 'A'" in str(error.value)


def test_integer_field_refuses_a_fraction():
    with pytest.raises(RecordError, match=r'property "count" value 1\.5 is not a valid integer'):
        encoder().encode({"site": "A", "at": AT, "count": 1.5})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-08-11T07:45:00+01:00", AT_NS),
        ("2026-08-11T06:45:00Z", AT_NS),
        (dt.datetime(2026, 8, 11, 6, 45, tzinfo=dt.UTC), AT_NS),
        (dt.datetime(2026, 8, 11, 6, 45), AT_NS),  # naive means UTC
        (dt.date(1970, 1, 2), 86_400 * 10**9),
        ("1969-12-31T23:59:59.000001Z", -999_999_000),
        ("2026-08-11T06:45:00.123456789Z", AT_NS + 123_456_789),
        ("2026-08-11t06:45:00.123456789Z", AT_NS + 123_456_789),  # RFC 3339 lower-case t
        ("2026-08-11 06:45:00.123456789Z", AT_NS + 123_456_789),
        ("2026-08-11T07:45:00.123456789+01:00", AT_NS + 123_456_789),
        ("2026-08-11T06:45:00,5", AT_NS + 500_000_000),  # a comma, naive
        ("2026-08-11T06:45:00.1234567891Z", AT_NS + 123_456_789),  # past the 9th digit: dropped
        ("20260811T064500.000000001Z", AT_NS + 1),  # basic format
        ("1969-12-31T23:59:59.999999999Z", -1),
        ("2026-08-11", AT_NS - (6 * 3600 + 45 * 60) * 10**9),
    ],
)
def test_timestamps_are_utc_nanoseconds(value, expected):
    assert to_epoch_ns(value) == expected


def test_date_time_values_keep_their_nanoseconds():
    enc = PointEncoder(
        "s",
        {
            "properties": {
                "at": {"type": "string"},
                "d": {"type": "string", "format": "date-time"},
                "e": {"type": "string", "format": "date-time"},
            }
        },
        StreamMapping(measurement="m", tags=("d",), timestamp="at"),
    )
    fine, _ = enc.encode({"at": AT, "d": "2026-08-11T07:45:00.000000001+01:00", "e": "1970-01-01"})
    assert fine == 'm,d=2026-08-11T06:45:00.000000001Z e="1970-01-01T00:00:00Z"'
    micro, _ = enc.encode(
        {"at": AT, "d": "2026-08-11T07:45:00.5+01:00", "e": "1969-12-31T23:59:59.999999999Z"}
    )
    # whole microseconds: six digits, as before
    assert micro == 'm,d=2026-08-11T06:45:00.500000Z e="1969-12-31T23:59:59.999999999Z"'


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("1677-09-21T00:12:43.145224194Z", True),
        ("1677-09-21T00:12:43.145224193Z", False),
        ("2262-04-11T23:47:16.854775806Z", True),
        ("2262-04-11T23:47:16.854775807Z", False),
        ("0001-01-01T00:00:00Z", False),
        ("9999-12-31T23:59:59Z", False),
    ],
)
def test_times_influxdb_cannot_store_are_refused_naming_the_record(value, ok):
    record = {"site": "A", "at": value, "ok": True}
    if ok:
        assert encoder().encode(record) is not None
        return
    with pytest.raises(RecordError) as error:
        encoder().encode(record)
    assert str(error.value) == (
        f'stream "gq": timestamp property "at" has value {value!r}, outside the times InfluxDB '
        "can store (1677-09-21T00:12:43.145224194Z to 2262-04-11T23:47:16.854775806Z) "
        "(tags {'site': 'A'})"
    )


def test_batch_precision_is_the_coarsest_exact_one():
    assert batch_precision([AT_NS, AT_NS + 10**9]) == "s"
    assert batch_precision([AT_NS, AT_NS + 5_000_000]) == "ms"
    assert batch_precision([AT_NS + 5_000_000, AT_NS + 7_000]) == "us"
    assert batch_precision([AT_NS + 7_000, AT_NS + 5_000_000, AT_NS + 1]) == "ns"
    assert batch_precision([AT_NS + 7_000, AT_NS]) == "us"
    assert batch_precision([-1_000_000]) == "ms"
    points = [("m v=1.0", AT_NS + 5_000_000)]
    assert render_lines(points, "ms") == f"m v=1.0 {(AT_NS + 5_000_000) // 10**6}"
    assert render_lines(points, "us") == f"m v=1.0 {(AT_NS + 5_000_000) // 10**3}"
    assert render_lines(points, "ns") == f"m v=1.0 {AT_NS + 5_000_000}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, ("float", "5.0")),
        (5.5, ("float", "5.5")),
        (10**400, ("float", None)),
        (True, ("boolean", "true")),
        ('a "b"', ("string", '"a \\"b\\""')),
        ({"k": [1]}, ("json", '"{\\"k\\":[1]}"')),
        ([1, 2], ("json", '"[1,2]"')),
    ],
)
def test_an_undeclared_property_is_typed_by_its_json_value_alone(value, expected):
    assert undeclared_field(value) == expected


def test_undeclared_properties_are_written_only_when_asked():
    mapping = StreamMapping("m", ("site",), "at")
    record = {"site": "a", "at": "2026-01-01T00:00:00Z", "cv": 1.5, "x": 2, "y": None}
    closed = PointEncoder("s", SCHEMA, mapping)
    opened = PointEncoder("s", SCHEMA, mapping, write_undeclared=True)
    assert closed.encode(record) == ("m,site=a cv=1.5", 1_767_225_600_000_000_000)
    assert opened.encode(record) == ("m,site=a cv=1.5,x=2.0", 1_767_225_600_000_000_000)
    assert opened.stats.undeclared == {"x": {"float"}}


FLOATS_SCHEMA = {
    "properties": {
        "site": {"type": "string"},
        "at": {"type": "string", "format": "date-time"},
        **{name: {"type": ["number", "null"]} for name in ("a", "b")},
    }
}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (38.5, "38.5"),
        (0.1, "0.1"),
        (-3.25, "-3.25"),
        (-0.0, "-0.0"),
        (1e16, "1e+16"),
        (1e-7, "1e-07"),
        (1e-5, "1e-05"),
        (-1.5212603486793025e-05, "-1.5212603486793025e-05"),
        (0.0001, "0.0001"),
        (1.5e300, "1.5e+300"),
        (5, "5.0"),
        (2**70, "1.1805916207174113e+21"),
        (True, "1.0"),
        (decimal.Decimal("1.5"), "1.5"),
        ("1.5", "1.5"),
        (None, None),
        (float("nan"), None),
        (float("-inf"), None),
    ],
)
def test_a_stream_of_float_fields_writes_each_value_as_repr_of_the_float(value, text):
    # such a stream renders all of a record's floats at once; each must read as repr writes it
    enc = PointEncoder("gq", FLOATS_SCHEMA, MAPPING)
    line, _ = enc.encode({"site": "A", "at": AT, "a": value, "b": 0.5})
    assert line == "gas\\ quality,site=A " + (f"a={text}," if text else "") + "b=0.5"


@pytest.mark.parametrize("value", ["x", [1.5], {"x": 1.5}])
def test_a_stream_of_float_fields_refuses_a_value_that_is_no_number(value):
    enc = PointEncoder("gq", FLOATS_SCHEMA, MAPPING)
    with pytest.raises(RecordError, match=r'property "a" value .* is not a valid float'):
        enc.encode({"site": "A", "at": AT, "a": value, "b": 0.5})
