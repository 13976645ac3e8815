"""tap-nationalgas as a process against the fake API: data rules, increments and errors."""

from __future__ import annotations

import datetime as dt
import socket
import time
import typing as t

import pytest
import requests
import urllib3

from tap_nationalgas import client, values
from tap_nationalgas.feed import FLOW_GROUPS
from tap_nationalgas.tap import TapNationalGas
from testkit.expected import fake_data
from testkit.fixtures import FAKE_NOW, FAKE_START_DATE
from testkit.nationalgas_data import GAS_QUALITY_SITES, PUBLICATIONS, NationalGasData, read_number
from testkit.singer import run_tap

if t.TYPE_CHECKING:
    from testkit.fake_nationalgas import FakeNationalGasProcess

UTC = dt.UTC
NOW = dt.datetime.fromisoformat(FAKE_NOW)


def last_message(run) -> str:
    """The message of the last line the tap logged."""
    return run.log.strip().splitlines()[-1].split(" | ", 3)[-1].strip()


def iso(moment: dt.datetime) -> str:
    """How the tap writes a timestamp."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def sent(now: dt.datetime = NOW) -> NationalGasData:
    """The fake's data as the session fixture serves it (strings and nulls on)."""
    return fake_data(now)


def expected_metrics(data: NationalGasData, site_id: int, at: dt.datetime) -> dict[str, t.Any]:
    return {key: read_number(v) for key, v in data.gas_quality_sent(site_id, at).items()}


def test_latest_gas_quality_equals_what_the_api_published(tmp_path, tap_config):
    run = run_tap(tmp_path, tap_config)
    assert run.returncode == 0, run.log
    data = sent()
    at = data.gas_quality_latest_time()
    assert at == dt.datetime(2026, 3, 29, 8, tzinfo=UTC)  # 09:00+01:00
    assert run.records["gas_quality"] == [
        {
            "site_id": site_id,
            "site_name": name,
            "area_name": area,
            "published_time": iso(at),
            **expected_metrics(data, site_id, at),
        }
        for site_id, name, area in GAS_QUALITY_SITES
    ]
    numbers = [r[k] for r in run.records["gas_quality"] for k in ("cv", "sg", "wi", "co2", "n2")]
    assert None in numbers  # nulls arrive as nulls
    assert all(isinstance(n, float) for n in numbers if n is not None)


