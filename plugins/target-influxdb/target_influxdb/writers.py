"""Where batches of points go: InfluxDB's write API, or line-protocol files."""

from __future__ import annotations

import datetime as dt
import enum
import gzip as gzip_module
import logging
import os
import re
import shlex
import threading
import typing as t
from pathlib import Path

from influxdb_client import InfluxDBClient, PingService
from influxdb_client.client.write.retry import WritesRetry
from influxdb_client.rest import ApiException
from influxdb_client.service.write_service import WriteService
from urllib3.exceptions import HTTPError

from target_influxdb.causes import Failure, Kind, classify
from target_influxdb.lineprotocol import batch_precision, render_lines
from target_influxdb.rejections import (
    INVALID,
    Refusal,
    RejectionLedger,
    conflict_text,
    delete_advice,
    describe,
    shorten,
)

if t.TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from urllib3 import BaseHTTPResponse

Points = t.Sequence[tuple[str, int]]


_REJECTED = "InfluxDB rejected points of {stream} ({status} {message})"
_WHERE = 'bucket "{bucket}" in org "{org}" at {url}'
_API_ERRORS = {
    Kind.UNAUTHORIZED: "InfluxDB rejected the token (401 {message}): set a valid `token` for "
    + _WHERE,
    Kind.FORBIDDEN: "token not allowed to write to " + _WHERE + " (403 {message}): grant "
    "write access",
    Kind.NOT_FOUND: 'bucket "{bucket}" not found in org "{org}" at {url} (404 {message}): '
    "create it or change the `bucket`/`org` settings",
    Kind.TOO_LARGE: "InfluxDB refused a batch as too large (413 {message}): lower `batch_size`",
    Kind.INVALID: _REJECTED,
}

_RETRIED = (
    'InfluxDB at {url} did not accept the batch of stream "{stream}" after {retries} retries '
    "({cause}); check that InfluxDB is up, or raise `max_retries`/`timeout`"
)
_UNREACHED = "could not reach InfluxDB at {url} ({cause}): {advice}"
_CHECK_URL = "start InfluxDB, or check INFLUXDB_URL (the `url` setting)"
_CHECK_TLS = (
    "add the CA that signed InfluxDB's certificate to the trusted ones (`ssl_ca_cert`, or "
    "SSL_CERT_FILE), or set "
    "`verify_ssl` to false for a server you trust; or check INFLUXDB_URL (the `url` setting)"
)
_OTHER = "InfluxDB at {url} answered {status} to a write: {message}"
_NOT_INFLUXDB = (
    "{url} answered {status} {content_type}: this is not the InfluxDB write API "
    "(it answers 204); check INFLUXDB_URL (the `url` setting)"
)
_REDIRECTED = (
    "INFLUXDB_URL {url} answered {status} (redirect to {location}): not InfluxDB, which never "
    "redirects (the redirect was not followed); set INFLUXDB_URL (the `url` setting) to the URL "
    "InfluxDB itself answers on"
)
ACKNOWLEDGED = 204
"""The only answer that means InfluxDB stored a batch."""
GZIP_LEVEL = 1
"""Compression of request bodies (the `gzip` setting): line protocol shrinks about sevenfold at
level 1 (elevenfold at 9), for a tenth of the time of level 9 (the client's own)."""
CHECK_TIMEOUT = 10.0
"""The longest wait, in seconds, for the answer to a single attempt (the start-up check, health
points), whatever the `timeout` setting."""
_ONE_ATTEMPT = {"retries": False}
"""urllib3's options of a single attempt: no retry, and no redirect followed (a 3xx is the
answer)."""


class _Step(enum.Enum):
    """What the writer was doing when a request failed: it words the failure."""

    PING = "ping"
    START_UP = "start-up"
    BATCH = "batch"
    POINTS = "points"


class WriteError(Exception):
    """A batch could not be written; the message names the cause and the setting to change."""


