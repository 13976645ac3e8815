"""Grafana as files: provisioning and dashboards parse and agree with each other and with compose,
and every panel and alert query runs on the real engine filled by ``meltano run`` from the fake."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import typing as t
from pathlib import Path

import pytest
import yaml

from data_imports import preflight
from tap_nationalgas.sets import SETS
from testkit import expected
from testkit.fake_grafana import FakeGrafana, legend, time_filter
from testkit.fixtures import FAKE_NOW, FAKE_START_DATE, meltano, meltano_env
from testkit.processes import REPO_ROOT, run_script

if t.TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterator

    from testkit.fake_nationalgas import FakeNationalGasProcess
    from testkit.influx import LocalInfluxDB, RemoteInfluxDB2

GRAFANA = REPO_ROOT / "grafana"
PROVISIONING = GRAFANA / "provisioning"
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
JOBS = ("nationalgas-to-influxdb", "nationalgas-flows")
BACKFILL_JOB = "nationalgas-backfill"


def state_ids(*jobs: str) -> dict[str, tuple[str, ...]]:
    """State ID -> the streams its runs read, for each task of the jobs (meltano.yml).

    The state ID is Meltano's ``<environment>:<extractor>-to-<loader>``, the default ``job`` tag
    of the health points; the environment is the one the test runs get (they inherit ours).
    """
    environment = expected.PROJECT.environment(os.environ)
    return {
        task.state_id(environment): tuple(task.extractor.selected_streams)
        for job in jobs
        for task in expected.PROJECT.job(job).tasks
    }


STATE_IDS = state_ids(*JOBS)
BACKFILL_STATE_IDS = state_ids(BACKFILL_JOB)
SECRET_KEY = re.compile(r"password|token|secret|httpHeaderValue", re.IGNORECASE)
ENV_REFERENCE = re.compile(r"\$\{[A-Z0-9_]+(?::?[-?+][^}]*)?\}|\$__file\{/run/[^}]+\}")


def load_yaml(path: Path) -> dict[str, t.Any]:
    """One provisioning or compose file."""
    return t.cast("dict[str, t.Any]", yaml.safe_load(path.read_text()))


def dashboards() -> dict[str, dict[str, t.Any]]:
    """Every committed dashboard, by file name."""
    return {path.name: json.loads(path.read_text()) for path in DASHBOARD_FILES}


def panel_queries() -> list[tuple[str, dict[str, t.Any], dict[str, t.Any]]]:
    """(dashboard file, panel, query) of every panel of every dashboard."""
    return [
        (name, panel, target)
        for name, board in dashboards().items()
        for panel in board["panels"]
        for target in panel["targets"]
    ]


def alert_rules() -> list[dict[str, t.Any]]:
    """Every provisioned alert rule."""
    return [
        rule
        for path in sorted((PROVISIONING / "alerting").glob("*.yaml"))
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
    ]


def datasource_uids() -> set[str]:
    """The uids of the provisioned datasources."""
    return {
        source["uid"]
        for path in sorted((PROVISIONING / "datasources").glob("*.yaml"))
        for source in load_yaml(path)["datasources"]
    }


def compose_service(name: str) -> dict[str, t.Any]:
    """One service of docker-compose.yml."""
    return t.cast("dict[str, t.Any]", load_yaml(REPO_ROOT / "docker-compose.yml")["services"][name])


# --- the files -----------------------------------------------------------------------------


def test_dashboards_are_what_their_source_generates():
    check = run_script("build_dashboards.py", "--check", timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    assert {path.name for path in DASHBOARD_FILES} == {
        "gas-quality.json",
        "flows.json",
        "pipeline-health.json",
        *(f"set-{name.replace('_', '-')}.json" for name in SETS),
    }


def test_every_datasource_a_panel_variable_or_alert_uses_is_provisioned():
    uids = datasource_uids()
    assert uids == {"influxdb-influxql"}
    used = [("panel", p["datasource"]["uid"]) for _, p, _ in panel_queries()]
    used += [("query", q["datasource"]["uid"]) for _, _, q in panel_queries()]
    used += [
        ("variable", v["datasource"]["uid"])
        for board in dashboards().values()
        for v in board["templating"]["list"]
    ]
    used += [
        ("alert", d["datasourceUid"])
        for rule in alert_rules()
        for d in rule["data"]
        if d["datasourceUid"] != "__expr__"
    ]
    assert {uid for _, uid in used} == uids, used


def test_every_measurement_a_query_reads_is_one_meltano_yml_maps_a_stream_to():
    # meltano.yml's mappings are the one home of the measurement names: the dashboards are
    # generated from them, and the alert rules (written by hand) are held to them here
    queries = [target.get("query", "") for _, _, target in panel_queries()]
    queries += [d["model"].get("query", "") for rule in alert_rules() for d in rule["data"]]
    variables = [v for board in dashboards().values() for v in board["templating"]["list"]]
    queries += [str(v.get("query", "")) for v in variables]
    read = {m for query in queries for m in re.findall(r'FROM "([^"]+)"', query)}
    assert read, queries
    assert read <= {*expected.MEASUREMENTS, "data_imports_run"}, read - set(expected.MEASUREMENTS)


def test_every_panel_query_is_raw_influxql_with_grafana_macros():
    for name, panel, target in panel_queries():
        where = f"{name}: {panel['title']}"
        assert target["rawQuery"] is True, where
        assert "$timeFilter" in target["query"], where
        if "GROUP BY time(" in target["query"]:
            assert "GROUP BY time($__interval)" in target["query"], where
        if panel["type"] in {"timeseries", "state-timeline"}:
            assert "$__interval" in target["query"], where


def test_dashboards_are_read_only_in_the_gb_gas_folder_and_open_grafana():
    provider = load_yaml(PROVISIONING / "dashboards" / "gb-gas.yaml")["providers"][0]
    assert provider["folder"] == "GB gas"
    assert provider["allowUiUpdates"] is False
    assert all(board["editable"] is False for board in dashboards().values())
    grafana = compose_service("grafana")
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"] if ":" in volume)
    # the dashboards: the volume the dashboards service writes them into, with names
    assert mounts["grafana-dashboards"] == provider["options"]["path"]
    service = compose_service("dashboards")
    assert "grafana-dashboards:/stack/grafana-dashboards" in service["volumes"]
    assert "--out=/stack/grafana-dashboards" in service["command"]
    assert "/stack/grafana-dashboards/gas-quality.json" in service["healthcheck"]["test"]
    for kind in ("datasources", "dashboards"):
        assert mounts[f"./grafana/provisioning/{kind}"] == f"/etc/grafana/provisioning/{kind}"
    # alerting: the committed rules and the contact point the preflight service writes
    assert mounts["grafana-alerting"] == "/etc/grafana/provisioning/alerting"
    preflight = compose_service("preflight")
    assert "./grafana/provisioning/alerting:/stack/alert-rules:ro" in preflight["volumes"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/")
    assert (GRAFANA / "dashboards" / Path(home).name).is_file()
    assert {rule["uid"] for rule in alert_rules()} == {"gb-gas-no-gas-quality", "gb-gas-no-flows"}


def test_wobbe_panel_shows_the_gsmr_band():
    board = dashboards()["gas-quality.json"]
    wobbe = next(p for p in board["panels"] if p["title"] == "Wobbe index")
    steps = wobbe["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [(s["color"], s["value"]) for s in steps] == [
        ("red", None),
        ("green", 47.20),
        ("red", 51.41),
    ]
    assert wobbe["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line+area"


def test_grafana_service_is_pinned_private_and_waits_for_influxdb_and_its_dashboards():
    grafana = compose_service("grafana")
    assert re.fullmatch(r"grafana/grafana-oss:1[12]\.\d+\.\d+", grafana["image"])
    assert grafana["ports"] == ["127.0.0.1:3000:3000"]
    assert grafana["depends_on"] == {
        "influxdb": {"condition": "service_healthy"},
        "preflight": {"condition": "service_completed_successfully"},
        "dashboards": {"condition": "service_healthy"},
    }
    assert "/api/health" in " ".join(grafana["healthcheck"]["test"])
    env = grafana["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD")
    assert any(v.startswith("grafana-data:") for v in grafana["volumes"])
    assert "GRAFANA_ADMIN_PASSWORD=" in (REPO_ROOT / ".env.example").read_text()


def secret_values(node: object, path: str = "") -> Iterator[tuple[str, object]]:
    """Every value under a key that names a secret, with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}"
            if SECRET_KEY.search(str(key)) and not isinstance(value, (dict, list, type(None))):
                yield where, value
            yield from secret_values(value, where)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from secret_values(value, f"{path}[{i}]")


