"""The GB gas dashboards of Grafana, as code: writes ``grafana/dashboards/*.json``.

The committed files show data items and flow sites by name (the ready sets and the feed give
them) and gas quality sites by id. ``--names-from-influxdb --every N``, what the compose stack's
``dashboards`` service runs, writes them into Grafana's folder with the newest names InfluxDB
holds, again every N seconds: gas quality sites by name too, and any renamed item under its new
name, still one series (series are keyed on ids).

Every panel queries the InfluxQL datasource provisioned by
``grafana/provisioning/datasources/influxdb.yaml`` with a raw query that uses Grafana's
``$timeFilter`` macro (and ``$__interval`` where it draws over time), so the tests can run each
query on a real engine. Run ``.venv/bin/python scripts/build_dashboards.py`` after changing a
panel; ``--check`` (what the tests run) exits 1 and names the files that differ.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
import time
import typing as t
from pathlib import Path

from data_imports.names import Names, NamesError, read_names
from data_imports.project import Project

if t.TYPE_CHECKING:
    from collections.abc import Mapping
from tap_nationalgas.feed import FLOW_GROUPS
from tap_nationalgas.sets import SETS, Item
from tap_nationalgas.values import key

LOGGER = logging.getLogger("data_imports.dashboards")

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "grafana" / "dashboards"
DATASOURCE = {"type": "influxdb", "uid": "influxdb-influxql"}
SCHEMA_VERSION = 39
WIDTH = 24

GSMR_WOBBE_MIN = 47.20
GSMR_WOBBE_MAX = 51.41
"""The Wobbe index band of the Gas Safety (Management) Regulations, MJ/m³."""

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
LAG_LIMITS = {  # stream: (late, stale) in seconds of data lag
    "instantaneous_flows": (30 * MINUTE, HOUR),
    "gas_quality": (2 * HOUR, 3 * HOUR),
    "publications": (2 * DAY, 3 * DAY),
    "gas_quality_history": (2 * DAY, 3 * DAY),
}
"""When a stream's newest point is late (orange) and stale (red); the alerts use the same
hour limits for gas quality and flows."""

Panel = dict[str, t.Any]


@functools.cache
def measurement(stream: str) -> str:
    """The measurement a stream is stored in: ``meltano.yml``'s mapping of target-influxdb."""
    return Project.load(ROOT).measurement(stream)


def query(text: str, *, alias: str = "", ref: str = "A", table: bool = False) -> dict[str, t.Any]:
    """One raw InfluxQL query of a panel."""
    return {
        "refId": ref,
        "datasource": DATASOURCE,
        "rawQuery": True,
        "query": text,
        "resultFormat": "table" if table else "time_series",
        "alias": alias,
    }


def thresholds(*steps: tuple[str, float | None]) -> dict[str, t.Any]:
    """Absolute thresholds: the first step's value is None (from minus infinity)."""
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


def override(name: str, **properties: t.Any) -> dict[str, t.Any]:  # noqa: ANN401
    """Field properties for the series or column of that name."""
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": key, "value": value} for key, value in properties.items()],
    }


def panel(  # noqa: PLR0913
    kind: str,
    title: str,
    targets: list[dict[str, t.Any]],
    *,
    description: str,
    unit: str = "none",
    width: int = 12,
    height: int = 8,
    custom: dict[str, t.Any] | None = None,
    options: dict[str, t.Any] | None = None,
    **defaults: t.Any,  # noqa: ANN401
) -> Panel:
    """A panel on the InfluxQL datasource; its place is set by :func:`dashboard`."""
    overrides = defaults.pop("overrides", [])
    interval = defaults.pop("interval", None)
    out: Panel = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "gridPos": {"h": height, "w": width, "x": 0, "y": 0},
        "fieldConfig": {
            "defaults": {"unit": unit, "custom": custom or {}, **defaults},
            "overrides": overrides,
        },
        "options": options or {},
    }
    if interval:
        out["interval"] = interval
    return out


