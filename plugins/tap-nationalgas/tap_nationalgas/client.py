"""HTTP base stream for the National Gas operational data API."""

from __future__ import annotations

import datetime as dt
import decimal
import email.utils
import socket
import typing as t
from collections import deque
from dataclasses import dataclass
from functools import cached_property

import backoff
import requests
import urllib3
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import BaseAPIPaginator
from singer_sdk.streams import RESTStream
from singer_sdk.streams.rest import HTTPRequest
from typing_extensions import override

from tap_nationalgas import gaps, progress, report, values

if t.TYPE_CHECKING:
    from collections.abc import Generator, Iterable, Iterator

    from singer_sdk.helpers.types import Context
    from singer_sdk.streams.rest import PageContext

    from tap_nationalgas.tap import TapNationalGas


class ResponseError(FatalAPIError):
    """The API answered, but not with what the endpoint documents."""


class UnreachableError(FatalAPIError):
    """The API could not be reached at all."""


class ResponseTooLargeError(ResponseError):
    """An answer larger than ``max_response_mb``: it is not read further, nor parsed."""


MB = 1024 * 1024


class _BodyTooLargeError(Exception):
    """Raised while reading a body once it passed its limit."""


class LimitedBody:
    """The raw body of a streamed response, read at most ``limit`` bytes (decoded).

    It takes the place of ``response.raw``: ``response.content`` reads through it chunk by
    chunk, and stops with :class:`_BodyTooLargeError` as soon as the limit is passed, having
    held at most the limit and one chunk. Read errors stay requests' own (requests translates
    urllib3's errors of ``stream``), so they are retried as before.
    """

    def __init__(self, raw: t.Any, limit: int) -> None:  # noqa: ANN401 (urllib3's response)
        """Wrap ``raw``; ``limit`` is in bytes."""
        self._raw, self.limit, self.size = raw, limit, 0

    def stream(
        self,
        amt: int | None = None,
        decode_content: bool | None = None,  # noqa: FBT001 (urllib3's signature)
    ) -> t.Iterator[bytes]:
        """The body's chunks, as urllib3 streams them, until the limit is passed."""
        for chunk in self._raw.stream(amt, decode_content=decode_content):
            self.size += len(chunk)
            if self.size > self.limit:
                raise _BodyTooLargeError
            yield chunk

    def __getattr__(self, name: str) -> t.Any:  # noqa: ANN401
        """Anything else (``close``, ``release_conn``, headers) is the raw response's."""
        return getattr(self._raw, name)


FINAL_CAUSES = frozenset({"name does not resolve", "connection refused"})
"""Causes no wait can mend while the API has not answered once in the run."""


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error and those it wraps: arguments, urllib3's ``reason``, cause and context."""
    todo, seen = [error], set()
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [*current.args, getattr(current, "reason", None)]
        wrapped += [current.__cause__, current.__context__]
        todo.extend(e for e in wrapped if isinstance(e, BaseException))


def connection_cause(error: BaseException) -> str:
    """A short cause of a connection failure: name does not resolve, refused, timed out."""
    for cause in causes(error):
        if isinstance(cause, socket.gaierror | urllib3.exceptions.NameResolutionError):
            return "name does not resolve"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, requests.exceptions.Timeout | TimeoutError):
            return "no answer in time"
    return type(error).__name__


def retry_after_seconds(error: object) -> float | None:
    """Seconds asked for by the ``Retry-After`` header of a failed response, if any."""
    response = getattr(error, "response", None)
    header = response.headers.get("Retry-After") if response is not None else None
    if not header:
        return None
    if header.strip().isdigit():
        return float(header)
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


@dataclass(frozen=True)
class Page:
    """One request of a stream's run: the path, the method and the JSON body."""

    path: str
    method: str = "GET"
    body: dict[str, t.Any] | None = None
    window: tuple[dt.date, dt.date] | None = None
    """The first and last day the request asks for, if it asks for days."""


class PageListPaginator(BaseAPIPaginator[Page]):
    """Walks a list of requests, empty answers included; the stream may add to it meanwhile."""

    def __init__(self, pages: list[Page]) -> None:
        """Start at the first request."""
        super().__init__(pages[0])
        self.queue = deque(pages[1:])

    @override
    def get_next(self, response: requests.Response) -> Page | None:
        return self.queue.popleft() if self.queue else None

    @override
    def continue_if_empty(self, response: requests.Response) -> bool:
        return True


