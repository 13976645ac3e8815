"""Deterministic, realistic data of the National Gas operational data API, for the fake.

Everything is a pure function of a seed and the fake's clock ("now"), so a test can say what
the API published at any moment: hourly gas quality per site, 2-minute instantaneous flows
published every 12 minutes, and daily publications that are revised days later.

:data:`ROUTES` is what the fake serves, keyed by path (a tap stream's ``path``): for each, the
method, the answer (a method of :class:`NationalGasData`) and, for a stream that reads whatever
its path serves, the records a run reads (another method). The answer and the records are built
from the same methods, so the expectations of the tests (``testkit.expected``) follow the data.
"""

from __future__ import annotations

import datetime as dt
import math
import typing as t
import zlib
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from tap_nationalgas.feed import FLOW_GROUPS
from tap_nationalgas.sets import SETS
from tap_nationalgas.values import key as tap_key

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable

LONDON = ZoneInfo("Europe/London")
UTC = dt.UTC
FLOW_SLOT_MINUTES, FLOW_SLOT_OFFSET = 12, 10
"""The flow feed's publication slots: every 12 minutes, at 10 past the hour and so on."""
FLOW_VISIBLE_AFTER = dt.timedelta(seconds=90)
"""A publication of the flow feed is served this long after its slot."""
FLOW_SCHEDULE_AFTER = dt.timedelta(minutes=12)
"""A flow reading's schedule time: this long after the time it applies at."""
FLOW_PUBLISHED_AFTER = dt.timedelta(seconds=84)
"""The flow feed's ``publishedTime``: this long after its 12-minute slot."""

Record = dict[str, object]
"""A record as a tap stream emits it, by property: datetimes aware, numbers as floats."""
Body = dict[str, t.Any]
"""The JSON body of a request (empty for a GET)."""

# Gas quality sites: names of NTS terminals and storage sites; the API's own ids and area
# names are not public, so these are plausible stand-ins.
GAS_QUALITY_SITES: tuple[tuple[int, str, str], ...] = (
    (1, "BACTON", "EAST ANGLIA"),
    (2, "EASINGTON", "NORTH EAST"),
    (3, "ST FERGUS", "SCOTLAND"),
    (4, "TEESSIDE", "NORTH"),
    (5, "THEDDLETHORPE", "EAST MIDLANDS"),
    (6, "BARROW", "NORTH WEST"),
    (7, "MILFORD HAVEN", "WALES SOUTH"),
    (8, "ISLE OF GRAIN", "SOUTH EAST"),
    (9, "BURTON POINT", "NORTH WEST"),
    (10, "HORNSEA", "NORTH EAST"),
    (11, "ALDBROUGH", "NORTH EAST"),
    (12, "HATFIELD MOOR", "EAST MIDLANDS"),
)


@dataclass(frozen=True)
class Publication:
    """A data item: id, name, catalogue place, typical level and daily swing."""

    publication_id: str
    name: str
    category: str
    sub_category: str
    level: float
    swing: float
    decimals: int
    revised_after_days: int | None  # a later, amended value; None: never revised


