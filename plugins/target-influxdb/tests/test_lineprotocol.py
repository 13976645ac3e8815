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
    render_lines,
    to_epoch_us,
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
AT_US = 1_786_430_700_000_000


def encoder(mapping: StreamMapping = MAPPING, **static: str) -> PointEncoder:
    return PointEncoder("gq", SCHEMA, mapping, static)


def test_types_come_from_the_schema_not_the_value():
    line, ts = encoder().encode(
        {"site": "A", "at": AT, "cv": 39, "count": decimal.Decimal(3), "ok": False, "note": "x"},
    )
    assert line == r'gas\ quality,site=A cv=39.0,count=3i,ok=false,note="x"'
    assert ts == AT_US


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
    # the tag value ends in a backslash: a space follows it, so the space before the fields
    # still ends the tag set
    assert line == r'm\,1\ x=y,t\ k=v\,\=\ \  f\,\=k="say \"hi\" \\ back' + "\nslash" + '"'


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
        ("2026-08-11T07:45:00+01:00", AT_US),
        ("2026-08-11T06:45:00Z", AT_US),
        (dt.datetime(2026, 8, 11, 6, 45, tzinfo=dt.UTC), AT_US),
        (dt.datetime(2026, 8, 11, 6, 45), AT_US),  # naive means UTC
        (dt.date(1970, 1, 2), 86_400_000_000),
        ("1969-12-31T23:59:59.000001Z", -999_999),
    ],
)
def test_timestamps_are_utc_microseconds(value, expected):
    assert to_epoch_us(value) == expected


def test_batch_precision_is_the_coarsest_exact_one():
    assert batch_precision([AT_US, AT_US + 1_000_000]) == "s"
    assert batch_precision([AT_US, AT_US + 5_000]) == "ms"
    assert batch_precision([AT_US + 1_000, AT_US + 7]) == "us"
    points = [("m v=1.0", AT_US + 5_000)]
    assert render_lines(points, "ms") == f"m v=1.0 {(AT_US + 5_000) // 1000}"
    assert render_lines(points, "ns") == f"m v=1.0 {(AT_US + 5_000) * 1000}"


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
    assert closed.encode(record) == ("m,site=a cv=1.5", 1_767_225_600_000_000)
    assert opened.encode(record) == ("m,site=a cv=1.5,x=2.0", 1_767_225_600_000_000)
    assert opened.stats.undeclared == {"x": {"float"}}
