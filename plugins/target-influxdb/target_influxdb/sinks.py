"""InfluxDB sink: records become line-protocol points, batches are written synchronously."""

from __future__ import annotations

import typing as t

import fastjsonschema
from singer_sdk.exceptions import InvalidJSONSchema, InvalidRecord
from singer_sdk.sinks import BatchSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator
from typing_extensions import override

from target_influxdb.lineprotocol import PointEncoder, RecordError
from target_influxdb.mapping import resolve_mapping
from target_influxdb.runs import StreamRun
from target_influxdb.writers import RejectedPointsError, WriteError

if t.TYPE_CHECKING:
    from collections.abc import Sequence

    from target_influxdb.target import TargetInfluxDB


class FastJSONSchemaValidator(BaseJSONSchemaValidator):
    """Record validation compiled by fastjsonschema (formats unchecked, as the SDK's default)."""

    def __init__(self, schema: dict[str, t.Any]) -> None:
        """Compile the stream's schema."""
        super().__init__(schema)
        try:
            self._validate = fastjsonschema.compile(schema, use_default=False, use_formats=False)
        except fastjsonschema.JsonSchemaDefinitionException as exc:
            raise InvalidJSONSchema(f"Schema Validation Error: {exc}") from exc

    @override
    def validate(self, record: dict) -> None:
        try:
            self._validate(record)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise InvalidRecord(f"Record Message Validation Error: {exc.message}", record) from exc


class InfluxDBSink(BatchSink):
    """Turns each record into a point and writes each batch before returning."""

    def __init__(
        self,
        target: TargetInfluxDB,
        stream_name: str,
        schema: dict,
        key_properties: Sequence[str] | None,
    ) -> None:
        """Resolve the stream's mapping and compile its encoder."""
        super().__init__(target, stream_name, schema, key_properties)
        self._writer = target.writer
        self._rejected_file = target.rejected_file
        mapping = resolve_mapping(
            stream_name,
            schema,
            key_properties or (),
            target.schema_bookmark_properties,
            (self.config.get("mappings") or {}).get(stream_name) or {},
        )
        self._encoder = PointEncoder(stream_name, schema, mapping, self.config.get("static_tags"))
        self._known_properties = frozenset(schema.get("properties") or ())
        self._untimed_fails = mapping.timestamp is None and self.config["untimed_streams"] == "fail"
        # one count per stream and run: a sink that replaces this one (a new schema) goes on
        self.run = target.stream_runs.setdefault(stream_name, StreamRun())
        self._skipped = 0  # this sink's part of run.skipped, for its warning
        self.logger.info(
            "Stream %r -> measurement %r, tags %s, timestamp %s",
            stream_name,
            mapping.measurement,
            list(mapping.tags),
            mapping.timestamp or "(time received)",
        )

    @property
    @override
    def max_size(self) -> int:
        return int(self.config["batch_size"])

    @override
    def get_validator(self) -> BaseJSONSchemaValidator | None:
        return FastJSONSchemaValidator(self.schema) if self.validate_schema else None

    @override
    def _parse_timestamps_in_record(self, record: dict, schema: dict, treatment: t.Any) -> None:
        # The encoder parses date-times itself, once, with errors that name the stream; the SDK
        # would parse every one a second time. What stays is the SDK's warning, once a field,
        # about a value the schema has no property for (tests/test_sinks.py pins both).
        if schema.get("additionalProperties", False):
            return
        for key in record.keys() - self._known_properties - self._warned_missing_fields:
            if record[key] is not None:
                self.logger.warning("No schema for record field '%s': it is not written", key)
                self._warned_missing_fields.add(key)

    @override
    def process_record(self, record: dict, context: dict) -> None:
        if self._untimed_fails:
            msg = (
                f'stream "{self.stream_name}" has no timestamp property: set '
                f"`mappings.{self.stream_name}.timestamp`, or set `untimed_streams` to "
                "`receive_time`"
            )
            raise RecordError(msg)
        self.run.records += 1
        point = self._encoder.encode(record)
        if point is None:
            self.run.skipped += 1
            self._skipped += 1
        else:
            context.setdefault("points", []).append(point)

    @override
    def process_batch(self, context: dict) -> None:
        points = context.get("points")
        if not points:
            return
        try:
            where = self._writer.write(self.stream_name, points)
        except RejectedPointsError as rejected:
            self._set_aside(rejected)
            return
        except WriteError:
            self.run.rejected += len(points)
            raise
        self.run.written(len(points), max(stamp for _, stamp in points))
        if self._rejected_file is not None:
            self._rejected_file.keep_stored(self.stream_name, points)
        self.logger.debug(
            "Wrote %d points of stream %r to %s", len(points), self.stream_name, where
        )

    def _set_aside(self, rejected: RejectedPointsError) -> None:
        """Count a batch InfluxDB refused points of; keep those in the file, or fail the run."""
        self.run.written(rejected.written, rejected.newest_written_ns)
        self.run.rejected += rejected.rejected
        if self._rejected_file is None:
            raise rejected
        self._rejected_file.append(self.stream_name, rejected)
        self.logger.debug(
            "Stream %r: %d points InfluxDB refused set aside in %s, %d stored",
            self.stream_name,
            rejected.rejected,
            self._rejected_file.path,
            rejected.written,
        )

    @override
    def clean_up(self) -> None:
        stats = self._encoder.stats
        if self._skipped:
            self.logger.warning(
                "Stream %r: skipped %d records with no field value", self.stream_name, self._skipped
            )
        if stats.values_not_storable:
            self.logger.warning(
                "Stream %r: left out %d values InfluxDB cannot store (NaN, infinity, "
                "integers beyond 64 bits)",
                self.stream_name,
                stats.values_not_storable,
            )
        if stats.changed_names:
            self.logger.warning(
                "Stream %r: names line protocol cannot carry as they are were stored changed "
                '(see the README, "From a record to a point"): %s',
                self.stream_name,
                stats.changed_names_text(),
            )
        if stats.renamed_keys:
            self.logger.warning(
                "Stream %r: keys reserved by InfluxDB written with a trailing '_': %s",
                self.stream_name,
                sorted(stats.renamed_keys),
            )
        super().clean_up()