_LDZ = ("EA", "EM", "NO", "NE", "NT", "NW", "SC", "SO", "SE", "SW", "WM", "WN", "WS")
PUBLICATIONS: dict[str, Publication] = {
    p.publication_id: p
    for p in (
        Publication("PUBOB637", "Demand Actual, NTS, D+1", "Demand", "Actuals", 220, 60, 3, 5),
        Publication("PUBOB652", "Demand Actual, NTS, D+6", "Demand", "Actuals", 220, 60, 3, None),
        Publication(
            "PUBOB28",
            "Demand Forecast, NTS, hourly update",
            "Demand",
            "Forecasts",
            225,
            60,
            3,
            None,
        ),
        Publication(
            "PUBOB603", "SAP, Actual Day", "Prices", "System Average Price", 2.9, 0.6, 4, None
        ),
        Publication("PUBOB693", "Opening Linepack, Actual", "Linepack", "Actuals", 345, 6, 3, 2),
        *(
            Publication(
                f"PUBOB{4507 + i}",
                f"Calorific Value, LDZ({ldz})",
                "Gas Quality",
                "Calorific Value",
                39.3 + i * 0.04,
                0.3,
                2,
                None,
            )
            for i, ldz in enumerate(_LDZ)
        ),
    )
}
# The other items of the ready sets, under their names there: (category, sub-category, typical
# level, daily swing, decimals) by id.
_SET_ITEMS: dict[str, tuple[str, str, float, float, int]] = {
    "PUBOB47": ("Prices", "System Average Price", 2.9, 0.7, 4),
    "PUBOB48": ("Prices", "System Marginal Price", 3.2, 0.8, 4),
    "PUBOB49": ("Prices", "System Marginal Price", 2.6, 0.6, 4),
    "PUBOBJ1030": ("Demand", "Actuals", 2.4e9, 0.7e9, 0),
    "PUBOBJ1025": ("Demand", "NTS Energy Offtaken", 1.5e9, 0.6e9, 0),
    "PUBOBJ1023": ("Demand", "NTS Energy Offtaken", 4.5e8, 1.5e8, 0),
    "PUBOBJ1026": ("Demand", "NTS Energy Offtaken", 2.9e7, 4e6, 0),
    "PUBOBJ1024": ("Demand", "NTS Energy Offtaken", 2.2e8, 1.2e8, 0),
    "PUBOBJ1028": ("Demand", "NTS Energy Offtaken", 9e7, 6e7, 0),
    "PUBOB694": ("Linepack", "Actuals", 344, 6, 3),
    "PUBOB30": ("Linepack", "Predicted", 343, 7, 3),
    "PUBOB31": ("Linepack", "Predicted", 343, 7, 3),
    "PUBOBJ330": ("Storage", "Aggregated", 8.3e9, 4e8, 0),
    "PUBOBJ331": ("Storage", "Aggregated", 1.1e8, 8e7, 0),
    "PUBOBJ332": ("Storage", "Aggregated", 1.6e8, 9e7, 0),
    "PUBOBJ333": ("Storage", "Aggregated", 1.2e10, 2e8, 0),
    "PUBOB4423": ("Storage", "Actuals", 1.1e8, 8e7, 0),
    "PUBOB4424": ("Storage", "Actuals", 1.6e8, 9e7, 0),
    "PUBOBJ336": ("LNG", "Aggregated", 2.5e9, 3e8, 0),
    "PUBOBJ339": ("LNG", "Aggregated", 6.1e9, 2e8, 0),
    "PUBOBJ1621": ("LNG", "Flows", 38, 15, 3),
    "PUBOBJ518": ("LNG", "Allocations", 4.1e8, 1.6e8, 0),
    **{
        item.publication_id: ("Weather", "Composite Weather Variable", 8, 4, 2)
        for item in SETS["weather"].items
    },
}
PUBLICATIONS |= {
    item.publication_id: Publication(
        item.publication_id, item.name, *_SET_ITEMS[item.publication_id], None
    )
    for ready in SETS.values()
    for item in ready.items
    if item.publication_id not in PUBLICATIONS
}


@dataclass(frozen=True)
class _Version:
    value: str
    generated: dt.datetime
    quality: str


class BadRequestError(Exception):
    """The request is malformed: answered 400."""


def parse_date(body: Body, key: str) -> dt.date:
    """A date of a request body, ``YYYY-MM-DD``.

    Raises:
        BadRequestError: when it is missing or not a date.
    """
    try:
        return dt.date.fromisoformat(str(body[key]))
    except (KeyError, ValueError) as exc:
        raise BadRequestError(f"'{key}' must be a date, YYYY-MM-DD") from exc


def read_number(sent: object) -> float | None:
    """A number as a stream reads what the API sent (a number, its text, or null)."""
    return None if sent is None else float(t.cast("str", sent))


def chance(*parts: object) -> float:
    """A deterministic number in [0, 1) for the given parts."""
    return zlib.crc32(":".join(map(str, parts)).encode()) / 2**32


def _noise(*parts: object) -> float:
    """A deterministic number in [-1, 1) for the given parts."""
    return zlib.crc32(":".join(map(str, parts)).encode()) / 2**31 - 1


