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

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Iterable

Gap = tuple[str, str]
"""A partition key and the day (``YYYY-MM-DD``) or instant (ISO 8601) it lacks."""


def _instant(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


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
    """Readings found missing, read again on the following runs until they arrive or expire."""

    where: str
    """The stream and endpoint, for the log."""
    logger: logging.Logger
    entries: dict[Gap, str] = field(default_factory=dict)

    @classmethod
    def load(cls, state: t.Mapping[str, t.Any], where: str, logger: logging.Logger) -> GapLedger:
        """Read ``state["pending_gaps"]``."""
        entries = {
            (str(g["key"]), str(g["at"])): str(g["since"]) for g in state.get("pending_gaps") or ()
        }
        return cls(where, logger, entries)

    def save(self, state: dict[str, t.Any]) -> None:
        """Write ``state["pending_gaps"]`` (an empty list when none is left)."""
        state["pending_gaps"] = [
            {"key": key, "at": at, "since": since}
            for (key, at), since in sorted(self.entries.items())
        ]

    def expire(self, now: dt.datetime, retry_days: int) -> None:
        """Give up the gaps found more than ``retry_days`` ago, with one WARNING."""
        limit = now - dt.timedelta(days=retry_days)
        expired = sorted(gap for gap, since in self.entries.items() if _instant(since) < limit)
        for gap in expired:
            del self.entries[gap]
        if expired:
            self.logger.warning(
                "%s: %d gaps expired after %d days without data (`gap_retry_days`) and are "
                "not read again: %s",
                self.where,
                len(expired),
                retry_days,
                _describe(expired),
            )

    def pending(self) -> list[Gap]:
        """The gaps still to read again."""
        return sorted(self.entries)

    def drop_key(self, key: str) -> None:
        """Forget every gap of one partition."""
        for gap in [g for g in self.entries if g[0] == key]:
            del self.entries[gap]

    def settle(
        self, expected: Iterable[Gap], seen: t.Container[Gap], now: dt.datetime, retry_days: int
    ) -> None:
        """Record what was expected and not seen; clear the gaps that were filled.

        One WARNING names the gaps still open, with the date until which they are read again.
        """
        filled, missing = [], []
        for gap in expected:
            if gap in seen:
                if self.entries.pop(gap, None) is not None:
                    filled.append(gap)
            else:
                self.entries.setdefault(gap, now.isoformat())
                missing.append(gap)
        if filled:
            self.logger.info("%s: %d gaps filled: %s", self.where, len(filled), _describe(filled))
        if missing:
            first_seen = min(_instant(self.entries[g]) for g in missing)
            self.logger.warning(
                "%s: the answers lack %d expected readings: %s; they are read again on the "
                "next runs until %s (`gap_retry_days`)",
                self.where,
                len(missing),
                _describe(sorted(missing)),
                (first_seen + dt.timedelta(days=retry_days)).date().isoformat(),
            )


def _describe(gaps: list[Gap], most: int = 12) -> str:
    """``key at`` pairs, grouped by key, at most ``most`` of them named."""
    by_key: dict[str, list[str]] = {}
    for key, at in gaps[:most]:
        by_key.setdefault(key, []).append(at)
    text = "; ".join(f"{key} at {', '.join(ats)}" for key, ats in by_key.items())
    return text + (f"; and {len(gaps) - most} more" if len(gaps) > most else "")
