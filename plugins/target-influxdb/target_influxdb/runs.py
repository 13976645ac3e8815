"""The pipeline's own health as data: one point per stream at the end of each run."""

from __future__ import annotations

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
    newest_us: int | None = None
    started: float = field(default_factory=time.monotonic)

    def written(self, count: int, newest_us: int) -> None:
        """Count a batch InfluxDB (or the file) acknowledged."""
        self.points += count
        self.newest_us = newest_us if self.newest_us is None else max(self.newest_us, newest_us)

    @property
    def duration(self) -> float:
        """Seconds since the stream's first message."""
        return time.monotonic() - self.started


def default_job(environ: Mapping[str, str] = os.environ) -> str:
    """The state ID Meltano gives this run, from the variables it sets; else the target's name."""
    extractor = environ.get("MELTANO_EXTRACTOR_NAME")
    loader = environ.get("MELTANO_LOADER_NAME")
    if not (extractor and loader):
        return "target-influxdb"
    environment = environ.get("MELTANO_ENVIRONMENT")
    pair = f"{extractor}-to-{loader}"
    return f"{environment}:{pair}" if environment else pair


def run_point(  # noqa: PLR0913
    measurement: str,
    *,
    job: str,
    stream: str,
    run: StreamRun,
    status: str,
    static_tags: Mapping[str, str] | None = None,
    host: str | None = None,
    now_us: int | None = None,
) -> tuple[str, int]:
    """One health point: tags job, stream and host; counts, newest epoch second, duration, status.

    Returns:
        The line without its timestamp, and the timestamp in microseconds.
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
    fields = [
        f"records={run.records}i",
        f"points={run.points}i",
        f"rejected={run.rejected}i",
        f"skipped={run.skipped}i",
        f"duration={run.duration:.3f}",
        f"status={escape_string(status)}",
    ]
    if run.newest_us is not None:
        fields.append(f"newest={run.newest_us // 1_000_000}i")
    line = f"{escape_measurement(measurement)}{tag_text} {','.join(fields)}"
    return line, now_us if now_us is not None else time.time_ns() // 1_000


def status_point(  # noqa: PLR0913
    measurement: str,
    *,
    job: str,
    stream: str,
    status: str,
    cause: str,
    static_tags: Mapping[str, str] | None = None,
    host: str | None = None,
    time_us: int,
) -> tuple[str, int]:
    """A health point with only ``status`` and ``cause``, on the series of :func:`run_point`."""
    line, _ = run_point(
        measurement,
        job=job,
        stream=stream,
        run=StreamRun(),
        status=status,
        static_tags=static_tags,
        host=host,
        now_us=time_us,
    )
    series = line.split(" ", 1)[0]
    fields = [f"status={escape_string(status)}"]
    if cause:
        fields.append(f"cause={escape_string(cause)}")
    return f"{series} {','.join(fields)}", time_us
