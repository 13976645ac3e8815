"""What the pipeline survives: each fault, then one more normal run, against the fake API and a
real InfluxDB engine.

Every scenario states the points expected, and asserts that after the fault and one more run
none is lost, none is stored twice, and no bookmark in the state is ahead of what is stored.
The README's "What it survives" table is this module's :data:`SCENARIOS`, checked by a test.
"""

from __future__ import annotations

import datetime as dt
import re
import resource
import signal
import time
import typing as t
import urllib.request
from dataclasses import dataclass

import pytest
from croniter import croniter

from tap_nationalgas import values
from testkit import expected
from testkit.fixtures import FAKE_NOW, FAKE_START_DATE, PUBLICATION_IDS, tap_settings
from testkit.influx import run_influx_delete, run_influx_write, write_lines
from testkit.nationalgas_data import GAS_QUALITY_SITES
from testkit.pipeline import BACKFILL, FLOWS, MAIN, Pipeline, PipelineRun, Running, project
from testkit.processes import wait_until
from testkit.readme import missing_table

if t.TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from testkit.expected import Points, Run
    from testkit.fake_nationalgas import FakeNationalGasProcess
    from testkit.influx import LocalInfluxDB, RemoteInfluxDB2

T0 = dt.datetime.fromisoformat(FAKE_NOW).astimezone(dt.UTC)  # 2026-03-29 08:00 UTC
START = dt.datetime.fromisoformat(FAKE_START_DATE)
# the measurements of the streams, as meltano.yml maps them
GAS_QUALITY = expected.measurement("gas_quality")
FLOWS_MEASUREMENT = expected.measurement("instantaneous_flows")
PUBLICATIONS = expected.measurement("publications")
SCENARIOS: list[tuple[str, str, str]] = []
"""(the fault, what the pipeline does, the test that shows it), in the README's order."""


def uk_date(moment: dt.datetime) -> dt.date:
    """The UK calendar date of an instant."""
    return moment.astimezone(values.LONDON).date()


def scenario(fault: str, outcome: str) -> Callable[[t.Any], t.Any]:
    """Register a test as a row of the README's "What it survives" table."""

    def register(test: t.Any) -> t.Any:
        SCENARIOS.append((fault, outcome, test.__name__))
        return test

    return register


class Bench:
    """The fake API's clock, the pipeline and the bucket of one scenario."""

    def __init__(
        self,
        workdir: Path,
        fake: FakeNationalGasProcess,
        engine: LocalInfluxDB | RemoteInfluxDB2,
        bucket: str,
        target_config: dict[str, t.Any],
    ) -> None:
        """Start the clock at :data:`T0`."""
        self.fake, self.engine, self.bucket = fake, engine, bucket
        tap_config = {**tap_settings(fake.url), "publication_ids": PUBLICATION_IDS}
        self.pipeline = Pipeline(workdir, tap_config, target_config)
        self.now = T0
        self.runs: list[Run] = []
        """Every run started: the streams its extractor reads, at the fake's clock."""

    def at(self, moment: dt.datetime) -> None:
        """Set the fake's clock."""
        self.fake.set_now(moment.isoformat())
        self.now = moment

    def later(self, **delta: float) -> None:
        """Move the fake's clock forward."""
        self.at(self.now + dt.timedelta(**delta))

    def tap_overrides(self, tap: dict[str, t.Any] | None) -> dict[str, t.Any]:
        """Read up to the fake's today, as a run on that day would."""
        return {"end_date": uk_date(self.now).isoformat(), **(tap or {})}

    def start(
        self,
        extractor: str = MAIN,
        *,
        tap: dict[str, t.Any] | None = None,
        pipeline: Pipeline | None = None,
        **options: t.Any,
    ) -> Running:
        """Start a run of an extractor's streams (by this bench's pipeline, or another)."""
        self.runs.append((expected.extractor_streams(extractor), self.now))
        return (pipeline or self.pipeline).start(
            extractor, tap_overrides=self.tap_overrides(tap), **options
        )

    def run(
        self,
        extractor: str = MAIN,
        *,
        ok: bool = True,
        tap: dict[str, t.Any] | None = None,
        **options: t.Any,
    ) -> PipelineRun:
        """One run of an extractor's streams into the bucket; check how it ended."""
        result = self.pipeline.finish(self.start(extractor, tap=tap, **options))
        assert result.ok == ok, result.log[-6000:]
        return result

    def tap_in_process(self, extractor: str) -> str:
        """The tap of one run, in this process: its Singer messages, for one load later."""
        self.runs.append((expected.extractor_streams(extractor), self.now))
        return self.pipeline.tap_in_process(extractor, self.tap_overrides(None))

    def stored(self) -> dict[str, Points]:
        """What the bucket holds."""
        return expected.snapshot(self.engine, self.bucket)

    def check(self, want: dict[str, Points], *, fields: bool = True) -> None:
        """0 lost, 0 stored twice, the values as published, and the state never ahead.

        A measurement ``want`` does not state holds what the runs' streams stored in it read
        from the fake at each run (:func:`testkit.expected.served`): nothing when no run read
        one of them.
        """
        stored = self.stored()
        for measurement in expected.MEASUREMENTS:
            need = want.get(measurement)
            if need is None:
                need = expected.served(self.runs, measurement)
            have = stored[measurement]
            lost, extra = need.keys() - have.keys(), have.keys() - need.keys()
            assert (len(lost), len(extra)) == (0, 0), (
                f"{measurement}: {len(need)} points expected, {len(have)} stored: {len(lost)} "
                f"lost (e.g. {sorted(lost)[:2]}), {len(extra)} stored twice or unexpected "
                f"(e.g. {sorted(extra)[:2]})"
            )
            if fields:
                wrong = [k for k in need if have[k] != need[k]]
                assert not wrong, (measurement, wrong[:1], [have[k] for k in wrong[:1]])
        for state in self.pipeline.states.values():
            assert_state_not_ahead(state, stored)


