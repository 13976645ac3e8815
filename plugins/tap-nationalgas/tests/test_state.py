"""tap-nationalgas and its state: checkpoints after each window, resuming, unreadable
bookmarks, partitions missing from one answer, and the report logger."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import typing as t

import pytest

from tap_nationalgas import report, tap, values
from tap_nationalgas.feed import FLOW_GROUPS
from tap_nationalgas.tap import TapNationalGas
from testkit.fixtures import FAKE_NOW
from testkit.nationalgas_data import GAS_QUALITY_SITES, NationalGasData
from testkit.singer import TapRun, run_tap

if t.TYPE_CHECKING:
    from testkit.fake_nationalgas import FakeNationalGasProcess

HISTORY = "/gasquality/historicdata"
SITES = [str(site_id) for site_id, _, _ in GAS_QUALITY_SITES]
NOW = dt.datetime.fromisoformat(FAKE_NOW)
STRUCTURED_LOGGING = """\
version: 1
disable_existing_loggers: false
formatters:
  structured:
    (): singer_sdk.logging.StructuredFormatter
handlers:
  stderr:
    class: logging.StreamHandler
    formatter: structured
    stream: ext://sys.stderr
root:
  level: INFO
  handlers: [stderr]
"""


def log_lines(run: TapRun) -> list[tuple[str, str, str]]:
    """(level, logger, message) of each line the tap logged in the console format."""
    lines = []
    for line in run.log.splitlines():
        parts = [part.strip() for part in line.split(" | ", 3)]
        if len(parts) == 4:
            lines.append((parts[1], parts[2], parts[3]))
    return lines


def history_state(message: dict[str, t.Any]) -> dict[str, t.Any]:
    """The gas_quality_history part of a STATE message."""
    return message["value"].get("bookmarks", {}).get("gas_quality_history", {})


def history_day(record: dict[str, t.Any]) -> str:
    """The UK day of a history record."""
    moment = dt.datetime.fromisoformat(record["published_time"])
    return moment.astimezone(values.LONDON).date().isoformat()


def history_window_config(tap_config: dict[str, t.Any]) -> dict[str, t.Any]:
    """Five 2-day windows of history, 2026-03-20 to 2026-03-29."""
    return {**tap_config, "start_date": "2026-03-20T00:00:00Z", "publication_ids": ["PUBOB637"]}


# 1. Checkpoints after each window


def test_an_empty_window_mid_backfill_is_a_pending_gap_in_the_state_sent_after_it(
    tmp_path, fake_api: FakeNationalGasProcess, tap_config
):
    fake_api.queue_faults([{"path": HISTORY}, {"path": HISTORY, "body": []}])
    run = run_tap(tmp_path, history_window_config(tap_config))
    assert run.returncode == 0, run.log
    # the messages from the last record of the first window to the first of the third
    ordered = [
        m for m in run.messages if m["type"] == "STATE" or m.get("stream") == "gas_quality_history"
    ]
    days = [history_day(m["record"]) if m["type"] == "RECORD" else None for m in ordered]
    last_first = max(n for n, day in enumerate(days) if day in {"2026-03-20", "2026-03-21"})
    first_third = min(n for n, day in enumerate(days) if day == "2026-03-24")
    assert "2026-03-22" not in days
    assert "2026-03-23" not in days
    states = [m for m in ordered[last_first:first_third] if m["type"] == "STATE"]
    assert len(states) == 2  # after the first window, and after the empty one
    after_first, after_empty = (history_state(m) for m in states)
    assert after_first["pending_gaps"] == []
    assert {(g["key"], g["at"]) for g in after_empty["pending_gaps"]} == {
        (site, day) for site in SITES for day in ("2026-03-22", "2026-03-23")
    }
    newest = "2026-03-21T23:00:00+00:00"  # the last reading of the first window (GMT)
    assert after_empty["partition_bookmarks"] == [
        {"key": site, "bookmark": newest} for site in sorted(SITES)
    ]
    # the SDK's own bookmark moves only at the end of the stream
    assert "replication_key_value" not in after_empty
    # the gaps are logged once, at the end
    warnings = [m for level, _, m in log_lines(run) if level == "WARNING" and "lack" in m]
    assert len(warnings) == 1
    assert "the answers lack 24 expected readings" in warnings[0]


def test_no_state_is_ahead_of_the_records_sent_before_it(tmp_path, fake_api, tap_config):
    # The tap saves a window's bookmarks when parse_response resumes after the window's last
    # record: this relies on the SDK writing each RECORD before it asks for the next one.
    fake_api.queue_faults([{"path": HISTORY}, {"path": HISTORY, "body": []}])
    run = run_tap(tmp_path, history_window_config(tap_config))
    assert run.returncode == 0, run.log
    fields = {
        "gas_quality_history": ("site_id", "published_time"),
        "publications": (
            "publication_id",
            "generated_time",
        ),
    }
    newest: dict[tuple[str, str], str] = {}
    states = 0
    for message in run.messages:
        if message["type"] == "RECORD" and message["stream"] in fields:
            key, moment = fields[message["stream"]]
            record = message["record"]
            partition = (message["stream"], str(record[key]))
            newest[partition] = max(newest.get(partition, ""), record[moment])
        elif message["type"] == "STATE":
            states += 1
            for stream in fields:
                stream_state = message["value"].get("bookmarks", {}).get(stream, {})
                for entry in stream_state.get("partition_bookmarks", []):
                    stored = newest.get((stream, entry["key"]))
                    assert stored is not None, (stream, entry)
                    assert dt.datetime.fromisoformat(entry["bookmark"]) <= (
                        dt.datetime.fromisoformat(stored)
                    ), (stream, entry, stored)
    assert states >= 5 + 2  # a STATE after each window of both streams


def first_window(run: TapRun, stream: str = "gas_quality_history") -> str:
    """The window of the first request of a stream, as its progress line names it."""
    line = next(m for _, _, m in log_lines(run) if m.startswith(f"{stream}: window "))
    assert " 1 of " in line, line
    return line.split(",")[0].removeprefix(f"{stream}: window ")


def test_a_run_from_a_state_sent_mid_backfill_resumes_at_the_last_window_read(
    tmp_path, fake_api, tap_config
):
    config = history_window_config(tap_config)
    full = run_tap(tmp_path, config)
    assert full.returncode == 0, full.log
    assert first_window(full) == "2026-03-20 to 2026-03-21"
    # the state as a run stopped after the second window left it: the SDK wipes its progress
    # markers at the start of a run, so the partition bookmarks alone say where to resume
    states = [m["value"] for m in full.messages if m["type"] == "STATE"]
    stopped = next(
        s
        for s in states
        if history_state({"value": s}).get("partition_bookmarks")
        and history_state({"value": s})["partition_bookmarks"][0]["bookmark"].startswith(
            "2026-03-23"
        )
    )
    assert "replication_key_value" not in history_state({"value": stopped})
    fake_api.reset()
    resumed = run_tap(tmp_path, config, stopped)
    assert resumed.returncode == 0, resumed.log
    assert first_window(resumed) == "2026-03-23 to 2026-03-24"
    assert fake_api.stats()["requests"][HISTORY] == 4  # 23-24, 25-26, 27-28, 29
    days = {history_day(r) for r in resumed.records["gas_quality_history"]}
    assert min(days) == "2026-03-23"
    assert resumed.state is not None
    assert history_state({"value": resumed.state})["pending_gaps"] == []


def test_a_gap_given_up_is_not_found_again_in_the_same_run(tmp_path, fake_api, tap_config):
    state = {
        "bookmarks": {
            "gas_quality_history": {
                "replication_key_value": "2026-03-29T08:00:00+00:00",
                "partition_bookmarks": [{"key": "1", "bookmark": "2026-03-29T08:00:00+00:00"}],
                "pending_gaps": [
                    {"key": "1", "at": "2026-03-20", "since": "2026-03-01T00:00:00+00:00"}
                ],
            }
        }
    }
    fake_api.queue_faults([{"path": HISTORY, "body": []}])  # 2026-03-20 still lacks it
    run = run_tap(tmp_path, {**tap_config, "site_ids": [1]}, state)
    assert run.returncode == 0, run.log
    assert "1 gaps expired after 7 days without data" in run.log
    assert run.state is not None
    assert history_state({"value": run.state})["pending_gaps"] == []


# 2. A catch-up that gives up says so


def test_a_catch_up_that_gives_up_names_the_span_the_readings_and_the_backfill(
    tmp_path, fake_api, tap_config
):
    first = run_tap(tmp_path, tap_config)
    assert first.returncode == 0, first.log
    bookmark = dt.datetime(2026, 3, 29, 8, tzinfo=dt.UTC)  # every site's latest reading
    fake_api.advance(10 * 24 * 60)
    later = run_tap(tmp_path, {**tap_config, "end_date": "2026-04-08"}, first.state)
    assert later.returncode == 0, later.log
    data = NationalGasData(1, NOW + dt.timedelta(days=10))
    published = data.gas_quality_latest_time()
    start = published - dt.timedelta(days=7)  # gap_retry_days
    left_out = [
        moment
        for moment in data.gas_quality_times(dt.date(2026, 3, 29), dt.date(2026, 4, 2))
        if bookmark < moment <= start
    ]
    count = len(left_out) * len(SITES)
    assert count == 3 * 24 * 12  # 10 days behind, 7 read back
    warnings = [
        m for level, _, m in log_lines(later) if level == "WARNING" and "catch-up starts" in m
    ]
    assert warnings == [
        (
            f"gas_quality: sites {', '.join(SITES)} are more than 7 days (`gap_retry_days`) "
            f"behind the latest publication: their catch-up starts at {start.isoformat()}, so "
            f"their readings from {bookmark.isoformat()} to {start.isoformat()} ({count} hourly "
            "readings) are not read by this stream; the gas_quality_history stream reads them "
            "(in this project: ./run-etl.sh nationalgas-backfill)"
        )
    ]
    caught_up = {r["published_time"] for r in later.records["gas_quality"]}
    assert min(caught_up) == (start + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


# 3. A partition missing from one answer, then present at the same time


def test_a_flow_site_missing_from_the_first_answer_is_read_when_it_comes_back(
    tmp_path, fake_api, tap_config
):
    answer = fake_api.get("/instantaneousflow/sites")
    group = answer["instantaneousFlow"][0]
    gone = group["sites"].pop(0)["siteName"]
    fake_api.queue_faults([{"path": "/instantaneousflow/sites", "body": answer}])
    first = run_tap(tmp_path, tap_config)
    assert first.returncode == 0, first.log
    assert gone not in {r["site_name"] for r in first.records["instantaneous_flows"]}
    fake_api.advance(3)  # the same publication
    again = run_tap(tmp_path, tap_config, first.state)
    assert again.returncode == 0, again.log
    back = again.records["instantaneous_flows"]
    assert {r["site_name"] for r in back} == {gone}
    assert len(back) == 114  # every reading of the gas day so far


def test_a_state_of_an_older_version_counts_as_stored_for_every_partition(
    tmp_path, fake_api, tap_config
):
    # A state written before partition bookmarks existed holds only the SDK's bookmark: it
    # becomes the bookmark of every site the answers hold, so a later run still catches up.
    latest, newest_flow = "2026-03-29T08:00:00+00:00", "2026-03-29T07:46:00+00:00"
    state = {
        "bookmarks": {
            "gas_quality": {"replication_key_value": latest},
            "instantaneous_flows": {"replication_key_value": newest_flow},
        }
    }
    run = run_tap(tmp_path, tap_config, state)
    assert run.returncode == 0, run.log
    assert run.records.get("gas_quality", []) == []
    assert run.records.get("instantaneous_flows", []) == []
    assert run.state is not None
    bookmarks = run.state["bookmarks"]
    assert bookmarks["gas_quality"]["partition_bookmarks"] == [
        {"key": site, "bookmark": latest} for site in sorted(SITES)
    ]
    flow_bookmarks = bookmarks["instantaneous_flows"]["partition_bookmarks"]
    assert len(flow_bookmarks) == sum(len(sites) for _, sites in FLOW_GROUPS)
    assert {b["bookmark"] for b in flow_bookmarks} == {newest_flow}
    fake_api.advance(3 * 60)
    later = run_tap(tmp_path, tap_config, run.state)
    assert later.returncode == 0, later.log
    hours = {r["published_time"][11:16] for r in later.records["gas_quality"]}
    assert hours == {"09:00", "10:00", "11:00"}
    assert len(later.records["gas_quality"]) == 3 * len(SITES)


def test_a_state_of_an_older_version_keeps_its_form_until_a_partition_is_known(
    tmp_path, fake_api, tap_config
):
    state = {"bookmarks": {"gas_quality": {"replication_key_value": "2026-03-29T05:00:00+00:00"}}}
    fake_api.queue_faults([{"path": "/gasquality/latestdata", "empty": True}])
    empty = run_tap(tmp_path, tap_config, state)
    assert empty.returncode == 0, empty.log
    assert empty.state is not None
    assert "partition_bookmarks" not in empty.state["bookmarks"]["gas_quality"]
    later = run_tap(tmp_path, tap_config, empty.state)
    assert later.returncode == 0, later.log
    hours = sorted({r["published_time"][11:16] for r in later.records["gas_quality"]})
    assert hours == ["06:00", "07:00", "08:00"]  # caught up from the old bookmark
    assert len(later.records["gas_quality"]) == 3 * len(SITES)


# 4. A bookmark that cannot be read


@pytest.mark.parametrize(
    "case",
    [
        (
            "gas_quality_history",
            {"replication_key_value": "yesterday"},
            "replication_key_value",
            "yesterday",
        ),
        (
            "publications",
            {"partition_bookmarks": [{"key": "PUBOB637", "bookmark": "2026-13-01T00:00:00Z"}]},
            "partition_bookmarks, key 'PUBOB637', bookmark",
            "2026-13-01T00:00:00Z",
        ),
        (
            "gas_quality",
            {"pending_gaps": [{"key": "3", "at": 1774771200, "since": "2026-03-29"}]},
            "pending_gaps, key '3', at",
            1774771200,
        ),
        (
            "gas_quality_history",
            {"pending_gaps": [{"key": "3", "at": "2026-03-28T00:00:00Z", "since": "x"}]},
            "pending_gaps, key '3', at",
            "2026-03-28T00:00:00Z",
        ),
        (
            "instantaneous_flows",
            {"partition_bookmarks": [{"key": "a/b"}]},
            "partition_bookmarks[0]",
            {"key": "a/b"},
        ),
    ],
    ids=["sdk-bookmark", "partition", "gap-instant", "gap-day", "entry"],
)
def test_an_unreadable_bookmark_fails_at_once_naming_the_stream_and_the_fix(
    tmp_path, fake_api, tap_config, case
):
    stream, stream_state, where, value = case
    state = {"bookmarks": {stream: stream_state}}
    run = run_tap(tmp_path, tap_config, state)
    assert run.returncode == 1
    assert fake_api.stats()["requests"] == {}  # before any request
    errors = [m for level, _, m in log_lines(run) if level == "ERROR"]
    assert errors == [
        (
            f"failed: the state of stream {stream} holds a bookmark that cannot be read "
            f"({where}: {value!r}): reset the job's state, and the next run starts from start_date"
        )
    ]
    assert "Traceback" not in run.log
    assert run.messages == []


def test_an_unreadable_bookmark_is_logged_with_the_cause_state(tmp_path, fake_api, tap_config):
    config_file = tmp_path / "logging.yml"
    config_file.write_text(STRUCTURED_LOGGING)
    env = {**os.environ, "SINGER_SDK_LOG_CONFIG": str(config_file)}
    state = {"bookmarks": {"publications": {"replication_key_value": "soon"}}}
    run = run_tap(tmp_path, tap_config, state, env=env)
    assert run.returncode == 1
    records = [json.loads(line) for line in run.log.splitlines() if line.startswith("{")]
    errors = [r for r in records if r["level"] == "error"]
    assert len(errors) == 1
    assert errors[0]["logger_name"] == "tap-nationalgas"
    assert errors[0]["message"].startswith("failed: the state of stream publications holds")
    assert errors[0]["extra"]["cause"] == "state"
    assert errors[0]["stream_name"] == "publications"
    assert "exception" not in errors[0]


class Boom:
    """A tap command line that fails as no one expected."""

    @staticmethod
    def main(*, standalone_mode: bool) -> int:
        assert standalone_mode is False
        raise KeyError("gasQualityData")


def test_an_unexpected_failure_ends_with_one_line_naming_its_type_and_a_traceback(
    monkeypatch, caplog
):
    monkeypatch.setattr(TapNationalGas, "cli", Boom)
    with caplog.at_level(logging.INFO), pytest.raises(SystemExit) as exited:
        tap.main()
    assert exited.value.code == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].name == "tap-nationalgas"
    assert errors[0].getMessage() == "failed: KeyError: 'gasQualityData'"
    assert errors[0].exc_info is not None
    from singer_sdk.logging import StructuredFormatter  # noqa: PLC0415

    structured = json.loads(StructuredFormatter().format(errors[0]))
    assert structured["exception"]["type"] == "KeyError"
    assert structured["exception"]["traceback"]


# 5. The report logger


def test_operator_lines_go_to_the_report_logger_and_warnings_stay_on_the_streams(
    tmp_path, fake_api, tap_config
):
    assert f"{TapNationalGas.name}.report" == report.LOGGER_NAME
    config = history_window_config(tap_config)
    fake_api.queue_faults([{"path": HISTORY, "body": []}])
    first = run_tap(tmp_path, config)
    assert first.returncode == 0, first.log
    fake_api.advance(3 * 60)  # three hours later: the latest sites are behind
    fake_api.queue_faults([{"path": "/publications/catalogue", "empty": True}])
    second = run_tap(tmp_path, config, first.state)
    assert second.returncode == 0, second.log
    lines = log_lines(first) + log_lines(second)

    def logger_of(text: str) -> set[tuple[str, str]]:
        found = {(level, name) for level, name, message in lines if text in message}
        assert found, text
        return found

    for text in (
        "gas_quality_history: window 2026-03-20 to 2026-03-21, 1 of 5 requests",
        "gas_quality_history (/gasquality/historicdata): 24 gaps filled",
        "gas_quality: reading /gasquality/historicdata for sites 1, 2, 3",
        "/publications/catalogue answered with an empty body: no records",
    ):
        assert logger_of(text) == {("INFO", "tap-nationalgas.report")}, text
    assert logger_of("the answers lack 24 expected readings") == {
        ("WARNING", "tap-nationalgas.gas_quality_history")
    }


def test_the_report_logger_logs_at_the_tap_level(tmp_path, tap_config):
    env = {**os.environ, "TAP_NATIONALGAS_LOGLEVEL": "warning"}
    quiet = run_tap(tmp_path, history_window_config(tap_config), env=env)
    assert quiet.returncode == 0, quiet.log
    assert "tap-nationalgas.report" not in quiet.log
