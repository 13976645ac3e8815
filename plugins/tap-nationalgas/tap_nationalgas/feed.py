"""The instantaneous flow feed's groups and sites, as the public record names them.

Flows are keyed on these names (``values.key`` of each), so the dashboards show each site's
series under its name from here.
"""

from __future__ import annotations

FLOW_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Supply from entry points",
        (
            "ALDBROUGH",
            "BACTON BBL",
            "BACTON IC",
            "BACTON PERENCO",
            "BACTON SEAL",
            "BACTON SHELL",
            "EASINGTON DIMLINGTON",
            "EASINGTON LANGELED",
            "EASINGTON ROUGH ST",
            "GRAIN NTS 1",
            "GRAIN NTS 2",
            "HILLTOP",
            "HOLE HOUSE FARM",
            "HOLFORD",
            "HORNSEA",
            "MILFORD HAVEN - DRAGON",
            "MILFORD HAVEN - SOUTH HOOK",
            "ST FERGUS MOBIL",
            "ST FERGUS NSMP",
            "ST FERGUS SHELL",
            "STUBLACH",
            "TEESSIDE CATS",
            "TEESSIDE NSMP",
            "THEDDLETHORPE",
        ),
    ),
    (
        "Supply from terminals",
        (
            "BACTON IPs Terminal",
            "BACTON UKCS Terminal",
            "BARROW TERMINAL",
            "EASINGTON TERMINAL",
            "ISLE OF GRAIN TERMINAL",
            "MILFORD HAVEN TERMINAL",
            "ST FERGUS TERMINAL",
            "TEESSIDE TERMINAL",
            "THEDDLETHORPE TERMINAL",
        ),
    ),
    ("Total supply", ("TOTAL SUPPLY",)),
    (
        "Demand by category",
        (
            "Industrial Demand Flow",
            "Interconnector Export Demand Flow",
            "LDZ Offtake Flow",
            "Power Station Demand Flow",
            "Storage Demand Flow",
        ),
    ),
    ("Demand from interconnectors", ("Bacton BBL Export", "Bacton INT Export", "Moffat Export")),
    ("Total demand", ("NTS Demand Flow",)),
    ("Actual linepack", ("NTS Actual Linepack",)),
)
"""Each group's description and its sites' names, as the feed publishes them."""
