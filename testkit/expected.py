"""What the pipeline must store for what the fake API published, and what it did store.

Points are compared as ``{(sorted tags, time in ns): fields}`` per measurement, with the
mappings and static tags of ``meltano.yml`` (the series keyed on stable ids, names as fields).
"""

from __future__ import annotations

import datetime as dt
import typing as t

from tap_nationalgas import values
from tap_nationalgas.feed import FLOW_GROUPS
from testkit.fake_nationalgas import FakeState
from testkit.nationalgas_data import GAS_QUALITY_SITES, PUBLICATIONS, NationalGasData

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from testkit.influx import LocalInfluxDB, RemoteInfluxDB2

Points = dict[tuple[tuple[tuple[str, str], ...], int], dict[str, t.Any]]
SOURCE = ("source", "nationalgas")
ISO_Z = "%Y-%m-%dT%H:%M:%SZ"
MEASUREMENTS = ("gas_quality", "instantaneous_flow", "gas_publication")
FLOW_SITES = sum(len(sites) for _, sites in FLOW_GROUPS)


def fake_state(now: dt.datetime) -> FakeState:
    """The fake as the session fixture runs it (strings and nulls on), its clock at ``now``."""
    return FakeState(NationalGasData(1, now), string_numbers=True, nulls=True)


def ns(moment: dt.datetime) -> int:
    """Nanoseconds since the epoch."""
    return int(moment.timestamp()) * 10**9


def snapshot(engine: LocalInfluxDB | RemoteInfluxDB2, bucket: str) -> dict[str, Points]:
    """What a bucket holds: measurement -> {(sorted tags, time): fields}."""
    return {
        measurement: {
            (tuple(sorted(p.tags.items())), p.time_ns): p.fields
            for p in engine.points(bucket, measurement)
        }
        for measurement in MEASUREMENTS
    }


def gas_quality(state: FakeState, times: Iterable[dt.datetime]) -> Points:
    """The readings of every site at these hours."""
    out: Points = {}
    for at in times:
        stamp = int(at.timestamp())
        for site_id, name, area in GAS_QUALITY_SITES:
            shown = {
                key: state.number(value, (key, site_id, stamp))
                for key, value in state.data.gas_quality(site_id, at).items()
            }
            out[(("site_id", str(site_id)), SOURCE), ns(at)] = {
                "site_name": name,
                "area_name": area,
                **{k: float(t.cast("str", v)) for k, v in shown.items() if v is not None},
            }
    return out


def hours(first: dt.datetime, last: dt.datetime) -> list[dt.datetime]:
    """Every hour from ``first`` to ``last``, both included."""
    return [
        first + dt.timedelta(hours=h)
        for h in range(int((last - first) / dt.timedelta(hours=1)) + 1)
    ]


def latest_hours(state: FakeState, count: int = 1) -> list[dt.datetime]:
    """The latest ``count`` hourly publication times."""
    latest = state.data.gas_quality_latest_time()
    return [latest - dt.timedelta(hours=h) for h in range(count)]


def flows(state: FakeState, readings: Iterable[dt.datetime] | None = None) -> Points:
    """The readings of every flow site at these times (default: what the feed holds now)."""
    out: Points = {}
    times = state.data.flow_readings() if readings is None else list(readings)
    for g, (group, sites) in enumerate(FLOW_GROUPS):
        for s, site in enumerate(sites):
            tags = (("group_id", values.key(group)), ("site_id", values.key(site)), SOURCE)
            for reading in times:
                schedule = reading + dt.timedelta(minutes=12)
                fields: dict[str, t.Any] = {
                    "group": group,
                    "site_name": site,
                    "schedule_time": schedule.strftime(ISO_Z),
                }
                rate = state.number(
                    state.data.flow_rate(g, s, reading), (g, s, reading.timestamp())
                )
                if rate is not None:
                    fields["flow_rate"] = float(t.cast("str", rate))
                if (g + s + reading.minute) % 11 == 0:
                    fields["quality_indicator"] = "E"
                out[(tags, ns(reading))] = fields
    return out


def publications(
    state: FakeState, ids: Iterable[str], first: dt.date, last: dt.date, since: dt.datetime
) -> Points:
    """The latest value of each data item for gas days ``first`` to ``last``.

    Only values generated at or after ``since`` count.
    """
    out: Points = {}
    for pid in ids:
        tags = (("publication_id", pid), SOURCE)
        for row in state.data.publication_rows(pid, first, last, latest_only=True):
            generated = values.instant(row["generatedTimeStamp"])
            applicable_at = values.instant(row["applicableAt"])
            if generated is None or applicable_at is None or generated < since:
                continue
            fields = {
                "publication_name": PUBLICATIONS[pid].name,
                "value": float(t.cast("str", row["value"])),
                "generated_time": generated.strftime(ISO_Z),
            }
            if row["qualityIndicator"]:
                fields["quality_indicator"] = row["qualityIndicator"]
            out[(tags, ns(applicable_at))] = fields
    return out
