"""Turning the API's loosely typed values into clean record values."""

from __future__ import annotations

import datetime as dt
import decimal
import re
import typing as t
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
GAS_DAY_START = dt.timedelta(hours=5)


class BadValueError(ValueError):
    """A value that cannot be read as the type the API documents."""


def number(value: object) -> decimal.Decimal | int | None:
    """A number from a number or a string; None for null or blank.

    Raises:
        BadValueError: for text that is not a finite number.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, decimal.Decimal)):
        return value
    if isinstance(value, float):
        return decimal.Decimal(repr(value))
    text = str(value).strip()
    if not text:
        return None
    try:
        parsed = decimal.Decimal(text)
    except decimal.InvalidOperation as exc:
        raise BadValueError(f"not a number: {value!r}") from exc
    if not parsed.is_finite():
        raise BadValueError(f"not a finite number: {value!r}")
    return parsed


def text(value: object) -> str | None:
    """Text with surrounding blanks removed; None for null or blank."""
    if value is None:
        return None
    cleaned = str(value).strip()
    return cleaned or None


def instant(value: object, naive: dt.tzinfo = LONDON) -> dt.datetime | None:
    """A timezone-aware UTC datetime from ISO 8601 text (or a datetime); None for null or blank.

    An offset such as ``+01:00`` is honoured; a time without one is in ``naive``: UK local time
    for the API's values, UTC for settings and state.

    Raises:
        BadValueError: for text that is not an ISO 8601 date-time.
    """
    if isinstance(value, dt.datetime):
        parsed = value
    elif (cleaned := text(value)) is None:
        return None
    else:
        try:
            parsed = dt.datetime.fromisoformat(cleaned)
        except ValueError as exc:
            raise BadValueError(f"not an ISO 8601 date-time: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=naive)
    return parsed.astimezone(dt.UTC)


def day(value: object) -> dt.date | None:
    """A date from ``YYYY-MM-DD`` (or a date-time's date); None for null or blank.

    Raises:
        BadValueError: for text that is not a date.
    """
    cleaned = text(value)
    if cleaned is None:
        return None
    try:
        return dt.date.fromisoformat(cleaned[:10])
    except ValueError as exc:
        raise BadValueError(f"not a date: {value!r}") from exc


def gas_day(moment: dt.datetime) -> dt.date:
    """The gas day of an instant: 05:00 to 05:00 Europe/London, named by its first day."""
    return (moment.astimezone(LONDON) - GAS_DAY_START).date()


def gas_day_start(day: dt.date) -> dt.datetime:
    """The instant a gas day starts (05:00 Europe/London), in UTC."""
    return (dt.datetime.combine(day, dt.time(), LONDON) + GAS_DAY_START).astimezone(dt.UTC)


def today_in_london() -> dt.date:
    """Today's date in the UK."""
    return dt.datetime.now(LONDON).date()


def require(payload: object, key: str) -> t.Any:  # noqa: ANN401
    """``payload[key]``, or a :class:`BadValueError` naming the key."""
    if not isinstance(payload, dict) or key not in payload:
        raise BadValueError(f"the response has no '{key}'")
    return payload[key]


def key(value: object) -> str:
    """A stable identifier from a display name: lower case, words joined by ``_``.

    ``BACTON``, ``Bacton`` and ``Bacton `` give ``bacton``; ``MILFORD HAVEN - DRAGON`` gives
    ``milford_haven_dragon``.
    """
    return "_".join(re.findall(r"[0-9a-z]+", str(value).casefold())) or "_"
