"""A stream's shape in InfluxDB (tags, field types), and what a new SCHEMA message changes in it.

A tap may send a stream's SCHEMA again in the middle of a run. Where the new schema changes
the stream's tags or the InfluxDB type of one of its fields, the points that follow behave
differently from the ones before, and the run says so (:func:`shape_changes`).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from target_influxdb.lineprotocol import PointEncoder

STORED_TYPES = {"float": "float", "integer": "integer", "boolean": "boolean"}
"""The InfluxDB type of each field kind; every other kind is stored as a string."""


@dataclass(frozen=True)
class StreamShape:
    """The tags and the InfluxDB field types a stream's points get."""

    tags: tuple[str, ...]
    fields: Mapping[str, str]
    """Field key (dotted for nested properties) -> InfluxDB type."""


def stream_shape(encoder: PointEncoder) -> StreamShape:
    """The shape the points of a stream get: its encoder's tags and field plan."""
    fields = {name: STORED_TYPES.get(kind, "string") for name, kind in encoder.field_kinds.items()}
    return StreamShape(tuple(encoder.mapping.tags), fields)


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
