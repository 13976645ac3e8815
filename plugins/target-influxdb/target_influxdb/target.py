"""InfluxDB target class."""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import os
import signal
import sys
import threading
import time
import typing as t
from functools import cached_property, partial
from pathlib import Path

import click
from singer_sdk import typing as th
from singer_sdk.exceptions import (
    ConfigValidationError,
    InvalidRecord,
    RecordsWithoutSchemaException,
)
from singer_sdk.helpers.capabilities import PluginCapabilities
from singer_sdk.singerlib import SingerMessageType
from singer_sdk.target_base import Target
from typing_extensions import override

from target_influxdb import batches
from target_influxdb.inflight import OneInFlight
from target_influxdb.lineprotocol import RecordError
from target_influxdb.reader import FloatSingerReader, Handler
from target_influxdb.rejections import shorten
from target_influxdb.runs import FAILED, OK, StreamRun, default_job, run_point
from target_influxdb.shapes import StreamShape, shape_changes
from target_influxdb.sinks import InfluxDBSink
from target_influxdb.writers import FileWriter, InfluxDBWriter, RejectedFile, WriteError

if t.TYPE_CHECKING:
    from collections.abc import Mapping
    from types import FrameType

    from singer_sdk.helpers.capabilities import CapabilitiesEnum

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
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [
        *Target.capabilities,
        PluginCapabilities.BATCH,
    ]

    config_jsonschema = th.PropertiesList(
        th.Property(
            "url",
            th.URIType,
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
            th.IntegerType(minimum=1),
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
            th.IntegerType(minimum=0),
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
            "ssl_ca_cert",
            th.StringType,
            description=(
                "File of CA certificates (PEM) that InfluxDB's TLS certificate is verified "
                "with, in place of the system's (a private CA). Unset: the system's, or "
                "`SSL_CERT_FILE`."
            ),
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
            "rejected_points_path",
            th.StringType,
            description=(
                "File to append the points InfluxDB refuses as invalid to (400, 422: a field "
                "type conflict, a line it cannot parse), one line each, so that the run goes "
                "on; load them later with `influx write`. Unset: such points fail the run. "
                "Unused in file mode, where nothing is refused."
            ),
        ),
        th.Property(
            "delete_batch_files",
            th.BooleanType,
            default=False,
            description=(
                "Delete each file of a BATCH message once its points are stored (acknowledged "
                "by InfluxDB, or synced to the file in file mode). Off: the files stay where "
                "the tap wrote them."
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
        self.stream_shapes: dict[str, StreamShape] = {}
        self._versions_ignored: set[str] = set()
        self._state_seen: t.Any = None
        self.report_logger = logging.getLogger(f"{self.name}.report")
        self._run_finished = False
        super().__init__(*args, **kwargs)
        if isinstance(self.message_reader, FloatSingerReader):
            self.message_reader.hooks = self
        self.max_parallelism = 1  # one batch in flight (OneInFlight), in the order received
        if threading.current_thread() is threading.main_thread():
            # in place of the SDK's handlers, which it sets in __init__
            signal.signal(signal.SIGTERM, self.on_signal)
            signal.signal(signal.SIGINT, self.on_signal)
        if self.config.get("url"):
            missing = [k for k in ("token", "org", "bucket") if not self.config.get(k)]
            if missing:
                msg = f"`url` is set, so these settings are required too: {', '.join(missing)}"
                raise ConfigValidationError(msg, errors=[msg])
            if problem := line_break_problem(self.config["token"]):
                raise ConfigValidationError(problem, errors=[problem])
            ca_file = self.config.get("ssl_ca_cert")
            if ca_file and not Path(ca_file).is_file():
                msg = (
                    f"`ssl_ca_cert` is {ca_file}, which is not a file: give the path of a PEM "
                    "file of CA certificates, or unset it to use the system's"
                )
                raise ConfigValidationError(msg, errors=[msg])
            writer = self.writer
            if isinstance(writer, InfluxDBWriter):
                writer.check()  # before any data: a wrong URL, token or bucket fails in seconds

    @cached_property
    def writer(self) -> FileWriter | InfluxDBWriter:
        """Return the destination shared by every sink: InfluxDB, or files."""
        if not self.config.get("url"):
            self.logger.info(
                "No `url` set: writing line protocol under %s", self.config["output_path"]
            )
        return writer_from_config(self.config, self.logger)

    @cached_property
    def writes(self) -> OneInFlight:
        """The one write in flight, shared by every sink, while the next batch is encoded."""
        return OneInFlight()

    @cached_property
    def rejected_file(self) -> RejectedFile | None:
        """The file refused points wait in (``rejected_points_path``); None: they fail the run."""
        path = self.config.get("rejected_points_path")
        if not path or not isinstance(self.writer, InfluxDBWriter):
            return None
        return RejectedFile(path, self.logger)

    def handlers(self, sdk_handlers: Mapping[str, Handler]) -> dict[str, Handler]:
        """The handler of each message type: the SDK's, with what this target does around it."""
        kind = SingerMessageType
        return {
            **sdk_handlers,
            kind.SCHEMA: partial(self.on_schema, sdk_handlers[kind.SCHEMA]),
            kind.STATE: self.on_state,
            kind.BATCH: partial(self.on_batch, sdk_handlers[kind.BATCH]),
            kind.ACTIVATE_VERSION: self.on_activate_version,
        }

    def reading(self) -> t.ContextManager[None]:
        """The whole input is read with any failure recording the run as failed."""
        return self._failure_reported()

    def on_schema(self, sdk_handler: Handler, message_dict: dict) -> None:
        """A SCHEMA message: the SDK makes the sinks; a replaced sink's points are written."""
        # Sinks are not told the replication key; the sinks this SCHEMA message creates (under
        # the stream's name, or the aliases a stream map gives it) read it for their default
        # timestamp while the message is processed.
        bookmarks = message_dict.get("bookmark_properties") or []
        self.schema_bookmark_properties = (
            [bookmarks] if isinstance(bookmarks, str) else list(bookmarks)
        )
        stream = str(message_dict.get("stream"))
        before = self.get_sink(stream) if self.sink_exists(stream) else None
        sdk_handler(message_dict)
        if before is not None and self.get_sink(stream) is not before:
            # A changed schema replaced the stream's sink: its points are written now, so
            # that no later point of the new sink is overwritten by an older one.
            self.drain_all()

    def on_state(self, message_dict: dict) -> None:
        """A STATE message: a new state is passed on once every point before it is stored.

        The target passes states on itself (the SDK's STATE handling is not used, so the SDK
        passes none on): every sink is drained, the write in flight acknowledged, then the
        state written to stdout, so that Meltano holds each bookmark as soon as what it covers
        is stored, and never sooner.
        """
        self.message_reader.assert_line_requires(message_dict, requires={"value"})
        value = message_dict["value"]
        if value == self._state_seen:
            return
        self._state_seen = value
        self.drain_all()
        self.writes.wait()
        self.pass_on(value)

    def pass_on(self, state: dict) -> None:
        """Write a state to stdout, for Meltano to keep."""
        text = json.dumps(state)
        self.logger.debug("Emitting completed target state %s", text)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def on_batch(self, sdk_handler: Handler, message_dict: dict) -> None:
        """A BATCH message, checked first, then handed to its stream's sink by the SDK."""
        # Checked first, so that a BATCH the target cannot load fails in one line that names
        # the stream (the SDK would fail with a KeyError or a TypeError); then the SDK hands
        # the files to the sink of the stream (InfluxDBSink.process_batch_files).
        batches.check_message(message_dict)
        stream = message_dict["stream"]
        self.check_schema_came(stream, "A BATCH")
        batches.check_stream_maps(stream, self.mapper.stream_maps[stream])
        sdk_handler(message_dict)

    def unknown_message(self, message_dict: dict) -> None:
        """Fail on a message of a type this target does not handle, before any later STATE.

        Raises:
            UnsupportedMessageError: naming the type.
        """
        kind = message_dict.get("type")
        msg = (
            f"a Singer message of type {kind!r} cannot be handled (this target reads "
            "SCHEMA, RECORD, STATE, BATCH and ACTIVATE_VERSION): the run stops before any "
            "later STATE is passed on"
        )
        raise batches.UnsupportedMessageError(msg)

    def on_activate_version(self, message_dict: dict) -> None:
        """An ACTIVATE_VERSION message: ignored, once a stream said, with a WARNING."""
        # Points are facts at their instants: a new table version cannot delete the points
        # of older versions from InfluxDB (no cheap delete by version), so the message is
        # ignored and the records are stored as any others.
        stream = message_dict.get("stream")
        self.check_schema_came(stream, "An ACTIVATE_VERSION")
        stream = str(stream)
        if stream not in self._versions_ignored:
            self._versions_ignored.add(stream)
            self.logger.warning(
                "Stream %r: ACTIVATE_VERSION ignored: InfluxDB keeps the points of earlier "
                "versions (rows the source deleted stay stored); the records are stored",
                stream,
            )

    def check_schema_came(self, stream: t.Any, message: str) -> None:  # noqa: ANN401
        """Refuse a message (``"A BATCH"``) of a stream whose SCHEMA message has not come.

        Raises:
            RecordsWithoutSchemaException: naming the stream and the message type.
        """
        if stream not in self.mapper.stream_maps:
            msg = (
                f"{message} message for stream {stream!r} came before its SCHEMA message. "
                "Check that the Tap correctly implements the Singer spec."
            )
            raise RecordsWithoutSchemaException(msg)

    def note_shape(self, stream: str, shape: StreamShape) -> None:
        """Keep a stream's shape; warn about what a new SCHEMA message changes in it."""
        before = self.stream_shapes.get(stream)
        self.stream_shapes[stream] = shape
        for change in shape_changes(stream, before, shape) if before else ():
            self.logger.warning("%s", change)

    @override
    def process_endofpipe(self) -> None:
        with self._failure_reported():
            super().process_endofpipe()
            self.writes.wait()
        self.finish_run(OK)

    def on_signal(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        """SIGTERM or SIGINT: store what was received, pass its state on, end the run, exit 0.

        As the SDK's own handler does (it drains the sinks, the STATE then covers what was
        stored), and the run still ends with its health points and summaries, as stopped.
        """
        self.logger.info("Received termination signal %d, draining all sinks...", signum)
        try:
            self.drain_all(is_endofpipe=True)
            self.writes.wait()
        finally:
            self.finish_run(FAILED, f"stopped by {signal.Signals(signum).name}")
        sys.exit(0)

    @contextlib.contextmanager
    def _failure_reported(self) -> t.Iterator[None]:
        """On any failure, record the run as failed (where the destination takes it), re-raise."""
        try:
            yield
        except Exception as exc:
            self.finish_run(FAILED, failure_text(exc))
            raise

    def finish_run(self, status: str, cause: str | None = None) -> None:
        """End the run, once: one summary per stream, health points, points set aside.

        Every health point of the run, and every summary, carries one time, fixed here. The
        summaries come first: a runner that reads them learns that time even when the run is
        killed while its health points are written (a stopped run), and writes its own outcome
        on the same points.
        """
        if self._run_finished:
            return
        self._run_finished = True
        self.writes.close()  # after a failure, the write in flight still ends first
        run_time_us = time.time_ns() // 1_000
        for run in self.stream_runs.values():
            run.end()
        health = bool(self.config.get("run_measurement"))
        for name, run in self.stream_runs.items():
            self.log_summary(name, run, status, run_time_us if health else None)
        self.write_health_points(status, cause, run_time_us)
        self.warn_unused_mappings()
        if self.rejected_file is not None:
            config = self.config
            summary = self.rejected_file.summary(config["bucket"], config["org"])
            if summary:
                self.logger.warning("%s", summary)

    def warn_unused_mappings(self) -> None:
        """Name each key of `mappings` that names no stream of the run, and the streams that came.

        Such a mapping was not used. When a stream of the run had no mapping of its own (it got
        the defaults), the key may be its misspelt name: a WARNING, with the closest name. When
        every stream had its mapping, the key is for a stream this run did not select: INFO.
        """
        mappings = self.config.get("mappings") or {}
        streams = sorted(self.stream_runs)
        defaulted = [name for name in streams if name not in mappings]
        level = logging.WARNING if defaulted else logging.INFO
        for key in sorted(set(mappings) - set(streams)):
            close = difflib.get_close_matches(key, defaulted, n=1)
            self.logger.log(
                level,
                "`mappings.%s` names no stream of this run, so it was not used "
                "(streams of the run: %s%s)%s",
                key,
                ", ".join(streams) or "none",
                f"; given the defaults: {', '.join(defaulted)}" if defaulted else "",
                f'; did you mean "{close[0]}"?' if close else "",
            )

    def write_health_points(self, status: str, cause: str | None, run_time_us: int) -> None:
        """Write one health point per stream received; a failure only warns."""
        measurement = self.config.get("run_measurement")
        if not measurement or not self.stream_runs:
            return
        job = self.config.get("run_job") or default_job()
        points = [
            run_point(
                measurement,
                job=job,
                stream=name,
                run=run,
                status=status,
                cause=cause,
                static_tags=self.config.get("static_tags"),
                now_ns=run_time_us * 1000,
            )
            for name, run in self.stream_runs.items()
        ]
        try:
            self.writer.write_once(measurement, points)
        except WriteError as exc:
            self.logger.warning("Run health points not written: %s", exc)
            return
        self.logger.debug("Run recorded as %r in %r (%d streams)", status, measurement, len(points))

    def log_summary(self, name: str, run: StreamRun, status: str, run_time_us: int | None) -> None:
        """One stream's summary line, its numbers as fields, through the report logger."""
        newest = run.newest_iso
        self.report_logger.info(
            "Stream %r: %d records, %d points written, newest %s, in %.1f s",
            name,
            run.records,
            run.points,
            newest or "none",
            run.duration,
            extra={
                "stream": name,
                "records": run.records,
                "points": run.points,
                "rejected": run.rejected,
                "skipped": run.skipped,
                "newest": newest,
                "status": status,
                "run_time_us": run_time_us,
            },
        )


TOKEN_VARIABLES = ("TARGET_INFLUXDB_TOKEN", "INFLUXDB_TOKEN")
"""The variables a token comes from: the target's own, and the one meltano.yml reads."""


def line_break_problem(token: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """Why a token with a CR or LF is refused, naming where it came from, never its value.

    A line break cannot go into an HTTP header: the request would fail with the token in its
    error. None when the token has none.
    """
    if "\r" not in token and "\n" not in token:
        return None
    where = [name for name in TOKEN_VARIABLES if environ.get(name) == token]
    setting = f"{where[0]} (the `token` setting)" if where else "the `token` setting"
    return (
        f"{setting} holds a line break (CR or LF), which no token has: set it again without "
        "one (its value is not shown)"
    )


def writer_from_config(
    config: Mapping[str, t.Any], logger: logging.Logger | None = None
) -> FileWriter | InfluxDBWriter:
    """The destination a run with this config writes to: InfluxDB when `url` is set, else files.

    ``config`` is the target's config as Meltano resolves it (``meltano config
    target-influxdb``); settings it lacks take the target's defaults. Nothing is sent before
    the first write.
    """
    defaults = {
        name: prop["default"]
        for name, prop in TargetInfluxDB.config_jsonschema["properties"].items()
        if "default" in prop
    }
    settings = {**defaults, **{k: v for k, v in config.items() if v is not None}}
    if not settings.get("url"):
        return FileWriter(settings["output_path"], logger)
    return InfluxDBWriter(
        url=settings["url"],
        token=settings["token"],
        org=settings["org"],
        bucket=settings["bucket"],
        timeout=float(settings["timeout"]),
        max_retries=int(settings["max_retries"]),
        retry_interval=float(settings["retry_interval"]),
        max_retry_delay=float(settings["max_retry_delay"]),
        gzip=bool(settings["gzip"]),
        verify_ssl=bool(settings["verify_ssl"]),
        ssl_ca_cert=settings.get("ssl_ca_cert") or None,
    )


EXPECTED_FAILURES = (
    WriteError,
    RecordError,
    InvalidRecord,
    batches.BatchFileError,
    batches.UnsupportedMessageError,
    RecordsWithoutSchemaException,
)
"""Failures this target names in one sentence: InfluxDB unreachable or refusing, a record that
cannot become a point, a BATCH that cannot be loaded, a message type it does not handle, a
message before its stream's SCHEMA."""


FAILURE_CHARS = 2000
"""The longest failure message logged: each part is cut shorter where it is built (a
rejected line, a value); this bounds what any other part could add (a 1 MB tag)."""


def failure_text(exc: BaseException) -> str:
    """A failure in one line: an expected one as its message, any other with its type too."""
    if isinstance(exc, EXPECTED_FAILURES):
        return shorten(str(exc), FAILURE_CHARS)
    return f"{type(exc).__name__}: {shorten(str(exc), 1000)}"


def main() -> None:
    """Run the target; any failure ends it with one ERROR line ``failed: ...`` and exit 1.

    An expected failure is its message (its traceback only at debug); any other failure is
    ``failed: <type>: <message>``, logged with its traceback.
    """
    logger = logging.getLogger(TargetInfluxDB.name)
    try:
        code = TargetInfluxDB.cli.main(standalone_mode=False)
    except click.ClickException as exc:  # a wrong command line: click's own message
        exc.show()
        sys.exit(exc.exit_code)
    except EXPECTED_FAILURES as exc:
        debug = logger.isEnabledFor(logging.DEBUG)
        logger.error("failed: %s", failure_text(exc), exc_info=debug)  # noqa: TRY400
        sys.exit(1)
    except Exception as exc:
        logger.exception("failed: %s", failure_text(exc))  # noqa: TRY401 (the one line says it)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
