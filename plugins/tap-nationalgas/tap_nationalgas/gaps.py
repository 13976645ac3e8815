"""What a stream keeps in its state so that no gap becomes permanent.

Two things live beside the SDK's bookmark in a stream's state, both as lists (Meltano merges
states key by key, and a list is replaced whole, so an entry that is gone stays gone):

- ``partition_bookmarks``: one bookmark per partition that can lag the others (a site, a data item),
  the newest value stored for it;
- ``pending_gaps``: readings that an answer should have held and did not, as
  ``{"key", "at", "since"}``: the partition, the day or instant missing, and when the gap was
  first found. They are read again on every run until they arrive or ``gap_retry_days`` pass.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass, field

from tap_nationalgas import report

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Iterable

Gap = tuple[str, str]
"""A partition key and the day (``YYYY-MM-DD``) or instant (ISO 8601) it lacks."""


def _instant(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class UnreadableStateError(Exception):
    """A bookmark of a stream's state that this tap cannot read: no run can start from it."""

    def __init__(self, stream: str, where: str, value: object) -> None:
        """Name the stream, where the bookmark is in its state, and its value."""
        self.stream, self.where, self.value = stream, where, value
        super().__init__(
            f"the state of stream {stream} holds a bookmark that cannot be read ({where}: "
            f"{value!r}): reset the job's state, and the next run starts from start_date"
        )


def check_state(stream: str, state: t.Mapping[str, t.Any], gap_at: str | None) -> None:
    """Fail on the first bookmark of a stream's state that cannot be read.

    Args:
        stream: The stream's name, for the message.
        state: The stream's state.
        gap_at: What the ``at`` of a pending gap is: ``"day"``, ``"instant"``, or None for a
            stream without pending gaps.

    Raises:
        UnreadableStateError: naming the stream, the bookmark's place and its value.
    """
    for where, value, parse in _bookmarks(state, gap_at):
        try:
            parse(value)
        except (TypeError, ValueError, KeyError):
            raise UnreadableStateError(stream, where, value) from None


def _bookmarks(
    state: t.Mapping[str, t.Any], gap_at: str | None
) -> Iterable[tuple[str, object, t.Callable[[t.Any], object]]]:
    """Each bookmark of a stream's state that a run reads: where, value, how it is read."""
    if state.get("replication_key_value") not in {None, ""}:
        yield "replication_key_value", state["replication_key_value"], _instant
    yield from _entries(state, "partition_bookmarks", {"bookmark": _instant})
    if gap_at is not None:
        at = dt.date.fromisoformat if gap_at == "day" else _instant
        yield from _entries(state, "pending_gaps", {"at": at, "since": _instant})


def _entries(
    state: t.Mapping[str, t.Any], name: str, fields: dict[str, t.Callable[[t.Any], object]]
) -> Iterable[tuple[str, object, t.Callable[[t.Any], object]]]:
    """The fields of each entry of a list in a stream's state.

    An entry that is not an object with a ``key`` and these fields is itself unreadable.
    """
    entries = state.get(name) or []
    if not isinstance(entries, list):
        yield name, entries, _not_a_list
        return
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict) or not {"key", *fields} <= entry.keys():
            yield f"{name}[{n}]", entry, _not_an_entry
            continue
        for field_name, parse in fields.items():
            yield f"{name}, key {entry['key']!r}, {field_name}", entry[field_name], parse


def _not_a_list(value: object) -> None:
    raise TypeError(f"not a list: {value!r}")


def _not_an_entry(value: object) -> None:
    raise TypeError(f"not an entry: {value!r}")


@dataclass
class PartitionBookmarks:
    """The newest value stored per partition, kept in state as a list."""

    values: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, state: t.Mapping[str, t.Any]) -> PartitionBookmarks:
        """Read ``state["partition_bookmarks"]``."""
        return cls(
            {str(p["key"]): str(p["bookmark"]) for p in state.get("partition_bookmarks") or ()}
        )

    def save(self, state: dict[str, t.Any]) -> None:
        """Write ``state["partition_bookmarks"]``, sorted by key."""
        state["partition_bookmarks"] = [
            {"key": k, "bookmark": v} for k, v in sorted(self.values.items())
        ]

    def get(self, key: str) -> dt.datetime | None:
        """The bookmark of one partition, if it has one."""
        value = self.values.get(key)
        return _instant(value) if value else None

    def newest(self) -> dt.datetime | None:
        """The newest bookmark of all partitions, if any."""
        return max((_instant(v) for v in self.values.values()), default=None)

    def advance(self, key: str, moment: dt.datetime) -> None:
        """Move a partition's bookmark forward to ``moment`` (never back)."""
        current = self.get(key)
        if current is None or moment > current:
            self.values[key] = moment.astimezone(dt.UTC).isoformat()

    def drop(self, key: str) -> None:
        """Forget a partition."""
        self.values.pop(key, None)