@dataclass(frozen=True)
class Partitions:
    """How the bookmarks of a stream's state compare with what is stored of it.

    A partition's key is its point's tags of the stream's mapping (meltano.yml), joined by
    ``/``; its bookmark is the point's time, or the field of the stream's replication key when
    the mapping stamps points with another property.
    """

    measurement: str
    tags: tuple[str, ...]
    field: str | None

    def key(self, tags: dict[str, str]) -> str:
        """The partition of a stored point."""
        return "/".join(tags[tag] for tag in self.tags)


PARTITIONS = {
    stream: Partitions(
        mapping.measurement,
        mapping.tags,
        None if replication_key == mapping.timestamp else replication_key,
    )
    for stream, mapping in expected.MAPPINGS.items()
    if (replication_key := expected.TAP_STREAMS[stream].replication_key)
}
"""Every incremental stream that meltano.yml maps, by name."""


def instant(text: str) -> dt.datetime:
    """A bookmark or a stored time text, aware."""
    return dt.datetime.fromisoformat(text)


def assert_state_not_ahead(state: dict[str, t.Any], stored: dict[str, Points]) -> None:
    """Every bookmark, per partition and per stream, is at or before what is stored."""
    for stream, stream_state in state.get("bookmarks", {}).items():
        if stream not in PARTITIONS:
            continue
        partitions = PARTITIONS[stream]
        field = partitions.field
        newest: dict[str, dt.datetime] = {}
        for (tags, time_ns), fields in stored[partitions.measurement].items():
            key = partitions.key(dict(tags))
            moment = instant(fields[field]) if field else instant_ns(time_ns)
            newest[key] = max(newest.get(key, moment), moment)
        for partition in stream_state.get("partition_bookmarks", []):
            key, bookmark = partition["key"], instant(partition["bookmark"])
            assert key in newest, f"{stream}: bookmark of {key} with nothing stored"
            assert bookmark <= newest[key], f"{stream} {key}: {bookmark} > {newest[key]}"
        if stream_state.get("replication_key_value"):
            assert instant(stream_state["replication_key_value"]) <= max(newest.values())


def gas_quality(now: dt.datetime, first: dt.datetime, last: dt.datetime | None = None) -> Points:
    """Every site's hourly readings from ``first`` to ``last`` (default: the latest hour)."""
    data = expected.fake_data(now)
    last = last or data.gas_quality_latest_time()
    return expected.gas_quality(data, expected.hours(first, last))


