"""The pipeline's own health as data: one point per stream at the end of each run."""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
import typing as t
from dataclasses import dataclass, field

from target_influxdb.lineprotocol import (
    escape_key,
    escape_measurement,
    escape_string,
    escape_tag_value,
)

if t.TYPE_CHECKING:
    from collections.abc import Mapping

OK = "ok"
FAILED = "failed"


@dataclass
class StreamRun:
    """What one run did with one stream."""

    records: int = 0
    points: int = 0
    rejected: int = 0
    skipped: int = 0
    newest_ns: int | None = None
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    left_out: set[str] = field(default_factory=set)
    """Properties the schema does not declare that were left out (and warned about)."""

    def written(self, count: int, newest_ns: int | None) -> None:
        """Count points InfluxDB (or the file) acknowledged; ``newest_ns`` in epoch ns."""
        if not count or newest_ns is None:
            return
        self.points += count
        self.newest_ns = newest_ns if self.newest_ns is None else max(self.newest_ns, newest_ns)

    def end(self) -> None:
        """Stop the clock of :attr:`duration`."""
        if self.ended is None:
            self.ended = time.monotonic()

    @property
    def duration(self) -> float:
        """Seconds from the stream's first message to the end of the run (or now)."""
        return (self.ended if self.ended is not None else time.monotonic()) - self.started

    @property
    def newest_iso(self) -> str | None:
        """The newest timestamp written, in ISO 8601 UTC to the second; None when none was."""
        if self.newest_ns is None:
            return None
        seconds = self.newest_ns // 10**9
        return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds")


def default_job(environ: Mapping[str, str] = os.environ) -> str:
    """The state ID Meltano gives this run, from the variables it sets; else the target's name."""
    extractor = environ.get("MELTANO_EXTRACTOR_NAME")
    loader = environ.get("MELTANO_LOADER_NAME")
    if not (extractor and loader):
        return "target-influxdb"
    environment = environ.get("MELTANO_ENVIRONMENT")
    pair = f"{extractor}-to-{loader}"
    return f"{environment}:{pair}" if environment else pair


def _series(
    measurement: str,
    *,
    job: str,
    stream: str,
    static_tags: Mapping[str, str] | None,
    host: str | None,
) -> str:
    """Measurement and tags of a health point, sorted by key.

    Static tags (empty ones left out), then job, stream and host, which win over static tags
    of the same name.
    """
    tags = {
        **{k: v for k, v in (static_tags or {}).items() if v},
        "job": job,
        "stream": stream,
        "host": host or socket.gethostname(),
    }
    tag_text = "".join(
        f",{escape_key(key)}={escape_tag_value(value)}" for key, value in sorted(tags.items())
    )
    return f"{escape_measurement(measurement)}{tag_text}"


def _status_fields(status: str, cause: str | None) -> list[str]:
    fields = [f"status={escape_string(status)}"]
    if cause:
        fields.append(f"cause={escape_string(cause)}")
    return fields


def run_point(  # noqa: PLR0913
    measurement: str,
    *,
    job: str,
    stream: str,
    run: StreamRun,
    status: str,
    cause: str | None = None,
    static_tags: Mapping[str, str] | None = None,
    host: str | None = None,
    now_ns: int | None = None,
) -> tuple[str, int]:
    """One health point: tags job, stream and host; counts, newest epoch second, duration, status.

    Returns:
        The line without its timestamp, and the timestamp (``now_ns``) in epoch nanoseconds.
    """
    series = _series(measurement, job=job, stream=stream, static_tags=static_tags, host=host)
    fields = [
        f"records={run.records}i",
        f"points={run.points}i",
        f"rejected={run.rejected}i",
        f"skipped={run.skipped}i",
        f"duration={run.duration:.3f}",
        *_status_fields(status, cause),
    ]
    if run.newest_ns is not None:
        fields.append(f"newest={run.newest_ns // 10**9}i")
    return f"{series} {','.join(fields)}", now_ns if now_ns is not None else time.time_ns()


def status_point(  # noqa: PLR0913
    measurement: str,
    *,
    job: str,
    stream: str,
    status: str,
    time_us: int,
    cause: str | None = None,
    static_tags: Mapping[str, str] | None = None,
    host: str | None = None,
) -> tuple[str, int]:
    """A point that sets the status (and cause) of one stream's run, for a runner to write.

    Written at a run's ``run_time_us`` (see the report logger's summaries) with the same job,
    stream, host and static tags, it lands on the target's own point of that run: InfluxDB
    merges the fields of points with the same series and time, so ``status`` and ``cause``
    replace the target's and the counts stay. Write it with ``write_once`` of the writer
    :func:`target_influxdb.target.writer_from_config` returns. ``time_us`` is that
    ``run_time_us``, in epoch microseconds.

    Returns:
        The line without its timestamp, and the timestamp in epoch nanoseconds.
    """
    series = _series(measurement, job=job, stream=stream, static_tags=static_tags, host=host)
    return f"{series} {','.join(_status_fields(status, cause))}", time_us * 1000
