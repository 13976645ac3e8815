"""What the pipeline must store for what the fake API published, and what it did store.

Points are compared as ``{(sorted tags, time in ns): fields}`` per measurement. The records come
from the fake's data generator (:mod:`testkit.nationalgas_data`) and become points by
``meltano.yml``: the stream's mapping of target-influxdb (measurement, tags, timestamp, exclude)
and its static tags, the one home of the measurements and their tags.
"""

from __future__ import annotations

import datetime as dt
import typing as t

from data_imports.project import Project
from tap_nationalgas.feed import FLOW_GROUPS
from tap_nationalgas.streams import STREAMS
from testkit.nationalgas_data import ROUTES, NationalGasData
from testkit.processes import REPO_ROOT

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from testkit.influx import LocalInfluxDB, RemoteInfluxDB2
    from testkit.nationalgas_data import Record

Points = dict[tuple[tuple[tuple[str, str], ...], int], dict[str, t.Any]]
Run = tuple[t.Sequence[str], dt.datetime]
"""A run: the streams it reads and the fake's clock when it reads them."""
LOADER = "target-influxdb"
PROJECT = Project.load(REPO_ROOT)
MAPPINGS = PROJECT.mappings(LOADER)
"""How each stream is stored, by stream name (``mappings`` of target-influxdb in meltano.yml)."""
MEASUREMENTS = tuple(PROJECT.measurements(LOADER))
_CONFIG = PROJECT.plugin(LOADER).inherited("config") or {}
STATIC_TAGS = {str(k): str(v) for k, v in (_CONFIG.get("static_tags") or {}).items()}
"""Tags of every point (``static_tags`` of target-influxdb in meltano.yml)."""
TAP_STREAMS: dict[str, t.Any] = {s.name: s for s in t.cast("tuple[t.Any, ...]", STREAMS)}
"""The tap's stream classes by name (their ``path``, ``replication_key`` and ``schema``)."""
FLOW_SITES = sum(len(sites) for _, sites in FLOW_GROUPS)


def fake_data(now: dt.datetime) -> NationalGasData:
    """The fake's data as the session fixture serves it (strings and nulls on), at ``now``."""
    return NationalGasData(1, now, string_numbers=True, nulls=True)


def measurement(stream: str) -> str:
    """The measurement a stream is stored in."""
    return MAPPINGS[stream].measurement


def ns(moment: dt.datetime) -> int:
    """Nanoseconds since the epoch."""
    return int(moment.timestamp()) * 10**9


def iso_z(moment: dt.datetime) -> str:
    """An instant as a date-time field is stored: ISO 8601 in UTC with a ``Z``."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _kind(prop: Mapping[str, t.Any]) -> str:
    """A schema property's type less null, and ``date-time`` for a date-time string."""
    types = prop.get("type")
    names = {types} if isinstance(types, str) else set(types or ())
    names.discard("null")
    if names == {"string"} and prop.get("format") == "date-time":
        return "date-time"
    return "number" if "number" in names else next(iter(sorted(names)), "string")