def latest_hour(now: dt.datetime) -> dt.datetime:
    """The hour of the latest gas quality publication at ``now``."""
    return expected.fake_data(now).gas_quality_latest_time()


def publications(now: dt.datetime, first: dt.date | None = None) -> Points:
    """The latest value of every data item read by the main job, as of ``now``."""
    first = first or START.date() - dt.timedelta(days=10)
    return expected.publications(
        expected.fake_data(now), PUBLICATION_IDS, first, uk_date(now), START
    )


def main_job(now: dt.datetime, first_hour: dt.datetime | None = None) -> dict[str, Points]:
    """What the 30-minute job stores when its first run was at ``first_hour`` (default: now)."""
    return {
        GAS_QUALITY: gas_quality(now, first_hour or latest_hour(now)),
        PUBLICATIONS: publications(now),
    }


def feed(now: dt.datetime) -> Points:
    """The flow readings the feed holds at ``now``."""
    return expected.flows(expected.fake_data(now))


@pytest.fixture
def bench(tmp_path, fake_api, influxdb, bucket, target_config) -> Bench:
    """A scenario's fake clock at T0, pipeline and empty bucket."""
    return Bench(tmp_path, fake_api, influxdb, bucket, target_config)


# Answers that look successful but are not complete


@scenario(
    "`INFLUXDB_URL` answers 200 with a web page (a login proxy, a wrong port)",
    "the write fails naming the URL; no state is saved; the next run stores everything",
)
def test_influxdb_url_answers_a_web_page(bench: Bench, local_influxdb: LocalInfluxDB):
    local_influxdb.queue_faults([{"html": True}])
    failed = bench.run(ok=False)
    assert "answered 200 text/html; charset=utf-8: this is not the InfluxDB write API" in (
        failed.log
    )
    assert bench.pipeline.states == {}
    bench.run()
    bench.check(main_job(T0))


@pytest.mark.parametrize("answer", [{"empty": True}, {"body": []}], ids=["empty", "list"])
@scenario(
    "one gas quality history window answers an empty body or `[]` during a backfill",
    "a WARNING names the sites and days; they are pending gaps, read again and stored by the "
    "next run; the reading stamped at `start_date` is stored",
)
def test_history_window_answers_empty(bench: Bench, answer: dict[str, t.Any]):
    bench.fake.queue_faults([{"path": "/gasquality/historicdata", **answer}])
    first = bench.run(BACKFILL)
    assert "gas_quality_history (/gasquality/historicdata): the answers lack 24 expected" in (
        first.log
    )
    bench.later(minutes=30)
    second = bench.run(BACKFILL)
    assert "24 gaps filled" in second.log
    bench.check({GAS_QUALITY: gas_quality(bench.now, START, T0), PUBLICATIONS: publications(T0)})


@scenario(
    "one publications window answers `[]`",
    "a WARNING names the data items and gas days; the next run reads those days again, beyond "
    "the look-back, and stores them",
)
def test_publications_window_answers_empty(bench: Bench):
    bench.at(T0 + dt.timedelta(days=3))
    tap = {"publication_window_days": 2, "lookback_days": 0}
    path = "/publications/gasday"
    bench.fake.queue_faults([{"path": path}, {"path": path, "body": []}])
    first = bench.run(tap=tap)
    assert "publications (/publications/gasday): the answers lack 6 expected readings" in (
        first.log
    )
    assert "PUBOB637 at 2026-03-28, 2026-03-29" in first.log
    bench.later(minutes=30)
    second = bench.run(tap=tap)
    assert "6 gaps filled" in second.log
    bench.check(
        {
            GAS_QUALITY: gas_quality(bench.now, latest_hour(bench.now)),
            PUBLICATIONS: publications(bench.now, START.date()),
        }
    )


def latest_answer(bench: Bench, alter: Callable[[list[dict[str, t.Any]]], None]) -> object:
    """The fake's latest gas quality answer now, altered."""
    answer = bench.fake.get("/gasquality/latestdata")
    alter(answer["gasQualityData"])
    return answer


def keep_two_sites(sites: list[dict[str, t.Any]]) -> None:
    del sites[2:]


def null_metrics(sites: list[dict[str, t.Any]]) -> None:
    for site in sites:
        site["siteGasQualityDetail"] = dict.fromkeys(site["siteGasQualityDetail"])