def test_history_is_read_in_two_day_windows_ascending_across_the_clock_change(
    tmp_path,
    fake_api: FakeNationalGasProcess,
    tap_config,
):
    run = run_tap(tmp_path, tap_config)
    assert run.returncode == 0, run.log
    records = run.records["gas_quality_history"]
    # 2026-03-26 .. 2026-03-29: two windows of two days
    assert fake_api.stats()["requests"]["/gasquality/historicdata"] == 2
    times = sorted({r["published_time"] for r in records})
    start = dt.datetime.fromisoformat(FAKE_START_DATE)
    hours = int((NOW - start).total_seconds() // 3600) + 1  # from start_date (inclusive) to now
    assert times == [iso(start + dt.timedelta(hours=h)) for h in range(hours)]
    assert [r["published_time"] for r in records] == sorted(r["published_time"] for r in records)
    assert len(records) == hours * len(GAS_QUALITY_SITES)
    data = sent()
    for record in records[::97]:
        at = dt.datetime.fromisoformat(record["published_time"])
        assert {k: record[k] for k in ("cv", "cv24", "sg", "sg24", "wi", "co2", "n2")} == (
            expected_metrics(data, record["site_id"], at)
        )


def test_site_ids_filter_both_gas_quality_streams(tmp_path, tap_config):
    run = run_tap(tmp_path, {**tap_config, "site_ids": [3, 7]})
    assert run.returncode == 0, run.log
    assert {r["site_id"] for r in run.records["gas_quality"]} == {3, 7}
    assert {r["site_id"] for r in run.records["gas_quality_history"]} == {3, 7}


def test_instantaneous_flows_in_utc_with_gas_day_and_blank_indicators_as_null(tmp_path, tap_config):
    run = run_tap(tmp_path, tap_config)
    assert run.returncode == 0, run.log
    records = run.records["instantaneous_flows"]
    sites = {(g, s) for g, names in FLOW_GROUPS for s in names}
    assert {(r["group"], r["site_name"]) for r in records} == sites
    readings = sorted({r["applicable_at"] for r in records})
    # the gas day of 2026-03-29 began at 05:00 BST = 04:00 UTC; readings every 2 minutes
    assert readings[0] == "2026-03-29T04:00:00.000000+00:00"
    assert readings[-1] == "2026-03-29T07:46:00.000000+00:00"  # published at the 07:58 slot
    assert len(readings) == 114
    assert len(records) == 114 * len(sites)
    assert {r["gas_day"] for r in records} == {"2026-03-29"}
    assert {r["quality_indicator"] for r in records} == {None, "E"}
    assert {r["published_time"] for r in records} == {"2026-03-29T07:59:24.000000+00:00"}
    linepack = next(r for r in records if r["site_name"] == "NTS Actual Linepack")
    assert 300 < linepack["flow_rate"] < 450


def test_publications_with_string_values_blank_indicators_and_gas_days(tmp_path, tap_config):
    run = run_tap(tmp_path, {**tap_config, "publication_ids": ["PUBOB637", "PUBOB603"]})
    assert run.returncode == 0, run.log
    rows = run.records["publications"]
    data = sent()
    expected = {}
    for pid in ("PUBOB637", "PUBOB603"):
        for row in data.publication_rows(
            pid, dt.date(2026, 3, 19), dt.date(2026, 3, 29), latest_only=True
        ):
            generated = values.instant(row["generatedTimeStamp"])
            if generated > dt.datetime.fromisoformat(FAKE_START_DATE):
                expected[(pid, row["applicableFor"])] = (
                    float(row["value"]),
                    iso(generated),
                    row["qualityIndicator"] or None,
                )
    assert {
        (r["publication_id"], r["applicable_for"]): (
            r["value"],
            r["generated_time"],
            r["quality_indicator"],
        )
        for r in rows
    } == expected
    demand = next(r for r in rows if r["publication_id"] == "PUBOB637")
    assert demand["publication_name"] == "Demand Actual, NTS, D+1"
    assert demand["applicable_at"] == demand["applicable_for"] + "T00:00:00.000000+00:00"


def test_a_second_run_emits_only_new_readings_and_rereads_windows_whole(
    tmp_path,
    fake_api: FakeNationalGasProcess,
    tap_config,
):
    first = run_tap(tmp_path, tap_config)
    assert first.returncode == 0, first.log

    again = run_tap(tmp_path, tap_config, first.state)
    assert again.returncode == 0, again.log
    for stream in ("gas_quality", "instantaneous_flows"):
        assert again.records.get(stream, []) == [], stream
    # windows read again are emitted again, whole: the bookmark's day, and the look-back
    history = again.records["gas_quality_history"]
    assert {r["published_time"][:10] for r in history} == {"2026-03-29"}
    assert all(r in first.records["gas_quality_history"] for r in history)
    assert len(history) == 9 * len(GAS_QUALITY_SITES)  # 00:00 to 08:00 UTC
    assert sorted(again.records["publications"], key=str) == sorted(
        first.records["publications"], key=str
    )
    assert again.state == first.state

    fake_api.advance(60)  # one more hour of data
    later = run_tap(tmp_path, tap_config, again.state)
    assert later.returncode == 0, later.log
    assert {r["published_time"] for r in later.records["gas_quality"]} == {
        "2026-03-29T09:00:00.000000+00:00"
    }
    assert max(r["published_time"] for r in later.records["gas_quality_history"]) == (
        "2026-03-29T09:00:00.000000+00:00"
    )
    flows = later.records["instantaneous_flows"]
    assert min(r["applicable_at"] for r in flows) == "2026-03-29T07:48:00.000000+00:00"
    assert max(r["applicable_at"] for r in flows) == "2026-03-29T08:46:00.000000+00:00"
    assert later.bookmark("instantaneous_flows") == "2026-03-29T08:46:00.000000+00:00"

    fake_api.advance(3 * 24 * 60)  # days later: new gas days and the revision of 03-27 (D+2)
    revised = run_tap(tmp_path, {**tap_config, "end_date": "2026-04-01"}, later.state)
    assert revised.returncode == 0, revised.log
    linepack = [r for r in revised.records["publications"] if r["publication_id"] == "PUBOB693"]
    assert {r["applicable_for"] for r in linepack if r["quality_indicator"] == "A"} >= {
        "2026-03-27"
    }
    old = {
        r["applicable_for"]: r
        for r in first.records["publications"]
        if r["publication_id"] == "PUBOB693"
    }
    amended = next(r for r in linepack if r["applicable_for"] == "2026-03-27")
    assert amended["generated_time"] > old["2026-03-27"]["generated_time"]
    assert amended["applicable_at"] == old["2026-03-27"]["applicable_at"]  # same point, new value
    assert any(
        r["generated_time"] > later.bookmark("publications")
        for r in revised.records["publications"]
    )


def test_429_with_retry_after_is_waited_out(tmp_path, fake_api: FakeNationalGasProcess, tap_config):
    fake_api.queue_faults(
        [{"path": "/gasquality/historicdata", "status": 429, "retry_after": 1, "count": 2}]
    )
    run = run_tap(tmp_path, tap_config)
    assert run.returncode == 0, run.log
    assert "429" in run.log
    assert fake_api.stats()["requests"]["/gasquality/historicdata"] == 4
    assert len(run.records["gas_quality_history"]) == 81 * len(
        GAS_QUALITY_SITES
    )  # 26th 00:00 to 29th 08:00


def test_5xx_past_max_retries_fails_naming_the_endpoint(tmp_path, fake_api, tap_config):
    fake_api.queue_faults([{"path": "/gasquality/latestdata", "status": 503, "count": 3}])
    run = run_tap(tmp_path, tap_config)
    assert run.returncode != 0
    assert (
        f"503 Service Unavailable from GET {tap_config['api_url']}/gasquality/latestdata" in run.log
    )
    assert run.state is None


def test_a_slow_answer_is_retried(tmp_path, fake_api, tap_config):
    fake_api.queue_faults([{"path": "/publications/catalogue", "hang": 3}])
    run = run_tap(tmp_path, {**tap_config, "request_timeout": 1})
    assert run.returncode == 0, run.log
    assert len(run.records["publication_catalogue"]) == len(PUBLICATIONS)


def test_html_with_status_200_fails_with_the_content_type(tmp_path, fake_api, tap_config):
    fake_api.queue_faults([{"path": "/instantaneousflow/sites", "html": True}])
    run = run_tap(tmp_path, tap_config)
    assert run.returncode != 0
    url = f"{tap_config['api_url']}/instantaneousflow/sites"
    assert f"expected JSON from {url}, got text/html; charset=utf-8" in run.log


def test_a_wrong_api_url_gets_the_portal_page_and_says_so(tmp_path, fake_api, tap_config):
    run = run_tap(tmp_path, {**tap_config, "api_url": fake_api.root + "/operationaldata/v2"})
    assert run.returncode != 0
    # the first request of a run with the default set is the catalogue's
    assert "expected JSON from " + fake_api.root + "/operationaldata/v2/publications/" in run.log


def test_an_empty_body_yields_no_records(tmp_path, fake_api, tap_config):
    fake_api.queue_faults([{"path": "/gasquality/latestdata", "empty": True}])
    run = run_tap(tmp_path, tap_config)
    assert run.returncode == 0, run.log
    assert run.records.get("gas_quality", []) == []
    assert "answered with an empty body: no records" in run.log


def test_a_missing_key_fails_naming_endpoint_and_key(tmp_path, fake_api, tap_config):
    fake_api.queue_faults([{"path": "/gasquality/latestdata", "body": {"publishedTime": FAKE_NOW}}])
    run = run_tap(tmp_path, tap_config)
    assert run.returncode != 0
    url = f"{tap_config['api_url']}/gasquality/latestdata"
    message = f"{url}: the response has no 'gasQualityData'"
    assert last_message(run) == f"failed: {message}"


def test_truncated_json_is_named_with_where_it_stops(tmp_path, fake_api, tap_config):
    cut = '{"publishedTime": "2026-03-29T09:00:00+01:00", "gasQualityData": [{"siteId": 1, "si'
    fake_api.queue_faults([{"path": "/gasquality/latestdata", "truncated": cut}])
    run = run_tap(tmp_path, tap_config)
    assert run.returncode != 0
    url = f"{tap_config['api_url']}/gasquality/latestdata"
    message = (
        f"the body from {url} is not valid JSON: Unterminated string starting at: line 1 "
        f"column 81 (char 80) of {len(cut)} bytes"
    )
    assert last_message(run) == f"failed: {message}"


def test_an_unknown_publication_id_fails_naming_it_and_the_setting(tmp_path, tap_config):
    run = run_tap(tmp_path, {**tap_config, "publication_ids": ["PUBOB637", "PUBOBX999"]})
    assert run.returncode != 0
    assert "answered 400 for publication ids PUBOBX999" in run.log
    assert "check the setting `publication_ids`" in run.log


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("http://127.0.0.1:9/operationaldata/v1", "connection refused"),
        ("http://no-such-host.invalid/operationaldata/v1", "name does not resolve"),
    ],
)
def test_an_unreachable_api_fails_at_once_naming_the_url_and_cause(
    tmp_path, tap_config, url, cause
):
    config = {**tap_config, "api_url": url, "max_retries": 5, "retry_interval": 2}
    started = time.monotonic()
    run = run_tap(tmp_path, config)
    assert run.returncode == 1
    assert time.monotonic() - started < 20  # five retries would wait 62 s
    last = run.log.strip().splitlines()[-1]
    assert last.endswith(
        f"| ERROR    | tap-nationalgas                | failed: could not reach {url} ({cause}); "
        "check "
        "the network, or the `api_url` setting"
    )
    assert "Traceback" not in run.log


