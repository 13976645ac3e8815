"""A stream's shape in InfluxDB (tags, field types), and what a new SCHEMA message changes in it.

A tap may send a stream's SCHEMA again in the middle of a run. Where the new schema changes
the stream's tags or the InfluxDB type of one of its fields, the points that follow behave
differently from the ones before, and the run says so (:func:`shape_changes`).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from target_influxdb.lineprotocol import field_kind

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from target_influxdb.lineprotocol import StreamMapping

STORED_TYPES = {"float": "float", "integer": "integer", "boolean": "boolean"}
"""The InfluxDB type of each field kind; every other kind is stored as a string."""


@dataclass(frozen=True)
class StreamShape:
    """The tags and the InfluxDB field types a stream's points get."""

    tags: tuple[str, ...]
    fields: Mapping[str, str]
    """Field key (dotted for nested properties) -> InfluxDB type."""


def _field_types(
    properties: Mapping[str, t.Any], prefix: str, skip: set[str]
) -> Iterator[tuple[str, str]]:
    for name, prop in properties.items():
        dotted = f"{prefix}{name}"
        if dotted in skip:
            continue
        kind = field_kind(prop or {})
        if kind is None:
            yield from _field_types(prop["properties"], f"{dotted}.", skip)
        else:
            yield dotted, STORED_TYPES.get(kind, "string")


def stream_shape(schema: Mapping[str, t.Any], mapping: StreamMapping) -> StreamShape:
    """The shape the points of a stream get from its schema and mapping."""
    skip = {*mapping.tags, *mapping.exclude, *([mapping.timestamp] if mapping.timestamp else [])}
    fields = dict(_field_types(schema.get("properties") or {}, "", skip))
    return StreamShape(tuple(mapping.tags), fields)


def shape_changes(stream: str, before: StreamShape, after: StreamShape) -> list[str]:
    """What a new SCHEMA message of ``stream`` changes for its points, one sentence each."""
    changes = []
    if set(before.tags) != set(after.tags):
        moved = sorted((set(before.tags) ^ set(after.tags)) & {*before.fields, *after.fields})
        both = (
            f"; {', '.join(repr(k) for k in moved)} is then both a tag and a field of the "
            'measurement (query it as "key"::tag or "key"::field)'
            if moved
            else ""
        )
        changes.append(
            f"Stream {stream!r}: a new SCHEMA message changes its tags from "
            f"{list(before.tags)} to {list(after.tags)}: the points from now on go to other "
            "series than the points before it, and InfluxDB keeps both (a point written again "
            f"under the new tags does not replace the one stored under the old){both}"
        )
    for key, stored in sorted(after.fields.items()):
        earlier = before.fields.get(key)
        if earlier is not None and earlier != stored:
            changes.append(
                f"Stream {stream!r}: a new SCHEMA message changes field {key!r} from {earlier} "
                f"to {stored}: InfluxDB refuses {stored} values into a field it stores as "
                f"{earlier} in the same shard, so such points fail the run (or wait in "
                "`rejected_points_path`), and in file mode the file does not load whole"
            )
    return changes