@pytest.mark.parametrize(
    ("alter", "missing"), [(keep_two_sites, 10), (null_metrics, 12)], ids=["2-of-12", "nulls"]
)
@scenario(
    "latest gas quality answers 2 of 12 sites, or all metrics null, and history has none yet",
    "the sites are caught up from history in the same run; what history lacks too is a "
    "pending gap, stored by the next run",
)
def test_latest_gas_quality_is_partial(bench: Bench, alter, missing: int):
    bench.run()
    bench.later(hours=1)
    bench.fake.queue_faults(
        [
            {"path": "/gasquality/latestdata", "body": latest_answer(bench, alter)},
            {"path": "/gasquality/historicdata", "body": []},
        ]
    )
    partial = bench.run()
    assert f"gas_quality (/gasquality/latestdata): the answers lack {missing} expected" in (
        partial.log
    )
    bench.later(minutes=30)
    after = bench.run()
    assert f"{missing} gaps filled" in after.log
    bench.check(main_job(bench.now, T0))


def drop_fifth_site(sites: list[dict[str, t.Any]]) -> None:
    del sites[4]


@pytest.mark.parametrize("first_run", [True, False], ids=["first-run", "with-state"])
@scenario(
    "latest gas quality lacks one site, then the next answer at the same publication time has "
    "it (on a first run, or with a state)",
    "the next run stores the site's reading: a site with no bookmark of its own is not taken "
    "as stored up to the stream's bookmark",
)
def test_latest_gas_quality_lacks_a_site_then_has_it(bench: Bench, first_run: bool):
    if not first_run:
        bench.run()
        bench.later(hours=1)
    faults = [{"path": "/gasquality/latestdata", "body": latest_answer(bench, drop_fifth_site)}]
    if not first_run:  # history lacks it too: the next latest answer is what brings it
        faults.append({"path": "/gasquality/historicdata", "body": []})
    bench.fake.queue_faults(faults)
    bench.run()
    assert not any(
        dict(tags)["site_id"] == "5" and instant_ns(time_ns) == bench.now.replace(minute=0)
        for tags, time_ns in bench.stored()[GAS_QUALITY]
    )
    bench.later(minutes=10)  # the same publication
    bench.run()
    bench.check(main_job(bench.now, None if first_run else T0))


@scenario(
    "one publication row is missing from one answer",
    "a WARNING names the data item and gas day; the look-back re-reads it the next run and "
    "writes it, not filtered by the bookmark",
)
def test_publication_row_missing(bench: Bench):
    bench.fake.queue_faults([{"path": "/publications/gasday", "drop_first_row": True}])
    first = bench.run()
    assert "lack 1 expected readings: PUBOB637 at 2026-03-27" in first.log
    bench.later(days=1)
    bench.run()
    bench.check(main_job(bench.now, T0))


@scenario(
    "an outage of 6 hours",
    "the next run reads gas quality history for the 6 hours before the latest data; flows "
    "are complete from the feed",
)
def test_outage_of_six_hours(bench: Bench):
    bench.run()
    bench.run(FLOWS)
    bench.later(hours=6)
    bench.run()
    bench.run(FLOWS)
    bench.check({**main_job(bench.now, T0), FLOWS_MEASUREMENT: feed(bench.now)})


def published_flow_times(first: dt.datetime, last: dt.datetime) -> set[dt.datetime]:
    """Every reading time that a publication of the feed held, served from ``first`` until
    before ``last``."""
    return expected.fake_data(first).flow_times_published(first, last)


@scenario(
    "an outage of 3 days, across gas-day rollovers (05:00 UK)",
    "the readings the feed no longer holds are counted in one WARNING with their span; "
    "everything the feed still holds is stored",
)
def test_outage_of_three_days_reports_what_the_feed_lost(bench: Bench):
    bench.run(FLOWS)
    before = feed(T0)
    bench.later(days=3)
    run = bench.run(FLOWS)
    stored_times = {instant_ns(time_ns) for _, time_ns in {**before, **feed(bench.now)}}
    lost = published_flow_times(T0, bench.now) - stored_times
    count = len(lost) * expected.FLOW_SITES
    assert count > 80_000  # about 3 days of readings of every site
    assert (
        f"instantaneous_flows: {count} readings of {expected.FLOW_SITES} sites from "
        f"{min(lost).isoformat()} to {max(lost).isoformat()} are no longer in the feed"
    ) in run.log
    bench.check({FLOWS_MEASUREMENT: {**before, **feed(bench.now)}})