def test_no_secret_is_written_in_a_committed_file():
    files = [*sorted(PROVISIONING.rglob("*.yaml")), REPO_ROOT / "docker-compose.yml"]
    found = [
        (f"{path.name}{where}", value)
        for path in files
        for where, value in secret_values(load_yaml(path))
    ]
    assert any("httpHeaderValue1" in where for where, _ in found)
    for where, value in found:
        rest = ENV_REFERENCE.sub("", str(value)).replace("Token ", "").strip()
        assert rest == "", f"{where} holds a value, not a variable: {value!r}"
    for _, _, target in panel_queries():
        assert "token" not in json.dumps(target).lower()


def test_alert_rules_fire_on_stale_data_with_no_contact_point():
    rules = {rule["title"]: rule for rule in alert_rules()}
    window = {
        "No new gas_quality point in 3 hours": ("gas_quality", 3 * 3600),
        "No new instantaneous_flow point in 1 hour": ("instantaneous_flow", 3600),
    }
    assert set(rules) == set(window)
    for title, (measurement, seconds) in window.items():
        rule = rules[title]
        query = next(d for d in rule["data"] if d["refId"] == "A")
        assert query["relativeTimeRange"] == {"from": seconds, "to": 0}
        assert f'FROM "{measurement}" WHERE $timeFilter' in query["model"]["query"]
        assert rule["noDataState"] == "Alerting", "no point at all must fire too"
        assert rule["condition"] in {d["refId"] for d in rule["data"]}
    assert not list((PROVISIONING / "alerting").glob("*contact*"))


