"""Where batches of points go: InfluxDB's write API, or line-protocol files."""

from __future__ import annotations

import datetime as dt
import gzip as gzip_module
import json
import logging
import os
import re
import shlex
import socket
import ssl
import threading
import typing as t
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from influxdb_client import InfluxDBClient
from influxdb_client.client.write.retry import WritesRetry
from influxdb_client.rest import ApiException
from influxdb_client.service.write_service import WriteService
from urllib3.exceptions import HTTPError, MaxRetryError

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
    from collections.abc import Sequence

    from urllib3 import BaseHTTPResponse

Points = t.Sequence[tuple[str, int]]


_REJECTED = "InfluxDB rejected points of {stream} ({status} {message})"
_WHERE = 'bucket "{bucket}" in org "{org}" at {url}'
_API_ERRORS = {
    401: "InfluxDB rejected the token (401 {message}): set a valid `token` for " + _WHERE,
    403: "token not allowed to write to " + _WHERE + " (403 {message}): grant write access",
    404: 'bucket "{bucket}" not found in org "{org}" at {url} (404 {message}): '
    "create it or change the `bucket`/`org` settings",
    413: "InfluxDB refused a batch as too large (413 {message}): lower `batch_size`",
    400: _REJECTED,
    422: _REJECTED,
}

