"""Stream definitions: one short class per endpoint."""

from __future__ import annotations

import datetime as dt
import typing as t

from singer_sdk import typing as th
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from typing_extensions import override

from tap_nationalgas import catalogue, gaps, report, values
from tap_nationalgas.client import (
    DateWindowStream,
    NationalGasStream,
    ResponseError,
    day_range,
    window_pages,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    import requests
    from singer_sdk.helpers.types import Context

    from tap_nationalgas.client import Page

METRICS = ("cv", "cv24", "sg", "sg24", "wi", "co2", "n2")
DETAIL_KEYS = frozenset({*METRICS, "publishedTime"})
FLOW_KEYS = frozenset({"applicableAt", "flowRate", "qualityIndicator", "scheduleTime"})
ROW_KEYS = frozenset(
    {
        "applicableAt",
        "applicableFor",
        "value",
        "qualityIndicator",
        "generatedTimeStamp",
        "publicationName",
    }
)
HISTORY_PATH = "/gasquality/historicdata"
CATALOGUE_PATH = "/publications/catalogue"
HOUR = dt.timedelta(hours=1)
FLOW_READING_INTERVAL = dt.timedelta(minutes=2)
"""The instantaneous flow feed's cadence: one reading per site every 2 minutes."""
PUBLISHED_BY_DAYS = 2
"""A daily data item's value for a gas day is published by the second day after it."""
GAS_QUALITY_SCHEMA = th.PropertiesList(
    th.Property("site_id", th.IntegerType, required=True, description="National Gas site id"),
    th.Property("site_name", th.StringType),
    th.Property("area_name", th.StringType),
    th.Property("published_time", th.DateTimeType, required=True, description="UTC"),
    th.Property("cv", th.NumberType, description="Calorific value, MJ/m3"),
    th.Property("cv24", th.NumberType, description="24-hour calorific value, MJ/m3"),
    th.Property("sg", th.NumberType, description="Specific gravity (relative density)"),
    th.Property("sg24", th.NumberType, description="24-hour specific gravity"),
    th.Property("wi", th.NumberType, description="Wobbe index, MJ/m3"),
    th.Property("co2", th.NumberType, description="Carbon dioxide, mol %"),
    th.Property("n2", th.NumberType, description="Nitrogen, mol %"),
).to_dict()


def iso(moment: dt.datetime) -> str:
    """An instant as state keeps it: ISO 8601 in UTC."""
    return moment.astimezone(dt.UTC).isoformat()


def uk_day(moment: dt.datetime) -> dt.date:
    """The UK calendar date of an instant."""
    return moment.astimezone(values.LONDON).date()


class GasQualityBase(NationalGasStream):
    """Gas quality by site, the base of the latest and the historic streams.

    Bookmarks are kept per site, so a site that lags the others is read again until it
    catches up; a reading whose metrics are all null counts as missing.
    """

    primary_keys = ("site_id", "published_time")
    replication_key = "published_time"
    is_sorted = False
    schema = GAS_QUALITY_SCHEMA

    def gas_quality_record(self, site: dict, detail: dict, published: object) -> dict:
        """One record from a site object and one detail object."""
        self.note_unknown(detail, DETAIL_KEYS)
        site_id = self.number(values.require(site, "siteId"), "siteId")
        return {
            "site_id": int(site_id) if site_id is not None else None,
            "site_name": values.text(site.get("siteName")),
            "area_name": values.text(site.get("areaName")),
            "published_time": self.instant(published, "publishedTime"),
            **{key: self.number(detail.get(key), key) for key in METRICS},
        }

    def history_records(self, payload: object) -> list[dict]:
        """The readings of a history answer that hold a value, by time then site."""
        if not isinstance(payload, list):
            raise ResponseError(f"{self.endpoint}: expected a list of sites")
        records = [
            self.gas_quality_record(site, detail, values.require(detail, "publishedTime"))
            for site in payload
            if self.wanted(site)
            for detail in values.require(site, "siteGasQualityDetail") or ()
        ]
        return sorted(
            (r for r in records if has_metrics(r) and not self.before_start(r["published_time"])),
            key=lambda r: (r["published_time"], r["site_id"]),
        )

    def wanted(self, site: dict) -> bool:
        """True unless ``site_ids`` is set and leaves this site out."""
        site_ids = self.config.get("site_ids")
        return not site_ids or site.get("siteId") in site_ids


def hours_after(first: dt.datetime, last: dt.datetime) -> int:
    """The hours on the hour after ``first``, up to ``last`` included."""
    start = first.replace(minute=0, second=0, microsecond=0) + HOUR
    return max(0, (last - start) // HOUR + 1)


def has_metrics(record: dict) -> bool:
    """True when a gas quality reading holds at least one value."""
    return any(record[key] is not None for key in METRICS)


class GasQualityStream(GasQualityBase):
    """Latest gas quality by site (``GET /gasquality/latestdata``), with catch-up.

    A site whose bookmark is more than an hour behind the latest publication, or that the
    latest answer lacks, is read from the history endpoint for the gap first. A reading still
    missing after that is a pending gap, read again on the next runs.
    """

    name = "gas_quality"
    path = "/gasquality/latestdata"
    pending_gap_at = "instant"

    _latest: list[dict]
    _published: dt.datetime | None
    _catch_up: dict[str, dt.datetime]

    @override
    def get_records(self, context: Context | None) -> Iterable[dict]:
        self._sites = gaps.PartitionBookmarks.load(self.stream_state)
        self._legacy = self.legacy_bookmark()
        self._gaps = self.ledger()
        self._latest, self._published, self._catch_up = [], None, {}
        seen: set[gaps.Gap] = set()
        for record in super().get_records(context):  # the catch-up; the latest is held back
            site, moment = str(record["site_id"]), record["published_time"]
            yield record
            self._sites.advance(site, moment)
            seen.add((site, iso(moment)))
        for record in self._latest:
            site, moment = str(record["site_id"]), record["published_time"]
            bookmark = self.site_bookmark(site)
            if bookmark is None or moment > bookmark:
                yield record
                self._sites.advance(site, moment)
                seen.add((site, iso(moment)))
        self.settle(seen)

    def site_bookmark(self, site: str) -> dt.datetime | None:
        """The newest reading stored for a site (else the stream's bookmark of an older state)."""
        return self._sites.get(site) or self._legacy

    @override
    def records_from(self, payload: object) -> Iterable[dict]:
        if self.page.path == HISTORY_PATH:
            yield from self.catch_up_records(payload)
            return
        published = self.instant(values.require(payload, "publishedTime"), "publishedTime")
        for site in values.require(payload, "gasQualityData") or ():
            if self.wanted(site):
                detail = values.require(site, "siteGasQualityDetail")
                record = self.gas_quality_record(site, detail, published)
                if has_metrics(record) and not self.before_start(published):
                    self._latest.append(record)
        self._published = published
        self.add_pages(self.catch_up_pages(published))

    def catch_up_pages(self, published: dt.datetime) -> list[Page]:
        """History requests for the sites behind the latest publication and the pending gaps."""
        in_latest = {str(r["site_id"]) for r in self._latest}
        oldest = published - dt.timedelta(days=self.gap_retry_days)
        days: set[dt.date] = set()
        given_up: dict[str, dt.datetime] = {}
        for site in self.known_sites(in_latest):
            bookmark = self.site_bookmark(site)
            if bookmark is not None and (
                bookmark < published - HOUR or (site not in in_latest and bookmark < published)
            ):
                if bookmark < oldest:
                    given_up[site] = bookmark
                self._catch_up[site] = max(bookmark, oldest)
                days.update(day_range(uk_day(self._catch_up[site]), uk_day(published)))
        for site, at in self._gaps.pending():
            self._catch_up.setdefault(site, published)
            days.add(uk_day(dt.datetime.fromisoformat(at)))
        if not self._catch_up:
            return []
        self.report_given_up(given_up, oldest)
        report.logger.info(
            "%s: reading %s for sites %s behind the latest publication (%s)",
            self.name,
            HISTORY_PATH,
            ", ".join(sorted(self._catch_up, key=int)),
            iso(published),
        )
        return window_pages(
            HISTORY_PATH,
            days,
            int(self.config["history_window_days"]),
            {"siteIds": sorted(int(site) for site in self._catch_up)},
        )

    def report_given_up(self, bookmarks: dict[str, dt.datetime], oldest: dt.datetime) -> None:
        """One WARNING for the sites whose catch-up starts ``gap_retry_days`` back.

        It gives the span from the oldest bookmark to where the catch-up starts, the hourly
        readings left out, and the job that reads them.
        """
        if not bookmarks:
            return
        self.logger.warning(
            "%s: sites %s are more than %d days (`gap_retry_days`) behind the latest "
            "publication: their catch-up starts at %s, so their readings from %s to %s (%d "
            "hourly readings) are not read by this stream; the gas_quality_history stream "
            "reads them (in this project: ./run-etl.sh nationalgas-backfill)",
            self.name,
            ", ".join(sorted(bookmarks, key=int)),
            self.gap_retry_days,
            iso(oldest),
            iso(min(bookmarks.values())),
            iso(oldest),
            sum(hours_after(bookmark, oldest) for bookmark in bookmarks.values()),
        )

    def known_sites(self, in_latest: set[str]) -> set[str]:
        """The sites stored before and the sites of the latest answer."""
        return set(self._sites.values) | in_latest

    def catch_up_records(self, payload: object) -> Iterable[dict]:
        """The history readings that fill a site's gap: after its bookmark, or pending."""
        published = self._published or self.api_now()
        pending = set(self._gaps.pending())
        for record in self.history_records(payload):
            site, moment = str(record["site_id"]), record["published_time"]
            since = self._catch_up.get(site)
            if since is not None and (
                since < moment <= published or (site, iso(moment)) in pending
            ):
                yield record

    def settle(self, seen: set[gaps.Gap]) -> None:
        """Record the sites that lack the latest reading; give up sites silent for too long."""
        published = self._published
        now = self.api_now()
        self._gaps.expire(now)
        if self._legacy is not None:  # a state of an older version: its bookmark, each site's
            for record in self._latest:
                self._sites.advance(str(record["site_id"]), self._legacy)
        if published is not None:
            for site in sorted(self._sites.values, key=int):
                bookmark = self._sites.get(site)
                if bookmark is not None and bookmark < published - dt.timedelta(
                    days=self.gap_retry_days
                ):
                    self.logger.warning(
                        "%s: site %s has had no reading since %s, more than %d days "
                        "(`gap_retry_days`): it is no longer expected",
                        self.name,
                        site,
                        iso(bookmark),
                        self.gap_retry_days,
                    )
                    self._sites.drop(site)
                    self._gaps.drop_key(site)
            at = iso(published)
            expected = [(site, at) for site in self._sites.values] + self._gaps.pending()
            stored = seen | {
                (site, at)
                for site in self._sites.values
                if (self._sites.get(site) or published) >= published
            }
            self._gaps.settle(expected, stored, now)
        self.save_partitions(self._sites)
        self._gaps.save(self.stream_state)
        self._gaps.report()


class GasQualityHistoryStream(GasQualityBase, DateWindowStream):
    """Gas quality history (``POST /gasquality/historicdata``), in windows of a few days.

    Every site seen before is expected on every day that has fully elapsed; a day that lacks
    one is a pending gap, read again on the next runs.
    """

    name = "gas_quality_history"
    path = HISTORY_PATH
    window_days_setting = "history_window_days"

    @override
    def days_to_read(self) -> list[dt.date]:
        """From the day of the newest reading stored, else from ``start_date``.

        The SDK's bookmark moves only at the end of a run, the sites' bookmarks after every
        window: the later of the two is where a run that was stopped resumes.
        """
        stored = [m for m in (self.bookmark_instant(), self._bookmarks.newest()) if m is not None]
        since = max(stored, default=None) or self.start_instant
        return day_range(self.first_day(since), self.last_day())

    @override
    def partition_of(self, record: dict) -> tuple[str, dt.datetime, str]:
        moment = record["published_time"]
        return str(record["site_id"]), moment, uk_day(moment).isoformat()

    @override
    def expected_keys(self) -> set[str]:
        return set(self._bookmarks.values)

    @override
    def expected(self, days: list[dt.date], keys: t.AbstractSet[str]) -> list[gaps.Gap]:
        """Every site on every day that has fully elapsed, by the API's clock."""
        today = uk_day(self.api_now())
        return [(site, day.isoformat()) for day in days if day < today for site in keys]

    @override
    def request_filters(self) -> dict[str, t.Any]:
        site_ids = self.config.get("site_ids")
        return {"siteIds": list(site_ids)} if site_ids else {}

    @override
    def records_from(self, payload: object) -> Iterable[dict]:
        yield from self.history_records(payload)


class InstantaneousFlowsStream(NationalGasStream):
    """2-minute NTS flows by group and site (``GET /instantaneousflow/sites``).

    The feed holds only the current gas day. Bookmarks are kept per site (group and site
    name); readings that the feed no longer holds when a run comes after a gas-day rollover
    are counted and reported in one WARNING.
    """

    name = "instantaneous_flows"
    path = "/instantaneousflow/sites"
    primary_keys = ("group_id", "site_id", "applicable_at")
    replication_key = "applicable_at"
    is_sorted = False
    schema = th.PropertiesList(
        th.Property(
            "group_id",
            th.StringType,
            required=True,
            description="The group in lower case, words joined by _, e.g. supply_from_terminals",
        ),
        th.Property(
            "site_id",
            th.StringType,
            required=True,
            description="The site name in the same form, e.g. bacton_bbl",
        ),
        th.Property("group", th.StringType, description="e.g. Supply from terminals"),
        th.Property("site_name", th.StringType),
        th.Property(
            "applicable_at", th.DateTimeType, required=True, description="UTC, every 2 minutes"
        ),
        th.Property("flow_rate", th.NumberType, description="mcm/d; linepack in mcm"),
        th.Property("quality_indicator", th.StringType),
        th.Property("schedule_time", th.DateTimeType),
        th.Property("published_time", th.DateTimeType),
        th.Property("gas_day", th.DateType, description="05:00 to 05:00 Europe/London"),
    ).to_dict()

    _feed_start: dt.datetime | None = None
    _lag: dt.timedelta | None = None

    @override
    def get_records(self, context: Context | None) -> Iterable[dict]:
        self._sites = gaps.PartitionBookmarks.load(self.stream_state)
        self._legacy = self.legacy_bookmark()
        self._answered: set[str] = set()
        lost: dict[str, tuple[dt.datetime, dt.datetime, int]] = {}
        for record in super().get_records(context):  # only readings after their site's bookmark
            key, moment = keys_of(record), record["applicable_at"]
            bookmark = self.site_bookmark(key)
            if bookmark is not None and key not in lost:
                lost[key] = self.no_longer_in_feed(bookmark)
            yield record
            self._sites.advance(key, moment)
        if self._legacy is not None:  # a state of an older version: its bookmark, each site's
            for key in self._answered:
                self._sites.advance(key, self._legacy)
        self.report_lost([span for span in lost.values() if span[2]])
        self.save_partitions(self._sites)

    def site_bookmark(self, key: str) -> dt.datetime | None:
        """The newest reading stored for a site (else the stream's bookmark of an older state)."""
        return self._sites.get(key) or self._legacy

    def no_longer_in_feed(self, bookmark: dt.datetime) -> tuple[dt.datetime, dt.datetime, int]:
        """The readings after ``bookmark`` published on gas days the feed no longer holds.

        A reading is published ``lag`` after it applies (the feed's own publication time less
        its newest reading), so the readings of a gas day's last ``lag`` never reach the feed
        before it is cleared at the rollover: they are not counted.
        """
        if self._feed_start is None or self._lag is None or bookmark >= self._feed_start:
            return (bookmark, bookmark, 0)
        step, count, last = FLOW_READING_INTERVAL, 0, bookmark
        day = values.gas_day(bookmark)
        while (start := values.gas_day_start(day)) < self._feed_start:
            end = values.gas_day_start(day + dt.timedelta(days=1)) - self._lag
            first_step = max(0, -((bookmark - start) // step))  # the first reading in the day
            first_step = max(first_step, 1)
            last_step = (end - bookmark) // step
            if last_step >= first_step:
                count += last_step - first_step + 1
                last = bookmark + last_step * step
            day += dt.timedelta(days=1)
        return (bookmark + step, last, count)

    def report_lost(self, spans: list[tuple[dt.datetime, dt.datetime, int]]) -> None:
        """One WARNING for every reading lost to a gas-day rollover during an outage."""
        if not spans:
            return
        self.logger.warning(
            "%s: %d readings of %d sites from %s to %s are no longer in the feed, which holds "
            "only the current gas day (since 05:00 UK time): they were published while no run "
            "read the feed and cannot be read again",
            self.name,
            sum(count for _, _, count in spans),
            len(spans),
            iso(min(first for first, _, _ in spans)),
            iso(max(last for _, last, _ in spans)),
        )

    @override
    def records_from(self, payload: object) -> Iterable[dict]:
        published = values.instant(values.require(payload, "publishedTime"))
        gas_day = values.day(payload.get("currentGasDay")) if isinstance(payload, dict) else None
        records: list[dict] = []
        newest: dt.datetime | None = None
        for group in values.require(payload, "instantaneousFlow") or ():
            description = values.text(values.require(group, "description"))
            for site in values.require(group, "sites") or ():
                site_name = values.text(values.require(site, "siteName"))
                keys = {"group_id": values.key(description), "site_id": values.key(site_name)}
                bookmark = self.site_bookmark(keys_of(keys))
                self._answered.add(keys_of(keys))
                for reading in values.require(site, "siteGasDetail") or ():
                    self.note_unknown(reading, FLOW_KEYS)
                    applicable_at = self.instant(reading.get("applicableAt"), "applicableAt")
                    newest = max(newest or applicable_at, applicable_at)
                    is_new = bookmark is None or applicable_at > bookmark
                    if is_new and not self.before_start(applicable_at):
                        records.append(
                            {
                                **keys,
                                "group": description,
                                "site_name": site_name,
                                "applicable_at": applicable_at,
                                "flow_rate": self.number(reading.get("flowRate"), "flowRate"),
                                "quality_indicator": values.text(reading.get("qualityIndicator")),
                                "schedule_time": values.instant(reading.get("scheduleTime")),
                                "published_time": published,
                                "gas_day": values.gas_day(applicable_at),
                            }
                        )
        records.sort(key=lambda r: (r["applicable_at"], r["group_id"], r["site_id"]))
        self.note_feed(gas_day, published, newest)
        yield from records

    def note_feed(
        self, gas_day: dt.date | None, published: dt.datetime | None, newest: dt.datetime | None
    ) -> None:
        """Keep when the feed's gas day starts and how long after a reading it is published."""
        if gas_day is None and newest is not None:
            gas_day = values.gas_day(newest)
        if gas_day is not None:
            self._feed_start = values.gas_day_start(gas_day)
        if published is not None and newest is not None:
            self._lag = max(published - newest, dt.timedelta())


def keys_of(keys: t.Mapping[str, t.Any]) -> str:
    """The partition key of a flow site."""
    return f"{keys['group_id']}/{keys['site_id']}"


class PublicationsStream(DateWindowStream):
    """Values of the data items chosen by id, name, category or set (``POST /publications/gasday``).

    The ids, names, categories and sets are resolved to ids once, before any stream reads data.
    """

    name = "publications"
    path = "/publications/gasday"
    primary_keys = ("publication_id", "applicable_at")
    replication_key = "generated_time"
    schema = th.PropertiesList(
        th.Property("publication_id", th.StringType, required=True, description="e.g. PUBOB637"),
        th.Property("publication_name", th.StringType, description="The catalogue name"),
        th.Property(
            "applicable_at",
            th.DateTimeType,
            required=True,
            description="UTC; a daily item's gas day at 00:00 UTC",
        ),
        th.Property("applicable_for", th.DateType, description="The gas day"),
        th.Property("value", th.NumberType, description="In the unit of the data item"),
        th.Property(
            "quality_indicator",
            th.StringType,
            description="L late, A amended, C corrected, E expired, S substituted, or null",
        ),
        th.Property("generated_time", th.DateTimeType, required=True, description="UTC"),
    ).to_dict()

    is_sorted = False
    window_days_setting = "publication_window_days"

    _ids: list[str] | None = None
    _catalogue: list[catalogue.Entry] | None = None

    @override
    def prepare(self) -> None:
        """Resolve the ids, names, categories and sets chosen to ids, once.

        Raises:
            catalogue.SelectionError: for a name, category or set that is not held.
        """
        if self._ids is not None:
            return
        choice = catalogue.Choice.from_config(self.config)
        entries = self.catalogue_entries() if choice.needs_catalogue else []
        if choice.needs_catalogue and not entries:
            raise ResponseError(
                f"{self.url_base}{CATALOGUE_PATH} answered with no data items: those chosen by "
                "name, category or set cannot be found; run again later, or choose them by id "
                "(`publication_ids`)"
            )
        selection = catalogue.resolve(choice, entries)
        for set_name, names in selection.missing.items():
            self.logger.warning(
                "%s: the set %s names data items the National Gas catalogue no longer holds, "
                "read without them: %s",
                self.name,
                set_name,
                "; ".join(catalogue.quoted(n) for n in names),
            )
        self.logger.info("%s: %d data items chosen", self.name, len(selection.ids))
        self._ids = selection.ids

    def catalogue_entries(self) -> list[catalogue.Entry]:
        """The catalogue's entries, read once per run."""
        if self._catalogue is None:
            payload = self.get_json(CATALOGUE_PATH)
            try:
                self._catalogue = catalogue.entries(payload) if payload is not None else []
            except values.BadValueError as exc:
                raise ResponseError(f"{self.url_base}{CATALOGUE_PATH}: {exc}") from exc
        return self._catalogue

    @property
    def publication_ids(self) -> list[str]:
        """The ids this run reads (resolved at the start of the run)."""
        self.prepare()
        return list(self._ids or ())

    @override
    def request_filters(self) -> dict[str, t.Any]:
        return {"publicationIds": self.publication_ids, "latestValue": "Y"}

    @override
    def days_to_read(self) -> list[dt.date]:
        fallback = self.bookmark_instant() or self.start_instant
        starts = [self._bookmarks.get(i) or fallback for i in self.publication_ids]
        since = min((s for s in starts if s is not None), default=None)
        return day_range(self.first_day(since, self.lookback_days), self.last_day())

    @property
    def lookback_days(self) -> int:
        """Days before a data item's bookmark that are read again, for revisions."""
        return int(self.config["lookback_days"])

    @override
    def get_records(self, context: Context | None) -> Iterable[dict]:
        if not self.publication_ids:
            report.logger.info("%s: no data item is chosen: none is read", self.name)
            return
        yield from super().get_records(context)

    @override
    def partition_of(self, record: dict) -> tuple[str, dt.datetime, str]:
        day = record["applicable_for"]
        return record["publication_id"], record["generated_time"], day.isoformat()

    @override
    def expected_keys(self) -> set[str]:
        return set(self.publication_ids)

    @override
    def expected(self, days: list[dt.date], keys: t.AbstractSet[str]) -> list[gaps.Gap]:
        """Every gas day from ``start_date`` to the newest day seen or published by now.

        A data item's day is published by the second day after it; a day beyond that is
        expected only up to the item's newest day seen in this run.
        """
        first = uk_day(self.start_instant) if self.start_instant else None
        published_by = uk_day(self.api_now()) - dt.timedelta(days=PUBLISHED_BY_DAYS)
        newest: dict[str, str] = {}
        for key, day in self._seen:
            newest[key] = max(newest.get(key, day), day)
        expected = []
        for key in keys:
            horizon = max(published_by.isoformat(), newest.get(key, ""))
            expected += [
                (key, day.isoformat())
                for day in days
                if day.isoformat() <= horizon and (first is None or day >= first)
            ]
        return expected

    @override
    def validate_response(self, response: requests.Response) -> None:
        if response.status_code == 400:  # noqa: PLR2004
            raise ResponseError(self._rejected_ids_message())
        super().validate_response(response)

    def _rejected_ids_message(self) -> str:
        requested = self.publication_ids
        try:
            known = {e.publication_id for e in self.catalogue_entries()}
            unknown = [i for i in requested if i not in known] or requested
        except (FatalAPIError, RetriableAPIError, ValueError, OSError):
            unknown = requested
        return (
            f"{self.endpoint} answered 400 for publication ids {', '.join(unknown)}: they are not "
            "in the National Gas catalogue; check the setting `publication_ids`"
        )

    @override
    def records_from(self, payload: object) -> Iterable[dict]:
        items = payload.get("data", payload) if isinstance(payload, dict) else payload
        if not isinstance(items, list):
            raise ResponseError(f"{self.endpoint}: expected a list of publications")
        for item in items:
            publication_id = values.text(values.require(item, "publicationId"))
            for row in values.require(item, "publications") or ():
                self.note_unknown(row, ROW_KEYS)
                applicable_at = self.instant(row.get("applicableAt"), "applicableAt")
                generated = self.instant(row.get("generatedTimeStamp"), "generatedTimeStamp")
                if self.before_start(generated):
                    continue
                yield {
                    "publication_id": publication_id,
                    "publication_name": values.text(
                        row.get("publicationName") or item.get("publicationName")
                    ),
                    "applicable_at": applicable_at,
                    "applicable_for": values.day(row.get("applicableFor"))
                    or values.gas_day(applicable_at),
                    "value": self.number(row.get("value"), "value"),
                    "quality_indicator": values.text(row.get("qualityIndicator")),
                    "generated_time": generated,
                }


class PublicationCatalogueStream(NationalGasStream):
    """The data items the API publishes (``GET /publications/catalogue``); full table."""

    name = "publication_catalogue"
    path = CATALOGUE_PATH
    primary_keys = ("publication_id",)
    replication_key = None
    schema = th.PropertiesList(
        th.Property("publication_id", th.StringType, required=True),
        th.Property("name", th.StringType),
        th.Property("category", th.StringType),
        th.Property("sub_category", th.StringType),
    ).to_dict()

    @override
    def get_records(self, context: Context | None) -> Iterable[dict]:
        """The catalogue's entries, read once per run by whichever stream needs them first."""
        self.prepare_run()
        publications = t.cast("PublicationsStream", self.owner.streams[PublicationsStream.name])
        yield from (entry.record() for entry in publications.catalogue_entries())


STREAMS: tuple[type[NationalGasStream], ...] = (
    GasQualityStream,
    GasQualityHistoryStream,
    InstantaneousFlowsStream,
    PublicationsStream,
    PublicationCatalogueStream,
)
"""Every stream of the tap, in the order it syncs them: the one list to add a stream to."""
