"""Dashboards that speak names: written with the newest names the engine holds, one series per id
when the API renames a site, and a clear line when the names cannot be read."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import stat
import typing as t

import pytest

from data_imports import dashboards
from data_imports.names import Names, NamesError, read_names
from tap_nationalgas.sets import SETS
from testkit.fake_grafana import legend, time_filter
from testkit.fixtures import FAKE_START_DATE, meltano, meltano_env
from testkit.nationalgas_data import GAS_QUALITY_SITES, PUBLICATIONS
from testkit.processes import free_port

if t.TYPE_CHECKING:
    from pathlib import Path

    from testkit.fake_nationalgas import FakeNationalGasProcess
    from testkit.influx import LocalInfluxDB, RemoteInfluxDB2

RENAMED = ("ALDBROUGH", "ALDBROUGH STORAGE")
ID_LIKE = re.compile(r"\bsite \d+$|^PUBOBJ?\d+$")


def engine_env(engine: LocalInfluxDB | RemoteInfluxDB2, bucket: str) -> dict[str, str]:
    """The variables the dashboards service reads, for the test engine's InfluxQL endpoint."""
    url = getattr(engine, "raw_url", None) or engine.url  # influxd itself, or a real 2.x
    return {"INFLUXDB_URL": url, "INFLUXDB_TOKEN": engine.token, "INFLUXDB_BUCKET": bucket}


def run_job(env: dict[str, str]) -> None:
    """One run of the job that reads gas quality and the data items."""
    result = meltano(env, "run", "nationalgas-to-influxdb")
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def named(
    tmp_path_factory: pytest.TempPathFactory,
    meltano_installed: None,
    influxdb: LocalInfluxDB | RemoteInfluxDB2,
    nationalgas_api: FakeNationalGasProcess,
) -> tuple[LocalInfluxDB | RemoteInfluxDB2, str, dict[str, str]]:
    """A bucket filled by one run with every ready set, then a run after a site was renamed."""
    nationalgas_api.reset()
    bucket = f"names_{dt.datetime.now(dt.UTC):%H%M%S%f}"
    influxdb.create_bucket(bucket)
    env = meltano_env(tmp_path_factory.mktemp("names"), nationalgas_api, influxdb, bucket)
    del env["TAP_NATIONALGAS_PUBLICATION_IDS"]
    env["TAP_NATIONALGAS_PUBLICATION_SETS"] = json.dumps(list(SETS))
    run_job(env)
    nationalgas_api.advance(60)
    nationalgas_api.queue_faults(
        [{"path": "/gasquality", "rename": {RENAMED[0]: RENAMED[1]}, "count": 50}]
    )
    run_job(env)
    return influxdb, bucket, env


def test_names_are_the_newest_the_engine_holds(named):
    engine, bucket, _ = named
    names = read_names(engine_env(engine, bucket))
    site_id = next(str(i) for i, name, _ in GAS_QUALITY_SITES if name == RENAMED[0])
    expected = {str(i): name for i, name, _ in GAS_QUALITY_SITES}
    assert names.sites == {**expected, site_id: RENAMED[1]}
    assert names.items == {
        i.publication_id: PUBLICATIONS[i.publication_id].name
        for ready in SETS.values()
        for i in ready.items
    }


