"""Deterministic, realistic data of the National Gas operational data API, for the fake.

Everything is a pure function of a seed and the fake's clock ("now"), so a test can say what
the API published at any moment: hourly gas quality per site, 2-minute instantaneous flows
published every 12 minutes, and daily publications that are revised days later.
"""

from __future__ import annotations

import datetime as dt
import math
import zlib
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from tap_nationalgas.sets import SETS

LONDON = ZoneInfo("Europe/London")
UTC = dt.UTC

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
    """What the API holds for a seed, as seen at the fake's current time."""

    def __init__(self, seed: int, now: dt.datetime) -> None:
        """Start the fake clock at ``now``."""
        self.seed = seed
        self.now = now.astimezone(UTC)

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
        return floor_to(self.now - dt.timedelta(seconds=90), 12, offset=10)

    def flow_readings(self) -> list[dt.datetime]:
        """Reading times of the current gas day that the latest publication holds."""
        slot = self.flow_publication_time()
        day_start = dt.datetime.combine(gas_day(slot), dt.time(5), LONDON).astimezone(UTC)
        last = slot - dt.timedelta(minutes=12)
        count = int((last - day_start).total_seconds() // 120) + 1
        return [day_start + dt.timedelta(minutes=2 * i) for i in range(max(count, 0))]

    def flow_rate(self, group: int, site: int, at: dt.datetime) -> float:
        """Flow in mcm/d (linepack in mcm) of one site at one reading."""
        hours = at.timestamp() / 3600
        base = 345.0 if group == 6 else (250.0 if group in {2, 5} else 8.0 + (site * 7) % 40)
        if (site + group) % 9 == 0 and group == 0:
            return 0.0  # sites that are shut in
        wave = math.sin(hours / 24 * 2 * math.pi + site)
        return round(base * (1 + 0.15 * wave + 0.01 * _noise(self.seed, group, site, hours)), 4)

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
        item = PUBLICATIONS[publication_id]
        rows: list[dict[str, object]] = []
        day = last
        while day >= first:
            versions = self._publication_versions(item, day)
            visible = [v for v in versions if v.generated <= self.now]
            for version in visible[-1:] if latest_only else visible:
                applicable_at = dt.datetime.combine(day, dt.time(), UTC)
                rows.append(
                    {
                        "applicableAt": local_iso(applicable_at),
                        "applicableFor": day.isoformat(),
                        "value": version.value,
                        "generatedTimeStamp": local_iso(version.generated),
                        "qualityIndicator": version.quality,
                    }
                )
            day -= dt.timedelta(days=1)
        return rows

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
