"""The last line of every failed run names its cause and the fix: one test per row of the
README's "When a run fails" table, through run-etl.sh against the fake API and the real engine.

A test registers its row with :func:`row`; ``test_readme_lists_every_last_line`` checks that the
README's table is this module's list.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest

from testkit.fixtures import backfill_batch_records, meltano
from testkit.influx import write_lines
from testkit.nationalgas_data import GAS_QUALITY_SITES
from testkit.processes import REPO_ROOT, process_tree, wait_until
from testkit.readme import missing_table

if t.TYPE_CHECKING:
    from collections.abc import Callable


SCRIPT = str(REPO_ROOT / "run-etl.sh")
JOB = "nationalgas-to-influxdb"
STATE_ID = "dev:tap-nationalgas-to-target-influxdb"
ROWS: list[tuple[str, str, str]] = []
"""(the last line as the README shows it, the fix, the test that shows it)."""


def row(last_line: str, fix: str) -> Callable[[t.Any], t.Any]:
    """Register a test as a row of the README's "When a run fails" table."""

    def register(test: t.Any) -> t.Any:
        ROWS.append((last_line, fix, test.__name__))
        return test

    return register


def run_etl(env: dict[str, str], *args: str, **overrides: str) -> subprocess.CompletedProcess:
    """One run of run-etl.sh to its end."""
    return subprocess.run(
        [SCRIPT, *(args or [JOB])],
        cwd="/",
        env={**env, **overrides},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def last_line(done: subprocess.CompletedProcess) -> str:
    """The last line run-etl.sh printed, less its time and level."""
    return done.stdout.strip().splitlines()[-1].split(" run-etl ", 1)[1]


def failed(done: subprocess.CompletedProcess) -> str:
    """The cause a failed run gives in its last line."""
    assert done.returncode == 1, done.stdout[-3000:]
    assert "Traceback" not in done.stdout, done.stdout[-3000:]
    line = last_line(done)
    assert line.startswith(f"{JOB} failed: "), done.stdout[-3000:]
    return line.removeprefix(f"{JOB} failed: ")


def setup_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    """test_setup.py --offline with this environment."""
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "test_setup.py"), "--offline"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


# Settings, checked before anything runs


@row(
    "`` TAP_NATIONALGAS_REQUEST_TIMEOUT='abc': tap-nationalgas `request_timeout` takes a whole "
    "number of 1 or more, e.g. 60 (and 2 more above) `` (each wrong setting on a line of its own "
    "above)",
    "set the variable to the form named; `test_setup.py` runs the same check",
)
def test_settings_of_the_wrong_kind_are_named_before_anything_runs(project_env):
    wrong = {
        "TAP_NATIONALGAS_MAX_RETRIES": "five",
        "TAP_NATIONALGAS_REQUEST_TIMEOUT": "abc",
        "TARGET_INFLUXDB_BATCH_SIZE": "abc",
    }
    started = time.monotonic()
    done = run_etl(project_env, **wrong)
    assert failed(done) == (
        "TAP_NATIONALGAS_REQUEST_TIMEOUT='abc': tap-nationalgas `request_timeout` takes a whole "
        "number of 1 or more, e.g. 60 (and 2 more above)"
    )
    assert time.monotonic() - started < 30
    assert not Path(project_env["MELTANO_DATABASE_URI"].removeprefix("sqlite:///")).exists()
    assert (
        "TAP_NATIONALGAS_MAX_RETRIES='five': tap-nationalgas `max_retries` takes a whole number "
        "of 0 or more, e.g. 5"
    ) in done.stdout
    assert "TARGET_INFLUXDB_BATCH_SIZE='abc': target-influxdb `batch_size` takes a whole" in (
        done.stdout
    )
    check = setup_check({**project_env, **wrong})
    assert check.returncode == 1
    assert "FAIL    settings" in check.stdout
    assert "TAP_NATIONALGAS_MAX_RETRIES='five'" in check.stdout