# --- on the engine --------------------------------------------------------------------------


class Filled(t.NamedTuple):
    """A bucket filled by two runs of each scheduled job, and one backfill."""

    engine: LocalInfluxDB | RemoteInfluxDB2
    bucket: str
    first: dict[str, dict[str, t.Any]]  # stream -> what the first run stored, as the tests count
    second: dict[str, dict[str, t.Any]]
    started: dt.datetime


def stored(engine: LocalInfluxDB | RemoteInfluxDB2, bucket: str) -> dict[str, list[int]]:
    """measurement -> the times (ns) of its points."""
    return {m: sorted(p.time_ns for p in engine.points(bucket, m)) for m in expected.MEASUREMENTS}


def run_jobs(env: dict[str, str], *jobs: str) -> None:
    """meltano run, which must succeed."""
    result = meltano(env, "run", *jobs)
    assert result.returncode == 0, result.stderr[-3000:]


def counted(before: dict[str, list[int]], after: dict[str, list[int]]) -> dict[str, dict]:
    """For each stream of the scheduled jobs: its measurement's new points and newest time (s)."""
    measurement_of = {
        stream: expected.measurement(stream) for streams in STATE_IDS.values() for stream in streams
    }
    return {
        stream: {
            "new": len(after[m]) - len(before[m]),
            "newest": max(after[m]) // 1_000_000_000 if after[m] else None,
        }
        for stream, m in measurement_of.items()
    }


@pytest.fixture(scope="module")
def filled(
    tmp_path_factory: pytest.TempPathFactory,
    meltano_installed: None,
    influxdb: LocalInfluxDB | RemoteInfluxDB2,
    nationalgas_api: FakeNationalGasProcess,
) -> Filled:
    """Two runs of the scheduled jobs an hour apart, then a backfill, with the default items."""
    nationalgas_api.reset()
    bucket = f"grafana_{dt.datetime.now(dt.UTC):%H%M%S%f}"
    influxdb.create_bucket(bucket)
    env = meltano_env(tmp_path_factory.mktemp("grafana"), nationalgas_api, influxdb, bucket)
    del env["TAP_NATIONALGAS_PUBLICATION_IDS"]
    env["TAP_NATIONALGAS_PUBLICATION_SETS"] = json.dumps(list(SETS))  # every ready set
    started = dt.datetime.now(dt.UTC)
    empty = stored(influxdb, bucket)
    run_jobs(env, *JOBS)
    after_first = stored(influxdb, bucket)
    nationalgas_api.advance(60)
    run_jobs(env, *JOBS)
    after_second = stored(influxdb, bucket)
    run_jobs(env, BACKFILL_JOB)
    return Filled(
        influxdb,
        bucket,
        counted(empty, after_first),
        counted(after_first, after_second),
        started,
    )


