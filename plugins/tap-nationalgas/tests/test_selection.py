"""Data items chosen by id, catalogue name, category and ready set, against the fake API."""

from __future__ import annotations

import json
import typing as t

import pytest

from tap_nationalgas.sets import DEFAULT_SETS, SETS
from testkit.fake_nationalgas import catalogue_payload
from testkit.nationalgas_data import PUBLICATIONS
from testkit.singer import run_tap

if t.TYPE_CHECKING:
    from pathlib import Path

    from testkit.singer import TapRun

CATALOGUE = "/publications/catalogue"


def read_ids(run: TapRun) -> set[str]:
    """The data items whose values the run read."""
    return {r["publication_id"] for r in run.records.get("publications", [])}


def ids_named(*names: str) -> set[str]:
    """The fake's ids of catalogue names."""
    return {p.publication_id for p in PUBLICATIONS.values() if p.name in names}


def last_line(run: TapRun) -> str:
    """The message of the run's last log line."""
    return run.log.strip().splitlines()[-1].split(" | ", 3)[-1].strip()


def run_publications(tmp_path: Path, tap_config: dict[str, t.Any], **choice: t.Any) -> TapRun:
    """The publications stream alone, with the data items chosen."""
    config = {**tap_config, **choice}
    catalog = tmp_path / "catalog.json"
    return run_tap(tmp_path, config, catalog=selected(catalog, "publications"))


def selected(path: Path, *streams: str) -> Path:
    """A catalog file that selects streams of the tap."""
    from tap_nationalgas.tap import TapNationalGas  # noqa: PLC0415

    tap = TapNationalGas(config={"api_url": "http://127.0.0.1:9"}, validate_config=False)
    catalog = tap.catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in streams
    path.write_text(json.dumps(catalog))
    return path


def test_names_match_in_any_case_and_with_surrounding_spaces(tmp_path, tap_config, fake_api):
    before = fake_api.stats()["requests"].get(CATALOGUE, 0)
    names = ["  demand actual, nts, d+1 ", "SAP, ACTUAL DAY"]
    run = run_publications(tmp_path, tap_config, publication_names=names)
    assert run.returncode == 0, run.log[-2000:]
    assert read_ids(run) == ids_named("Demand Actual, NTS, D+1", "SAP, Actual Day")
    assert fake_api.stats()["requests"].get(CATALOGUE, 0) == before + 1  # once per run


def test_the_catalogue_stream_uses_the_catalogue_the_run_read(tmp_path, tap_config, fake_api):
    before = fake_api.stats()["requests"].get(CATALOGUE, 0)
    config = {**tap_config, "publication_sets": ["prices"]}
    catalog = selected(tmp_path / "catalog.json", "publications", "publication_catalogue")
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.log[-2000:]
    assert fake_api.stats()["requests"].get(CATALOGUE, 0) == before + 1
    assert {r["publication_id"] for r in run.records["publication_catalogue"]} == set(PUBLICATIONS)


def test_a_category_and_a_sub_category_read_every_item_in_them(tmp_path, tap_config):
    run = run_publications(
        tmp_path, tap_config, publication_categories=["demand", "Gas Quality / Calorific Value"]
    )
    assert run.returncode == 0, run.log[-2000:]
    demand = {p.publication_id for p in PUBLICATIONS.values() if p.category == "Demand"}
    ldz = {p.publication_id for p in PUBLICATIONS.values() if p.sub_category == "Calorific Value"}
    assert demand
    assert ldz
    assert read_ids(run) == demand | ldz


def test_ids_names_categories_and_sets_read_the_union_each_item_once(tmp_path, tap_config):
    run = run_publications(
        tmp_path,
        tap_config,
        publication_ids=["PUBOB637", "PUBOB603"],
        publication_names=["Demand Actual, NTS, D+1"],  # PUBOB637 again
        publication_categories=["Prices"],  # PUBOB603 again
        publication_sets=["calorific_values"],
    )
    assert run.returncode == 0, run.log[-2000:]
    cv = ids_named(*(item.name for item in SETS["calorific_values"].items))
    prices = {p.publication_id for p in PUBLICATIONS.values() if p.category == "Prices"}
    assert read_ids(run) == {"PUBOB637", "PUBOB603", *prices, *cv}
    rows = [(r["publication_id"], r["applicable_at"]) for r in run.records["publications"]]
    assert len(rows) == len(set(rows)), "each value read once"
    partitions = run.state["bookmarks"]["publications"]["partition_bookmarks"]
    assert {p["key"] for p in partitions} == read_ids(run), "state per item"