@pytest.mark.parametrize("start", ["01/02/2026", "2026-13-01"])
@row(
    "`` TAP_NATIONALGAS_START_DATE='01/02/2026': tap-nationalgas `start_date` takes an ISO 8601 "
    "date or date-time, e.g. 2026-01-31 or 2026-01-31T00:00:00Z ``",
    "write the date as ISO 8601, year first",
)
def test_a_start_date_that_is_not_iso_8601_is_refused(project_env, start):
    assert failed(run_etl(project_env, TAP_NATIONALGAS_START_DATE=start)) == (
        f"TAP_NATIONALGAS_START_DATE={start!r}: tap-nationalgas `start_date` takes an ISO 8601 "
        "date or date-time, e.g. 2026-01-31 or 2026-01-31T00:00:00Z"
    )


@row(
    "`` TAP_NATIONALGAS_START_DATE='2099-01-01': tap-nationalgas `start_date` is in the future "
    "(now ...): there is nothing to read after it; set a date in the past ``",
    "set a date in the past",
)
def test_a_start_date_in_the_future_is_refused(project_env):
    env = {**project_env, "TAP_NATIONALGAS_END_DATE": ""}
    cause = failed(run_etl(env, TAP_NATIONALGAS_START_DATE="2099-01-01"))
    assert cause.startswith(
        "TAP_NATIONALGAS_START_DATE='2099-01-01': tap-nationalgas `start_date` is in the future"
    )
    assert cause.endswith("there is nothing to read after it; set a date in the past")


@row(
    "`` INFLUXDB_TOKEN=(hidden): target-influxdb `token` holds a line break (CR or LF), which no "
    "setting takes: set it again without one `` (any setting; a secret's value is never shown)",
    "write the value on one line (a secret pasted with its newline); `test_setup.py` runs the "
    "same check",
)
def test_a_setting_with_a_line_break_is_refused_without_showing_a_secret(project_env):
    token = project_env["INFLUXDB_TOKEN"]
    done = run_etl(project_env, INFLUXDB_TOKEN=token + "\r\n")
    assert failed(done) == (
        "INFLUXDB_TOKEN=(hidden): target-influxdb `token` holds a line break (CR or LF), which "
        "no setting takes: set it again without one"
    )
    assert not Path(project_env["MELTANO_DATABASE_URI"].removeprefix("sqlite:///")).exists()
    log = (Path(project_env["DATA_IMPORTS_LOG_DIR"]) / "run-etl.log").read_text()
    check = setup_check({**project_env, "INFLUXDB_TOKEN": token + "\n"})
    assert check.returncode == 1
    assert "FAIL    settings" in check.stdout
    assert "INFLUXDB_TOKEN=(hidden): target-influxdb `token` holds a line break" in check.stdout
    for text in (done.stdout, done.stderr, log, check.stdout, check.stderr):
        assert token not in text
    agent = run_etl(project_env, TAP_NATIONALGAS_USER_AGENT="data-imports\n")
    assert failed(agent) == (
        "TAP_NATIONALGAS_USER_AGENT='data-imports\\n': tap-nationalgas `user_agent` holds a line "
        "break (CR or LF), which no setting takes: set it again without one"
    )


@row(
    "`` INFLUXDB_TOKEN=(hidden): target-influxdb `token` is still a placeholder (change-me...): "
    "set the real secret `` (any secret setting)",
    "a value copied from an example was never replaced: set the real one",
)
def test_a_placeholder_secret_is_refused_by_name(project_env):
    placeholder = "change-me-local-dev-token"
    done = run_etl(project_env, INFLUXDB_TOKEN=placeholder)
    assert failed(done) == (
        "INFLUXDB_TOKEN=(hidden): target-influxdb `token` is still a placeholder (change-me...): "
        "set the real secret"
    )
    assert placeholder not in done.stdout + done.stderr


# InfluxDB