def lines(
    title: str,
    targets: list[dict[str, t.Any]],
    *,
    stacked: bool = False,
    bars: bool = False,
    **kwargs: t.Any,  # noqa: ANN401
) -> Panel:
    """A time series panel: lines, or stacked areas, or bars."""
    custom = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 60 if stacked else (80 if bars else 10),
        "stacking": {"mode": "normal" if stacked else "none", "group": "A"},
        "spanNulls": True,
        "showPoints": "never",
        **kwargs.pop("custom", {}),
    }
    options = {
        "legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "mean"]},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return panel("timeseries", title, targets, custom=custom, options=options, **kwargs)


def per_site(field: str) -> str:
    """A gas quality field of the chosen sites, averaged over each interval."""
    return (
        f'SELECT mean("{field}") FROM "{measurement("gas_quality")}"'
        f' WHERE "site_id" =~ /^$site$/ AND $timeFilter '
        'GROUP BY time($__interval), "site_id" fill(none)'
    )


def flow_site_names(group_id: str) -> list[dict[str, t.Any]]:
    """Overrides that show each site of a flow group (keyed on its name's slug) by its name."""
    sites = next(sites for group, sites in FLOW_GROUPS if key(group) == group_id)
    return [override(key(site), displayName=site) for site in sites]


def flow_group(group_id: str, by: str = "site_id") -> str:
    """The instantaneous flows of one group of the feed, per site."""
    return (
        f'SELECT mean("flow_rate") FROM "{measurement("instantaneous_flows")}"'
        f" WHERE \"group_id\" = '{group_id}' "
        f'AND $timeFilter GROUP BY time($__interval), "{by}" fill(none)'
    )


def daily(where: str, by: str = "") -> str:
    """A daily data item as stored: the latest value published for each gas day."""
    group = f', "{by}"' if by else ""
    return (
        f'SELECT last("value") FROM "{measurement("publications")}" WHERE {where} AND $timeFilter '
        f"GROUP BY time($__interval){group} fill(none)"
    )


def site_names(names: Names, prefix: str = "") -> list[dict[str, t.Any]]:
    """Overrides that show each site's series (keyed on its id) under its name."""
    return [
        override(f"{prefix}site {site_id}", displayName=f"{prefix}{name}")
        for site_id, name in sorted(names.sites.items())
    ]


def site_variable(names: Names) -> dict[str, t.Any]:
    """The variable that chooses sites: by name where names are known, else by id."""
    common = {
        "name": "site",
        "label": "Site",
        "multi": True,
        "includeAll": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }
    if not names.sites:
        show = f'SHOW TAG VALUES FROM "{measurement("gas_quality")}" WITH KEY = "site_id"'
        return {
            **common,
            "type": "query",
            "datasource": DATASOURCE,
            "query": show,
            "definition": show,
            "refresh": 2,
            "sort": 3,
        }
    pairs = sorted(names.sites.items(), key=lambda pair: pair[1])
    return {
        **common,
        "type": "custom",
        "allValue": ".*",  # every site, one named since included
        "query": ", ".join(f"{name.replace(',', ' ')} : {site_id}" for site_id, name in pairs),
        "options": [{"selected": False, "text": name, "value": site_id} for site_id, name in pairs],
    }


def gas_quality(names: Names) -> dict[str, t.Any]:
    """CV, Wobbe index, SG, CO2 and N2 by site."""
    mj = "suffix: MJ/m³"
    site = "site $tag_site_id"
    panels = [
        lines(
            "Calorific value",
            [query(per_site("cv"), alias=site)],
            unit=mj,
            decimals=2,
            overrides=site_names(names),
            description="Calorific value (CV) of each chosen site, MJ/m³.",
        ),
        lines(
            "Wobbe index",
            [query(per_site("wi"), alias=site)],
            unit=mj,
            decimals=2,
            overrides=site_names(names),
            custom={"thresholdsStyle": {"mode": "line+area"}},
            thresholds=thresholds(
                ("red", None), ("green", GSMR_WOBBE_MIN), ("red", GSMR_WOBBE_MAX)
            ),
            min=46.5,
            max=52,
            description=(
                f"Wobbe index of each chosen site, MJ/m³. The green band is the GS(M)R limit, "
                f"{GSMR_WOBBE_MIN:.2f} to {GSMR_WOBBE_MAX:.2f} MJ/m³."
            ),
        ),
        lines(
            "Specific gravity",
            [query(per_site("sg"), alias=site)],
            decimals=3,
            overrides=site_names(names),
            description="Specific gravity (relative density, air = 1) of each chosen site.",
        ),
        lines(
            "Carbon dioxide and nitrogen",
            [
                query(per_site("co2"), alias="CO2 site $tag_site_id", ref="A"),
                query(per_site("n2"), alias="N2 site $tag_site_id", ref="B"),
            ],
            unit="percent",
            decimals=2,
            overrides=site_names(names, "CO2 ") + site_names(names, "N2 "),
            description="CO2 and N2 content of each chosen site, mol %.",
        ),
        panel(
            "table",
            "Sites",
            [
                query(
                    'SELECT last("cv") AS "cv", "site_name", "area_name", "wi", "sg", "co2", '
                    f'"n2" FROM "{measurement("gas_quality")}"'
                    f' WHERE "site_id" =~ /^$site$/ AND $timeFilter '
                    'GROUP BY "site_id"',
                    table=True,
                )
            ],
            width=24,
            description="The newest reading of each chosen site, with its name and area.",
            overrides=[override("Time", displayName="Published")],
        ),
    ]
    return dashboard(
        "gb-gas-quality",
        "Gas quality",
        "Gas quality by site, as National Gas publishes it each hour.",
        panels,
        variables=[site_variable(names)],
    )


def flows(_: Names) -> dict[str, t.Any]:
    """Supply by terminal, demand by category, totals and linepack."""
    mcmd = "suffix: mcm/d"
    panels = [
        lines(
            "Supply by terminal",
            [query(flow_group("supply_from_terminals"), alias="$tag_site_id")],
            stacked=True,
            unit=mcmd,
            overrides=flow_site_names("supply_from_terminals"),
            description="Instantaneous supply of each terminal, stacked, mcm/d.",
        ),
        lines(
            "Demand by category",
            [query(flow_group("demand_by_category"), alias="$tag_site_id")],
            unit=mcmd,
            overrides=flow_site_names("demand_by_category"),
            description="Instantaneous demand of each category, mcm/d.",
        ),
        lines(
            "Total supply and total demand",
            [
                query(
                    f'SELECT mean("flow_rate") FROM "{measurement("instantaneous_flows")}"'
                    f' WHERE ("group_id" = '
                    "'total_supply' OR \"group_id\" = 'total_demand') AND $timeFilter "
                    'GROUP BY time($__interval), "group_id" fill(none)',
                    alias="$tag_group_id",
                )
            ],
            unit=mcmd,
            overrides=[
                override("total_supply", displayName="Total supply"),
                override("total_demand", displayName="Total demand"),
            ],
            description="Total NTS supply against total demand, mcm/d.",
        ),
        lines(
            "Linepack",
            [query(flow_group("actual_linepack"), alias="Actual linepack")],
            unit="suffix: mcm",
            description="Gas held in the NTS pipes, from the 2-minute feed, mcm.",
        ),
    ]
    return dashboard(
        "gb-gas-flows",
        "Flows",
        "NTS flows every 2 minutes, published every 12 minutes.",
        panels,
    )


UNITS = {"kWh": "kwatth", "percent": "percent"}
"""Grafana's own unit for a data item's unit, where it has one (it scales kWh to GWh);
any other unit is shown as a suffix."""


def grafana_unit(unit: str) -> str:
    """The Grafana unit of a data item's unit."""
    return UNITS.get(unit) or f"suffix: {unit}"


def item_name(item: Item, names: Names) -> str:
    """A data item's name: the newest stored where known, else its set's."""
    return names.items.get(item.publication_id) or item.name


def named_items(items: t.Iterable[Item], names: Names) -> list[dict[str, t.Any]]:
    """Overrides that show each data item's series (keyed on its id) under its name.

    The name is the newest stored where known, else the set's.
    """
    return [override(i.publication_id, displayName=item_name(i, names)) for i in items]


def item_ids(items: t.Iterable[Item]) -> str:
    """An InfluxQL condition on the ids of data items."""
    return f'"publication_id" =~ /^({"|".join(i.publication_id for i in items)})$/'


def by_unit(items: t.Iterable[Item]) -> dict[str, list[Item]]:
    """Data items grouped by unit, in the order of the set."""
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(item.unit, []).append(item)
    return groups


def ready_set(name: str, names: Names) -> dict[str, t.Any]:
    """The dashboard of a ready set: a panel per unit, then the newest value of each item."""
    chosen = SETS[name]
    groups = by_unit(chosen.items)
    panels = [
        lines(
            ", ".join(i.name for i in items) if len(items) == 1 else f"{chosen.title}, {unit}",
            [query(daily(item_ids(items), "publication_id"), alias="$tag_publication_id")],
            unit=grafana_unit(unit),
            custom={"showPoints": "always"},
            overrides=named_items(items, names),
            width=24 if len(groups) == 1 else 12,
            description=(
                f"{', '.join(i.name for i in items)}: the latest value published for each gas "
                f"day, {unit}. A revised value replaces the first one."
            ),
            interval="1d",
        )
        for unit, items in groups.items()
    ]
    panels.append(
        panel(
            "table",
            "Newest value of each data item",
            [
                query(
                    'SELECT last("value") AS "value", "publication_name", "quality_indicator", '
                    f'"generated_time" FROM "{measurement("publications")}"'
                    f" WHERE {item_ids(chosen.items)} "
                    'AND $timeFilter GROUP BY "publication_id"',
                    table=True,
                )
            ],
            width=24,
            description=(
                "The newest gas day of each data item of the set: its value, its name as the "
                "API gives it now, its quality indicator and when it was published."
            ),
            overrides=[
                override("Time", displayName="Gas day"),
                override("publication_name", displayName="Data item"),
                override("publication_id", mappings=[names_mapping(chosen.items, names)]),
            ],
        )
    )
    return dashboard(
        f"gb-gas-set-{name.replace('_', '-')}",
        chosen.title,
        f"Ready set {name}: {chosen.description} One value per gas day, as stored.",
        panels,
        time_from="now-30d",
    )


def names_mapping(items: t.Iterable[Item], names: Names) -> dict[str, t.Any]:
    """A value mapping from each data item's id to its name."""
    return {
        "type": "value",
        "options": {
            i.publication_id: {"text": item_name(i, names), "index": n} for n, i in enumerate(items)
        },
    }


def pipeline_health(_: Names) -> dict[str, t.Any]:
    """Each stream's last run, results, records per run and data lag."""
    runs = '"data_imports_run"'
    status_colours = [
        {
            "type": "value",
            "options": {
                "ok": {"color": "green", "index": 0, "text": "ok"},
                "failed": {"color": "red", "index": 1, "text": "failed"},
                "stopped": {"color": "red", "index": 2, "text": "stopped"},
            },
        }
    ]
    lag_query = (
        f'SELECT $__to / 1000 - last("newest") FROM {runs} WHERE $timeFilter GROUP BY "stream"'
    )
    panels = [
        panel(
            "table",
            "Last run of each stream",
            [
                query(
                    'SELECT last("records") AS "records", "points", "rejected", "skipped", '
                    f'"duration", "status" FROM {runs} WHERE $timeFilter GROUP BY "job", "stream"',
                    table=True,
                )
            ],
            width=24,
            description=(
                "The newest run of each job and stream: when it ended, what it received and "
                "wrote, and its result."
            ),
            overrides=[
                override("Time", displayName="Ended", unit="dateTimeFromNow"),
                override("duration", unit="s", decimals=1),
                override(
                    "status",
                    mappings=status_colours,
                    custom={"cellOptions": {"type": "color-background"}},
                ),
            ],
        ),
        panel(
            "stat",
            "Data lag",
            [query(lag_query, alias="$tag_stream")],
            unit="s",
            width=24,
            height=5,
            thresholds=thresholds(("green", None), ("orange", HOUR), ("red", 3 * HOUR)),
            overrides=[
                override(
                    stream,
                    thresholds=thresholds(("green", None), ("orange", late), ("red", stale)),
                )
                for stream, (late, stale) in LAG_LIMITS.items()
            ],
            options={
                "colorMode": "background",
                "graphMode": "none",
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            },
            description=(
                "Now minus the newest point each stream has written, in the newest run. "
                "Orange when late, red when stale: 30 and 60 minutes for flows, 2 and 3 hours "
                "for gas quality, 2 and 3 days for the daily items and the backfill."
            ),
        ),
        panel(
            "state-timeline",
            "Result of each run",
            [
                query(
                    f'SELECT last("status") FROM {runs} WHERE $timeFilter '
                    'GROUP BY time($__interval), "stream" fill(none)',
                    alias="$tag_stream",
                )
            ],
            mappings=status_colours,
            options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8},
            description="ok or failed, for each run of each stream.",
        ),
        lines(
            "Records per run",
            [
                query(
                    f'SELECT sum("records") FROM {runs} WHERE $timeFilter '
                    'GROUP BY time($__interval), "stream" fill(none)',
                    alias="$tag_stream",
                )
            ],
            bars=True,
            description="Records each stream received, per run.",
        ),
    ]
    return dashboard(
        "gb-gas-pipeline-health",
        "Pipeline health",
        "The pipeline's own runs, from the points the target writes at the end of each run.",
        panels,
        time_from="now-24h",
    )


