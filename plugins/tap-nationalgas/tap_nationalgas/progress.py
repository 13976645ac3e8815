"""Progress of a run of many requests (a backfill): plain log lines, at most one every 10 s."""

from __future__ import annotations

import time
import typing as t
from dataclasses import dataclass, field

if t.TYPE_CHECKING:
    import datetime as dt
    import logging

EVERY_SECONDS = 10.0
"""At most one progress line this often, besides the first and the last."""
FEWEST_REQUESTS = 2
"""A run of fewer requests logs no progress."""


@dataclass
class Progress:
    """Counts requests and records; logs where a long run is and how long it has left."""

    stream: str
    total: int
    logger: logging.Logger
    done: int = 0
    records: int = 0
    started: float = field(default_factory=time.monotonic)
    _last_log: float | None = None

    def page_done(self, window: tuple[dt.date, dt.date] | None, records: int) -> None:
        """One more request answered, with its records; log if it is time to."""
        self.done += 1
        self.records += records
        now = time.monotonic()
        if not self.due(now):
            return
        self._last_log = now
        elapsed = now - self.started
        left = elapsed / self.done * (self.total - self.done)
        reached = f"window {window[0]} to {window[1]}, " if window else ""
        self.logger.info(
            "%s: %s%d of %d requests, %d records, %s elapsed, about %s left",
            self.stream,
            reached,
            self.done,
            self.total,
            self.records,
            _duration(elapsed),
            _duration(left),
        )

    def due(self, now: float) -> bool:
        """True for the first and the last request, and every :data:`EVERY_SECONDS` between."""
        if self.total < FEWEST_REQUESTS:
            return False
        if self.done >= self.total or self._last_log is None:
            return True
        return now - self._last_log >= EVERY_SECONDS


def _duration(seconds: float) -> str:
    """``1h02m03s``, ``2m05s`` or ``7s``."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
