"""A run's outcome on its health points: ``status`` and ``cause`` for every stream of the job.

``target-influxdb`` writes one ``data_imports_run`` point per stream at the end of its run, with
the counts, as it saw the run. When the run failed elsewhere (in the tap, in Meltano) or was
stopped, the runner writes ``status`` and ``cause`` onto the same series at the same time
(InfluxDB merges the fields of points with the same series and time); where the target never
got that far, the points are the runner's alone, at the run's end.
"""

from __future__ import annotations

import socket
import typing as t

from target_influxdb.runs import status_point
from target_influxdb.target import writer_from_config
from target_influxdb.writers import WriteError

if t.TYPE_CHECKING:
    from collections.abc import Mapping


def record_outcome(  # noqa: PLR0913
    config: Mapping[str, t.Any],
    *,
    job: str,
    streams: Mapping[str, int | None],
    status: str,
    cause: str,
    ended_us: int,
) -> str:
    """Write ``status`` and ``cause`` for each stream (at its run's time, else ``ended_us``).

    Returns:
        '' when written (or health points are off), else why not.
    """
    measurement = config.get("run_measurement")
    if not measurement or not streams:
        return ""
    host = socket.gethostname()
    points = [
        status_point(
            measurement,
            job=str(config.get("run_job") or job),
            stream=stream,
            status=status,
            cause=cause,
            static_tags=config.get("static_tags"),
            host=host,
            time_us=time_us if time_us is not None else ended_us,
        )
        for stream, time_us in streams.items()
    ]
    try:
        writer_from_config(config).write_once(measurement, points)
    except (
        WriteError,
        OSError,
        ValueError,
        KeyError,
    ) as exc:  # a URL urllib cannot use; a setting missing
        return f"the run's health points were not written: {exc}"
    return ""