def health_points(filled: Filled) -> dict[tuple[str, str], list[dict[str, t.Any]]]:
    """(job, stream) -> its data_imports_run rows, oldest first."""
    rows: dict[tuple[str, str], list[dict[str, t.Any]]] = {}
    series = filled.engine.query(
        filled.bucket, 'SELECT * FROM "data_imports_run" GROUP BY "job", "stream", "host"'
    )
    for s in series:
        for values in s["values"]:
            row = dict(zip(s["columns"], values, strict=True))
            rows.setdefault((s["tags"]["job"], s["tags"]["stream"]), []).append(
                {**row, "host": s["tags"]["host"]}
            )
    return rows


def test_two_runs_leave_two_health_points_per_stream_with_their_counts(filled: Filled):
    rows = health_points(filled)
    expected_keys = {
        (job, stream)
        for job, streams in (STATE_IDS | BACKFILL_STATE_IDS).items()
        for stream in streams
    }
    assert set(rows) == expected_keys
    for (job, stream), points in rows.items():
        backfill = job in BACKFILL_STATE_IDS
        assert len(points) == (1 if backfill else 2), (job, stream)
        for point in points:
            assert point["status"] == "ok", (job, stream)
            assert point["rejected"] == 0
            assert point["records"] == point["points"] + point["skipped"]
            assert point["duration"] > 0
            assert point["time"] >= filled.started.timestamp() * 1e9
        if backfill:
            continue
        for point, run in zip(points, (filled.first, filled.second), strict=True):
            count = run[stream]
            if stream == "publications":  # the look-back window writes revised days again
                assert point["points"] >= count["new"], (job, stream)
            else:
                assert point["points"] == count["new"], (job, stream, point, count)
            if point["points"]:
                assert point["newest"] == count["newest"], (job, stream)
    first_flows = rows["dev:tap-nationalgas-flows-to-target-influxdb", "instantaneous_flows"][0]
    assert first_flows["points"] > 0


def substitute(text: str, panel: dict[str, t.Any], window: tuple[int, int], site: str) -> str:
    """A query as Grafana sends it: macros and the site variable filled in."""
    start_ms, end_ms = window
    return (
        text.replace("$timeFilter", time_filter(start_ms, end_ms))
        .replace("$__interval", panel.get("interval") or "1h")
        .replace("$__from", str(start_ms))
        .replace("$__to", str(end_ms))
        .replace("$site", site)
    )


def window_of(filled: Filled) -> tuple[int, int]:
    """From a day before the fake's start date to an hour after the runs (ms)."""
    start = dt.datetime.fromisoformat(FAKE_START_DATE) - dt.timedelta(days=1)
    end = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def all_sites(filled: Filled) -> str:
    """The site variable set to All, as Grafana writes it into a regex: (1|2|...)."""
    board = dashboards()["gas-quality.json"]
    variable = board["templating"]["list"][0]
    series = filled.engine.query(filled.bucket, variable["query"])
    values = [row[1] for s in series for row in s["values"]]
    assert len(values) > 1, "the site variable lists the sites"
    return "(" + "|".join(re.escape(v) for v in values) + ")"


def names_used(query: str) -> tuple[str, set[str]]:
    """The measurement a query reads and the other names it quotes (fields and tags)."""
    measurement = re.search(r'FROM "([^"]+)"', query)
    assert measurement, query
    without_aliases = re.sub(r'\bAS "[^"]+"', "", query)
    quoted = set(re.findall(r'"([^"]+)"', without_aliases)) - {measurement.group(1)}
    return measurement.group(1), quoted


def keys_of(filled: Filled, measurement: str) -> set[str]:
    """The field and tag keys the pipeline wrote to a measurement."""
    keys = set()
    for statement in (
        f'SHOW FIELD KEYS FROM "{measurement}"',
        f'SHOW TAG KEYS FROM "{measurement}"',
    ):
        keys |= {
            row[0] for s in filled.engine.query(filled.bucket, statement) for row in s["values"]
        }
    return keys


