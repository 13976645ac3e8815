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


DICTIONARY = "MIPI data dictionary (krose/nationalgridr)"
CWV_ACTUAL_IDS = dict(
    zip(
        ("EA", "EM", "NE", "NO", "NT", "NW", "SE", "SO", "SC", "SW", "WM", "WN", "WS"),
        range(3700, 3713),
        strict=True,
    )
)
"""The ids of the actual composite weather variables: not in the order of the zones' names."""


def item(name: str, publication_id: str, unit: str, source: str = DICTIONARY) -> Item:
    """A data item of a set."""
    return Item(name, publication_id, unit, source)


NTS_DEMAND = item("Demand Actual, NTS, D+1", "PUBOB637", "mscm")
SAP = item("SAP, Actual Day", "PUBOB603", "p/kWh")
OPENING_LINEPACK = item("Opening linepack, actual", "PUBOB693", "mscm")
LDZ_CV = tuple(
    item(f"Calorific Value, LDZ({ldz})", f"PUBOB{4507 + i}", "MJ/m³", "Energy Sparks, chellow")
    for i, ldz in enumerate(LDZS)
)
OFFTAKEN = "NTS Energy Offtaken, {} Total"
OFFTAKEN_SOURCE = "real portal CSV (benmcwilliams/gas-demand); ids disputed between clients"

SETS: dict[str, ReadySet] = {
    "overview": ReadySet(
        "Overview",
        "NTS demand, the system average price, opening linepack and the LDZ calorific values.",
        (NTS_DEMAND, SAP, OPENING_LINEPACK, *LDZ_CV),
    ),
    "prices": ReadySet(
        "Prices",
        "System average price (SAP) of each gas day, and SAP and the system marginal prices "
        "(SMP buy and sell) of each hour.",
        (
            SAP,
            item("SAP, hourly actual", "PUBOB47", "p/kWh", f"{DICTIONARY}; id: grid-monitor"),
            item("SMP Buy, hourly actual", "PUBOB48", "p/kWh", f"{DICTIONARY}; id: grid-monitor"),
            item("SMP Sell, hourly actual", "PUBOB49", "p/kWh", f"{DICTIONARY}; id: grid-monitor"),
        ),
    ),
    "demand": ReadySet(
        "Demand",
        "NTS demand, actual and forecast, and the energy taken off the NTS by kind of offtake.",
        (
            NTS_DEMAND,
            item("Demand Actual, NTS, D+6", "PUBOB652", "mscm", "xdityx, MIPI data dictionary"),
            item("Demand Forecast, NTS, hourly update", "PUBOB28", "mscm"),
            item("Demand Actual, NTS, D+1 (Energy)", "PUBOBJ1030", "kWh"),
            item(OFFTAKEN.format("LDZ Offtake"), "PUBOBJ1025", "kWh", OFFTAKEN_SOURCE),
            item(OFFTAKEN.format("Powerstations"), "PUBOBJ1023", "kWh", OFFTAKEN_SOURCE),
            item(OFFTAKEN.format("Industrial Offtake"), "PUBOBJ1026", "kWh", OFFTAKEN_SOURCE),
            item(OFFTAKEN.format("Interconnector Exports"), "PUBOBJ1024", "kWh", OFFTAKEN_SOURCE),
            item(OFFTAKEN.format("Storage Injection"), "PUBOBJ1028", "kWh", OFFTAKEN_SOURCE),
        ),
    ),
    "linepack": ReadySet(
        "Linepack",
        "Gas held in the NTS pipes: opening and closing linepack, and the predicted closing "
        "linepack.",
        (
            OPENING_LINEPACK,
            item("Closing Linepack, actual", "PUBOB694", "mscm"),
            item("Predicted Closing Linepack (PCLP1)", "PUBOB30", "mscm"),
            item("Predicted Closing Linepack (PCLP2)", "PUBOB31", "mscm"),
        ),
    ),
    "storage": ReadySet(
        "Storage",
        "Gas in storage: the stock, inflows, outflows and available capacity of all sites, and "
        "the injection and withdrawal of each gas day.",
        (
            item("Storage, Daily Aggregated Stock level, D+1", "PUBOBJ330", "kWh", "TDCat, MIPI"),
            item("Storage, Daily Aggregated Inflows, D+1", "PUBOBJ331", "kWh"),
            item("Storage, Daily Aggregated Outflows, D+1", "PUBOBJ332", "kWh"),
            item(
                "Storage, Daily Aggregated Available Capacity, D+1",
                "PUBOBJ333",
                "kWh",
                "TDCat, MIPI",
            ),
            item("Storage Injection, Actual", "PUBOB4423", "kWh"),
            item("Storage Withdrawal, Actual", "PUBOB4424", "kWh"),
        ),
    ),
    "lng": ReadySet(
        "LNG",
        "Liquefied natural gas: the stock and available capacity of the terminals, and the gas "
        "they send into the NTS.",
        (
            item("LNG, Daily Aggregated Stock level, D+1", "PUBOBJ336", "kWh", "TDCat"),
            item("LNG, Daily Aggregated Available Capacity, D+1", "PUBOBJ339", "kWh", "TDCat"),
            item("Aggregate LNG Importations - Daily Flow", "PUBOBJ1621", "mscm"),
            item("Allocations, Energy, LNG Importation Total, D+2", "PUBOBJ518", "kWh"),
        ),
    ),
    "weather": ReadySet(
        "Weather",
        "The composite weather variable (CWV) of each local distribution zone, actual, the day "
        "after.",
        tuple(
            item(
                f"Composite Weather Variable, Actual, LDZ({ldz}), D+1",
                f"PUBOB{CWV_ACTUAL_IDS[ldz]}",
                "°C",
                "csauyong/gb-heat-demand-nowcast, MIPI data dictionary",
            )
            for ldz in LDZS
        ),
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