def _value(value: object, prop: Mapping[str, t.Any]) -> object:
    """A record's value as InfluxDB holds it, by the property's type in the stream's schema."""
    kind = _kind(prop)
    if kind == "number":
        return float(t.cast("float", value))
    if kind == "integer":
        return int(t.cast("int", value))
    if kind == "boolean":
        return bool(value)
    if isinstance(value, dt.datetime):
        return iso_z(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _tag(value: object, prop: Mapping[str, t.Any]) -> str:
    """A record's value as tag text."""
    stored = _value(value, prop)
    if isinstance(stored, bool):
        return "true" if stored else "false"
    return str(stored)


def points(stream: str, records: Iterable[Record]) -> Points:
    """Records of a stream as target-influxdb stores them, by meltano.yml's mapping of it.

    Tags: the static tags and the mapping's tags (a record's own tag wins), as text. Time: the
    mapping's timestamp. Fields: every other property, less the excluded ones and nulls.
    """
    mapping = MAPPINGS[stream]
    properties = TAP_STREAMS[stream].schema["properties"]
    not_fields = {*mapping.tags, mapping.timestamp, *mapping.exclude}
    out: Points = {}
    for record in records:
        tags = {**STATIC_TAGS}
        for tag in mapping.tags:
            if record.get(tag) is not None:
                tags[tag] = _tag(record[tag], properties[tag])
        fields = {
            name: _value(value, properties[name])
            for name, value in record.items()
            if name not in not_fields and value is not None
        }
        at = t.cast("dt.datetime", record[mapping.timestamp])
        out[tuple(sorted(tags.items())), ns(at)] = fields
    return out


def emitted(records: Iterable[Record]) -> list[dict[str, t.Any]]:
    """Records as the tap writes them in RECORD messages: times ISO 8601 in UTC, dates ISO."""
    return [
        {
            key: value.astimezone(dt.UTC).isoformat(timespec="microseconds")
            if isinstance(value, dt.datetime)
            else value.isoformat()
            if isinstance(value, dt.date)
            else value
            for key, value in record.items()
        }
        for record in records
    ]


def snapshot(engine: LocalInfluxDB | RemoteInfluxDB2, bucket: str) -> dict[str, Points]:
    """What a bucket holds: measurement -> {(sorted tags, time): fields}."""
    return {
        measurement: {
            (tuple(sorted(p.tags.items())), p.time_ns): p.fields
            for p in engine.points(bucket, measurement)
        }
        for measurement in MEASUREMENTS
    }


def extractor_streams(extractor: str) -> tuple[str, ...]:
    """The streams an extractor of meltano.yml selects."""
    return tuple(PROJECT.plugin(extractor).selected_streams)


def job_streams(*jobs: str) -> tuple[str, ...]:
    """The streams the jobs of meltano.yml read."""
    return tuple(stream for job in jobs for stream in PROJECT.job(job).streams)


def served_records(stream: str, now: dt.datetime) -> list[Record]:
    """The records a run of ``stream`` at ``now`` reads: what the fake serves at its path.

    Raises:
        LookupError: when the records depend on the request (the test states the points).
    """
    path = TAP_STREAMS[stream].path
    route = ROUTES.get(path)
    if route is None or route.records is None:
        raise LookupError(
            f"{stream}: testkit.nationalgas_data.ROUTES gives no records for {path}: state the "
            "points expected of it"
        )
    return route.records(fake_data(now))


def served(runs: Iterable[Run], measurement: str) -> Points:
    """The points of ``measurement`` that these runs store, one after the other.

    Each run stores what the paths of its streams stored in ``measurement`` serve at its clock
    (:func:`served_records`); a later value of a point replaces an earlier one.
    """
    out: Points = {}
    for streams, now in runs:
        for stream in streams:
            if stream in MAPPINGS and MAPPINGS[stream].measurement == measurement:
                out.update(points(stream, served_records(stream, now)))
    return out


def gas_quality(data: NationalGasData, times: Iterable[dt.datetime]) -> Points:
    """The readings of every site at these hours."""
    return points("gas_quality", data.gas_quality_records(times))


def hours(first: dt.datetime, last: dt.datetime) -> list[dt.datetime]:
    """Every hour from ``first`` to ``last``, both included."""
    return [
        first + dt.timedelta(hours=h)
        for h in range(int((last - first) / dt.timedelta(hours=1)) + 1)
    ]


def latest_hours(data: NationalGasData, count: int = 1) -> list[dt.datetime]:
    """The latest ``count`` hourly publication times."""
    latest = data.gas_quality_latest_time()
    return [latest - dt.timedelta(hours=h) for h in range(count)]


def flows(data: NationalGasData, readings: Iterable[dt.datetime] | None = None) -> Points:
    """The readings of every flow site at these times (default: what the feed holds now)."""
    return points("instantaneous_flows", data.flow_records(readings))


def publications(
    data: NationalGasData, ids: Iterable[str], first: dt.date, last: dt.date, since: dt.datetime
) -> Points:
    """The latest value of each data item for gas days ``first`` to ``last``.

    Only values generated at or after ``since`` count.
    """
    return points("publications", data.publication_records(ids, first, last, since))