class RejectedPointsError(WriteError):
    """InfluxDB refused points of a batch as invalid (400, 422); it stored the others.

    Attributes:
        refusals: the refused points, grouped by the answer that refused them.
        stored: the points of the batch InfluxDB stored.
        rejected: how many points were refused.
        written: how many points of the batch InfluxDB stored.
        newest_written_ns: the newest timestamp among those (epoch ns), None when none was.
    """

    def __init__(  # noqa: PLR0913
        self,
        stream: str,
        answer: Refusal,
        refusals: Sequence[Refusal],
        stored: Sequence[tuple[str, int]],
        *,
        bucket: str,
        org: str,
    ) -> None:
        """Describe the refusal: what, why, and how to go on (see ``rejections.describe``)."""
        self.refusals = list(refusals)
        self.stored = list(stored)
        self.rejected = sum(len(r.points) for r in refusals)
        self.written = len(self.stored)
        self.newest_written_ns = max((ts for _, ts in self.stored), default=None)
        sent = self.rejected + self.written
        super().__init__(describe(stream, answer, refusals, sent, bucket=bucket, org=org))


class BoundedRetry(WritesRetry):
    """The client's write retry, bounded by attempts and by the longest single wait.

    ``WritesRetry`` fixes its overall deadline when the client is created, so a run longer
    than that deadline would stop retrying at all; here the bound is ``total`` attempts,
    each wait at most ``max_retry_delay`` seconds, ``Retry-After`` included.
    """

    def __init__(self, **kwargs: t.Any) -> None:  # noqa: ANN401
        """Create the retry policy (see ``WritesRetry`` for the arguments)."""
        super().__init__(**kwargs)
        self.retry_timeout = dt.datetime.max  # noqa: DTZ901 (compared with naive now())

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        """Honour ``Retry-After``, capped at ``max_retry_delay``."""
        retry_after = super().get_retry_after(response)
        return None if retry_after is None else min(retry_after, self.max_retry_delay)