class NationalGasStream(RESTStream[Page]):
    """A stream of the operational data API: JSON bodies, no auth, a list of requests a run."""

    # Records are built typed here (numbers, ISO 8601 text in UTC), so the SDK's per-property
    # type conformance would only repeat that work.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    _paginator: PageListPaginator | None = None
    _progress: progress.Progress
    _page: Page | None = None
    _api_now: dt.datetime | None = None
    _unknown_keys: set[str]
    pending_gap_at: t.ClassVar[str | None] = None
    """What the ``at`` of a pending gap in this stream's state is: ``"day"``, ``"instant"``, or
    None for a stream without pending gaps."""

    def __init__(self, tap: TapNationalGas) -> None:
        """Keep the tap, whose state writer sends this stream's STATE messages."""
        super().__init__(tap)
        self.owner = tap

    def check_state(self, stream_state: t.Mapping[str, t.Any]) -> None:
        """Fail, naming the stream, on a bookmark of its state that cannot be read.

        Raises:
            gaps.UnreadableStateError: for the first such bookmark.
        """
        gaps.check_state(self.name, stream_state, self.pending_gap_at)

    @property
    @override
    def url_base(self) -> str:
        return str(self.config["api_url"]).rstrip("/")

    @property
    @override
    def http_headers(self) -> dict:
        return {"User-Agent": self.config["user_agent"], "Accept": "application/json"}

    @property
    @override
    def timeout(self) -> int:
        return int(self.config["request_timeout"])

    @property
    @override
    def requests_session(self) -> requests.Session:
        """The SDK's session, streaming: a body is read in :meth:`validate_response`, bounded."""
        session = super().requests_session
        session.stream = True
        return session

    @override
    def backoff_max_tries(self) -> int:
        return int(self.config["max_retries"]) + 1

    @override
    def request_decorator(self, func: t.Callable) -> t.Callable:
        """Retry as the SDK does, but not where waiting cannot help; name the cause at the end."""
        retried = backoff.on_exception(
            self.backoff_wait_generator,
            (
                ConnectionResetError,
                RetriableAPIError,
                requests.exceptions.Timeout,
                requests.exceptions.ConnectionError,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
            ),
            max_tries=self.backoff_max_tries,
            on_backoff=self.backoff_handler,
            jitter=self.backoff_jitter,
            logger=self.logger,
            giveup=self.gives_up,
        )(func)

        def request(*args: t.Any, **kwargs: t.Any) -> requests.Response:  # noqa: ANN401
            try:
                response = retried(*args, **kwargs)
            except requests.exceptions.RequestException as exc:
                raise self.unreachable(exc) from None
            self.owner.api_answered = True
            return t.cast("requests.Response", response)

        return request

    def gives_up(self, error: BaseException) -> bool:
        """True for a failure no wait can mend: no host, or a refused first connection of a run.

        Until the API has answered once in this run (``api_answered`` of the tap), a host
        that does not resolve or a refused connection is final, since waiting cannot help.
        """
        return (
            not self.owner.api_answered
            and isinstance(error, requests.exceptions.ConnectionError)
            and connection_cause(error) in FINAL_CAUSES
        )

    def unreachable(self, error: BaseException) -> UnreachableError:
        """The error that says the API could not be reached, and why."""
        return UnreachableError(
            f"could not reach {self.url_base} ({connection_cause(error)}); check the network, "
            "or the `api_url` setting"
        )

    @override
    def backoff_wait_generator(self) -> Generator[float, t.Any, None]:
        """Wait ``Retry-After`` when the API says so, else ``retry_interval`` doubling."""
        interval = float(self.config["retry_interval"])
        longest = float(self.config["max_retry_delay"])
        attempt = 0
        error = yield 0.0
        while True:
            asked = retry_after_seconds(error)
            wait = asked if asked is not None else interval * 2**attempt
            attempt += 1
            error = yield min(wait, longest)

    def pages(self) -> list[Page]:
        """The requests of this run, in order: by default one request of ``path``."""
        return [Page(self.path, self.http_method)]

    def prepare(self) -> None:
        """Check, before the run's first request, what must hold for this stream to read."""

    def prepare_run(self) -> None:
        """Prepare every selected stream of the run (:meth:`prepare`), before any data is read."""
        for stream in self.owner.streams.values():
            if isinstance(stream, NationalGasStream) and stream.selected:
                stream.prepare()

    @override
    def get_records(self, context: Context | None) -> Iterable[dict]:
        self.prepare_run()
        self._unknown_keys: set[str] = set()
        pages = self.pages()
        if not pages:
            return
        self._paginator = PageListPaginator(pages)
        self._progress = progress.Progress(self.name, len(pages), report.logger)
        yield from super().get_records(context)

    @override
    def get_new_paginator(self) -> PageListPaginator:
        if self._paginator is None:  # pragma: no cover (get_records sets it)
            self._paginator = PageListPaginator(self.pages())
        return self._paginator

    def add_pages(self, pages: Iterable[Page]) -> None:
        """Add requests to the end of this run's list (after an answer said they are needed)."""
        if self._paginator is not None:
            added = list(pages)
            self._paginator.queue.extend(added)
            self._progress.total += len(added)

    @override
    def get_http_request(self, *, page: PageContext[Page]) -> HTTPRequest:
        self._page = request = page.next_page_token or Page(self.path, self.http_method)
        return HTTPRequest(
            url=f"{self.url_base}{request.path}",
            method=request.method,
            headers=self.http_headers,
            data=request.body,
        )

    @override
    def validate_response(self, response: requests.Response) -> None:
        """Check the status, then read the body up to ``max_response_mb`` (retried as a request).

        Raises:
            ResponseTooLargeError: once the body passes the limit, before it is parsed.
        """
        try:
            super().validate_response(response)
        except (FatalAPIError, RetriableAPIError):
            response.close()  # its body is not needed: the connection goes back to the pool
            raise
        self.read_body(response)
        self._api_now = api_clock(response)

    def read_body(self, response: requests.Response) -> bytes:
        """The body of a streamed response, read whole only while within ``max_response_mb``.

        Raises:
            ResponseTooLargeError: naming the URL, the limit and the setting.
        """
        limit = int(self.config["max_response_mb"])
        response.raw = LimitedBody(response.raw, limit * MB)
        try:
            return response.content
        except _BodyTooLargeError:
            response.close()
            raise ResponseTooLargeError(self.too_large_message(response, limit)) from None

    def too_large_message(self, response: requests.Response, limit: int) -> str:
        """Why an answer was not read: its URL, the limit, and the settings that help."""
        method = response.request.method
        window = self.page.window if response.url.startswith(self.endpoint) else None
        asked = f" (days {window[0]} to {window[1]})" if window else ""
        smaller = getattr(self, "window_days_setting", None) if window else None
        fix = f", or lower `{smaller}` to ask for fewer days at once" if smaller else ""
        return (
            f"the answer to {method} {response.url}{asked} is larger than {limit} MB, the "
            f"setting `max_response_mb`: it was not read further; raise `max_response_mb`{fix}"
        )

    def get_json(self, path: str) -> object | None:
        """``GET path`` outside the stream's own requests, retried as they are; its JSON."""
        self._page = Page(path, "GET")

        def get() -> requests.Response:
            response = self.requests_session.get(
                f"{self.url_base}{path}", headers=self.http_headers, timeout=self.timeout
            )
            NationalGasStream.validate_response(self, response)
            return response

        try:
            return self.json_payload(self.request_decorator(get)())
        finally:
            self._page = None

    @override
    def response_error_message(self, response: requests.Response) -> str:
        reason = response.reason or "error"
        return f"{response.status_code} {reason} from {response.request.method} {self.endpoint}"

    @property
    def endpoint(self) -> str:
        """The URL of the request being made (else of the stream's own path)."""
        return f"{self.url_base}{self.page.path}"

    @property
    def page(self) -> Page:
        """The request whose answer is being read."""
        return self._page or Page(self.path, self.http_method)

    def api_now(self) -> dt.datetime:
        """The API's clock: the ``Date`` of its last answer, else this machine's clock."""
        return self._api_now or dt.datetime.now(dt.UTC)

    @property
    def gap_retry_days(self) -> int:
        """Days a gap is read again before it is given up."""
        return int(self.config["gap_retry_days"])

    def ledger(self) -> gaps.GapLedger:
        """The pending gaps kept in this stream's state."""
        return gaps.GapLedger.load(
            self.stream_state, f"{self.name} ({self.path})", self.logger, self.gap_retry_days
        )

    def write_state(self) -> None:
        """Send the tap's state in a STATE message now (unless it equals the last one sent).

        With ``batch_config`` none is sent here: records go to batch files, and a STATE sent
        now could come before the BATCH message of the file that holds the records it covers.
        The SDK sends the state after each BATCH message instead, and the state then covers
        only records of the files already announced (it is updated as records are handed on).
        """
        if self.get_batch_config(self.config) is not None:
            return
        self.owner.state_writer.write_state(self.tap_state)

    @override
    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        payload = self.json_payload(response)
        count = 0
        try:
            for record in self.records_from(payload) if payload is not None else ():
                count += 1
                yield record
        except values.BadValueError as exc:
            raise ResponseError(f"{self.endpoint}: {exc}") from exc
        self._progress.page_done(self.page.window, count)
        self.page_finished()

    def page_finished(self) -> None:
        """Called once every record of the page just read has been emitted.

        The SDK writes a RECORD message as soon as the stream yields the record, and asks for
        the next one only after the stream's :meth:`get_records` has taken note of it, so here
        the page is written and counted. Nothing to do by default.
        """

    def json_payload(self, response: requests.Response) -> object | None:
        """The decoded body; None for an empty body (no records).

        Raises:
            ResponseError: when the body is not JSON (the portal answers HTML for unknown paths).
        """
        if not response.content.strip():
            report.logger.info("%s answered with an empty body: no records", self.endpoint)
            return None
        content_type = response.headers.get("Content-Type") or "no content type"
        try:
            return response.json(parse_float=decimal.Decimal)
        except ValueError as exc:
            if "json" not in content_type:
                msg = f"expected JSON from {response.url}, got {content_type}"
                raise ResponseError(msg) from None
            msg = (
                f"the body from {response.url} is not valid JSON: {exc} of "
                f"{len(response.content)} bytes"
            )
            raise ResponseError(msg) from None

    def records_from(self, payload: object) -> Iterable[dict]:
        """Turn a decoded response into records."""
        raise NotImplementedError

    def note_unknown(self, item: dict, known: t.AbstractSet[str]) -> None:
        """Log, once a run, each key of an answer's item that this stream does not read."""
        for key in sorted(item.keys() - known - self._unknown_keys):
            self._unknown_keys.add(key)
            self.logger.warning(
                "%s: %s sends '%s', which the stream does not read: it is not stored (a new "
                "metric? it needs a property in the stream's schema)",
                self.name,
                self.endpoint,
                key,
            )

    def number(self, value: object, field: str) -> decimal.Decimal | int | None:
        """A number, or None with a warning when the API sent text that is not one."""
        try:
            return values.number(value)
        except values.BadValueError as exc:
            self.logger.warning("%s: %s in '%s', written as null", self.endpoint, exc, field)
            return None

    def instant(self, value: object, field: str) -> dt.datetime:
        """A required timestamp, in UTC."""
        moment = values.instant(value)
        if moment is None:
            raise values.BadValueError(f"'{field}' is missing")
        return moment

    @override
    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        """Render times as ISO 8601 text."""
        for key, value in row.items():
            if isinstance(value, dt.date):
                row[key] = (
                    value.isoformat(timespec="microseconds")
                    if isinstance(value, dt.datetime)
                    else value.isoformat()
                )
        return row

    @cached_property
    def start_instant(self) -> dt.datetime | None:
        """``start_date`` as an aware datetime (naive means UTC); it is inclusive."""
        return values.instant(self.config.get("start_date"), dt.UTC)

    def before_start(self, moment: dt.datetime) -> bool:
        """True for a record stamped before ``start_date``."""
        return self.start_instant is not None and moment < self.start_instant

    def bookmark_instant(self) -> dt.datetime | None:
        """The stream's own bookmark (the SDK's), if any, as an aware datetime."""
        value = self.stream_state.get("replication_key_value")
        return values.instant(value, dt.UTC) if value else None

    def legacy_bookmark(self) -> dt.datetime | None:
        """The stream's bookmark as every partition's, for a state of an older version.

        A state written before partition bookmarks existed has none; once it has them, a
        partition without one has nothing stored, and this is None.
        """
        if "partition_bookmarks" in self.stream_state:
            return None
        return self.bookmark_instant()

    def save_partitions(self, bookmarks: gaps.PartitionBookmarks) -> None:
        """Save the partition bookmarks in the stream's state.

        A state of an older version keeps its form (no ``partition_bookmarks``) until a run
        knows a partition, so that its bookmark still stands for every partition.
        """
        if bookmarks.values or "partition_bookmarks" in self.stream_state:
            bookmarks.save(self.stream_state)

    def last_day(self) -> dt.date:
        """The last day to read: ``end_date``, else today in the UK."""
        end = self.config.get("end_date")
        return values.day(end) or values.today_in_london()