def dashboard(  # noqa: PLR0913
    uid: str,
    title: str,
    description: str,
    panels: list[Panel],
    *,
    variables: list[dict[str, t.Any]] | None = None,
    time_from: str = "now-2d",
) -> dict[str, t.Any]:
    """A read-only dashboard; panels fill rows left to right."""
    x = y = row_height = 0
    for number, item in enumerate(panels, start=1):
        pos = item["gridPos"]
        if x + pos["w"] > WIDTH:
            x, y, row_height = 0, y + row_height, 0
        pos["x"], pos["y"] = x, y
        x, row_height = x + pos["w"], max(row_height, pos["h"])
        item["id"] = number
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["gb-gas"],
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": time_from, "to": "now"},
        "refresh": "5m",
        "timezone": "",
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "title": "GB gas",
                "tags": ["gb-gas"],
                "asDropdown": False,
                "includeVars": False,
                "keepTime": True,
            }
        ],
        "templating": {"list": variables or []},
        "panels": panels,
    }


BUILDERS: dict[str, t.Callable[[Names], dict[str, t.Any]]] = {
    "gas-quality.json": gas_quality,
    "flows.json": flows,
    "pipeline-health.json": pipeline_health,
    **{f"set-{name.replace('_', '-')}.json": functools.partial(ready_set, name) for name in SETS},
}


