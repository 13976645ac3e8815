"""InfluxDB sink: records become line-protocol points, batches are written synchronously."""

from __future__ import annotations

import json
import typing as t
from dataclasses import dataclass

import fastjsonschema
from singer_sdk.exceptions import InvalidJSONSchema, InvalidRecord, MissingKeyPropertiesError
from singer_sdk.sinks import BatchSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator
from typing_extensions import override

from target_influxdb import batches
from target_influxdb.lineprotocol import SHOWN_VALUE_CHARS, PointEncoder, RecordError
from target_influxdb.mapping import resolve_mapping
from target_influxdb.rejections import shorten
from target_influxdb.runs import StreamRun
from target_influxdb.shapes import stream_shape
from target_influxdb.writers import RejectedPointsError, WriteError

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from singer_sdk.helpers._batch import BaseBatchFileEncoding, StorageTarget

    from target_influxdb.target import TargetInfluxDB


class FastJSONSchemaValidator(BaseJSONSchemaValidator):
    """Record validation compiled by fastjsonschema (formats unchecked, as the SDK's default).

    A record that breaks the schema fails the run with one line naming the stream, the
    property, the value and the record's key (:class:`RecordValidationError`, which the SDK
    lets through without logging a traceback). With ``fail=False`` it raises the SDK's
    ``InvalidRecord`` instead, which the SDK logs; the record is then written as it is.
    """

    def __init__(
        self,
        schema: dict[str, t.Any],
        stream_name: str = "",
        key_properties: Sequence[str] = (),
        *,
        fail: bool = True,
    ) -> None:
        """Compile the stream's schema."""
        super().__init__(schema)
        self._stream_name = stream_name
        self._key_properties = tuple(key_properties)
        self._fail = fail
        try:
            self._validate = fastjsonschema.compile(schema, use_default=False, use_formats=False)
        except fastjsonschema.JsonSchemaDefinitionException as exc:
            raise InvalidJSONSchema(f"Schema Validation Error: {exc}") from exc
        self._plan = type_plan(schema)
        self._accepted: set[tuple[type, ...]] = set()

    @override
    def validate(self, record: dict) -> None:
        plan = self._plan
        if plan is not None:
            kinds = tuple(map(type, map(record.get, plan.names, plan.absent)))
            if kinds in self._accepted:
                return
            if all(kind in allowed for kind, allowed in zip(kinds, plan.allowed, strict=True)):
                if len(self._accepted) >= ACCEPTED_SHAPES:
                    self._accepted.clear()
                self._accepted.add(kinds)
                return
        try:
            self._validate(record)
        except fastjsonschema.JsonSchemaValueException as exc:
            text = validation_text(self._stream_name, exc, record, self._key_properties)
            if self._fail:
                raise RecordValidationError(text) from None
            raise InvalidRecord(text, record) from exc


class _Absent:
    """The value of a property a record does not have (valid whatever the property's type)."""


ABSENT = _Absent()
ACCEPTED_SHAPES = 1024
"""Distinct tuples of value types a validator keeps as known valid."""
JSON_TYPES: dict[str, frozenset[type]] = {
    "string": frozenset({str}),
    "integer": frozenset({int}),
    "number": frozenset({int, float}),
    "boolean": frozenset({bool}),
    "null": frozenset({type(None)}),
    "array": frozenset({list}),
    "object": frozenset({dict}),
}
"""The Python types of decoded JSON that each JSON Schema type accepts whatever the value (an
integral float is an ``integer`` too, but only by its value: it is left to the full check)."""
TYPE_ONLY_KEYWORDS = frozenset({"type", "format", "description", "title", "examples", "$comment"})
"""A property schema with only these keywords checks the type of its value and nothing else
(formats are not checked, as the SDK's default)."""
RECORD_KEYWORDS = frozenset({"type", "properties", "description", "title", "$schema"})


@dataclass(frozen=True)
class TypePlan:
    """A schema whose every check is the type of a top-level property's value."""

    names: tuple[str, ...]
    absent: tuple[_Absent, ...]
    allowed: tuple[frozenset[type], ...]