def gas_day(instant: dt.datetime) -> dt.date:
    """The gas day of an instant: 05:00 to 05:00 Europe/London, named by its first day."""
    return (instant.astimezone(LONDON) - dt.timedelta(hours=5)).date()


def local_iso(instant: dt.datetime) -> str:
    """Render an instant as the API does: ISO 8601 in UK local time, with its offset."""
    return instant.astimezone(LONDON).isoformat(timespec="seconds")


def floor_to(instant: dt.datetime, minutes: int, offset: int = 0) -> dt.datetime:
    """The latest instant at or before ``instant`` at ``offset`` minutes past a multiple."""
    epoch_minutes = int(instant.timestamp() // 60)
    return dt.datetime.fromtimestamp((epoch_minutes - (epoch_minutes - offset) % minutes) * 60, UTC)


class NationalGasData:
    """What the API holds for a seed, as seen at the fake's current time, and how it sends it."""

    def __init__(
        self, seed: int, now: dt.datetime, *, string_numbers: bool = False, nulls: bool = False
    ) -> None:
        """Start the fake clock at ``now``; ``string_numbers`` and ``nulls``: the quirks on."""
        self.seed = seed
        self.now = now.astimezone(UTC)
        self.string_numbers = string_numbers
        self.nulls = nulls

    def sent(self, value: float, key: object) -> object:
        """A value as the API may send it: number, string or (with nulls on) null."""
        if self.nulls and chance("null", key) < 0.05:
            return None
        if self.string_numbers and chance("string", key) < 0.35:
            return str(value)
        return value

    # gas quality: one reading per site per hour
    def gas_quality(self, site_id: int, at: dt.datetime) -> dict[str, float]:
        """The seven metrics of one site at one hour."""
        hours = at.timestamp() / 3600
        wave = math.sin(hours / 24 * 2 * math.pi + site_id)
        cv = 38.0 + (site_id % 7) * 0.35 + 0.4 * wave + 0.05 * _noise(self.seed, site_id, hours)
        sg = 0.585 + (site_id % 5) * 0.008 + 0.004 * wave
        cv24 = cv - 0.1 * wave
        return {
            "cv": round(cv, 2),
            "cv24": round(cv24, 2),
            "sg": round(sg, 4),
            "sg24": round(sg - 0.001 * wave, 4),
            "wi": round(cv / math.sqrt(sg), 2),
            "co2": round(1.2 + 0.8 * _noise(self.seed, "co2", site_id, hours), 2),
            "n2": round(2.0 + 1.2 * _noise(self.seed, "n2", site_id, hours), 2),
        }

    def gas_quality_sent(self, site_id: int, at: dt.datetime) -> dict[str, object]:
        """The seven metrics of one site at one hour as the API sends them."""
        stamp = int(at.timestamp())
        return {
            key: self.sent(value, (key, site_id, stamp))
            for key, value in self.gas_quality(site_id, at).items()
        }

    def gas_quality_records(self, times: Iterable[dt.datetime]) -> list[Record]:
        """The records of every site's readings at these hours (streams ``gas_quality*``)."""
        return [
            {
                "site_id": site_id,
                "site_name": name,
                "area_name": area,
                "published_time": at,
                **{k: read_number(v) for k, v in self.gas_quality_sent(site_id, at).items()},
            }
            for at in times
            for site_id, name, area in GAS_QUALITY_SITES
        ]

    def gas_quality_latest_records(self) -> list[Record]:
        """The records of the latest publication."""
        return self.gas_quality_records([self.gas_quality_latest_time()])

    def answer_gas_quality_latest(self, _body: Body) -> object:
        """``GET /gasquality/latestdata``: one detail object per site."""
        at = self.gas_quality_latest_time()
        return {
            "publishedTime": local_iso(at),
            "gasQualityData": [
                {
                    "siteId": site_id,
                    "siteName": name,
                    "areaName": area,
                    "siteGasQualityDetail": self.gas_quality_sent(site_id, at),
                }
                for site_id, name, area in GAS_QUALITY_SITES
            ],
        }

    def answer_gas_quality_history(self, body: Body) -> object:
        """``POST /gasquality/historicdata``: readings per site for a date range.

        Raises:
            BadRequestError: for dates that are missing, malformed or reversed.
        """
        first, last = parse_date(body, "fromDate"), parse_date(body, "toDate")
        if last < first:
            raise BadRequestError("'toDate' is before 'fromDate'")
        wanted = set(body.get("siteIds") or [s[0] for s in GAS_QUALITY_SITES])
        times = self.gas_quality_times(first, last)
        return [
            {
                "siteId": site_id,
                "siteName": name,
                "areaName": area,
                "siteGasQualityDetail": [
                    {"publishedTime": local_iso(at), **self.gas_quality_sent(site_id, at)}
                    for at in times
                ],
            }
            for site_id, name, area in GAS_QUALITY_SITES
            if site_id in wanted
        ]

    def gas_quality_latest_time(self) -> dt.datetime:
        """The hour of the latest gas quality publication."""
        return floor_to(self.now, 60)

    def gas_quality_times(self, first: dt.date, last: dt.date) -> list[dt.datetime]:
        """Hourly publication times on UK local dates ``first`` to ``last``, up to now."""
        start = dt.datetime.combine(first, dt.time(), LONDON).astimezone(UTC)
        end = min(
            dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), LONDON).astimezone(UTC),
            self.gas_quality_latest_time() + dt.timedelta(seconds=1),
        )
        hours = max(0, math.ceil((end - start).total_seconds() / 3600))
        return [start + dt.timedelta(hours=h) for h in range(hours)]

    # instantaneous flows: 2-minute readings, published every 12 minutes
    def flow_publication_time(self) -> dt.datetime:
        """The schedule time of the latest 12-minute publication (minutes 10, 22, 34, 46, 58)."""
        return floor_to(self.now - FLOW_VISIBLE_AFTER, FLOW_SLOT_MINUTES, FLOW_SLOT_OFFSET)

    def flow_readings(self) -> list[dt.datetime]:
        """Reading times of the current gas day that the latest publication holds."""
        slot = self.flow_publication_time()
        day_start = dt.datetime.combine(gas_day(slot), dt.time(5), LONDON).astimezone(UTC)
        last = slot - dt.timedelta(minutes=12)
        count = int((last - day_start).total_seconds() // 120) + 1
        return [day_start + dt.timedelta(minutes=2 * i) for i in range(max(count, 0))]

    def flow_times_published(self, first: dt.datetime, last: dt.datetime) -> set[dt.datetime]:
        """Every reading time held by a publication of the feed served in ``[first, last)``."""
        times: set[dt.datetime] = set()
        slot = floor_to(first, FLOW_SLOT_MINUTES, FLOW_SLOT_OFFSET)
        while (served := slot + FLOW_VISIBLE_AFTER) < last:
            if served >= first:
                times.update(NationalGasData(self.seed, served).flow_readings())
            slot += dt.timedelta(minutes=FLOW_SLOT_MINUTES)
        return times

    def flow_rate(self, group: int, site: int, at: dt.datetime) -> float:
        """Flow in mcm/d (linepack in mcm) of one site at one reading."""
        hours = at.timestamp() / 3600
        base = 345.0 if group == 6 else (250.0 if group in {2, 5} else 8.0 + (site * 7) % 40)
        if (site + group) % 9 == 0 and group == 0:
            return 0.0  # sites that are shut in
        wave = math.sin(hours / 24 * 2 * math.pi + site)
        return round(base * (1 + 0.15 * wave + 0.01 * _noise(self.seed, group, site, hours)), 4)

    def flow_rate_sent(self, group: int, site: int, at: dt.datetime) -> object:
        """A site's flow at one reading as the API sends it."""
        return self.sent(self.flow_rate(group, site, at), (group, site, at.timestamp()))

    def flow_quality(self, group: int, site: int, at: dt.datetime) -> str | None:
        """A reading's quality indicator: ``E`` for one reading in 11, else none."""
        return None if (group + site + at.minute) % 11 else "E"

    def flow_published_time(self) -> dt.datetime:
        """The ``publishedTime`` of the latest publication of the feed."""
        return self.flow_publication_time() + FLOW_PUBLISHED_AFTER

    def flow_records(self, readings: Iterable[dt.datetime] | None = None) -> list[Record]:
        """The records of every flow site at these times (default: what the feed holds now)."""
        times = self.flow_readings() if readings is None else list(readings)
        published = self.flow_published_time()
        return [
            {
                "group_id": tap_key(group),
                "site_id": tap_key(site),
                "group": group,
                "site_name": site,
                "applicable_at": at,
                "flow_rate": read_number(self.flow_rate_sent(g, s, at)),
                "quality_indicator": self.flow_quality(g, s, at),
                "schedule_time": at + FLOW_SCHEDULE_AFTER,
                "published_time": published,
                "gas_day": gas_day(at),
            }
            for g, (group, sites) in enumerate(FLOW_GROUPS)
            for s, site in enumerate(sites)
            for at in times
        ]

    def answer_flows(self, _body: Body) -> object:
        """``GET /instantaneousflow/sites``: the current gas day's readings, newest first."""
        slot = self.flow_publication_time()
        # newest first; the texts of a reading time are the same for every site
        readings = [
            (at, local_iso(at), local_iso(at + FLOW_SCHEDULE_AFTER))
            for at in reversed(self.flow_readings())
        ]
        return {
            "publishedTime": local_iso(self.flow_published_time()),
            "currentGasDay": gas_day(slot).isoformat(),
            "instantaneousFlow": [
                {
                    "description": description,
                    "sites": [
                        {
                            "siteName": site,
                            "siteGasDetail": [
                                {
                                    "applicableAt": applicable,
                                    "flowRate": self.flow_rate_sent(g, s, at),
                                    "qualityIndicator": self.flow_quality(g, s, at),
                                    "scheduleTime": scheduled,
                                }
                                for at, applicable, scheduled in readings
                            ],
                        }
                        for s, site in enumerate(sites)
                    ],
                }
                for g, (description, sites) in enumerate(FLOW_GROUPS)
            ],
        }

    # publications: one value per gas day, generated the day after, some revised later
    def publication_rows(
        self,
        publication_id: str,
        first: dt.date,
        last: dt.date,
        *,
        latest_only: bool,
    ) -> list[dict[str, object]]:
        """Rows for gas days ``first`` to ``last`` generated up to now, newest gas day first."""
        return [
            {
                "applicableAt": local_iso(dt.datetime.combine(day, dt.time(), UTC)),
                "applicableFor": day.isoformat(),
                "value": version.value,
                "generatedTimeStamp": local_iso(version.generated),
                "qualityIndicator": version.quality,
            }
            for day, version in self._publication_values(
                publication_id, first, last, latest_only=latest_only
            )
        ]

    def publication_records(
        self, ids: Iterable[str], first: dt.date, last: dt.date, since: dt.datetime
    ) -> list[Record]:
        """The latest value of each data item for gas days ``first`` to ``last``, as records.

        Only values generated at or after ``since`` count (the stream's ``start_date``).
        """
        return [
            {
                "publication_id": pid,
                "publication_name": PUBLICATIONS[pid].name,
                "applicable_at": dt.datetime.combine(day, dt.time(), UTC),
                "applicable_for": day,
                "value": read_number(version.value),
                "quality_indicator": version.quality or None,
                "generated_time": version.generated,
            }
            for pid in ids
            for day, version in self._publication_values(pid, first, last, latest_only=True)
            if version.generated >= since
        ]

    def answer_publications(self, body: Body) -> object:
        """``POST /publications/gasday``: values of the requested ids.

        Raises:
            BadRequestError: for bad dates, no ids, or an id the catalogue does not hold.
        """
        first, last = parse_date(body, "fromDate"), parse_date(body, "toDate")
        ids = body.get("publicationIds")
        if not isinstance(ids, list) or not ids:
            raise BadRequestError("'publicationIds' must be a non-empty list")
        if any(i not in PUBLICATIONS for i in ids):
            raise BadRequestError("Invalid publication object id")
        latest_only = str(body.get("latestValue", "Y")).upper() != "N"
        return [
            {
                "publicationId": pid,
                "publicationName": PUBLICATIONS[pid].name,
                "publications": self.publication_rows(pid, first, last, latest_only=latest_only),
            }
            for pid in ids
        ]

    def answer_catalogue(self, _body: Body) -> object:
        """``GET /publications/catalogue``: categories, sub-categories, entries."""
        return catalogue_payload()

    def catalogue_records(self) -> list[Record]:
        """The catalogue's entries, as records."""
        return [
            {
                "publication_id": item.publication_id,
                "name": item.name,
                "category": item.category,
                "sub_category": item.sub_category,
            }
            for item in PUBLICATIONS.values()
        ]

    def _publication_values(
        self, publication_id: str, first: dt.date, last: dt.date, *, latest_only: bool
    ) -> list[tuple[dt.date, _Version]]:
        """The values of gas days ``first`` to ``last`` generated up to now, newest day first."""
        item = PUBLICATIONS[publication_id]
        found: list[tuple[dt.date, _Version]] = []
        day = last
        while day >= first:
            versions = self._publication_versions(item, day)
            visible = [v for v in versions if v.generated <= self.now]
            found += [(day, v) for v in (visible[-1:] if latest_only else visible)]
            day -= dt.timedelta(days=1)
        return found

    def _publication_versions(self, item: Publication, day: dt.date) -> list[_Version]:
        ordinal = day.toordinal()
        seasonal = math.cos((day.timetuple().tm_yday - 15) / 365 * 2 * math.pi)
        noise = _noise(self.seed, item.publication_id, ordinal)
        value = item.level + item.swing * (seasonal + 0.1 * noise)
        first_time = dt.datetime.combine(
            day + dt.timedelta(days=1),
            dt.time(12, 1 + ordinal % 5),
            LONDON,
        ).astimezone(UTC)
        late = chance(self.seed, "late", item.publication_id, ordinal) > 0.95
        versions = [_Version(f"{value:.{item.decimals}f}", first_time, "L" if late else "")]
        if item.revised_after_days:
            revised = value * (1 + 0.004 * _noise(self.seed, "rev", item.publication_id, ordinal))
            revised_time = dt.datetime.combine(
                day + dt.timedelta(days=item.revised_after_days),
                dt.time(14, 30),
                LONDON,
            ).astimezone(UTC)
            versions.append(_Version(f"{revised:.{item.decimals}f}", revised_time, "A"))
        return versions


def catalogue_payload(without: t.AbstractSet[str] = frozenset()) -> dict[str, t.Any]:
    """The catalogue as the API answers it, less the entries named in ``without``."""
    tree: dict[str, dict[str, list[dict[str, str]]]] = {}
    for item in PUBLICATIONS.values():
        if item.name not in without:
            tree.setdefault(item.category, {}).setdefault(item.sub_category, []).append(
                {"publicationId": item.publication_id, "name": item.name},
            )
    return {
        "data": [
            {
                "name": category,
                "subCategory": [
                    {"name": sub, "catalogueEntries": entries} for sub, entries in subs.items()
                ],
            }
            for category, subs in tree.items()
        ]
    }


@dataclass(frozen=True)
class Route:
    """A path the fake serves: its method, its answer, and the records a run of its stream reads.

    ``records`` is for a stream that reads whatever its path serves: the records a run at the
    fake's clock reads, in the stream's properties (datetimes aware, numbers as floats). The
    tests expect what such a run stores from them (``testkit.expected.served``). None: the
    records depend on the request (a window of days, chosen ids) and the tests state them.
    """

    method: str
    answer: Callable[[NationalGasData, Body], object]
    records: Callable[[NationalGasData], list[Record]] | None = None


ROUTES: dict[str, Route] = {
    "/gasquality/latestdata": Route(
        "GET", NationalGasData.answer_gas_quality_latest, NationalGasData.gas_quality_latest_records
    ),
    "/gasquality/historicdata": Route("POST", NationalGasData.answer_gas_quality_history),
    "/instantaneousflow/sites": Route(
        "GET", NationalGasData.answer_flows, NationalGasData.flow_records
    ),
    "/publications/catalogue": Route(
        "GET", NationalGasData.answer_catalogue, NationalGasData.catalogue_records
    ),
    "/publications/gasday": Route("POST", NationalGasData.answer_publications),
}
"""What the fake serves, by path: the one list to add an endpoint (a stream's ``path``) to."""