def display_names(target: dict[str, t.Any], series: list[dict[str, t.Any]]) -> set[str]:
    """The names Grafana gives the series (alias with $tag_ filled in) or table columns."""
    names = set()
    for s in series:
        names |= set(s["columns"])
        if target["resultFormat"] == "table":  # a table has a column per tag grouped by
            names |= set(s.get("tags") or {})
        alias = target.get("alias") or ""
        for key, value in (s.get("tags") or {}).items():
            alias = alias.replace(f"$tag_{key}", value)
        names.add(alias)
    return names


@pytest.mark.parametrize(
    ("dashboard", "panel", "target"),
    panel_queries(),
    ids=[f"{name}:{panel['title']}:{q['refId']}" for name, panel, q in panel_queries()],
)
def test_every_panel_query_runs_and_returns_series(
    filled: Filled, dashboard: str, panel: dict[str, t.Any], target: dict[str, t.Any]
):
    query = substitute(target["query"], panel, window_of(filled), all_sites(filled))
    series = filled.engine.query(filled.bucket, query)
    assert series, f"{dashboard}: {panel['title']}: no series for {query}"
    assert any(v is not None for s in series for row in s["values"] for v in row[1:]), query
    measurement, names = names_used(target["query"])
    missing = names - keys_of(filled, measurement)
    assert not missing, f"{panel['title']}: {sorted(missing)} not written to {measurement}"
    shown = display_names(target, series)
    for item in panel["fieldConfig"]["overrides"]:
        name = item["matcher"]["options"]
        if name == "Time":
            continue
        assert name in shown, f"{panel['title']}: override for {name!r}, series {sorted(shown)}"


ID_LIKE = re.compile(r"^(PUBOBJ?\d+|[a-z0-9]+(_[a-z0-9]+)+)$")
"""A data item's id, or the key of a flow site (its name in lower case joined by ``_``)."""


@pytest.mark.parametrize(
    ("dashboard", "panel", "target"),
    [q for q in panel_queries() if q[0] != "pipeline-health.json"],
    ids=[
        f"{n}:{p['title']}:{q['refId']}"
        for n, p, q in panel_queries()
        if n != "pipeline-health.json"
    ],
)
def test_legends_and_tables_name_data_items_and_flow_sites(
    filled: Filled, dashboard: str, panel: dict[str, t.Any], target: dict[str, t.Any]
):
    query = substitute(target["query"], panel, window_of(filled), all_sites(filled))
    series = filled.engine.query(filled.bucket, query)
    if target["resultFormat"] == "table":
        mapped = {
            option
            for item in panel["fieldConfig"]["overrides"]
            for prop in item["properties"]
            if prop["id"] == "mappings"
            for mapping in prop["value"]
            for option in mapping["options"]
        }
        for s in series:
            if "publication_id" in s.get("tags", {}):
                assert s["tags"]["publication_id"] in mapped, (panel["title"], s["tags"])
                names = [row[s["columns"].index("publication_name")] for row in s["values"]]
                assert all(names), (panel["title"], s["tags"])
        return
    shown = {legend(target, panel, s.get("tags") or {}) for s in series}
    assert shown
    assert not [name for name in shown if ID_LIKE.match(name)], (panel["title"], sorted(shown))


def test_lag_panel_is_now_minus_the_newest_point(filled: Filled):
    board = dashboards()["pipeline-health.json"]
    lag = next(p for p in board["panels"] if p["title"] == "Data lag")
    start_ms, end_ms = window_of(filled)
    query = substitute(lag["targets"][0]["query"], lag, (start_ms, end_ms), "")
    series = {
        s["tags"]["stream"]: s["values"][-1][1] for s in filled.engine.query(filled.bucket, query)
    }
    rows = health_points(filled)
    flows = rows["dev:tap-nationalgas-flows-to-target-influxdb", "instantaneous_flows"]
    newest = [p["newest"] for p in flows if p.get("newest") is not None][-1]
    assert series["instantaneous_flows"] == pytest.approx(end_ms / 1000 - newest)


def test_alert_queries_count_fresh_points_and_find_none_once_stale(filled: Filled):
    fake_now = dt.datetime.fromisoformat(FAKE_NOW) + dt.timedelta(minutes=60)
    for rule in alert_rules():
        query = next(d for d in rule["data"] if d["refId"] == "A")
        seconds = query["relativeTimeRange"]["from"]
        for now, fresh in ((fake_now, True), (fake_now + dt.timedelta(hours=4), False)):
            end = int(now.timestamp() * 1000)
            text = substitute(query["model"]["query"], {}, (end - seconds * 1000, end), "")
            series = filled.engine.query(filled.bucket, text)
            count = series[0]["values"][0][1] if series else 0
            assert (count > 0) is fresh, (rule["title"], now, count)