def test_nothing_chosen_reads_the_default_set(tmp_path, tap_config):
    run = run_publications(tmp_path, tap_config)
    assert run.returncode == 0, run.log[-2000:]
    wanted = {i.name for s in DEFAULT_SETS for i in SETS[s].items}
    assert read_ids(run) == {
        p.publication_id
        for p in PUBLICATIONS.values()
        if p.name.casefold() in {n.casefold() for n in wanted}
    }


def test_an_unknown_name_fails_before_any_data_naming_the_closest(tmp_path, tap_config, fake_api):
    before = fake_api.stats()["requests"]
    run = run_publications(tmp_path, tap_config, publication_names=["Demand Actuall NTS D+1"])
    assert run.returncode == 1
    line = last_line(run)
    assert line.startswith(
        'failed: `publication_names`: "Demand Actuall NTS D+1" is not in the National Gas '
        'catalogue; the closest it holds: "Demand Actual, NTS, D+1", "Demand Actual, NTS, D+6", '
    )
    assert line.endswith("; check the setting `publication_names`")
    assert line.count('", "') == 2, "three names at most"
    assert "Traceback" not in run.log
    assert not run.records
    after = fake_api.stats()["requests"]
    assert after.get("/publications/gasday", 0) == before.get("/publications/gasday", 0)


def test_an_unknown_category_fails_listing_the_categories(tmp_path, tap_config):
    run = run_publications(tmp_path, tap_config, publication_categories=["Weathr"])
    assert run.returncode == 1
    categories = sorted({p.category for p in PUBLICATIONS.values()})
    assert last_line(run) == (
        'failed: `publication_categories`: "Weathr" is not in the National Gas catalogue; the '
        f"categories are {', '.join(f'{c!r}'.replace(chr(39), chr(34)) for c in categories)}; "
        "check the setting `publication_categories`"
    )
    run = run_publications(tmp_path, tap_config, publication_categories=["Demand/Actual"])
    subs = sorted({p.sub_category for p in PUBLICATIONS.values() if p.category == "Demand"})
    listed = ", ".join(f'"{sub}"' for sub in subs)
    assert f'the sub-categories of "Demand" are {listed};' in last_line(run)


def test_an_unknown_set_fails_listing_the_sets(tmp_path, tap_config):
    run = run_publications(tmp_path, tap_config, publication_sets=["prices", "wether"])
    assert run.returncode == 1
    assert "wether" in last_line(run)
    assert all(name in run.log for name in SETS)
    assert "Traceback" not in run.log


def test_a_set_item_gone_from_the_catalogue_is_a_warning_and_the_rest_is_read(
    tmp_path, tap_config, fake_api
):
    gone = SETS["demand"].items[0].name
    fake_api.queue_faults([{"path": CATALOGUE, "body": catalogue_payload(without={gone})}])
    run = run_publications(tmp_path, tap_config, publication_sets=["demand"])
    assert run.returncode == 0, run.log[-2000:]
    warnings = [line for line in run.log.splitlines() if "WARNING  | tap-nationalgas" in line]
    assert len(warnings) == 1, warnings
    assert (
        "publications: the set demand names data items the National Gas catalogue no longer "
        f'holds, read without them: "{gone}"'
    ) in warnings[0]
    rest = ids_named(*(i.name for i in SETS["demand"].items[1:]))
    assert rest
    assert read_ids(run) == rest


def test_an_empty_catalogue_fails_when_items_are_chosen_by_name(tmp_path, tap_config, fake_api):
    fake_api.queue_faults([{"path": CATALOGUE, "empty": True}])
    run = run_publications(tmp_path, tap_config, publication_sets=["prices"])
    assert run.returncode == 1
    assert last_line(run) == (
        f"failed: {tap_config['api_url']}{CATALOGUE} answered with no data items: those chosen "
        "by name, category or set cannot be found; run again later, or choose them by id "
        "(`publication_ids`)"
    )
    assert not run.records


def test_an_empty_list_reads_no_item_and_asks_for_no_catalogue(tmp_path, tap_config, fake_api):
    before = fake_api.stats()["requests"].get(CATALOGUE, 0)
    run = run_publications(tmp_path, tap_config, publication_ids=[])
    assert run.returncode == 0, run.log[-2000:]
    assert not read_ids(run)
    assert fake_api.stats()["requests"].get(CATALOGUE, 0) == before


@pytest.mark.parametrize("set_name", list(SETS))
def test_every_item_of_every_set_is_in_the_fake_catalogue(set_name):
    held = {p.name.casefold() for p in PUBLICATIONS.values()}
    assert {i.name.casefold() for i in SETS[set_name].items} <= held
