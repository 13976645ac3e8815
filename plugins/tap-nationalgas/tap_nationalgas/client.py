"""HTTP base stream for the National Gas operational data API."""

from __future__ import annotations

import datetime as dt
import decimal
import email.utils
import typing as t

from singer_sdk.exceptions import FatalAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import BaseAPIPaginator
from singer_sdk.streams import RESTStream
from typing_extensions import override

from tap_nationalgas import values

if t.TYPE_CHECKING:
    from collections.abc import Generator, Iterable

    import requests
    from singer_sdk.helpers.types import Context


class ResponseError(FatalAPIError):
    """The API answered, but not with what the endpoint documents."""


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


class DateWindowPaginator(BaseAPIPaginator[dt.date]):
    """Walks ``days``-long windows from a first date to a last date, empty windows included."""

    def __init__(self, first: dt.date, last: dt.date, days: int) -> None:
        """Start at ``first``; stop after the window that holds ``last``."""
        super().__init__(min(first, last))
        self.last = last
        self.days = days

    @override
    def get_next(self, response: requests.Response) -> dt.date | None:
        following = self.current_value + dt.timedelta(days=self.days)
        return following if following <= self.last else None

    @override
    def continue_if_empty(self, response: requests.Response) -> bool:
        return True


class NationalGasStream(RESTStream[t.Any]):
    """A stream of the operational data API: JSON bodies, no auth, no pagination."""

    # Records are built typed here (numbers, ISO 8601 text in UTC), so the SDK's per-property
    # type conformance would only repeat that work.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

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

    @override
    def backoff_max_tries(self) -> int:
        return int(self.config["max_retries"]) + 1

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

    @override
    def get_new_paginator(self) -> BaseAPIPaginator | None:
        return None

    @override
    def response_error_message(self, response: requests.Response) -> str:
        reason = response.reason or "error"
        return f"{response.status_code} {reason} from {response.request.method} {self.endpoint}"

    @property
    def endpoint(self) -> str:
        """The URL this stream reads."""
        return f"{self.url_base}{self.path}"

    @override
    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        payload = self.json_payload(response)
        if payload is None:
            return
        try:
            yield from self.records_from(payload)
        except values.BadValueError as exc:
            raise ResponseError(f"{self.endpoint}: {exc}") from exc

    def json_payload(self, response: requests.Response) -> object | None:
        """The decoded body; None for an empty body (no records).

        Raises:
            ResponseError: when the body is not JSON (the portal answers HTML for unknown paths).
        """
        if not response.content.strip():
            self.logger.info("%s answered with an empty body: no records", self.endpoint)
            return None
        content_type = response.headers.get("Content-Type") or "no content type"
        try:
            return response.json(parse_float=decimal.Decimal)
        except ValueError:
            raise ResponseError(f"expected JSON from {response.url}, got {content_type}") from None

    def records_from(self, payload: object) -> Iterable[dict]:
        """Turn a decoded response into records."""
        raise NotImplementedError

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
        """Leave out records at or before the bookmark (or start_date); render times as text."""
        if self.replication_key:
            since = self.starting_instant(context)
            if since is not None and row[self.replication_key] <= since:
                return None
        for key, value in row.items():
            if isinstance(value, dt.date):
                row[key] = (
                    value.isoformat(timespec="microseconds")
                    if isinstance(value, dt.datetime)
                    else value.isoformat()
                )
        return row

    def starting_instant(self, context: Context | None) -> dt.datetime | None:
        """The bookmark, else ``start_date``, as an aware datetime (naive means UTC)."""
        since = self.get_starting_timestamp(context)
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        return since

    def first_day(self, context: Context | None, lookback_days: int = 0) -> dt.date:
        """The first day to read: bookmark (or start_date) less ``lookback_days``, in the UK.

        Without either, ``lookback_days`` (at least one) before today.
        """
        since = self.starting_instant(context)
        if since is None:
            return self.last_day() - dt.timedelta(days=max(lookback_days, 1))
        return since.astimezone(values.LONDON).date() - dt.timedelta(days=lookback_days)

    def window(self, start: dt.date, days: int) -> dict[str, str]:
        """The request dates of the ``days``-long window that starts at ``start``."""
        last = min(start + dt.timedelta(days=days - 1), self.last_day())
        return {"fromDate": start.isoformat(), "toDate": last.isoformat()}

    def last_day(self) -> dt.date:
        """The last day to read: ``end_date``, else today in the UK."""
        end = self.config.get("end_date")
        return values.day(end) or values.today_in_london()


class DateWindowStream(NationalGasStream):
    """A POST endpoint read in windows of days, one request per window.

    The windows run from the bookmark (or ``start_date``), less a look-back, to ``end_date``
    (or today); empty windows are requested too.
    """

    http_method = "POST"
    window_days_setting: str
    """The setting that holds the window's length in days."""
    lookback_days_setting: str | None = None
    """The setting that holds how many days before the bookmark to read again, if any."""

    def lookback_days(self) -> int:
        """Days before the bookmark that are read again."""
        return int(self.config[self.lookback_days_setting]) if self.lookback_days_setting else 0

    @override
    def get_new_paginator(self) -> DateWindowPaginator:
        return DateWindowPaginator(
            self.first_day(None, self.lookback_days()),
            self.last_day(),
            int(self.config[self.window_days_setting]),
        )

    @override
    def prepare_request_payload(
        self,
        context: Context | None,
        next_page_token: dt.date | None,
    ) -> dict:
        start = next_page_token or self.first_day(context, self.lookback_days())
        window = self.window(start, int(self.config[self.window_days_setting]))
        return {**window, **self.request_filters()}

    def request_filters(self) -> dict[str, t.Any]:
        """What the request body holds besides the dates."""
        return {}
