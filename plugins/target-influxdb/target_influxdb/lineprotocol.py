r"""Pure conversion of Singer records into InfluxDB line protocol.

Nothing here does I/O. A :class:`PointEncoder` is built once per stream from its JSON schema
and mapping; it turns each record into a line without its timestamp plus the timestamp in
epoch nanoseconds, so that a batch can pick the coarsest precision that loses nothing.

Names (measurement, tag keys and values, field keys) are escaped by one rule, as
influxdb-client escapes them, plus what line protocol cannot carry: a backslash that would
read as an escape (right before a comma, space, equals sign or double quote, or ending the
name) is written as a space, and newline, carriage return and tab as the two characters
``\n``, ``\r``, ``\t``. :func:`stored_name` says what InfluxDB then stores.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import json
import math
import re
import time
import typing as t
from dataclasses import dataclass, field

import msgspec

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
ONE_MICROSECOND = dt.timedelta(microseconds=1)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MIN_TIME_NS, MAX_TIME_NS = INT64_MIN + 2, INT64_MAX - 1
"""The instants InfluxDB stores (epoch ns): 1677-09-21T00:12:43.145224194Z to
2262-04-11T23:47:16.854775806Z."""
RESERVED_KEYS = frozenset({"time", "_field", "_measurement"})
"""Keys InfluxDB refuses as tag or field keys; they are written with a trailing ``_``."""

_MEASUREMENT_ESCAPES = str.maketrans(
    {",": r"\,", " ": r"\ ", "\n": r"\n", "\r": r"\r", "\t": r"\t"},
)
_KEY_ESCAPES = str.maketrans(
    {",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\r": r"\r", "\t": r"\t"},
)
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})
_READ_AS_ESCAPE = re.compile(r'\\+(?=[,= "]|\Z)')
"""Backslashes InfluxDB would read as escaping what follows them (or the separator)."""
_NOT_CARRIED = re.compile(r"[\\\n\r\t]")
_CONTROL_TEXT = str.maketrans({"\n": r"\n", "\r": r"\r", "\t": r"\t"})
_FRACTION = re.compile(r"[Tt ]\d\d:?\d\d:?\d\d([.,]\d+)")
"""The fractional seconds of an ISO 8601 time (Python keeps only six digits of them)."""

FieldKind = t.Literal["float", "integer", "boolean", "string", "datetime", "json"]
PRECISION_DIVISORS: dict[str, int] = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
TAG_CACHE_SIZE = 4096
STAMP_CACHE_SIZE = 4096
"""Distinct timestamp texts whose instant is kept; many series share each instant."""
_FLOATS_ENCODER = msgspec.json.Encoder()
_DECIMAL_BYTES = b"0123456789.,-"
"""What the items of a JSON list of floats without exponents are written with."""
NAMES_NOTED = 10
"""Names line protocol cannot carry that a stream's warning spells out."""
"""Distinct tag sets whose rendered text is kept; series repeat, so most records hit it."""


class RecordError(ValueError):
    """A record that cannot become a point (for example, no usable timestamp)."""


@dataclass(frozen=True)
class StreamMapping:
    """How one stream becomes points: the resolved mapping of the target config."""

    measurement: str
    tags: tuple[str, ...]
    timestamp: str | None
    exclude: frozenset[str] = frozenset()


@dataclass
class EncodeStats:
    """What the encoder left out on purpose, reported once per stream."""

    values_not_storable: int = 0
    renamed_keys: set[str] = field(default_factory=set)
    undeclared: dict[str, set[str]] = field(default_factory=dict)
    """Properties the schema does not declare that were written, and their kinds."""
    changed_names: dict[tuple[str, str], str] = field(default_factory=dict)
    """(position, name as sent) -> name as stored, for names line protocol cannot carry."""

    def note_name(self, position: str, name: str) -> None:
        """Remember a name InfluxDB stores otherwise than sent (the first few of them)."""
        if _NOT_CARRIED.search(name) is None or len(self.changed_names) >= NAMES_NOTED:
            return
        stored = stored_name(name)
        if stored != name:
            self.changed_names.setdefault((position, name), stored)

    def changed_names_text(self) -> str:
        """The changed names in words: each as sent and as stored, quoted by ``repr``."""
        return "; ".join(
            f"{position} {sent!r} stored as {stored!r}"
            for (position, sent), stored in self.changed_names.items()
        )