@dataclass
class GapLedger:
    """Readings found missing, read again on the following runs until they arrive or expire.

    A run may settle what it expected against what it saw many times (after each window); what
    it found is logged once, by :meth:`report`.
    """

    where: str
    """The stream and endpoint, for the log."""
    logger: logging.Logger
    retry_days: int
    """Days a gap is read again before it is given up (``gap_retry_days``)."""
    entries: dict[Gap, str] = field(default_factory=dict)
    found: set[Gap] = field(default_factory=set)
    """Gaps found missing in this run."""
    filled: set[Gap] = field(default_factory=set)
    """Gaps filled in this run."""
    expired: set[Gap] = field(default_factory=set)
    """Gaps given up in this run: not expected again in it."""

    @classmethod
    def load(
        cls, state: t.Mapping[str, t.Any], where: str, logger: logging.Logger, retry_days: int
    ) -> GapLedger:
        """Read ``state["pending_gaps"]``."""
        entries = {
            (str(g["key"]), str(g["at"])): str(g["since"]) for g in state.get("pending_gaps") or ()
        }
        return cls(where, logger, retry_days, entries)

    def save(self, state: dict[str, t.Any]) -> None:
        """Write ``state["pending_gaps"]`` (an empty list when none is left)."""
        state["pending_gaps"] = [
            {"key": key, "at": at, "since": since}
            for (key, at), since in sorted(self.entries.items())
        ]

    def expire(self, now: dt.datetime) -> None:
        """Give up the gaps found more than ``retry_days`` ago."""
        limit = now - dt.timedelta(days=self.retry_days)
        for gap in [gap for gap, since in self.entries.items() if _instant(since) < limit]:
            del self.entries[gap]
            self.expired.add(gap)

    def pending(self) -> list[Gap]:
        """The gaps still to read again."""
        return sorted(self.entries)

    def drop_key(self, key: str) -> None:
        """Forget every gap of one partition."""
        for gap in [g for g in self.entries if g[0] == key]:
            del self.entries[gap]

    def settle(self, expected: Iterable[Gap], seen: t.Container[Gap], now: dt.datetime) -> None:
        """Record what was expected and not seen; clear the gaps that were filled."""
        for gap in expected:
            if gap in self.expired:
                continue
            if gap in seen:
                if self.entries.pop(gap, None) is not None:
                    self.filled.add(gap)
            else:
                self.entries.setdefault(gap, now.isoformat())
                self.found.add(gap)

    def report(self) -> None:
        """Log, once at the end of a run, what it found.

        One WARNING for the gaps given up, one INFO line (on the report logger) for those
        filled, one WARNING for those still open, with the date until which they are read again.
        """
        expired = sorted(self.expired)
        filled = sorted(g for g in self.filled if g not in self.entries)
        missing = sorted(g for g in self.found if g in self.entries)
        if expired:
            self.logger.warning(
                "%s: %d gaps expired after %d days without data (`gap_retry_days`) and are "
                "not read again: %s",
                self.where,
                len(expired),
                self.retry_days,
                _describe(expired),
            )
        if filled:
            report.logger.info("%s: %d gaps filled: %s", self.where, len(filled), _describe(filled))
        if missing:
            first_seen = min(_instant(self.entries[g]) for g in missing)
            self.logger.warning(
                "%s: the answers lack %d expected readings: %s; they are read again on the "
                "next runs until %s (`gap_retry_days`)",
                self.where,
                len(missing),
                _describe(missing),
                (first_seen + dt.timedelta(days=self.retry_days)).date().isoformat(),
            )


def _describe(gaps: list[Gap], most: int = 12) -> str:
    """``key at`` pairs, grouped by key, at most ``most`` of them named."""
    by_key: dict[str, list[str]] = {}
    for key, at in gaps[:most]:
        by_key.setdefault(key, []).append(at)
    text = "; ".join(f"{key} at {', '.join(ats)}" for key, ats in by_key.items())
    return text + (f"; and {len(gaps) - most} more" if len(gaps) > most else "")