@row(
    "`` target-influxdb could not reach InfluxDB at URL (connection refused): start InfluxDB, or "
    "check INFLUXDB_URL (the `url` setting) ``",
    "start InfluxDB (`docker compose up -d`), or correct `INFLUXDB_URL`; empty it for file mode",
)
def test_influxdb_on_a_closed_port_fails_in_seconds(project_env):
    started = time.monotonic()
    assert failed(run_etl(project_env, INFLUXDB_URL="http://127.0.0.1:9")) == (
        "target-influxdb could not reach InfluxDB at http://127.0.0.1:9 (connection refused): "
        "start InfluxDB, or check INFLUXDB_URL (the `url` setting)"
    )
    assert time.monotonic() - started < 30


@row(
    "`` target-influxdb InfluxDB rejected the token (401 at start-up): set a valid `token` for "
    'bucket "B" in org "O" at URL ``',
    "set `INFLUXDB_TOKEN` to an API token of that InfluxDB",
)
def test_a_wrong_token_is_named(project_env):
    done = run_etl(project_env, INFLUXDB_TOKEN="not-the-token-0123456789")  # noqa: S106
    assert failed(done).startswith(
        "target-influxdb InfluxDB rejected the token (401 at start-up): set a valid `token`"
    )
    assert "not-the-token-0123456789" not in done.stdout


@row(
    '`` target-influxdb bucket "B" not found in org "O" at URL (404 at start-up): create it or '
    "change the `bucket`/`org` settings ``",
    "create the bucket, or correct `INFLUXDB_BUCKET` / `INFLUXDB_ORG`",
)
def test_a_missing_bucket_is_named(project_env):
    assert failed(run_etl(project_env, INFLUXDB_BUCKET="no_such_bucket")).startswith(
        'target-influxdb bucket "no_such_bucket" not found in org'
    )


@row(
    '`target-influxdb token not allowed to write to bucket "B" in org "O" at URL (403 ...): '
    "grant write access`",
    "give the token write access to the bucket",
)
def test_a_token_without_write_access_is_named(project_env, local_influxdb):
    local_influxdb.queue_faults([{"status": 403}, {"status": 403}])
    cause = failed(run_etl(project_env))
    assert cause.startswith('target-influxdb token not allowed to write to bucket "')
    assert cause.endswith("): grant write access")


@row(
    '`` target-influxdb InfluxDB at URL did not accept the batch of stream "S" after N retries '
    "(503 ...); check that InfluxDB is up, or raise `max_retries`/`timeout` ``",
    "InfluxDB went away during the run: check it, then run again (nothing is lost)",
)
def test_influxdb_failing_past_the_retries_is_named(project_env, local_influxdb):
    local_influxdb.queue_faults([{"status": 503}] * 6)
    done = run_etl(project_env, TARGET_INFLUXDB_MAX_RETRIES="1", TARGET_INFLUXDB_RETRY_INTERVAL="0")
    cause = failed(done)
    assert cause.startswith(f"target-influxdb InfluxDB at {local_influxdb.url} did not accept")
    assert "after 1 retries (503 " in cause


@row(
    "`` target-influxdb URL answered 200 text/html; charset=utf-8: this is not the InfluxDB write "
    "API (it answers 204); check INFLUXDB_URL (the `url` setting) ``",
    "`INFLUXDB_URL` points at a web page or a login proxy: use InfluxDB's own URL",
)
def test_influxdb_answering_a_web_page_is_named(project_env, local_influxdb):
    local_influxdb.queue_faults([{"html": True}] * 4)
    assert failed(run_etl(project_env)) == (
        f"target-influxdb {local_influxdb.url} answered 200 text/html; charset=utf-8: this is not "
        "the InfluxDB write API (it answers 204); check INFLUXDB_URL (the `url` setting)"
    )