def check_grafana(fake: FakeGrafana, password: str) -> subprocess.CompletedProcess[str]:
    """scripts/check_grafana.py against a Grafana API."""
    return run_script("check_grafana.py", "--url", fake.url, "--password", password, "--wait", "5")


def test_the_ci_check_of_grafana_passes_and_names_what_is_missing(filled: Filled):
    fake = FakeGrafana(filled.engine, filled.bucket, "ci-password")
    try:
        passed = check_grafana(fake, "ci-password")
        refused = check_grafana(fake, "wrong-password")
    finally:
        fake.stop()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout.count(": ok") == len(DASHBOARD_FILES)
    assert refused.returncode == 1
    assert "FAIL datasource influxdb-influxql: health check 401" in refused.stderr

    fake = FakeGrafana(filled.engine, filled.bucket, "pw", missing=frozenset({"gb-gas-flows"}))
    try:
        missing = check_grafana(fake, "pw")
    finally:
        fake.stop()
    assert missing.returncode == 1
    assert "FAIL flows.json: dashboard gb-gas-flows did not load (404" in missing.stderr


def test_a_contact_point_is_provisioned_only_when_a_destination_is_set(
    filled: Filled, tmp_path: Path
):
    """The preflight's alerting folder, applied by Grafana: the GB gas alerts reach a person."""
    env = {"GRAFANA_ALERT_EMAIL": "ops@example.com", "GF_SMTP_HOST": "smtp.example.com:587"}
    env |= {"GRAFANA_ALERT_WEBHOOK_URL": "https://hooks.example.com/T0/B0/x"}
    rules = PROVISIONING / "alerting"
    preflight.write_alerting(rules, tmp_path / "set", env)
    preflight.write_alerting(rules, tmp_path / "unset", {})
    written = (tmp_path / "set" / preflight.CONTACT_FILE).read_text()
    assert "ops@example.com" not in written, "Grafana fills in the address from its environment"
    assert "hooks.example.com" not in written
    assert set(secret_values(yaml.safe_load(written))) == set()

    def applied(folder: Path) -> tuple[list[t.Any], dict[str, t.Any], list[t.Any]]:
        fake = FakeGrafana(filled.engine, filled.bucket, "pw", alerting=folder, environ=env)
        try:
            return (
                fake.answer("GET", "/api/v1/provisioning/contact-points", None)[1],
                fake.answer("GET", "/api/v1/provisioning/policies", None)[1],
                fake.answer("GET", "/api/v1/provisioning/alert-rules", None)[1],
            )
        finally:
            fake.stop()

    points, policy, rules_applied = applied(tmp_path / "set")
    assert {(p["name"], p["type"]) for p in points} == {
        ("GB gas alerts", "email"),
        ("GB gas alerts", "webhook"),
    }
    by_type = {p["type"]: p["settings"] for p in points}
    assert by_type["email"]["addresses"] == "ops@example.com"
    assert by_type["webhook"]["url"] == "https://hooks.example.com/T0/B0/x"
    folders = {rule["folder"] for rule in rules_applied}
    assert folders == {"GB gas"}
    route = policy["routes"][0]
    assert route["receiver"] == "GB gas alerts"
    assert route["object_matchers"] == [["grafana_folder", "=", "GB gas"]]
    assert policy["receiver"] == "GB gas alerts"
    # compose gives Grafana the variables the file names, and e-mail on once SMTP is set
    grafana_env = compose_service("grafana")["environment"]
    assert grafana_env["GRAFANA_ALERT_EMAIL"].startswith("${GRAFANA_ALERT_EMAIL")
    assert grafana_env["GRAFANA_ALERT_WEBHOOK_URL"].startswith("${GRAFANA_ALERT_WEBHOOK_URL")
    assert grafana_env["GF_SMTP_ENABLED"] == "${GF_SMTP_HOST:+true}"

    points, policy, rules_applied = applied(tmp_path / "unset")
    assert points == []
    assert policy == {"receiver": "grafana-default-email"}
    assert {rule["uid"] for rule in rules_applied} == {"gb-gas-no-gas-quality", "gb-gas-no-flows"}
