"""InfluxDB target class."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import typing as t
from functools import cached_property

from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError, InvalidRecord
from singer_sdk.target_base import Target
from typing_extensions import override

from target_influxdb.lineprotocol import RecordError
from target_influxdb.reader import FloatSingerReader
from target_influxdb.runs import FAILED, OK, StreamRun, default_job, run_point
from target_influxdb.sinks import InfluxDBSink
from target_influxdb.writers import FileWriter, InfluxDBWriter, WriteError

STREAM_MAPPING = th.ObjectType(
    th.Property("measurement", th.StringType, description="Measurement name."),
    th.Property(
        "tags",
        th.ArrayType(th.StringType),
        description="Properties written as tags (replaces the key properties).",
    ),
    th.Property("timestamp", th.StringType, description="Property that holds the point time."),
    th.Property(
        "exclude",
        th.ArrayType(th.StringType),
        description="Properties not written as fields (dotted names for nested ones).",
    ),
    additional_properties=False,
)


class TargetInfluxDB(Target):
    """Singer target that writes every stream to InfluxDB 2.x as line protocol."""

    name = "target-influxdb"
    default_sink_class = InfluxDBSink
    message_reader_class = FloatSingerReader

    config_jsonschema = th.PropertiesList(
        th.Property(
            "url",
            th.StringType,
            description=(
                "InfluxDB 2.x base URL, e.g. http://localhost:8086. When unset, line "
                "protocol is written to files under `output_path` instead."
            ),
        ),
        th.Property(
            "token",
            th.StringType,
            secret=True,
            description="API token with write access to the bucket. Required with `url`.",
        ),
        th.Property(
            "org", th.StringType, description="Organization name or ID. Required with `url`."
        ),
        th.Property("bucket", th.StringType, description="Bucket name or ID. Required with `url`."),
        th.Property(
            "batch_size",
            th.IntegerType,
            default=5000,
            description="Points per write request.",
        ),
        th.Property(
            "timeout",
            th.NumberType,
            default=30,
            description="Seconds to wait for InfluxDB to answer one write request.",
        ),
        th.Property(
            "max_retries",
            th.IntegerType,
            default=5,
            description="Retries of a write after 429, 5xx, a timeout or a connection error.",
        ),
        th.Property(
            "retry_interval",
            th.NumberType,
            default=5,
            description="Seconds before the first retry; the wait doubles with each attempt.",
        ),
        th.Property(
            "max_retry_delay",
            th.NumberType,
            default=60,
            description="Longest wait between two attempts, Retry-After included, in seconds.",
        ),
        th.Property("gzip", th.BooleanType, default=True, description="Gzip request bodies."),
        th.Property(
            "verify_ssl",
            th.BooleanType,
            default=True,
            description="Verify the server's TLS certificate.",
        ),
        th.Property(
            "static_tags",
            th.ObjectType(additional_properties=th.StringType),
            default={},
            description=(
                'Tags added to every point, e.g. {"source": "nationalgas"}. A record\'s own tag '
                "of the same name wins."
            ),
        ),
        th.Property(
            "mappings",
            th.ObjectType(additional_properties=STREAM_MAPPING),
            default={},
            description=(
                "Per stream: {measurement, tags, timestamp, exclude}. Defaults: the stream "
                "name, the key properties, the replication key or first date-time key, none."
            ),
        ),
        th.Property(
            "output_path",
            th.StringType,
            default="output",
            description="Folder for line-protocol files when `url` is not set.",
        ),
        th.Property(
            "untimed_streams",
            th.StringType(allowed_values=["fail", "receive_time"]),
            default="fail",
            description=(
                "For a stream with no timestamp property: `fail` the run, or stamp its "
                "points with the time the target received each record (`receive_time`)."
            ),
        ),
        th.Property(
            "run_measurement",
            th.StringType,
            default="data_imports_run",
            description=(
                "Measurement of the run's health points: at the end of each run, one point "
                "per stream received (records, points written, rejected, skipped, newest "
                "timestamp, duration, status). In file mode they go to their own file. Empty: "
                "none are written."
            ),
        ),
        th.Property(
            "run_job",
            th.StringType,
            description=(
                "The `job` tag of the health points. Default: the state ID Meltano gives the "
                "run (`<environment>:<extractor>-to-<loader>`), else `target-influxdb`."
            ),
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:  # noqa: ANN401
        """Initialize the target and check the connection settings."""
        self.schema_bookmark_properties: list[str] = []
        self.stream_runs: dict[str, StreamRun] = {}
        self._runs_reported = False
        super().__init__(*args, **kwargs)
        if self.config.get("url"):
            missing = [k for k in ("token", "org", "bucket") if not self.config.get(k)]
            if missing:
                msg = f"`url` is set, so these settings are required too: {', '.join(missing)}"
                raise ConfigValidationError(msg, errors=[msg])
            writer = self.writer
            if isinstance(writer, InfluxDBWriter):
                writer.check()  # before any data: a wrong URL, token or bucket fails in seconds

    @cached_property
    def writer(self) -> FileWriter | InfluxDBWriter:
        """Return the destination shared by every sink: InfluxDB, or files."""
        config = self.config
        if not config.get("url"):
            self.logger.info("No `url` set: writing line protocol under %s", config["output_path"])
            return FileWriter(config["output_path"], self.logger)
        return InfluxDBWriter(
            url=config["url"],
            token=config["token"],
            org=config["org"],
            bucket=config["bucket"],
            timeout=float(config["timeout"]),
            max_retries=int(config["max_retries"]),
            retry_interval=float(config["retry_interval"]),
            max_retry_delay=float(config["max_retry_delay"]),
            gzip=config["gzip"],
            verify_ssl=config["verify_ssl"],
        )

    @override
    def _process_schema_message(self, message_dict: dict) -> None:
        # Sinks are not told the replication key; the sinks this SCHEMA message creates (under
        # the stream's name, or the aliases a stream map gives it) read it for their default
        # timestamp while the message is processed.
        bookmarks = message_dict.get("bookmark_properties") or []
        self.schema_bookmark_properties = (
            [bookmarks] if isinstance(bookmarks, str) else list(bookmarks)
        )
        with self._failure_reported():
            super()._process_schema_message(message_dict)

    @override
    def _process_record_message(self, message_dict: dict) -> None:
        with self._failure_reported():
            super()._process_record_message(message_dict)

    @override
    def _process_state_message(self, message_dict: dict) -> None:
        with self._failure_reported():
            known = self._latest_state
            super()._process_state_message(message_dict)
            if self._latest_state is not known:
                # A new state: write every point received before it, then pass it on, so that
                # Meltano holds each bookmark as soon as what it covers is stored.
                self.drain_all()

    @override
    def process_endofpipe(self) -> None:
        with self._failure_reported():
            super().process_endofpipe()
        self.report_runs(OK)

    @contextlib.contextmanager
    def _failure_reported(self) -> t.Iterator[None]:
        """On any failure, record the run as failed (where the destination takes it), re-raise."""
        try:
            yield
        except Exception:
            self.report_runs(FAILED)
            raise

    def report_runs(self, status: str) -> None:
        """Write one health point per stream received, once a run; a failure only warns."""
        measurement = self.config.get("run_measurement")
        if self._runs_reported or not measurement or not self.stream_runs:
            return
        self._runs_reported = True
        job = self.config.get("run_job") or default_job()
        ended_us = time.time_ns() // 1_000
        points = [
            run_point(
                measurement,
                job=job,
                stream=name,
                run=run,
                status=status,
                static_tags=self.config.get("static_tags"),
                now_us=ended_us,
            )
            for name, run in self.stream_runs.items()
        ]
        try:
            self.writer.write_once(measurement, points)
        except WriteError as exc:
            self.logger.warning("Run health points not written: %s", exc)
            return
        self.logger.debug("Run recorded as %r in %r (%d streams)", status, measurement, len(points))


EXPECTED_FAILURES = (WriteError, RecordError, InvalidRecord)
"""Failures this target names in one sentence: InfluxDB unreachable or refusing, a record that
cannot become a point."""


def main() -> None:
    """Run the target; an expected failure ends it with one ERROR line (a traceback in debug)."""
    logger = logging.getLogger(TargetInfluxDB.name)
    try:
        code = TargetInfluxDB.cli.main(standalone_mode=False)
    except EXPECTED_FAILURES as exc:
        logger.error("failed: %s", exc, exc_info=logger.isEnabledFor(logging.DEBUG))  # noqa: TRY400
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