@row(
    '`` target-influxdb InfluxDB rejected N of M points of stream "S" as invalid (422 ...); first '
    'rejected line: .... The field "F" of measurement "M" is stored as integer and was sent as '
    "float. To go on, either write the field under another name with the setting `stream_maps` = "
    "...; or delete what InfluxDB holds in the conflicting range: influx delete ...; or set "
    "`rejected_points_path` to set refused points aside in a file and go on ``",
    "one of the three ways it names; with `TARGET_INFLUXDB_REJECTED_POINTS_PATH` set, runs go on "
    "and a WARNING names the file and the count (see the "
    "[target's README](plugins/target-influxdb/README.md#points-influxdb-refuses))",
)
def test_a_field_type_conflict_is_named_and_can_be_set_aside(
    project_env, influxdb, bucket, tmp_path
):
    stamp = int(dt.datetime(2026, 3, 29, 7, tzinfo=dt.UTC).timestamp()) * 10**9
    write_lines(
        influxdb, bucket, f"gas_quality,site_id=99,source=nationalgas cv=40i {stamp}".encode()
    )
    cause = failed(run_etl(project_env))
    # one of the 12 sites has no cv in this answer: its point is stored
    assert cause.startswith(
        'target-influxdb InfluxDB rejected 11 of 12 points of stream "gas_quality" as invalid (422 '
    )
    assert (
        'field "cv" of measurement "gas_quality" is stored as integer and was sent as float'
        in cause
    )
    assert "influx delete --bucket" in cause
    aside = tmp_path / "rejected.lp"
    done = run_etl(project_env, TARGET_INFLUXDB_REJECTED_POINTS_PATH=str(aside))
    assert done.returncode == 0, done.stdout[-3000:]
    warnings = [line for line in done.stdout.splitlines() if " warning target-influxdb " in line]
    assert any(str(aside) in line for line in warnings), done.stdout[-3000:]
    assert len(aside.read_text().splitlines()) == 11
    assert last_line(done).startswith(f"finished {JOB} in ")


# The National Gas API


@row(
    "`` tap-nationalgas could not reach URL (name does not resolve) `` or ``(connection "
    "refused); check the network, or the `api_url` setting ``",
    "check the network, DNS and `TAP_NATIONALGAS_API_URL`",
)
def test_an_unreachable_api_fails_in_seconds(project_env):
    started = time.monotonic()
    done = run_etl(
        project_env,
        TAP_NATIONALGAS_API_URL="http://127.0.0.1:9/operationaldata/v1",
        TAP_NATIONALGAS_RETRY_INTERVAL="2",
    )
    assert failed(done) == (
        "tap-nationalgas could not reach http://127.0.0.1:9/operationaldata/v1 "
        "(connection refused); check the network, or the `api_url` setting"
    )
    assert time.monotonic() - started < 30


@row(
    "`tap-nationalgas 500 Internal Server Error from GET URL` (any status)",
    "the API failed past `max_retries`: run again later; the bookmarks did not move",
)
def test_an_api_error_past_the_retries_is_named(project_env, fake_api):
    fake_api.queue_faults([{"path": "/gasquality/latestdata", "status": 500, "count": 9}])
    assert failed(run_etl(project_env, TAP_NATIONALGAS_MAX_RETRIES="1")) == (
        f"tap-nationalgas 500 Internal Server Error from GET {fake_api.url}/gasquality/latestdata"
    )


@row(
    "`tap-nationalgas expected JSON from URL, got text/html`",
    "`TAP_NATIONALGAS_API_URL` points at a web page, not the API",
)
def test_an_api_answering_html_is_named(project_env, fake_api):
    fake_api.queue_faults([{"path": "/gasquality/latestdata", "html": True}])
    assert failed(run_etl(project_env)) == (
        f"tap-nationalgas expected JSON from {fake_api.url}/gasquality/latestdata, "
        "got text/html; charset=utf-8"
    )


