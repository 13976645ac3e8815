"""A stream's measurement, tags and timestamp, from its mapping and its schema."""

from __future__ import annotations

import pytest
from singer_sdk.exceptions import ConfigValidationError

from target_influxdb.lineprotocol import StreamMapping
from target_influxdb.mapping import SchemaError, is_time_property, resolve_mapping


def test_default_mapping_uses_replication_key_then_date_time_key():
    props = {
        "properties": {"id": {"type": "string"}, "t": {"type": "string", "format": "date-time"}}
    }
    by_bookmark = resolve_mapping("s", props, ["id"], ["t"], {})
    by_key = resolve_mapping("s", props, ["id", "t"], [], {})
    assert by_bookmark == by_key == StreamMapping("s", ("id",), "t")


def test_configured_mapping_wins_and_unknown_properties_are_named():
    props = {"properties": {"id": {"type": "string"}, "t": {"type": "string"}}}
    mapping = resolve_mapping(
        "s", props, ["id"], [], {"measurement": "m", "tags": [], "timestamp": "t"}
    )
    assert mapping == StreamMapping("m", (), "t")
    with pytest.raises(ConfigValidationError, match=r"mappings\.s names properties .*: nope"):
        resolve_mapping("s", props, ["id"], [], {"tags": ["nope"]})


def test_a_key_property_the_schema_lacks_blames_the_schema():
    props = {"properties": {"t": {"type": "string", "format": "date-time"}}}
    with pytest.raises(SchemaError) as raised:
        resolve_mapping("s", props, ["id", "t"], [], {"exclude": ["x"]})
    assert str(raised.value).startswith(
        'stream "s": key property "id" is not in the stream\'s schema (it has: t); '
    )
    # tags named by the mapping replace the key properties: nothing is missing then
    assert resolve_mapping("s", props, ["id", "t"], [], {"tags": []}).tags == ()


def test_a_measurement_influxdb_reads_as_a_comment_is_refused():
    props = {"properties": {"t": {"type": "string", "format": "date-time"}, "v": {}}}
    with pytest.raises(SchemaError, match=r'measurement "#m" starts with "#".*mappings\.#m'):
        resolve_mapping("#m", props, ["t"], [], {})
    with pytest.raises(SchemaError, match=r'stream "s": measurement "#x"'):
        resolve_mapping("s", props, ["t"], [], {"measurement": "#x"})
    assert resolve_mapping("s#", props, ["t"], [], {}).measurement == "s#"


@pytest.mark.parametrize(
    ("prop", "is_time"),
    [
        ({"type": "string", "format": "date-time"}, True),
        ({"type": ["string", "null"], "format": "date"}, True),
        ({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}, True),
        ({"type": "string"}, False),
        ({"type": "integer", "format": "date-time"}, False),
        (None, False),
    ],
)
def test_time_properties_are_strings_of_a_date_format(prop, is_time):
    assert is_time_property(prop) is is_time