class InfluxDBWriter:
    """Write batches synchronously through ``POST /api/v2/write``; return only on 204.

    Every request (``/ping``, the start-up check, batches, health points) goes through one
    ``InfluxDBClient``: one connection pool, one TLS setup (``verify_ssl``, ``ssl_ca_cert``),
    and one reading of failures (:func:`target_influxdb.causes.classify`).
    """

    def __init__(  # noqa: PLR0913
        self,
        *,
        url: str,
        token: str,
        org: str,
        bucket: str,
        timeout: float = 30,
        max_retries: int = 5,
        retry_interval: float = 5,
        max_retry_delay: float = 60,
        gzip: bool = True,
        verify_ssl: bool = True,
        ssl_ca_cert: str | None = None,
    ) -> None:
        """Create the client; nothing is sent until the first request.

        Args:
            url: InfluxDB's URL.
            token: an API token allowed to write to the bucket.
            org: the organisation.
            bucket: the bucket.
            timeout: the longest wait for an answer, in seconds.
            max_retries: retries of a batch after a failed attempt.
            retry_interval: the first wait between attempts, in seconds.
            max_retry_delay: the longest wait between attempts, in seconds.
            gzip: whether batches are sent compressed.
            verify_ssl: whether InfluxDB's TLS certificate is verified (an ``https`` URL).
            ssl_ca_cert: a file of CA certificates to verify it with, instead of the system's.
        """
        self.url, self.org, self.bucket = url.rstrip("/"), org, bucket
        self._token = token
        self._timeout = timeout
        self._max_retries = max_retries
        self._gzip = gzip
        retries = BoundedRetry(
            total=max_retries,
            retry_interval=retry_interval,
            max_retry_delay=max_retry_delay,
            allowed_methods=frozenset({"POST"}),
            # the write API never redirects: a redirect is not followed (the token and the
            # batch go nowhere else) but answered as it is, and fails the batch
            redirect=0,
            raise_on_redirect=False,
        )
        self._client = InfluxDBClient(
            url=self.url,
            token=token,
            org=org,
            timeout=int(timeout * 1000),
            # bodies are compressed here, at a level that costs a tenth of the client's
            enable_gzip=False,
            verify_ssl=verify_ssl,
            retries=retries,
            ssl_ca_cert=ssl_ca_cert,
        )
        self._write_service = WriteService(self._client.api_client)
        self._ping_service = PingService(self._client.api_client)

    def check(self) -> None:
        """Check, before any data, that InfluxDB answers, takes the token and has the bucket.

        An empty write is checked the way InfluxDB checks a real one (the token, the org and
        the bucket first) and then refused for being empty, so nothing is written.

        Raises:
            WriteError: naming the URL, org or bucket at fault, and what to change.
        """
        failure = self._attempt(
            lambda: self._ping_service.get_ping_with_http_info(
                _return_http_data_only=False,
                _preload_content=False,
                _request_timeout=self._check_timeout_ms,
                urlopen_kw=_ONE_ATTEMPT,
            )
        )
        if failure is not None:
            raise self._error(failure, _Step.PING)
        failure = self._post_write(b"", "s")
        if failure is None or failure.status == 400:  # noqa: PLR2004 ("writing requires points")
            return
        if failure.kind in {Kind.BUSY, Kind.SERVER}:  # InfluxDB is there; writes will retry
            return
        raise self._error(failure, _Step.START_UP)

    @property
    def _check_timeout_ms(self) -> float:
        return min(self._timeout, CHECK_TIMEOUT) * 1000

    def _post_write(self, body: bytes, precision: str) -> Failure | None:
        """One POST to the write API: no retry, answered within :data:`CHECK_TIMEOUT` at most."""
        return self._post(
            body, precision, _request_timeout=self._check_timeout_ms, urlopen_kw=_ONE_ATTEMPT
        )

    def _post(self, body: bytes, precision: str, **options: t.Any) -> Failure | None:  # noqa: ANN401
        """A POST of line protocol to the write API; ``options`` go to the client's call."""
        return self._attempt(
            lambda: self._write_service.post_write_with_http_info(
                org=self.org,
                bucket=self.bucket,
                body=body,
                precision=precision,
                content_type="text/plain; charset=utf-8",
                _return_http_data_only=False,
                _preload_content=False,
                **options,
            )
        )

    @staticmethod
    def _attempt(request: Callable[[], tuple[t.Any, int, t.Any]]) -> Failure | None:
        """Make a request of the client: None once InfluxDB answered 204, else why it did not."""
        try:
            response, _, _ = request()
        except (ApiException, HTTPError, OSError) as exc:
            return classify(exc)
        try:
            if response.status == ACKNOWLEDGED:
                return None
            return classify(ApiException(http_resp=response))  # a 200: a web page, not InfluxDB
        finally:
            response.drain_conn()
            response.release_conn()

    def write(self, stream_name: str, points: Points) -> str:
        """Write one batch; raise :class:`WriteError` unless InfluxDB acknowledged it.

        When InfluxDB refuses points as invalid (400, 422), the points it refuses are found by
        writing halves of the refused batch again, down to single lines: writes are idempotent,
        and InfluxDB's message names only the first refused line, and a 400 stores nothing.

        Returns:
            Where the points went, for the log.

        Raises:
            RejectedPointsError: when InfluxDB refused points as invalid and stored the others.
            WriteError: on any other final failure, with the cause and what to change.
        """
        precision = batch_precision(ts for _, ts in points)
        refusal = self._send(stream_name, points, precision)
        if refusal is None:
            return f'bucket "{self.bucket}" (precision {precision})'
        parts: list[Points] = []
        refusals = self._sort_out(stream_name, refusal, precision, parts)
        stored = [point for part in parts for point in part]
        raise RejectedPointsError(
            stream_name, refusal, refusals, stored, bucket=self.bucket, org=self.org
        )

    def _send(self, stream_name: str, points: Points, precision: str) -> Refusal | None:
        """Write points with retries; None once stored, the refusal when they are invalid."""
        body = render_lines(points, precision).encode()
        encoding: dict[str, str] = {}
        if self._gzip:
            body, encoding = gzip_module.compress(body, GZIP_LEVEL), {"content_encoding": "gzip"}
        failure = self._post(body, precision, **encoding)  # the client's retries
        if failure is None:
            return None
        if failure.status is not None and failure.status in INVALID:
            return Refusal.of(failure.status, self._redact(failure.message), points)
        raise self._error(failure, _Step.BATCH, stream_name)

    def _sort_out(
        self, stream_name: str, refusal: Refusal, precision: str, stored: list[Points]
    ) -> list[Refusal]:
        """The refusals of single lines (or of groups refused whole) within a refused group.

        A group is refused whole when it is one line, or when InfluxDB says it dropped as many
        points as the group has (a partial write's count is exact; a 400 has none, and a 1.x
        parse error counts 0). Halves that InfluxDB takes go to ``stored``.
        """
        points = refusal.points
        if len(points) == 1 or refusal.dropped == len(points):
            return [refusal]
        refusals = []
        half = len(points) // 2
        for part in (points[:half], points[half:]):
            again = self._send(stream_name, part, precision)
            if again is None:
                stored.append(part)
            else:
                refusals += self._sort_out(stream_name, again, precision, stored)
        return refusals

    def write_once(self, name: str, points: Points) -> str:
        """Write a few points in one attempt, without retries (health and status points).

        Args:
            name: what the points are, for messages (and the file name of ``FileWriter``).
            points: lines without their timestamp, each with its timestamp in epoch ns.

        Returns:
            Where the points went.

        Raises:
            WriteError: unless InfluxDB acknowledged them.
        """
        precision = batch_precision(ts for _, ts in points)
        failure = self._post_write(render_lines(points, precision).encode(), precision)
        if failure is None:
            return f'bucket "{self.bucket}"'
        raise self._error(failure, _Step.POINTS, name)

    def _error(self, failure: Failure, step: _Step, stream: str = "") -> WriteError:
        """The failure in words: its cause, and the setting or the step that mends it."""
        if not failure.answered:
            if step is _Step.BATCH and failure.kind is not Kind.TLS:
                text = _RETRIED.format(
                    url=self.url, stream=stream, retries=self._max_retries, cause=failure.message
                )
            else:
                advice = _CHECK_TLS if failure.kind is Kind.TLS else _CHECK_URL
                text = _UNREACHED.format(url=self.url, cause=failure.message, advice=advice)
        elif failure.kind in {Kind.REDIRECT, Kind.NOT_INFLUXDB}:
            text = self._not_influxdb(failure)
        elif step is _Step.PING:  # /ping answers 204, whatever the token
            text = self._not_influxdb(failure) + " (at /ping)"
        elif step is _Step.START_UP:
            template = _API_ERRORS.get(failure.kind)
            text = (
                self._not_influxdb(failure)
                if template is None
                else self._describe(failure, template, message="at start-up")
            )
        else:
            template = _API_ERRORS.get(failure.kind) or _OTHER
            if step is _Step.BATCH and failure.kind in {Kind.BUSY, Kind.SERVER}:
                template = _RETRIED
            message = shorten(self._redact(failure.message)) or "no message"
            text = self._describe(failure, template, message=message, stream=stream)
        return WriteError(self._redact(text))

    def _describe(self, failure: Failure, template: str, *, message: str, stream: str = "") -> str:
        """An answer of the write API in one of the messages above."""
        retry_after = failure.header("Retry-After")
        asked = f", Retry-After {retry_after}" if retry_after else ""
        return template.format(
            status=failure.status,
            message=message,
            stream=stream,
            url=self.url,
            org=self.org,
            bucket=self.bucket,
            retries=self._max_retries,
            cause=f"{failure.status} {message}{asked}",
        )

    def _not_influxdb(self, failure: Failure) -> str:
        if failure.kind is Kind.REDIRECT:
            location = failure.header("Location") or "no Location"
            return _REDIRECTED.format(url=self.url, status=failure.status, location=location)
        content_type = failure.header("Content-Type") or "with no content type"
        return _NOT_INFLUXDB.format(url=self.url, status=failure.status, content_type=content_type)

    def _redact(self, message: str) -> str:
        return redact(message, self._token)