@row(
    "`` tap-nationalgas URL answered 400 for publication ids X: they are not in the National "
    "Gas catalogue; check the setting `publication_ids` ``",
    "remove the named ids from `TAP_NATIONALGAS_PUBLICATION_IDS`",
)
def test_an_unknown_publication_id_is_named(project_env, fake_api):
    done = run_etl(project_env, TAP_NATIONALGAS_PUBLICATION_IDS="PUBOB637, PUBOB999999")
    assert failed(done) == (
        f"tap-nationalgas {fake_api.url}/publications/gasday answered 400 for publication ids "
        "PUBOB999999: they are not in the National Gas catalogue; check the setting "
        "`publication_ids`"
    )


@row(
    '`` tap-nationalgas `publication_names`: "NAME" is not in the National Gas catalogue; the '
    'closest it holds: "...", "...", "..."; check the setting `publication_names` `` '
    "(and the same for `publication_categories`, listing the categories, and `publication_sets`, "
    "listing the sets)",
    "correct the name in `TAP_NATIONALGAS_PUBLICATION_NAMES` (a JSON list: names hold commas); "
    "the stream `publication_catalogue` lists every name",
)
def test_an_unknown_data_item_name_is_named_with_the_closest(project_env, fake_api):
    done = run_etl(project_env, TAP_NATIONALGAS_PUBLICATION_NAMES='["SAP, Actual Dya"]')
    line = failed(done)
    assert line.startswith(
        'tap-nationalgas `publication_names`: "SAP, Actual Dya" is not in the National Gas '
        'catalogue; the closest it holds: "SAP, Actual Day", '
    )
    assert line.endswith("; check the setting `publication_names`")
    assert fake_api.stats()["requests"].get("/publications/gasday", 0) == 0


@row(
    "`` INFLUXDB_URL='localhost:8086': target-influxdb `url` takes a URL with its scheme, e.g. "
    "http://localhost:8086 ``",
    "write the scheme: `http://localhost:8086`",
)
def test_a_url_without_its_scheme_is_refused(project_env):
    assert failed(run_etl(project_env, INFLUXDB_URL="localhost:8086")) == (
        "INFLUXDB_URL='localhost:8086': target-influxdb `url` takes a URL with its scheme, "
        "e.g. http://localhost:8086"
    )


# Meltano's own failures