def wrapped(reason: BaseException) -> requests.exceptions.ConnectionError:
    """A connection failure as requests raises it: urllib3's MaxRetryError, then the reason."""
    pool = urllib3.HTTPConnectionPool("api.example")
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(pool, "/", reason))


def name_not_resolved() -> BaseException:
    """urllib3's NameResolutionError, caused by the resolver's gaierror."""
    conn = urllib3.connection.HTTPConnection("api.example")
    reason = socket.gaierror(-2, "Name or service not known")
    error = urllib3.exceptions.NameResolutionError("api.example", conn, reason)
    error.__cause__ = reason
    return error


def refused() -> BaseException:
    """urllib3's NewConnectionError, caused by a refused connection."""
    conn = urllib3.connection.HTTPConnection("127.0.0.1", 9)
    error = urllib3.exceptions.NewConnectionError(conn, "Failed to establish a new connection")
    error.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return error


@pytest.mark.parametrize(
    ("failure", "cause", "final"),
    [
        (wrapped(name_not_resolved()), "name does not resolve", True),
        (
            requests.exceptions.ConnectionError(socket.gaierror(-3, "again")),
            "name does not resolve",
            True,
        ),
        (wrapped(refused()), "connection refused", True),
        (requests.exceptions.ConnectTimeout(wrapped(TimeoutError())), "no answer in time", False),
        (
            requests.exceptions.ConnectionError(
                urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError())
            ),
            "ConnectionError",
            False,
        ),
    ],
)
def test_what_no_wait_can_mend_is_not_retried(tap_config, failure, cause, final):
    stream = TapNationalGas(config=tap_config, parse_env_config=False).streams["gas_quality"]
    assert isinstance(stream, client.NationalGasStream)
    assert client.connection_cause(failure) == cause
    assert stream.gives_up(failure) is final  # the first request of a run
    stream.owner.api_answered = True  # later in a run, all failures wait
    assert stream.gives_up(failure) is False
    other = TapNationalGas(config=tap_config, parse_env_config=False).streams["gas_quality"]
    assert isinstance(other, client.NationalGasStream)
    assert other.gives_up(failure) is final  # another run in the same process starts afresh


@pytest.mark.parametrize(("setting", "value"), [("history_window_days", 3), ("lookback_days", -1)])
def test_bad_settings_are_refused(tmp_path, tap_config, setting, value):
    run = run_tap(tmp_path, {**tap_config, setting: value})
    assert run.returncode != 0
    assert setting in run.log


def test_a_backfill_of_60_windows_logs_its_progress_with_an_eta(tmp_path, tap_config):
    config = {
        **tap_config,
        "start_date": "2026-01-28T00:00:00Z",
        "end_date": "2026-03-28",
        "history_window_days": 1,
        "publication_ids": [],
    }
    run = run_tap(tmp_path, config)
    assert run.returncode == 0, run.log
    lines = [line for line in run.log.splitlines() if "gas_quality_history: window" in line]
    assert lines
    assert lines[-1].endswith("left")
    assert "window 2026-03-28 to 2026-03-28, 60 of 60 requests, " in lines[-1]
    assert f"{len(run.records['gas_quality_history'])} records" in lines[-1]
    assert "about 0s left" in lines[-1]
    assert "1 of 60 requests" in lines[0]