@dataclass(frozen=True)
class _TagSpec:
    key: str  # escaped tag key
    name: str | None  # record property, or None for a static tag
    static: str | None  # value of the static tag of that key
    render: t.Callable[[object], str]


@dataclass(frozen=True)
class _FieldSpec:
    key: str  # escaped field key, with "="
    name: str  # top-level property
    path: tuple[str, ...]  # more than one part for a nested property
    kind: FieldKind
    render: t.Callable[[object], str | None]


def _carried(name: str) -> str:
    """The name with each backslash InfluxDB would read as an escape turned into a space."""
    if "\\" not in name:
        return name
    return _READ_AS_ESCAPE.sub(lambda found: " " * len(found.group()), name)


def stored_name(name: str) -> str:
    r"""What InfluxDB stores for a measurement, tag key, tag value or field key.

    The name itself, except for what line protocol cannot carry in a name: a backslash
    right before a comma, space, equals sign or double quote, or at the end, becomes a space
    (as influxdb-client writes a tag value's final backslash); newline, carriage return and
    tab become the two characters ``\n``, ``\r``, ``\t`` (as influxdb-client writes them).
    """
    if _NOT_CARRIED.search(name) is None:
        return name
    return _carried(name).translate(_CONTROL_TEXT)


def escape_measurement(name: str) -> str:
    """Escape a measurement name (commas, spaces; see :func:`stored_name`)."""
    return _carried(name).translate(_MEASUREMENT_ESCAPES)


def escape_key(name: str) -> str:
    """Escape a tag key, tag value or field key (commas, equals signs, spaces).

    See :func:`stored_name` for what line protocol cannot carry.
    """
    return _carried(name).translate(_KEY_ESCAPES)


escape_tag_value = escape_key
"""A tag value is escaped as a key: a final backslash becomes a space, as influxdb-client's."""


def escape_string(value: str) -> str:
    """Quote a string field value, escaping backslashes and double quotes."""
    return '"' + value.translate(_STRING_ESCAPES) + '"'


def schema_types(prop: Mapping[str, t.Any]) -> set[str]:
    """Return the non-null JSON types a schema property allows (``anyOf`` included)."""
    found: set[str] = set()
    declared = prop.get("type")
    if isinstance(declared, str):
        found.add(declared)
    elif isinstance(declared, list):
        found.update(x for x in declared if isinstance(x, str))
    for option in prop.get("anyOf", ()) or ():
        found |= schema_types(option)
    found.discard("null")
    return found


def field_kind(prop: Mapping[str, t.Any]) -> FieldKind | None:
    """Return the line-protocol kind of a scalar property; None for a nested object.

    The kind comes from the schema, never from a value, so that a field keeps one type for
    its whole life: ``number`` is always a float, ``integer`` an integer. A ``date-time``
    string is written as a string in UTC.
    """
    types = schema_types(prop)
    if types == {"object"} and prop.get("properties"):
        return None
    if types <= {"integer", "number"} and "number" in types:
        return "float"
    if types == {"integer"}:
        return "integer"
    if types == {"boolean"}:
        return "boolean"
    if types == {"string"}:
        return "datetime" if prop.get("format") == "date-time" else "string"
    return "json"


def safe_key(name: str, stats: EncodeStats) -> str:
    """Return ``name``, renamed with a trailing ``_`` when InfluxDB reserves it."""
    if name in RESERVED_KEYS:
        stats.renamed_keys.add(name)
        return name + "_"
    return name


@functools.lru_cache(maxsize=8192)
def _parse_iso_ns(text: str) -> int:
    """Epoch nanoseconds of an ISO 8601 date or date-time (naive means UTC), to the nanosecond.

    Python's datetime keeps six digits of fractional seconds: the fraction is read here, the
    rest by ``datetime.fromisoformat``. Digits beyond the ninth are dropped.
    """
    text = text.strip()
    nanoseconds = 0
    if "." in text or "," in text:
        fraction = _FRACTION.search(text)
        if fraction is not None:
            nanoseconds = int(fraction.group(1)[1:10].ljust(9, "0"))
            text = text[: fraction.start(1)] + text[fraction.end(1) :]
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    if value.microsecond:  # a fraction the pattern did not take (not after the seconds)
        return (value - EPOCH) // ONE_MICROSECOND * 1000 + nanoseconds
    return int(value.timestamp()) * 10**9 + nanoseconds  # whole seconds: exact in a float