BARE_TOKEN_CHARS = 16
"""A token at least this long is taken out wherever it appears; a shorter one only after
``Token`` or ``Bearer``, since elsewhere it could be part of a word."""


def redact(text: str, token: str | None) -> str:
    """The text with the token replaced by ``***`` where it can stand as a credential.

    The target never writes the token into a message; this guards what a server or a library
    could echo: the token after ``Token`` or ``Bearer`` (an ``Authorization`` header, also as
    ``token=`` or ``Token:``), and a
    token of at least :data:`BARE_TOKEN_CHARS` characters anywhere. Nothing else is touched,
    so a short token (``a``, ``in``) never mangles the words around it.
    """
    if not token:
        return text
    if len(token) >= BARE_TOKEN_CHARS:
        return text.replace(token, "***")
    credential = rf"\b((?:Token|Bearer)\s*[:=]?\s*){re.escape(token)}(?![\w+/=~-]|\.\w)"
    return re.sub(credential, r"\1***", text, flags=re.IGNORECASE)


def _safe_file_name(stream_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stream_name) or "stream"


class FileWriter:
    """Append batches to ``<folder>/<stream>.lp`` (nanosecond precision), synced to disk.

    A batch is appended whole or not at all: a failed append (a full disk) is cut back off.
    A file that does not end in a newline (a run killed mid-append) is cut back to its last
    complete line before the next append. ``influx write --bucket B --file <stream>.lp``
    imports such a file later.
    """

    def __init__(
        self, folder: str | os.PathLike[str], logger: logging.Logger | None = None
    ) -> None:
        """Create the folder if needed."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.logger = logger or logging.getLogger(__name__)

    def path_for(self, stream_name: str) -> Path:
        """Return the file that holds the points of one stream."""
        return self.folder / f"{_safe_file_name(stream_name)}.lp"

    def write(self, stream_name: str, points: Sequence[tuple[str, int]]) -> str:
        """Append one batch and sync it before returning.

        Raises:
            WriteError: when the batch could not be appended whole; the file is left as before.
        """
        path = self.path_for(stream_name)
        try:
            append_whole(path, (render_lines(points, "ns") + "\n").encode(), self.logger)
        except OSError as exc:
            msg = (
                f'could not append {len(points)} points of stream "{stream_name}" to '
                f"{path} ({exc.strerror or exc}); the batch was not written: free space "
                "there, or change `output_path`"
            )
            raise WriteError(msg) from None
        return str(path)

    write_once = write


def append_whole(path: Path, data: bytes, logger: logging.Logger) -> None:
    """Append data to a file and sync it; on failure cut it back off and raise ``OSError``.

    A file that does not end in a newline (a run killed mid-append) is first cut back to its
    last complete line, with a warning.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
    try:
        size = _cut_partial_line(fd, path, logger)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def _cut_partial_line(fd: int, path: Path, logger: logging.Logger) -> int:
    """Cut an unfinished last line off the file; return the size that remains."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    end = size
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            end = start + newline + 1
            break
        end = start
    os.ftruncate(fd, end)
    logger.warning(
        "%s ended in an unfinished line (a write was cut short): cut %d bytes back to its "
        "last complete line",
        path,
        size - end,
    )
    return end


_TAIL_CHUNK = 64 * 1024


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class RejectedFile:
    """The file (``rejected_points_path``) where points InfluxDB refused as invalid wait.

    Each refused line is appended whole, in nanosecond precision, as ``influx write`` reads
    it by default; the lines of a batch are appended and synced before the batch counts as
    done, so a STATE never passes a point that is neither stored nor in the file.

    The fix of a field type conflict deletes the measurement's points in the weeks refused,
    all of them: so the points this run stored there (those without the field) go to a second
    file, :attr:`kept_path` (``<path>.stored``), loaded back with the first.
    """

    def __init__(self, path: str | os.PathLike[str], logger: logging.Logger | None = None) -> None:
        """Create the file's folder if needed; the file is created by the first append."""
        self.path = Path(path)
        self.kept_path = self.path.with_name(f"{self.path.name}.stored")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.logger = logger or logging.getLogger(__name__)
        self.ledger = RejectionLedger()
        self._lock = threading.Lock()  # sinks drain in parallel

    def append(self, stream_name: str, rejected: RejectedPointsError) -> None:
        """Append the refused points of one batch, and the stored ones a delete would remove.

        Raises:
            WriteError: when they could not be appended whole; the file is left as before.
        """
        points = [point for refusal in rejected.refusals for point in refusal.points]
        with self._lock:
            self._append(self.path, points, stream_name)
            self.ledger.add(rejected.refusals)
            self._keep(rejected.stored, stream_name)

    def keep_stored(self, stream_name: str, points: Sequence[tuple[str, int]]) -> None:
        """Keep a copy of stored points that fall where a conflict's delete would remove them.

        Raises:
            WriteError: when they could not be appended whole.
        """
        if not self.ledger.weeks:  # no conflict yet: nothing to keep
            return
        with self._lock:
            self._keep(points, stream_name)

    def _keep(self, points: Sequence[tuple[str, int]], stream_name: str) -> None:
        kept = [point for point in points if self.ledger.in_conflict(*point)]
        if kept:
            self._append(self.kept_path, kept, stream_name)
            self.ledger.kept += len(kept)

    def _append(self, path: Path, points: Sequence[tuple[str, int]], stream_name: str) -> None:
        try:
            append_whole(path, (render_lines(points, "ns") + "\n").encode(), self.logger)
        except OSError as exc:
            msg = (
                f'could not set aside {len(points)} points of stream "{stream_name}" in {path} '
                f"({exc.strerror or exc}): free space there, or change `rejected_points_path`"
            )
            raise WriteError(msg) from None

    def summary(self, bucket: str, org: str) -> str | None:
        """The run's warning about the points it set aside; None when there were none."""
        ledger = self.ledger
        if not ledger.count:
            return None
        causes = [conflict_text(c) for c in list(ledger.conflicts.values())[:3]]
        if len(ledger.conflicts) > 3:  # noqa: PLR2004
            causes.append(f"{len(ledger.conflicts) - 3} more field type conflicts")
        if ledger.other:
            causes.append(f"InfluxDB answered {ledger.other}")
        load = f"influx write --bucket {shlex.quote(bucket)} --org {shlex.quote(org)} --file "
        load += shlex.quote(str(self.path))
        if ledger.kept:
            load += f" --file {shlex.quote(str(self.kept_path))}"
            causes.append(
                f"{ledger.kept} points this run stored in the weeks of a conflict, which the "
                f"delete below removes too, are kept in {self.kept_path}"
            )
        if ledger.weeks:
            load = f"To load them: first {delete_advice(bucket, org, ledger.weeks)}, then {load}"
        else:
            load = f"Load them once the cause is fixed: {load}"
        return (
            f"{ledger.count} points InfluxDB refused as invalid were set aside in {self.path} "
            f"and the run went on: {'; '.join(causes)}. {load} (then remove the file, which "
            "keeps what every run appends)"
        )