def api_clock(response: requests.Response) -> dt.datetime | None:
    """The time a response's ``Date`` header gives, if it has a valid one."""
    header = response.headers.get("Date")
    try:
        return email.utils.parsedate_to_datetime(header) if header else None
    except (TypeError, ValueError):
        return None


def day_windows(days: Iterable[dt.date], size: int) -> list[tuple[dt.date, dt.date]]:
    """Runs of consecutive days, cut into windows of at most ``size`` days, ascending."""
    windows: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if windows:
            first, last = windows[-1]
            if day == last + dt.timedelta(days=1) and (day - first).days < size:
                windows[-1] = (first, day)
                continue
        windows.append((day, day))
    return windows


def day_range(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every day from ``first`` to ``last``, both included."""
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def window_pages(
    path: str, days: Iterable[dt.date], size: int, filters: dict[str, t.Any]
) -> list[Page]:
    """POST requests for these days, in windows of at most ``size`` days, ascending."""
    return [
        Page(
            path,
            "POST",
            {"fromDate": first.isoformat(), "toDate": last.isoformat(), **filters},
            (first, last),
        )
        for first, last in day_windows(days, size)
    ]


class DateWindowStream(NationalGasStream):
    """A POST endpoint read in windows of days, one request per window, empty windows included.

    The days read run from the bookmark (or ``start_date``), less a look-back, to ``end_date``
    (or today), plus the days of pending gaps (``pending_gaps`` entries whose ``at`` is a day).
    Every record of a window read is emitted, so a window read again is written again.

    Once every record of a window has been emitted, the readings expected in it are settled
    against those seen (a reading missing is a pending gap), and the partition bookmarks and
    pending gaps go into the stream's state and out in a STATE message: a run stopped in the
    middle loses at most the window it was reading. The gaps are logged once, at the end.
    """

    http_method = "POST"
    pending_gap_at = "day"
    window_days_setting: str
    """The setting that holds the window's length in days."""
    _bookmarks: gaps.PartitionBookmarks
    _gaps: gaps.GapLedger
    _seen: set[gaps.Gap]
    _days_done: list[dt.date]
    _keys_settled: set[str]

    @override
    def get_records(self, context: Context | None) -> Iterable[dict]:
        self._bookmarks = gaps.PartitionBookmarks.load(self.stream_state)
        self._gaps = self.ledger()
        self._seen, self._days_done, self._keys_settled = set(), [], set()
        for record in super().get_records(context):
            key, moment, at = self.partition_of(record)  # before the SDK renders the times
            yield record
            self._bookmarks.advance(key, moment)
            self._seen.add((key, at))
        expected = self.expected(self._days_done, self._keys_settled)
        self._gaps.settle(expected, self._seen, self.api_now())
        self.checkpoint()
        self._gaps.report()

    @override
    def page_finished(self) -> None:
        window = self.page.window
        if window is None:  # pragma: no cover (every request of this stream is a window)
            return
        days = day_range(*window)
        self._days_done += days
        new = self.expected_keys() - self._keys_settled
        # the window's days for the keys known before; every day read so far for a new key
        expected = self.expected(days, self._keys_settled) + self.expected(self._days_done, new)
        self._keys_settled |= new
        self._gaps.settle(expected, self._seen, self.api_now())
        self.checkpoint()

    def checkpoint(self) -> None:
        """Save the partition bookmarks and pending gaps in the stream's state; send a STATE."""
        self._gaps.expire(self.api_now())
        self._bookmarks.save(self.stream_state)
        self._gaps.save(self.stream_state)
        self.write_state()

    def partition_of(self, record: dict) -> tuple[str, dt.datetime, str]:
        """A record's partition key, its bookmark value, and the day it is a reading of."""
        raise NotImplementedError

    def expected_keys(self) -> set[str]:
        """The partitions expected to have readings on the days read."""
        raise NotImplementedError

    def expected(self, days: list[dt.date], keys: t.AbstractSet[str]) -> list[gaps.Gap]:
        """The readings (key, day) that these days should hold for these keys."""
        raise NotImplementedError

    def days_to_read(self) -> list[dt.date]:
        """The days this run asks for, besides those of pending gaps."""
        raise NotImplementedError

    @override
    def pages(self) -> list[Page]:
        pending = {dt.date.fromisoformat(at) for _, at in self._gaps.pending()}
        return window_pages(
            self.path,
            {*self.days_to_read(), *pending},
            int(self.config[self.window_days_setting]),
            self.request_filters(),
        )

    def request_filters(self) -> dict[str, t.Any]:
        """What the request body holds besides the dates."""
        return {}

    def first_day(self, since: dt.datetime | None, lookback_days: int = 0) -> dt.date:
        """The UK day of ``since`` less ``lookback_days``; without it, the day before today."""
        if since is None:
            return self.last_day() - dt.timedelta(days=max(lookback_days, 1))
        return since.astimezone(values.LONDON).date() - dt.timedelta(days=lookback_days)