def type_plan(schema: Mapping[str, t.Any]) -> TypePlan | None:
    """The type checks a schema makes, when that is all it checks; else None.

    Such a schema accepts a record exactly when each property's value has one of the Python
    types its JSON types accept (or the record lacks it), so a record is valid when the tuple
    of its value types is one known valid: the full validator is asked only about new tuples.
    A schema with any other keyword (``required``, ``additionalProperties: false``, nested
    ``properties``, ``enum``, ``anyOf``...) is always checked in full.
    """
    extra = set(schema) - RECORD_KEYWORDS
    if schema.get("additionalProperties", True) is True:
        extra.discard("additionalProperties")
    properties = schema.get("properties")
    record_type = schema.get("type", "object")
    record_types = [record_type] if isinstance(record_type, str) else record_type
    if extra or not isinstance(properties, dict) or "object" not in (record_types or ()):
        return None
    allowed = []
    for prop in properties.values():
        if not isinstance(prop, dict) or set(prop) - TYPE_ONLY_KEYWORDS:
            return None
        declared = prop.get("type")
        names = [declared] if isinstance(declared, str) else declared
        if not isinstance(names, list) or not names or any(n not in JSON_TYPES for n in names):
            return None
        allowed.append(frozenset({_Absent}.union(*(JSON_TYPES[n] for n in names))))
    names = tuple(properties)
    return TypePlan(names, (ABSENT,) * len(names), tuple(allowed))


KIND_WORDS = {"json": "JSON string"}
"""How a field kind is named to a user, where its name is not the word."""


class RecordValidationError(RecordError):
    """A record that breaks its stream's schema."""


def validation_text(
    stream_name: str,
    exc: fastjsonschema.JsonSchemaValueException,
    record: Mapping[str, t.Any],
    key_properties: Sequence[str],
) -> str:
    """What is wrong with a record, in one line: stream, property, value, and the record's key.

    For example ``stream "readings": property "cv" value "abc" is not of type number or null
    (record key: site=a, at=2026-01-01T00:00:00Z)``.
    """
    name = (exc.name or "data").removeprefix("data").lstrip(".")
    problem = (exc.message or "").removeprefix(exc.name or "").strip()
    if exc.rule == "type":
        types = exc.rule_definition
        problem = "is not of type " + " or ".join([types] if isinstance(types, str) else types)
    if name:
        what = f'property "{name}" value {_quoted(exc.value, SHOWN_VALUE_CHARS)} {problem}'
    else:
        what = f"record {problem}"
    keys = ", ".join(f"{k}={_quoted(record.get(k), 60, bare=True)}" for k in key_properties)
    return f'stream "{stream_name}": {what}' + (f" (record key: {keys})" if keys else "")


