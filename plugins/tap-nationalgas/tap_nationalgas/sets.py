"""Ready sets of data items, by catalogue name, from the public record of the catalogue.

Each item keeps the id, unit and source that the public record gives with its name. The tap
reads a set by name (the catalogue gives the ids of the day); the dashboards show each id under
its name. The README's table of sets is generated from here.
"""

from __future__ import annotations

from dataclasses import dataclass

LDZS = ("EA", "EM", "NO", "NE", "NT", "NW", "SC", "SO", "SE", "SW", "WM", "WN", "WS")
"""The 13 local distribution zones, in the order of their data items' ids."""


@dataclass(frozen=True)
class Item:
    """A data item of a set: its catalogue name, the id and unit the public record gives."""

    name: str
    publication_id: str
    unit: str
    source: str


@dataclass(frozen=True)
class ReadySet:
    """A named set of data items, with a title for its dashboard."""

    title: str
    description: str
    items: tuple[Item, ...]


NTS_DEMAND = Item(
    "Demand Actual, NTS, D+1", "PUBOB637", "mscm", "National Gas REST and portal clients"
)
SAP = Item("SAP, Actual Day", "PUBOB603", "p/kWh", "National Gas REST and portal clients")
OPENING_LINEPACK = Item("Opening Linepack, Actual", "PUBOB693", "mscm", "grid-monitor")
LDZ_CV = tuple(
    Item(f"Calorific Value, LDZ({ldz})", f"PUBOB{4507 + i}", "MJ/m³", "Energy Sparks")
    for i, ldz in enumerate(LDZS)
)

SETS: dict[str, ReadySet] = {
    "overview": ReadySet(
        "Overview",
        "NTS demand, the system average price, opening linepack and the LDZ calorific values.",
        (NTS_DEMAND, SAP, OPENING_LINEPACK, *LDZ_CV),
    ),
    "prices": ReadySet(
        "Prices",
        "System average price of each gas day.",
        (SAP,),
    ),
    "demand": ReadySet(
        "Demand",
        "NTS demand, actual and forecast, and the energy taken off the NTS by kind of offtake.",
        (
            NTS_DEMAND,
            Item("Demand Actual, NTS, D+6", "PUBOB652", "mscm", "xdityx"),
            Item("Demand Forecast, NTS, hourly update", "PUBOB28", "mscm", "grid-monitor"),
        ),
    ),
    "linepack": ReadySet(
        "Linepack",
        "Gas held in the NTS pipes.",
        (OPENING_LINEPACK,),
    ),
    "calorific_values": ReadySet(
        "Calorific values",
        "Calorific value of each local distribution zone for each gas day.",
        LDZ_CV,
    ),
}
"""Every ready set, by the name the setting ``publication_sets`` takes."""

DEFAULT_SETS = ("overview",)
"""What the publications stream reads when no data item is chosen."""