def to_epoch_ns(value: object) -> int:
    """Convert a timestamp value into UTC epoch nanoseconds.

    Accepts aware or naive datetimes (naive means UTC, as in Singer), dates (midnight UTC)
    and ISO 8601 strings, whose fractional seconds are kept to the nanosecond.

    Raises:
        ValueError: when the value is not a timestamp.
    """
    if isinstance(value, str):
        return _parse_iso_ns(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return (value - EPOCH) // ONE_MICROSECOND * 1000
    if isinstance(value, dt.date):
        return to_epoch_ns(dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC))
    msg = f"expected an ISO 8601 date-time, got {type(value).__name__}"
    raise ValueError(msg)


def iso_from_ns(nanoseconds: int) -> str:
    """Render epoch nanoseconds as ISO 8601 UTC with a ``Z``, as :func:`iso_utc` renders.

    Six digits of fraction when the instant has whole microseconds (as Python renders a
    datetime), nine otherwise.
    """
    seconds, fraction = divmod(nanoseconds, 10**9)
    value = EPOCH + dt.timedelta(seconds=seconds, microseconds=fraction // 1000)
    if fraction % 1000:
        return f"{value.replace(microsecond=0).isoformat()[:-6]}.{fraction:09d}Z"
    return iso_utc(value)


def iso_utc(value: dt.date) -> str:
    """Render a date or datetime as ISO 8601, datetimes in UTC with a ``Z``."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat()


def tag_text(value: object) -> str:
    """Render any scalar as tag text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return iso_utc(value)
    if isinstance(value, (int, decimal.Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value, default=str, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _datetime_tag(value: object) -> str:
    """A date-time as ISO 8601 text in UTC (tag text, and the text of a date-time field)."""
    if isinstance(value, str):
        return iso_from_ns(_parse_iso_ns(value))
    return iso_utc(value) if isinstance(value, dt.date) else tag_text(value)


def tag_renderer(prop: Mapping[str, t.Any]) -> t.Callable[[object], str]:
    """How a tag property's values become text, by its schema type.

    So 39 and 39.0 of a ``number`` property name the same series ("39.0").
    """
    kind = field_kind(prop)
    if kind == "float":
        return lambda value: repr(float(t.cast("float", value)))
    if kind == "integer":
        return lambda value: str(int(t.cast("int", value)))
    if kind == "datetime":
        return _datetime_tag
    return tag_text


def _json_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dt.date):
        return iso_utc(value)
    return json.dumps(value, default=str, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _float_text(value: object) -> str | None:
    number = value if type(value) is float else float(t.cast("float", value))
    return repr(number) if math.isfinite(number) else None


def _integer_text(value: object) -> str | None:
    number = int(t.cast("int", value))
    if number != value:
        msg = f"expected an integer, got {value!r}"
        raise ValueError(msg)
    return f"{number}i" if INT64_MIN <= number <= INT64_MAX else None


def _boolean_text(value: object) -> str:
    return "true" if value else "false"


def _string_text(value: object) -> str:
    return escape_string(iso_utc(value) if isinstance(value, dt.date) else str(value))


def _datetime_text(value: object) -> str:
    return escape_string(_datetime_tag(value))


def _json_field_text(value: object) -> str:
    return escape_string(_json_text(value))


RENDERERS: dict[FieldKind, t.Callable[[object], str | None]] = {
    "float": _float_text,
    "integer": _integer_text,
    "boolean": _boolean_text,
    "string": _string_text,
    "datetime": _datetime_text,
    "json": _json_field_text,
}


def _lookup(record: Mapping[str, t.Any], path: Sequence[str]) -> object:
    value: object = record
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class PointEncoder:
    """Encode the records of one stream as line-protocol points."""

    def __init__(
        self,
        stream_name: str,
        schema: Mapping[str, t.Any],
        mapping: StreamMapping,
        static_tags: Mapping[str, str] | None = None,
        *,
        write_undeclared: bool = False,
    ) -> None:
        """Compile the stream's schema and mapping into a field plan.

        Args:
            stream_name: Singer stream name, used in error messages.
            schema: The stream's JSON schema.
            mapping: Measurement, tags, timestamp and excluded properties.
            static_tags: Tags added to every point (record tags win on a clash).
            write_undeclared: Write the properties the schema does not declare, each by its
                JSON type (:func:`undeclared_field`); else they are left out.
        """
        self.stream_name = stream_name
        self.mapping = mapping
        self.stats = EncodeStats()
        self._measurement = escape_measurement(mapping.measurement)
        self.stats.note_name("measurement", mapping.measurement)
        self._static_tags = {
            safe_key(k, self.stats): str(v) for k, v in (static_tags or {}).items() if v != ""
        }
        for key, value in self._static_tags.items():
            self.stats.note_name("tag value", value)
            self.stats.note_name("tag key", key)
        for key in mapping.tags:
            self.stats.note_name("tag key", key)
        # one spec per tag key (record tags and static tags), sorted by key as InfluxDB does
        properties = schema.get("properties") or {}
        record_tags = {safe_key(name, self.stats): name for name in mapping.tags}
        self._tag_plan = sorted(
            [
                _TagSpec(
                    escape_key(key),
                    record_tags.get(key),
                    self._static_tags.get(key),
                    tag_renderer(properties.get(record_tags.get(key) or "") or {}),
                )
                for key in {*self._static_tags, *record_tags}
            ],
            key=lambda spec: spec.key,
        )
        self._tag_cache: dict[tuple[object, ...], str] = {}
        # the record property of each tag (None, never a record's key, for a static tag)
        self._tag_names = tuple(spec.name for spec in self._tag_plan)
        self._stamp_cache: dict[str, int] = {}
        skip = {*mapping.tags, *mapping.exclude}
        if mapping.timestamp:
            skip.add(mapping.timestamp)
        self._fields = tuple(self._field_plan(properties, (), skip))
        # the hot loop's view of the plan: (property, key, a float kind, spec)
        self._field_steps = tuple(
            (spec.name if len(spec.path) == 1 else None, spec.key, spec.kind == "float", spec)
            for spec in self._fields
        )
        # a stream of float fields only (the common metrics stream): its names and keys
        self._float_fields: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        if self._fields and all(s.kind == "float" and len(s.path) == 1 for s in self._fields):
            self._float_fields = (
                tuple(spec.name for spec in self._fields),
                tuple(spec.key for spec in self._fields),
            )
        self._write_undeclared = write_undeclared
        self._declared = frozenset(properties)
        # an undeclared name that is also a field, tag or excluded name is left out
        self._not_undeclared = skip | {".".join(spec.path) for spec in self._fields}

    @property
    def field_kinds(self) -> dict[str, FieldKind]:
        """Each field the stream's schema gives its points (dotted for nested ones): its kind."""
        return {".".join(spec.path): spec.kind for spec in self._fields}

    def _field_plan(
        self,
        properties: Mapping[str, t.Any],
        prefix: tuple[str, ...],
        skip: set[str],
    ) -> Iterator[_FieldSpec]:
        for name, prop in properties.items():
            path = (*prefix, name)
            dotted = ".".join(path)
            if dotted in skip:
                continue
            kind = field_kind(prop or {})
            if kind is None:
                yield from self._field_plan(prop["properties"], path, skip)
            else:
                key = escape_key(safe_key(dotted, self.stats)) + "="
                self.stats.note_name("field key", dotted)
                yield _FieldSpec(key, name if not prefix else path[0], path, kind, RENDERERS[kind])

    def _stamp(self, record: Mapping[str, t.Any]) -> int:
        """:meth:`timestamp_ns`, answered from the instants already seen as text when it can."""
        prop = self.mapping.timestamp
        value = record.get(prop) if prop is not None else None
        if type(value) is str:
            stamp = self._stamp_cache.get(value)
            if stamp is None:
                stamp = self.timestamp_ns(record)  # parsed and checked once per text
                if len(self._stamp_cache) >= STAMP_CACHE_SIZE:
                    self._stamp_cache.clear()
                self._stamp_cache[value] = stamp
            return stamp
        return self.timestamp_ns(record)

    def timestamp_ns(self, record: Mapping[str, t.Any]) -> int:
        """Return the record's timestamp in epoch nanoseconds.

        Raises:
            RecordError: when the timestamp is missing, unparsable, or outside what InfluxDB
                stores (:data:`MIN_TIME_NS` to :data:`MAX_TIME_NS`).
        """
        prop = self.mapping.timestamp
        if prop is None:
            return time.time_ns()
        value = record.get(prop)
        if value is None or value == "":
            msg = (
                f'stream "{self.stream_name}": record has no value for timestamp property '
                f'"{prop}" ({self._describe(record)})'
            )
            raise RecordError(msg)
        try:
            stamp = to_epoch_ns(value)
        except (ValueError, OverflowError) as exc:
            msg = (
                f'stream "{self.stream_name}": timestamp property "{prop}" has unusable value '
                f"{value!r}: {exc} ({self._describe(record)})"
            )
            raise RecordError(msg) from exc
        if not MIN_TIME_NS <= stamp <= MAX_TIME_NS:
            msg = (
                f'stream "{self.stream_name}": timestamp property "{prop}" has value {value!r}, '
                f"outside the times InfluxDB can store ({iso_from_ns(MIN_TIME_NS)} to "
                f"{iso_from_ns(MAX_TIME_NS)}) ({self._describe(record)})"
            )
            raise RecordError(msg)
        return stamp

    def _describe(self, record: Mapping[str, t.Any]) -> str:
        keys = {k: _shown(record.get(k)) for k in self.mapping.tags}
        return f"tags {keys}" if keys else "no tags"

    def encode(self, record: Mapping[str, t.Any]) -> tuple[str, int] | None:
        """Return ``(line without timestamp, epoch nanoseconds)``; None if no field is left.

        Raises:
            RecordError: when the record has no usable timestamp or a value breaks its type.
        """
        timestamp = self._stamp(record)
        get = record.get
        if self._float_fields is not None and (text := self._float_text(record)) is not None:
            if self._write_undeclared and (names := record.keys() - self._declared):
                text = ",".join([text, *self._undeclared_fields(record, names)])
            return f"{self._measurement}{self._tag_text(record)} {text}", timestamp
        fields = []
        for name, key, is_float, spec in self._field_steps:
            value = get(name) if name is not None else _lookup(record, spec.path)
            if value is None:
                continue
            if is_float and type(value) is float and value - value == 0:
                fields.append(key + repr(value))  # the common case: a finite float
            elif (text := self._render(spec, value)) is not None:
                fields.append(key + text)
        if self._write_undeclared and (names := record.keys() - self._declared):
            fields += self._undeclared_fields(record, names)
        if not fields:
            return None
        return f"{self._measurement}{self._tag_text(record)} {','.join(fields)}", timestamp

    def _float_text(self, record: Mapping[str, t.Any]) -> str | None:
        """The fields of a record whose every field is a float, rendered at once; else None.

        msgspec renders a list of floats as ``repr`` renders each (the shortest text that
        reads back as the same float), in one call. The text is used only when each value came
        out as digits with one decimal point: else (a value that is not a float, not finite,
        or has an exponent, which msgspec writes ``1e16`` and ``repr`` ``1e+16``) None, and
        the record takes the field by field way.
        """
        names, keys = t.cast("tuple[tuple[str, ...], tuple[str, ...]]", self._float_fields)
        values = list(map(record.get, names))
        try:
            rendered = _FLOATS_ENCODER.encode(values)
        except (TypeError, ValueError, OverflowError, msgspec.EncodeError):
            return None
        inner = rendered[1:-1]  # the list's items
        if (
            inner.count(b".") != len(values)
            or inner.translate(None, _DECIMAL_BYTES)
            or b"0.0000" in inner  # below 1e-4 repr writes an exponent (1e-05), msgspec not
        ):
            return None
        return ",".join(map(str.__add__, keys, inner.decode().split(",")))

    def _undeclared_fields(self, record: Mapping[str, t.Any], names: Iterable[str]) -> list[str]:
        """The fields of properties the schema does not declare, by name."""
        fields = []
        for name in sorted(names):
            value = record[name]
            if value is None or name in self._not_undeclared:
                continue
            kind, text = undeclared_field(value)
            if text is None:
                self.stats.values_not_storable += 1
                continue
            self.stats.undeclared.setdefault(name, set()).add(kind)
            fields.append(f"{escape_key(safe_key(name, self.stats))}={text}")
        return fields

    def _tag_text(self, record: Mapping[str, t.Any]) -> str:
        get = t.cast("t.Callable[[str | None], object]", record.get)
        values = tuple(map(get, self._tag_names))  # None for a static tag
        try:
            return self._tag_cache[values]
        except KeyError:
            pass
        except TypeError:  # a value that cannot be a key (a list): render it each time
            return self._render_tags(values)
        if len(self._tag_cache) >= TAG_CACHE_SIZE:
            self._tag_cache.clear()
        text = self._tag_cache[values] = self._render_tags(values)
        return text

    def _render_tags(self, values: tuple[object, ...]) -> str:
        parts = []
        for spec, value in zip(self._tag_plan, values, strict=True):
            if value is not None and value != "":
                text = spec.render(value)
                self.stats.note_name("tag value", text)
                parts.append(f",{spec.key}={escape_tag_value(text)}")
            elif spec.static:
                parts.append(f",{spec.key}={escape_tag_value(spec.static)}")
        return "".join(parts)

    def _render(self, spec: _FieldSpec, value: object) -> str | None:
        try:
            text = spec.render(value)
        except (ValueError, TypeError, decimal.InvalidOperation) as exc:
            msg = (
                f'stream "{self.stream_name}": property "{".".join(spec.path)}" '
                f"value {_shown(value)!r} is not a valid {spec.kind}: {exc}"
            )
            raise RecordError(msg) from exc
        if text is None:
            self.stats.values_not_storable += 1
        return text


def undeclared_field(value: object) -> tuple[FieldKind, str | None]:
    """The kind and field text of a value of a property the schema does not declare.

    With no schema to go by, the kind comes from the JSON type alone, by a rule that gives a
    property one kind whatever its values: every number is a float (``5`` is written
    ``5.0``, so 5 and 5.5 never clash), strings are strings, booleans booleans, objects and
    arrays JSON text. The text is None for a number InfluxDB cannot store (too large).
    """
    if isinstance(value, bool):
        return "boolean", _boolean_text(value)
    if isinstance(value, (int, float, decimal.Decimal)):
        try:
            return "float", _float_text(value)
        except OverflowError:
            return "float", None
    if isinstance(value, str):
        return "string", escape_string(value)
    return "json", _json_field_text(value)


SHOWN_VALUE_CHARS = 100
"""The longest text of a record's value that an error message quotes."""


def _shown(value: object) -> object:
    """A value for an error message: a long string cut in the middle, anything else as is."""
    if not isinstance(value, str) or len(value) <= SHOWN_VALUE_CHARS:
        return value
    tail = SHOWN_VALUE_CHARS // 4
    left_out = len(value) - SHOWN_VALUE_CHARS
    return (
        f"{value[: SHOWN_VALUE_CHARS - tail]}...({left_out} characters left out)...{value[-tail:]}"
    )


def batch_precision(timestamps: Iterable[int]) -> str:
    """Return the coarsest precision (s, ms, us or ns) that keeps every timestamp exact."""
    precision = "s"
    for value in timestamps:
        if value % 1_000:
            return "ns"
        if value % 1_000_000:
            precision = "us"
        elif precision == "s" and value % 1_000_000_000:
            precision = "ms"
    return precision


def render_lines(points: Sequence[tuple[str, int]], precision: str) -> str:
    """Join points (timestamps in epoch nanoseconds) into a body at a precision (s, ms, us, ns).

    The precision must keep every timestamp exact (:func:`batch_precision`).
    """
    if precision == "ns":
        return "\n".join(f"{line} {ts}" for line, ts in points)
    divisor = PRECISION_DIVISORS[precision]
    return "\n".join(f"{line} {ts // divisor}" for line, ts in points)
