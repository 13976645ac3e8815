"""A stream's measurement, tags and timestamp, from its mapping setting and its schema."""

from __future__ import annotations

import typing as t

from singer_sdk.exceptions import ConfigValidationError

from target_influxdb.lineprotocol import RecordError, StreamMapping, schema_types

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

DATE_FORMATS = frozenset({"date-time", "date"})


class SchemaError(RecordError):
    """A stream's SCHEMA message the target cannot write points from (a tap's mistake)."""


def is_time_property(prop: Mapping[str, t.Any] | None) -> bool:
    """Return True when a schema property holds a date or date-time string."""
    if not prop:
        return False
    options = [prop, *(prop.get("anyOf") or ())]
    return any(o.get("format") in DATE_FORMATS and "string" in schema_types(o) for o in options)


def resolve_mapping(
    stream_name: str,
    schema: Mapping[str, t.Any],
    key_properties: Sequence[str],
    bookmark_properties: Sequence[str],
    configured: Mapping[str, t.Any],
) -> StreamMapping:
    """Resolve a stream's measurement, tags and timestamp from its mapping and schema.

    Raises:
        ConfigValidationError: when the mapping names a property the stream lacks.
        SchemaError: when a key property (the default tags) is not in the stream's schema.
    """
    properties = schema.get("properties") or {}
    timestamp = configured.get("timestamp") or next(
        (p for p in (*bookmark_properties, *key_properties) if is_time_property(properties.get(p))),
        None,
    )
    tags = configured.get("tags")
    if tags is None:
        tags = [k for k in key_properties if k != timestamp]
    _check_names(stream_name, properties, configured, [*tags, timestamp])
    _check_measurement(stream_name, configured.get("measurement") or stream_name)
    return StreamMapping(
        measurement=configured.get("measurement") or stream_name,
        tags=tuple(tags),
        timestamp=timestamp,
        exclude=frozenset(configured.get("exclude") or ()),
    )


def _check_names(
    stream_name: str,
    properties: Mapping[str, t.Any],
    configured: Mapping[str, t.Any],
    names: Sequence[str | None],
) -> None:
    """Fail on a tag or timestamp the schema lacks, blaming the mapping or the tap's SCHEMA.

    Raises:
        ConfigValidationError: naming the mapping at fault.
        SchemaError: naming the key properties the schema lacks.
    """
    unknown = [name for name in names if name and name not in properties]
    if not unknown:
        return
    has = ", ".join(properties) or "none"
    from_mapping = {*(configured.get("tags") or ()), configured.get("timestamp")}
    if mapped := [name for name in unknown if name in from_mapping]:
        msg = (
            f"mappings.{stream_name} names properties that stream {stream_name!r} does not "
            f"have: {', '.join(mapped)} (it has: {has})"
        )
        raise ConfigValidationError(msg, errors=[msg])
    # key properties the tap declared without a property in its schema
    quoted = ", ".join(f'"{name}"' for name in unknown)
    which = "key property" if len(unknown) == 1 else "key properties"
    verb = "is" if len(unknown) == 1 else "are"
    msg = (
        f'stream "{stream_name}": {which} {quoted} {verb} not in the stream\'s schema '
        f"(it has: {has}); the tap sends an inconsistent SCHEMA: fix the tap, or set "
        f"`mappings.{stream_name}.tags` to the properties to write as tags"
    )
    raise SchemaError(msg)


def _check_measurement(stream_name: str, measurement: str) -> None:
    """Fail on a measurement InfluxDB would drop: a line that starts with ``#`` is a comment.

    Raises:
        SchemaError: naming the stream and the setting that gives it another name.
    """
    if not measurement.startswith("#"):
        return
    msg = (
        f'stream "{stream_name}": measurement "{measurement}" starts with "#", which InfluxDB '
        "reads as a comment line: its points would be dropped without a word; set "
        f"`mappings.{stream_name}.measurement` to a name that does not"
    )
    raise SchemaError(msg)