def build(names: Names | None = None) -> dict[str, str]:
    """Every dashboard file's text, by file name."""
    chosen = names or Names()
    return {name: json.dumps(make(chosen), indent=2) + "\n" for name, make in BUILDERS.items()}


def write(folder: Path, names: Names | None = None, *, replace: bool = True) -> list[str]:
    """Write the dashboards that differ into ``folder`` and remove any other.

    Each file is readable by all: Grafana reads them as its own user. ``replace=False`` writes
    only the files missing.

    Returns:
        The names of the files changed.
    """
    folder.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in build(names).items():
        path = folder / name
        if path.exists() and (not replace or path.read_text() == text):
            continue
        partial = path.with_suffix(".json.new")
        partial.write_text(text)
        partial.chmod(0o644)
        partial.replace(path)
        changed.append(name)
    for path in sorted(folder.glob("*.json")):
        if path.name not in BUILDERS:
            path.unlink()
            changed.append(path.name)
    return changed


def stale(folder: Path) -> list[str]:
    """The committed dashboards that differ from what the code builds (or should not be)."""
    wanted = build()
    found = {path.name: path.read_text() for path in folder.glob("*.json")}
    return sorted(name for name in {*wanted, *found} if found.get(name) != wanted.get(name))


def keep_named(folder: Path, every: float, env: Mapping[str, str]) -> None:
    """Write the dashboards with the names InfluxDB holds, then again every ``every`` seconds.

    A failure to read the names is one WARNING line; the dashboards keep the names they had
    (where there are none yet, they are written without names).
    """
    names: Names | None = None
    while True:
        try:
            names = read_names(env)
            fresh = True
        except NamesError as exc:
            LOGGER.warning("dashboards: names not read, kept as they were: %s", exc)
            fresh = names is not None
        changed = write(folder, names, replace=fresh)
        if changed:
            LOGGER.info("dashboards: wrote %s", ", ".join(changed))
        if every <= 0:
            return
        time.sleep(every)


def main(argv: list[str] | None = None) -> int:
    """Write the dashboards, or with ``--check`` name those that differ (exit 1)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 on a diff")
    parser.add_argument("--out", type=Path, default=DASHBOARDS, help="folder of the dashboards")
    parser.add_argument(
        "--names-from-influxdb",
        action="store_true",
        help="name sites and data items as InfluxDB holds them (INFLUXDB_URL, INFLUXDB_TOKEN, "
        "INFLUXDB_BUCKET)",
    )
    parser.add_argument(
        "--every", type=float, default=0, help="with names: write again every N seconds"
    )
    args = parser.parse_args(argv)
    if args.check:
        differ = stale(args.out)
        if differ:
            print(f"differ from data_imports/dashboards.py: {', '.join(differ)}")  # noqa: T201
        return 1 if differ else 0
    if args.names_from_influxdb:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        keep_named(args.out, args.every, os.environ)
        return 0
    write(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