@row(
    "`the state of STATE_ID cannot be read (...): reset it with ./run-etl.sh --reset-state JOB "
    "(the next run starts from start_date)`",
    "run the reset it names (it keeps the old state in `logs/`); `meltano state clear` cannot "
    "read such a state either",
)
def test_a_state_that_is_not_json_is_named_with_a_reset_that_works(project_env):
    assert run_etl(project_env).returncode == 0
    database = project_env["MELTANO_DATABASE_URI"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as db:
        db.execute("UPDATE state SET completed_state = '{not json' WHERE state_id = ?", [STATE_ID])
    assert failed(run_etl(project_env)) == (
        f"the state of {STATE_ID} cannot be read (Expecting property name enclosed in double "
        f"quotes: line 1 column 2 (char 1)): reset it with ./run-etl.sh --reset-state {JOB} "
        "(the next run starts from start_date)"
    )
    reset = run_etl(project_env, "--reset-state", JOB)
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert f"the state of {STATE_ID} is reset (the old one is kept in " in reset.stdout
    kept = list(Path(project_env["DATA_IMPORTS_LOG_DIR"]).glob("state-*.txt"))
    assert len(kept) == 1
    assert "{not json" in kept[0].read_text()
    assert meltano(project_env, "state", "get", STATE_ID).returncode == 0
    again = run_etl(project_env)
    assert again.returncode == 0, again.stdout[-3000:]


@row(
    "`tap-nationalgas the state of stream S holds a bookmark that cannot be read (WHERE: VALUE): "
    "reset the job's state, and the next run starts from start_date (./run-etl.sh --reset-state "
    "JOB)`",
    "run the reset it names; the old state is kept in `logs/`",
)
def test_a_bookmark_that_cannot_be_read_names_the_stream_and_the_reset(project_env):
    assert run_etl(project_env).returncode == 0
    damaged = {"singer_state": {"bookmarks": {"gas_quality": {"replication_key_value": "soon"}}}}
    changed = meltano(project_env, "state", "set", "--force", STATE_ID, json.dumps(damaged))
    assert changed.returncode == 0, changed.stderr[-2000:]
    cause = failed(run_etl(project_env))
    assert cause.startswith(
        "tap-nationalgas the state of stream gas_quality holds a bookmark that cannot be read ("
    )
    assert "'soon'" in cause
    assert cause.endswith(f"(./run-etl.sh --reset-state {JOB})")
    assert run_etl(project_env, "--reset-state", JOB).returncode == 0
    again = run_etl(project_env)
    assert again.returncode == 0, again.stdout[-3000:]


@row(
    "`` the system database FILE is locked by another process (database is locked): stop the "
    "process that holds it (`fuser FILE` names it) and run again ``",
    "stop the process it names (a stuck `meltano` or `sqlite3`)",
)
def test_a_locked_system_database_is_named(project_env):
    assert run_etl(project_env).returncode == 0
    database = project_env["MELTANO_DATABASE_URI"].removeprefix("sqlite:///")
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        cause = failed(run_etl(project_env))
    finally:
        holder.close()
    assert cause == (
        f"the system database {database} is locked by another process (database is locked): "
        f"stop the process that holds it (`fuser {database}` names it) and run again"
    )


@row(
    "`the system database FILE cannot be read (file is not a database): restore it from a "
    "backup, or move it aside to start a new one (bookmarks and run history start over)`",
    "as it says",
)
def test_an_unreadable_system_database_is_named(project_env):
    database = Path(project_env["MELTANO_DATABASE_URI"].removeprefix("sqlite:///"))
    database.write_bytes(b"this is not a database" * 100)
    assert failed(run_etl(project_env)) == (
        f"the system database {database} cannot be read (file is not a database): restore it "
        "from a backup, or move it aside to start a new one (bookmarks and run history start "
        "over)"
    )


# The runner


@row(
    "`` ran past its deadline of N s (DATA_IMPORTS_RUN_TIMEOUT) and was stopped; what it stored "
    "is kept, and the next run goes on from there ``",
    "a long backfill: nothing, the next runs go on (or raise `DATA_IMPORTS_RUN_TIMEOUT`); a run "
    "that hangs: the lines above name what it waited on",
)
def test_a_run_past_its_deadline_is_stopped_and_the_next_run_goes_on(
    project_env, fake_api, influxdb, bucket
):
    history, job = "/gasquality/historicdata", "nationalgas-backfill"
    env = {
        **project_env,
        "TAP_NATIONALGAS_START_DATE": "2026-02-01T00:00:00Z",
        "DATA_IMPORTS_RUN_TIMEOUT": "60",
        "DATA_IMPORTS_STOP_GRACE": "10",
    }
    sites = len(GAS_QUALITY_SITES)
    per_window = 2 * 24 * sites
    # the first batch file fills up within window `full`; the API hangs on the one after it
    full = backfill_batch_records() // per_window + 1
    fake_api.queue_faults([{"path": history}] * full + [{"path": history, "hang": 300}])
    started = time.monotonic()
    done = run_etl(env, job)
    took = time.monotonic() - started
    assert done.returncode == 1, done.stdout[-3000:]
    assert "Traceback" not in done.stdout
    cause = (
        "ran past its deadline of 60 s (DATA_IMPORTS_RUN_TIMEOUT) and was stopped; what it "
        "stored is kept, and the next run goes on from there"
    )
    assert last_line(done) == f"{job} failed: {cause}"
    assert f"stopping {job}: it is past its deadline, passed on to the run (at most 10s)" in (
        done.stdout
    )
    assert 60 <= took < 60 + 10 + 30
    assert fake_api.stats()["requests"][history] == full + 1  # stopped while that one hung
    runs = influxdb.query(bucket, 'SELECT "status", "cause" FROM "data_imports_run" GROUP BY *')
    assert {tuple(row[1:]) for one in runs for row in one["values"]} == {("failed", cause)}

    # the first batch file is stored, and the bookmarks stand at its last whole window
    last_whole = dt.datetime(2026, 2, 1, tzinfo=dt.UTC) + dt.timedelta(days=2 * (full - 1))
    last_whole -= dt.timedelta(hours=1)
    covered = [
        p
        for p in influxdb.points(bucket, "gas_quality")
        if p.time_ns <= int(last_whole.timestamp()) * 10**9
    ]
    assert len(covered) == (full - 1) * per_window
    state = meltano(env, "state", "get", "dev:tap-nationalgas-backfill-to-target-influxdb")
    assert state.returncode == 0, state.stderr[-2000:]
    bookmarks = json.loads(state.stdout)["singer_state"]["bookmarks"]["gas_quality_history"]
    assert {p["bookmark"] for p in bookmarks["partition_bookmarks"]} == {last_whole.isoformat()}

    fake_api.reset()
    again = run_etl(env, job)
    assert again.returncode == 0, again.stdout[-3000:]
    resumed = f"window {last_whole:%Y-%m-%d} to {last_whole + dt.timedelta(days=1):%Y-%m-%d}"
    assert f"gas_quality_history: {resumed}, 1 of " in again.stdout
    assert "window 2026-02-01" not in again.stdout
    start = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    hours = int((dt.datetime(2026, 3, 29, 8, tzinfo=dt.UTC) - start).total_seconds() // 3600) + 1
    assert len(influxdb.points(bucket, "gas_quality")) == hours * sites


# The plugins


@row(
    "`target-influxdb was killed by SIGKILL`", "find what killed it (`dmesg` names the OOM killer)"
)
def test_a_plugin_killed_by_a_signal_is_named(project_env, local_influxdb):
    local_influxdb.queue_faults([{"hang": 60}])
    run = subprocess.Popen(
        [SCRIPT, JOB],
        cwd="/",
        env=project_env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )

    def target() -> int:
        pids = [
            pid
            for pid, command in process_tree(run.pid).items()
            if "bin/target-influxdb" in command
        ]
        return pids[0] if pids else 0

    wait_until(lambda: local_influxdb.proxy_stats()["write_requests"] >= 1, "a hanging write", 120)
    wait_until(lambda: bool(target()), "the target's process", 10)
    os.kill(target(), signal.SIGKILL)
    out, _ = run.communicate(timeout=120)
    done = subprocess.CompletedProcess(run.args, run.returncode, out, "")
    assert failed(done) == "target-influxdb was killed by SIGKILL"


@row(
    "`target-influxdb NotADirectoryError: ... (traceback in logs/run-etl.log)` (any error "
    "nobody foresaw: its type and message; the traceback is in the log, on screen only with "
    "`DATA_IMPORTS_LOG_LEVEL=debug`)",
    "read the traceback in the log",
)
def test_an_unexpected_error_gives_its_type_and_the_log(project_env, tmp_path):
    (tmp_path / "file").write_text("")  # a folder under a file: nobody can make it, root neither
    env = {
        **project_env,
        "INFLUXDB_URL": "",
        "TARGET_INFLUXDB_OUTPUT_PATH": str(tmp_path / "file" / "out"),
    }
    done = run_etl(env)
    log = Path(project_env["DATA_IMPORTS_LOG_DIR"]) / "run-etl.log"
    cause = failed(done)
    assert cause.startswith("target-influxdb NotADirectoryError: ")
    assert cause.endswith(f" (traceback in {log})")
    assert "Traceback" not in done.stdout
    assert "line " in log.read_text()  # the frames
    debug = run_etl(env, DATA_IMPORTS_LOG_LEVEL="debug")
    assert "PluginException" in debug.stdout or "Traceback" in debug.stdout


def test_readme_lists_every_last_line():
    columns = ("last line (`<job> failed: ...`)", "fix", "test")
    assert missing_table("When a run fails", columns, ROWS) == ""