def _quoted(value: object, limit: int, *, bare: bool = False) -> str:
    """A value as JSON text (a string bare when asked), cut to about ``limit`` characters."""
    if bare and isinstance(value, str):
        return shorten(value, limit)
    return shorten(json.dumps(value, ensure_ascii=False, default=str), limit)


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
        self._record_validator: FastJSONSchemaValidator | None = None
        super().__init__(target, stream_name, schema, key_properties)
        # The encoder reads the schema's date-times itself, to the nanosecond, with errors that
        # name the stream; the SDK parses those its `schema` declares into microsecond
        # datetimes. Shown none, it passes every value on as it came (tests/test_sinks.py).
        self.schema = {"type": "object", "properties": {}, "additionalProperties": True}
        self._owner = target
        self._writer = target.writer
        self._rejected_file = target.rejected_file
        mapping = resolve_mapping(
            stream_name,
            schema,
            key_properties or (),
            target.schema_bookmark_properties,
            (self.config.get("mappings") or {}).get(stream_name) or {},
        )
        # a schema open to more properties (additionalProperties) has them written
        self._open = bool(schema.get("additionalProperties", False))
        self._encoder = PointEncoder(
            stream_name,
            schema,
            mapping,
            self.config.get("static_tags"),
            write_undeclared=self._open,
        )
        target.note_shape(stream_name, stream_shape(self._encoder))
        self._known_properties = frozenset(schema.get("properties") or ())
        self._key_names = tuple(key_properties or ())
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
        self._record_validator = None
        if self.validate_schema:
            self._record_validator = FastJSONSchemaValidator(
                self.schema,
                self.stream_name,
                self.key_properties,
                fail=self.fail_on_record_validation_exception,
            )
        return self._record_validator

    @override
    def preprocess_record(self, record: dict, context: dict) -> dict:
        # A schema closed to more properties: name each left out, once per stream and run.
        if not self._open:
            for key in record.keys() - self._known_properties - self.run.left_out:
                if record[key] is not None:
                    self.logger.warning("No schema for record field '%s': it is not written", key)
                    self.run.left_out.add(key)
        return record

    @override
    def process_record(self, record: dict, context: dict) -> None:
        self._check_timed()
        self.run.records += 1
        point = self._encoder.encode(record)
        if point is None:
            self.run.skipped += 1
            self._skipped += 1
        else:
            context.setdefault("points", []).append(point)

    @override
    def process_batch(self, context: dict) -> None:
        """Start writing the batch's points; the next batch is encoded meanwhile.

        At most one write is in flight (the target's :class:`OneInFlight`, shared by every
        sink), so batches are stored in the order received. A failed write fails the run at
        the next batch, STATE or end of input, before any later STATE is passed on.
        """
        points = context.get("points")
        if points:
            self._owner.writes.submit(self.write, points)

    def write(self, points: list[tuple[str, int]]) -> None:
        """Write points and count them; refused ones set aside when a file takes them.

        Raises:
            WriteError: the points could not be stored.
        """
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

    @override
    def process_batch_files(self, encoding: BaseBatchFileEncoding, files: Sequence[str]) -> None:
        """Load the files of a BATCH message, each read as a stream and written as it goes.

        The records received before the message are written first (a later record of the same
        point wins, as with RECORDs); each file's points are stored (or synced to the file)
        before the next file is read, and before the method returns.
        """
        batches.check_encoding(self.stream_name, encoding, files)
        self._owner.drain_one(self)
        for url in files:
            self.load_batch_file(url, encoding)
            if self.config.get("delete_batch_files"):
                batches.remove_file(url, self._storage)

    @property
    def _storage(self) -> StorageTarget | None:
        batch_config = self.batch_config
        return batch_config.storage if batch_config else None

    def load_batch_file(self, url: str, encoding: BaseBatchFileEncoding) -> None:
        """Encode one batch file's records and write them, ``batch_size`` points a write.

        Each record is flattened as a RECORD is when `flattening_enabled` is on, and checked as
        a RECORD is (schema validation when on, key properties), without the SDK's other
        per-message work (stream maps, metadata columns). While one batch is written, the next
        is encoded; the file's points are all stored when this returns, and a failed write
        fails it.
        """
        self._check_timed()
        run, encode, size = self.run, self._encoder.encode, self.max_size
        check = self._check_record
        (stream_map,) = self._owner.mapper.stream_maps[self.stream_name]  # the identity
        flatten = stream_map.flatten_record if stream_map.flattening_enabled else None
        points: list[tuple[str, int]] = []
        writes = self._owner.writes  # one write in flight while the next batch is encoded
        for records in batches.read_records(url, encoding, self._storage, self.stream_name):
            run.records += len(records)
            for record in map(flatten, records) if flatten else records:
                check(record)
                point = encode(record)
                if point is None:
                    run.skipped += 1
                    self._skipped += 1
                    continue
                points.append(point)
                if len(points) >= size:
                    writes.submit(self.write, points)
                    points = []
            self.record_counter_metric.increment(len(records))
        if points:
            writes.submit(self.write, points)
        writes.wait()  # the file's points are all stored

    def _check_record(self, record: dict) -> None:
        """The checks a RECORD gets: schema validation (when on), key properties, undeclared.

        As the SDK and :meth:`preprocess_record` check a RECORD, each asked only when its
        quick test fails.

        Raises:
            MissingKeyPropertiesError: a key property is missing, as the SDK raises it.
        """
        validator = self._record_validator
        if validator is not None:
            try:
                validator.validate(record)
            except InvalidRecord:  # the SDK's handling, with `fail=False`
                self.logger.exception("Record validation failed")
                if self.fail_on_record_validation_exception:
                    raise
        if not all(map(record.__contains__, self._key_names)):
            msg = (
                f"Record is missing one or more key_properties. \n"
                f"Key Properties: {list(self._key_names)}, Record Keys: {list(record)}"
            )
            raise MissingKeyPropertiesError(msg)
        if not self._known_properties.issuperset(record):
            self.preprocess_record(record, {})

    def _check_timed(self) -> None:
        """Fail a stream with no timestamp property unless `untimed_streams` stamps it."""
        if self._untimed_fails:
            msg = (
                f'stream "{self.stream_name}" has no timestamp property: set '
                f"`mappings.{self.stream_name}.timestamp`, or set `untimed_streams` to "
                "`receive_time`"
            )
            raise RecordError(msg)

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
        if stats.undeclared:
            self.logger.warning(
                "Stream %r: wrote properties its schema does not declare (it allows more: "
                "additionalProperties), each typed by its JSON value: %s",
                self.stream_name,
                ", ".join(
                    f"{name} ({' and '.join(sorted(KIND_WORDS.get(k, k) for k in kinds))})"
                    for name, kinds in sorted(stats.undeclared.items())
                ),
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