def test_every_series_of_the_named_dashboards_shows_a_name(named):
    engine, bucket, _ = named
    names = read_names(engine_env(engine, bucket))
    start = dt.datetime.fromisoformat(FAKE_START_DATE) - dt.timedelta(days=1)
    window = time_filter(
        int(start.timestamp() * 1000), int(dt.datetime.now(dt.UTC).timestamp() * 1000) + 3_600_000
    )
    sites = "(" + "|".join(sorted(names.sites)) + ")"
    shown: dict[str, set[str]] = {}
    for file, text in dashboards.build(names).items():
        if file in {"pipeline-health.json", "flows.json"}:  # flows: tests/test_grafana.py
            continue
        board = json.loads(text)
        for panel in board["panels"]:
            for target in panel["targets"]:
                if target["resultFormat"] == "table":
                    continue
                query = (
                    target["query"]
                    .replace("$timeFilter", window)
                    .replace("$__interval", panel.get("interval") or "1h")
                    .replace("$site", sites)
                )
                series = engine.query(bucket, query)
                assert series, (file, panel["title"])
                names_shown = {legend(target, panel, s.get("tags") or {}) for s in series}
                assert not [n for n in names_shown if ID_LIKE.search(n)], (file, names_shown)
                shown.setdefault(file, set()).update(names_shown)
    assert RENAMED[1] in shown["gas-quality.json"], "the renamed site under its new name"
    assert RENAMED[0] not in shown["gas-quality.json"], "one series, not two"
    variable = json.loads(dashboards.build(names)["gas-quality.json"])["templating"]["list"][0]
    assert variable["type"] == "custom"
    assert {o["text"] for o in variable["options"]} == set(names.sites.values())


def test_a_renamed_site_stays_one_series(named):
    engine, bucket, _ = named
    site_id = next(str(i) for i, name, _ in GAS_QUALITY_SITES if name == RENAMED[0])
    where = f'FROM "gas_quality" WHERE "site_id" = \'{site_id}\''
    series = engine.query(
        bucket, f'SELECT count("cv"), last("site_name") {where} GROUP BY "site_id"'
    )
    assert len(series) == 1
    assert series[0]["values"][0][2] == RENAMED[1]
    names = engine.query(bucket, f'SELECT DISTINCT("site_name") {where}')
    assert {row[1] for row in names[0]["values"]} == set(RENAMED), "both names, one series"


def test_the_service_writes_named_dashboards_readable_by_grafana(
    named, tmp_path: Path, monkeypatch
):
    engine, bucket, _ = named
    folder = tmp_path / "dashboards"
    folder.mkdir()
    (folder / "stale.json").write_text("{}")
    for name, value in engine_env(engine, bucket).items():
        monkeypatch.setenv(name, value)
    assert dashboards.main(["--names-from-influxdb", "--out", str(folder), "--every", "0"]) == 0
    names = read_names(engine_env(engine, bucket))
    assert sorted(p.name for p in folder.glob("*.json")) == sorted(dashboards.BUILDERS)
    for path in folder.glob("*.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name
    assert RENAMED[1] in (folder / "gas-quality.json").read_text()
    assert dashboards.write(folder, names) == [], "nothing written when nothing changed"


def test_names_not_read_are_one_warning_and_the_dashboards_stay(tmp_path: Path, caplog):
    folder = tmp_path / "dashboards"
    dashboards.write(folder, Names(sites={"1": "BACTON"}))
    before = (folder / "gas-quality.json").read_text()
    (folder / "flows.json").unlink()
    port = free_port()
    env = {
        "INFLUXDB_URL": f"http://127.0.0.1:{port}",
        "INFLUXDB_TOKEN": "t",
        "INFLUXDB_BUCKET": "b",
    }
    with caplog.at_level(logging.WARNING, logger="data_imports.dashboards"):
        dashboards.keep_named(folder, 0, env)
    assert [r.getMessage() for r in caplog.records] == [
        (
            "dashboards: names not read, kept as they were: could not reach "
            f"http://127.0.0.1:{port} ([Errno 111] Connection refused)"
        )
    ]
    assert (folder / "gas-quality.json").read_text() == before, "the names it had"
    assert (folder / "flows.json").exists(), "a missing dashboard written, without names"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "set INFLUXDB_URL, INFLUXDB_TOKEN, INFLUXDB_BUCKET"),
        (
            {"INFLUXDB_URL": "ftp://x", "INFLUXDB_TOKEN": "t", "INFLUXDB_BUCKET": "b"},
            "INFLUXDB_URL=ftp://x is not an http(s) URL",
        ),
    ],
)
def test_names_name_what_is_wrong(env, message):
    with pytest.raises(NamesError) as caught:
        read_names(env)
    assert str(caught.value) == message
