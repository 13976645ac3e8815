"""A stream's measurement, tags and timestamp, from its mapping setting and its schema."""

from __future__ import annotations

import typing as t

from singer_sdk.exceptions import ConfigValidationError

from target_influxdb.lineprotocol import StreamMapping, schema_types

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

DATE_FORMATS = frozenset({"date-time", "date"})


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
    """
    properties = schema.get("properties") or {}
    timestamp = configured.get("timestamp") or next(
        (p for p in (*bookmark_properties, *key_properties) if is_time_property(properties.get(p))),
        None,
    )
    tags = configured.get("tags")
    if tags is None:
        tags = [k for k in key_properties if k != timestamp]
    unknown = [name for name in (*tags, timestamp) if name and name not in properties]
    if unknown:
        msg = (
            f"mappings.{stream_name} names properties that stream {stream_name!r} does not "
            f"have: {', '.join(unknown)} (it has: {', '.join(properties) or 'none'})"
        )
        raise ConfigValidationError(msg, errors=[msg])
    return StreamMapping(
        measurement=configured.get("measurement") or stream_name,
        tags=tuple(tags),
        timestamp=timestamp,
        exclude=frozenset(configured.get("exclude") or ()),
    )