_RETRIED = (
    'InfluxDB at {url} did not accept the batch of stream "{stream}" after {retries} retries '
    "({cause}); check that InfluxDB is up, or raise `max_retries`/`timeout`"
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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Answer a redirect as it is: a request that carries the token goes to one host only."""

    def redirect_request(self, *_args: t.Any, **_kwargs: t.Any) -> None:  # noqa: ANN401
        """Follow no redirect: urllib then raises the 3xx as an ``HTTPError``."""
        return


class InfluxDBWriter:
    """Write batches synchronously through ``POST /api/v2/write``; return only on 204."""

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
    ) -> None:
        """Create the client; nothing is sent until the first write."""
        self.url, self.org, self.bucket = url.rstrip("/"), org, bucket
        self._token = token
        self._timeout = timeout
        context = None if verify_ssl else ssl._create_unverified_context()  # noqa: S323, SLF001
        self._opener = urllib.request.build_opener(
            _NoRedirect, urllib.request.HTTPSHandler(context=context)
        )
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
        )
        self._write_service = WriteService(self._client.api_client)

    def check(self) -> None:
        """Check, before any data, that InfluxDB answers, takes the token and has the bucket.

        An empty write is checked the way InfluxDB checks a real one (the token, the org and
        the bucket first) and then refused for being empty, so nothing is written.

        Raises:
            WriteError: naming the URL, org or bucket at fault, and what to change.
        """
        timeout = min(self._timeout, 10.0)
        answer = self._probe("GET", "/ping", None, timeout)
        if answer.status != ACKNOWLEDGED:
            where = "" if 300 <= answer.status < 400 else " (at /ping)"  # noqa: PLR2004
            raise WriteError(self._redact(self._not_influxdb(answer) + where))
        answer = self._post_write(b"", "s")
        if answer.status in {400, ACKNOWLEDGED}:  # 400: "writing requires points", all was fine
            return
        if answer.status == 429 or answer.status >= 500:  # noqa: PLR2004 (busy: writes retry)
            return
        template = _API_ERRORS.get(answer.status)
        if template is None:
            raise WriteError(self._redact(self._not_influxdb(answer)))
        raise WriteError(
            self._redact(self._describe(answer.status, template, message="at start-up"))
        )

    def _post_write(self, body: bytes, precision: str) -> _Answer:
        """One POST to the write API, no retries, answered within 10 s at most."""
        query = urllib.parse.urlencode(
            {"org": self.org, "bucket": self.bucket, "precision": precision}
        )
        return self._probe("POST", f"/api/v2/write?{query}", body, min(self._timeout, 10.0))

    def _probe(self, method: str, path: str, body: bytes | None, timeout: float) -> _Answer:
        request = urllib.request.Request(  # noqa: S310 (the configured InfluxDB URL)
            f"{self.url}{path}",
            data=body,
            method=method,
            headers={
                "Authorization": f"Token {self._token}",
                "Content-Type": "text/plain; charset=utf-8",
            },
        )
        try:
            with self._opener.open(request, timeout=timeout) as answer:
                return _Answer(int(answer.status), dict(answer.headers.items()), "")
        except urllib.error.HTTPError as exc:
            text = exc.read(_MESSAGE_BYTES).decode(errors="replace")
            return _Answer(int(exc.code), dict(exc.headers.items()), _message_of(text))
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            msg = (
                f"could not reach InfluxDB at {self.url} ({_cause(reason)}): start InfluxDB, or "
                "check INFLUXDB_URL (the `url` setting)"
            )
            raise WriteError(self._redact(msg)) from None

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
        try:
            _, status, headers = self._write_service.post_write_with_http_info(
                org=self.org,
                bucket=self.bucket,
                body=body,
                precision=precision,
                content_type="text/plain; charset=utf-8",
                **encoding,
                _return_http_data_only=False,
            )
        except ApiException as exc:
            if exc.status in INVALID:
                return Refusal.of(exc.status, self._redact(_error_message(exc)), points)
            raise WriteError(self._redact(self._api_message(exc, stream_name))) from None
        except MaxRetryError as exc:
            msg = _RETRIED.format(
                url=self.url, stream=stream_name, retries=self._max_retries, cause=exc.reason
            )
            raise WriteError(self._redact(msg)) from None
        except (HTTPError, OSError) as exc:
            msg = f"could not reach InfluxDB at {self.url}: {exc}; check the `url` setting"
            raise WriteError(self._redact(msg)) from None
        if status != ACKNOWLEDGED:
            raise WriteError(self._redact(self._not_influxdb(_Answer(status, headers, ""))))
        return None

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
        answer = self._post_write(render_lines(points, precision).encode(), precision)
        if answer.status == ACKNOWLEDGED:
            return f'bucket "{self.bucket}"'
        if answer.status < 400:  # noqa: PLR2004 (a web page or a redirect)
            raise WriteError(self._redact(self._not_influxdb(answer)))
        msg = self._describe(
            answer.status,
            _API_ERRORS.get(answer.status) or _OTHER,
            message=shorten(self._redact(answer.message)) or "no message",
            stream=name,
        )
        raise WriteError(self._redact(msg))

    def _api_message(self, exc: ApiException, stream_name: str) -> str:
        status = exc.status or 0
        if 300 <= status < 400:  # noqa: PLR2004 (a redirect: a web server, not the write API)
            return self._not_influxdb(_Answer(status, exc.headers or {}, ""))
        message = shorten(self._redact(_error_message(exc)))
        template = _API_ERRORS.get(status) or (_RETRIED if status >= 429 else _OTHER)  # noqa: PLR2004
        return self._describe(status, template, message=message, stream=stream_name)

    def _describe(self, status: int, template: str, *, message: str, stream: str = "") -> str:
        """An answer of the write API in one of the messages above."""
        return template.format(
            status=status,
            message=message,
            stream=stream,
            url=self.url,
            org=self.org,
            bucket=self.bucket,
            retries=self._max_retries,
            cause=f"{status} {message}",
        )

    def _not_influxdb(self, answer: _Answer) -> str:
        if 300 <= answer.status < 400:  # noqa: PLR2004 (a redirect)
            location = _header(answer.headers, "Location") or "no Location"
            return _REDIRECTED.format(url=self.url, status=answer.status, location=location)
        content_type = answer.headers.get("Content-Type") or "with no content type"
        return _NOT_INFLUXDB.format(url=self.url, status=answer.status, content_type=content_type)

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


def _header(headers: t.Mapping[str, str], name: str) -> str | None:
    """A header's value, whatever the case of its name."""
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def _cause(reason: object) -> str:
    """A short cause of a failed connection."""
    text = str(reason)
    if isinstance(reason, ConnectionRefusedError) or "refused" in text.lower():
        return "connection refused"
    if isinstance(reason, socket.gaierror) or "Name or service not known" in text:
        return "name does not resolve"
    if isinstance(reason, TimeoutError) or "timed out" in text:
        return "no answer in time"
    return text


def _error_message(exc: ApiException) -> str:
    raw = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body)
    return _message_of(raw) or str(exc.reason)


def _message_of(raw: str) -> str:
    """The ``message`` of a 2.x error body (``error`` in 1.x), else the body's text."""
    try:
        parsed = json.loads(raw)
    except ValueError:
        return raw.strip()
    if isinstance(parsed, dict):
        return str(parsed.get("message") or parsed.get("error") or raw)
    return raw


_MESSAGE_BYTES = 64 * 1024
"""How much of an error answer is read."""


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: t.Mapping[str, str]
    message: str


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