def instant_ns(time_ns: int) -> dt.datetime:
    """An instant from nanoseconds."""
    return dt.datetime.fromtimestamp(time_ns // 10**9, dt.UTC)


def flow_schedule() -> str:
    """The cron expression of the schedule that runs the flows job, from meltano.yml."""
    job = next(j["name"] for j in project()["jobs"] if j["tasks"] == [f"{FLOWS} target-influxdb"])
    return next(s["interval"] for s in project()["schedules"] if s["job"] == job)


@scenario(
    "3 days of runs at the shipped schedules, across the clock change",
    "every flow reading the feed published is stored: 100%",
)
def test_shipped_schedule_stores_every_published_flow_reading(bench: Bench):
    first = dt.datetime(2026, 3, 28, 0, 0, tzinfo=dt.UTC)  # BST starts 2026-03-29 01:00 UTC
    last = first + dt.timedelta(days=3)
    ticks = croniter(flow_schedule(), first - dt.timedelta(seconds=1))
    messages, runs = [], 0
    # The tap runs in this process at every tick (360 start-ups would take minutes); its
    # messages go to one target run at the end, which writes what a target at each tick would.
    while (tick := ticks.get_next(dt.datetime)) <= last:
        bench.at(tick + dt.timedelta(seconds=20))  # a run reads the feed seconds after it starts
        messages.append(bench.tap_in_process(FLOWS))
        runs += 1
    assert runs == 3 * 24 * 5 + 1  # the tick at the end reads the last publication before it
    loaded = bench.pipeline.load("".join(messages))
    assert loaded.target_code == 0, loaded.log[-3000:]
    want = published_flow_times(first, last)
    stored = {instant_ns(time_ns) for _, time_ns in bench.stored()[FLOWS_MEASUREMENT]}
    lost = sorted(want - stored)
    sent = "".join(messages)
    emitted = [moment for moment in lost if moment.isoformat(timespec="microseconds") in sent]
    assert not lost, (
        f"{len(lost)} reading times not stored, from {lost[0]} to {lost[-1]}; the tap sent "
        f"{len(emitted)} of them; target log: {loaded.log[-2000:]}"
    )
    assert len(stored) == len(want)
    bench.check(
        {FLOWS_MEASUREMENT: expected.flows(expected.fake_data(last), sorted(want))},
        fields=False,
    )


# The target's own storage


def load_files(bench: Bench, folder: Path) -> None:
    """Write every line-protocol file into the bucket whole; each must be accepted (204)."""
    engine = bench.engine
    for path in sorted(folder.glob("*.lp")):
        assert path.read_bytes().endswith(b"\n"), path
        query = f"org={engine.org}&bucket={bench.bucket}&precision=ns"
        request = urllib.request.Request(
            f"{engine.url}/api/v2/write?{query}",
            data=path.read_bytes(),
            headers={"Authorization": f"Token {engine.token}"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 204, path


def file_size_limit(limit: int) -> Callable[[], None]:
    """A child process setting: files it writes stop growing at ``limit`` bytes (a full disk)."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@scenario(
    "file mode: the disk fills up in the middle of an append, then a run with space",
    "the batch is cut back off, the run fails with no state; the next run appends whole "
    "batches and every file loads into InfluxDB whole",
)
def test_file_mode_disk_full(bench: Bench, tmp_path):
    out = tmp_path / "output"
    file_mode = {"url": "", "output_path": str(out)}
    failed = bench.run(
        FLOWS, ok=False, target_overrides=file_mode, target_preexec=file_size_limit(300_000)
    )
    assert "could not append" in failed.log
    assert bench.pipeline.states == {}
    assert all(p.read_bytes().endswith(b"\n") for p in out.glob("*.lp") if p.stat().st_size)
    bench.run(FLOWS, target_overrides=file_mode)
    load_files(bench, out)
    bench.check({FLOWS_MEASUREMENT: feed(T0)})


@scenario(
    "file mode: a run killed in the middle of an append leaves half a line",
    "the next run cuts the file back to its last complete line (WARNING) and appends; every "
    "file loads into InfluxDB whole",
)
def test_file_mode_half_line_after_a_kill(bench: Bench, tmp_path):
    out = tmp_path / "output"
    file_mode = {"url": "", "output_path": str(out)}
    bench.run(FLOWS, target_overrides=file_mode)
    path = out / "instantaneous_flows.lp"
    lines = path.read_bytes().splitlines(keepends=True)
    with path.open("ab") as half:  # what a SIGKILL in the middle of an append leaves
        half.write(lines[0][:40])
    bench.later(hours=1)
    after = bench.run(FLOWS, target_overrides=file_mode)
    assert "ended in an unfinished line (a write was cut short): cut 40 bytes" in after.log
    load_files(bench, out)
    bench.check({FLOWS_MEASUREMENT: feed(bench.now)})


@scenario(
    "a site renamed by the API (`BACTON` -> `Bacton`), then a backfill",
    "one series per site: series are keyed on the site id, the name is a field",
)
def test_site_renamed(bench: Bench):
    bench.run()
    bench.later(hours=2)
    bench.fake.queue_faults([{"path": "/gasquality", "rename": {"BACTON": "Bacton"}, "count": 9}])
    bench.run()
    bench.run(BACKFILL)
    bench.check(
        {GAS_QUALITY: gas_quality(bench.now, START), PUBLICATIONS: publications(bench.now)},
        fields=False,
    )
    names = {
        f["site_name"]
        for (tags, _), f in bench.stored()[GAS_QUALITY].items()
        if dict(tags)["site_id"] == "1"
    }
    assert names == {"Bacton"}  # the name as the newest answer gives it


# Faults that fail or slow a run


@scenario(
    "the API answers 503, then 429, with Retry-After",
    "waited out as asked; the run completes",
)
def test_api_503_and_429_with_retry_after(bench: Bench):
    bench.fake.queue_faults(
        [
            {"path": "/gasquality/latestdata", "status": 503, "retry_after": 1},
            {"path": "/publications/gasday", "status": 429, "retry_after": 1},
        ]
    )
    run = bench.run()
    assert "429" in run.log
    bench.check(main_job(T0))


@scenario(
    "InfluxDB answers 503, then 429, with Retry-After",
    "the batch is retried as asked; every point is written once",
)
def test_influxdb_503_and_429_with_retry_after(bench: Bench, local_influxdb: LocalInfluxDB):
    local_influxdb.queue_faults(
        [{"status": 503, "retry_after": 1}, {"status": 429, "retry_after": 1}]
    )
    bench.run()
    assert local_influxdb.proxy_stats()["faults_served"] == 2
    bench.check(main_job(T0))


@scenario(
    "InfluxDB is down",
    "the run fails after bounded retries with no state saved; the next run stores everything",
)
def test_influxdb_down(bench: Bench, local_influxdb: LocalInfluxDB):
    local_influxdb.stop_engine()
    failed = bench.run(ok=False)
    assert bench.pipeline.states == {}
    assert "did not accept the batch" in failed.log
    local_influxdb.start_engine()
    bench.run()
    bench.check(main_job(T0))


@scenario(
    "InfluxDB holds gas quality's `cv` as an integer in the week a run writes (a field type "
    "conflict)",
    "the run fails naming the field, both types and the fixes, with no state saved; with "
    "`TARGET_INFLUXDB_REJECTED_POINTS_PATH` the refused points wait in that file, the rest is "
    "stored and the state moves on; after the delete and `influx write` its WARNING gives, and "
    "the next run, every point is stored once",
)
def test_field_type_conflict(bench: Bench):
    # another writer stored cv as an integer in the week of the fake data (Monday 23 March)
    stamp_ns = int((T0 - dt.timedelta(hours=3)).timestamp()) * 10**9
    write_lines(bench.engine, bench.bucket, f"{GAS_QUALITY},site_id=999 cv=39i {stamp_ns}".encode())
    failed = bench.run(ok=False)
    assert (
        f'The field "cv" of measurement "{GAS_QUALITY}" is stored as integer and was sent as float'
    ) in failed.log
    assert bench.pipeline.states == {}

    path = bench.pipeline.workdir / "rejected.lp"
    set_aside = bench.run(target_overrides={"rejected_points_path": str(path)})
    assert set_aside.states
    lines = path.read_text().splitlines()
    assert all(",cv=" in line for line in lines)
    # a reading without cv is stored, and kept beside: the delete of the week removes it too
    kept = (path.parent / "rejected.lp.stored").read_text().splitlines()
    assert not any(",cv=" in line for line in kept)
    assert len(lines) + len(kept) == len(main_job(T0)[GAS_QUALITY])
    warning = next(x for x in set_aside.log.splitlines() if "set aside in" in x)
    assert f"{len(lines)} points InfluxDB refused as invalid were set aside in {path}" in warning
    assert bench.stored()[PUBLICATIONS] == main_job(T0)[PUBLICATIONS]

    for command in re.findall(r"influx delete .*?--predicate '[^']*'", warning):
        run_influx_delete(bench.engine, command)
    run_influx_write(bench.engine, re.search(r"then (influx write .*?) \(then remove", warning)[1])  # type: ignore[index]
    bench.run()
    bench.check(main_job(T0))


@scenario(
    "the target is killed (SIGKILL) while a write hangs",
    "no state is saved; the next run stores everything",
)
def test_target_killed(bench: Bench, local_influxdb: LocalInfluxDB):
    local_influxdb.queue_faults([{"hang": 15}])
    running = bench.start(MAIN)
    wait_until(lambda: local_influxdb.proxy_stats()["write_requests"] >= 1, "a hanging write")
    running.target.send_signal(signal.SIGKILL)
    killed = bench.pipeline.finish(running)
    assert killed.target_code == -signal.SIGKILL
    assert bench.pipeline.states == {}
    local_influxdb.clear_faults()
    bench.run()
    bench.check(main_job(T0))


@scenario(
    "the tap is killed (SIGKILL) while a request hangs",
    "the state saved covers only what was written; the next run stores the rest",
)
def test_tap_killed(bench: Bench):
    bench.fake.queue_faults([{"path": "/publications/gasday", "hang": 15}])
    running = bench.start(MAIN)
    wait_until(
        lambda: bench.fake.stats()["requests"].get("/publications/gasday", 0) >= 1,
        "a hanging request",
    )
    running.tap.send_signal(signal.SIGKILL)
    killed = bench.pipeline.finish(running)
    assert killed.tap_code == -signal.SIGKILL
    assert_state_not_ahead(bench.pipeline.states.get(MAIN, {}), bench.stored())
    bench.run()
    bench.check(main_job(T0))


BACKFILL_START = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("sig", "whole_run"),
    [(signal.SIGTERM, False), (signal.SIGKILL, False), (signal.SIGKILL, True)],
    ids=["tap-SIGTERM", "tap-SIGKILL", "run-SIGKILL"],
)
@scenario(
    "a backfill stopped after 3 of 29 windows: the tap gets SIGTERM or SIGKILL, or the whole "
    "run (tap and target) SIGKILL",
    "the state saved covers the windows stored and is never ahead; the next run starts at the "
    "last stored window, not at `start_date`, and stores the rest once",
)
def test_backfill_stopped_after_a_few_windows(bench: Bench, sig: signal.Signals, whole_run: bool):
    history = "/gasquality/historicdata"
    tap = {"start_date": BACKFILL_START.isoformat()}
    bench.fake.queue_faults([{"path": history}] * 3 + [{"path": history, "hang": 30}])
    running = bench.start(BACKFILL, tap=tap)
    three_windows = 3 * 2 * 24 * len(GAS_QUALITY_SITES)

    def three_windows_stored() -> bool:
        return (
            bench.fake.stats()["requests"].get(history, 0) >= 4
            and len(bench.engine.points(bench.bucket, GAS_QUALITY)) >= three_windows
        )

    wait_until(three_windows_stored, "three windows stored", timeout=60)
    time.sleep(1)  # the STATE after the third window follows its points
    running.tap.send_signal(sig)
    if whole_run:
        running.target.send_signal(sig)
    bench.pipeline.finish(running)
    state = bench.pipeline.states.get(BACKFILL)
    assert state, "no state saved"
    stored = bench.stored()
    assert_state_not_ahead(state, stored)
    newest = max(instant_ns(time_ns) for _, time_ns in stored[GAS_QUALITY])
    assert newest == dt.datetime(2026, 2, 6, 23, tzinfo=dt.UTC)  # the end of the third window
    sites = state["bookmarks"]["gas_quality_history"]["partition_bookmarks"]
    assert {instant(site["bookmark"]) for site in sites} == {newest}

    resumed = bench.run(BACKFILL, tap=tap)
    assert "gas_quality_history: window 2026-02-06 to 2026-02-07, 1 of 26 requests" in resumed.log
    assert "gas_quality_history: window 2026-02-01" not in resumed.log
    bench.check(
        {
            GAS_QUALITY: gas_quality(bench.now, BACKFILL_START, T0),
            PUBLICATIONS: expected.publications(
                expected.fake_data(T0),
                PUBLICATION_IDS,
                BACKFILL_START.date() - dt.timedelta(days=10),
                uk_date(T0),
                BACKFILL_START,
            ),
        }
    )


@scenario(
    "the API answers 500 past `max_retries`",
    "the run fails naming the endpoint; what was written is in the state; the next run "
    "stores the rest",
)
def test_api_500_past_retries(bench: Bench):
    bench.fake.queue_faults([{"path": "/publications/gasday", "status": 500, "count": 3}])
    failed = bench.run(ok=False)
    assert "500 Internal Server Error from POST" in failed.log
    bench.run()
    bench.check(main_job(T0))


@scenario("the API hangs past `request_timeout`", "the request is retried; the run completes")
def test_api_hangs(bench: Bench):
    bench.fake.queue_faults([{"path": "/gasquality/latestdata", "hang": 7}])
    bench.run()
    bench.check(main_job(T0))


@scenario(
    "the API answers HTML with status 200",
    "the run fails naming the endpoint and the content type; the next run stores everything",
)
def test_api_answers_html(bench: Bench):
    bench.fake.queue_faults([{"path": "/gasquality/latestdata", "html": True}])
    failed = bench.run(ok=False)
    assert "got text/html" in failed.log
    bench.run()
    bench.check(main_job(T0))


@scenario(
    "the API answers truncated JSON",
    "the run fails naming the endpoint; the next run stores everything",
)
def test_api_answers_truncated_json(bench: Bench):
    cut = '{"publishedTime": "2026-03-29T09:00:00+01:00", "gasQualityData": [{"siteId": 1, "si'
    bench.fake.queue_faults([{"path": "/gasquality/latestdata", "truncated": cut}])
    failed = bench.run(ok=False)
    assert "/gasquality/latestdata" in failed.log
    bench.run()
    bench.check(main_job(T0))


def drift(sites: list[dict[str, t.Any]]) -> None:
    for site in sites:
        detail = site["siteGasQualityDetail"]
        detail["h2"] = "0.02"
        detail.pop("n2")


@scenario(
    "schema drift: the API adds a metric and drops another",
    "the run completes with a WARNING naming the new metric; the known metrics are stored, the "
    "dropped one is absent",
)
def test_schema_drift(bench: Bench):
    bench.fake.queue_faults(
        [{"path": "/gasquality/latestdata", "body": latest_answer(bench, drift)}]
    )
    run = bench.run()
    assert "gas_quality: " in run.log
    assert "sends 'h2', which the stream does not read: it is not stored" in run.log
    assert run.log.count("sends 'h2'") == 1
    want = main_job(T0)
    for fields in want[GAS_QUALITY].values():
        fields.pop("n2", None)
    bench.check(want)


@scenario(
    "two runs at once",
    "both complete; the same points are written twice over each other, none is doubled",
)
def test_two_runs_at_once(bench: Bench, tmp_path):
    other = Pipeline(tmp_path / "other", bench.pipeline.tap_config, bench.pipeline.target_config)
    (tmp_path / "other").mkdir()
    runs = [bench.start(MAIN, pipeline=p) for p in (bench.pipeline, other)]
    results = [p.finish(r) for p, r in zip((bench.pipeline, other), runs, strict=True)]
    assert all(r.ok for r in results), [r.log[-3000:] for r in results]
    bench.check(main_job(T0))


def test_readme_lists_every_scenario():
    columns = ("fault", "what the pipeline does", "test")
    assert missing_table("What it survives", columns, SCENARIOS) == ""
