"""Where batches of points go: InfluxDB's write API, or line-protocol files."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import socket
import ssl
import typing as t
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from influxdb_client import InfluxDBClient
from influxdb_client.client.write.retry import WritesRetry
from influxdb_client.rest import ApiException
from influxdb_client.service.write_service import WriteService
from urllib3.exceptions import HTTPError, MaxRetryError

from target_influxdb.lineprotocol import (
    batch_precision,
    escape_key,
    escape_measurement,
    render_lines,
)

if t.TYPE_CHECKING:
    from collections.abc import Sequence

    from urllib3 import BaseHTTPResponse

Points = t.Sequence[tuple[str, int]]
_UNPARSABLE_LINE = re.compile(r"unable to parse '(.+)': ", re.DOTALL)
_CONFLICT = re.compile(r'input field "(?P<field>[^"]+)" on measurement "(?P<measurement>[^"]+)"')


_REJECTED = (
    'InfluxDB rejected points of stream "{stream}" ({status} {message}); '
    "first rejected line: {line}"
)
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
ACKNOWLEDGED = 204
"""The only answer that means InfluxDB stored a batch."""


class WriteError(Exception):
    """A batch could not be written; the message names the cause and the setting to change."""


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
        self._ssl = None if verify_ssl else ssl._create_unverified_context()  # noqa: S323, SLF001
        self._max_retries = max_retries
        retries = BoundedRetry(
            total=max_retries,
            retry_interval=retry_interval,
            max_retry_delay=max_retry_delay,
            allowed_methods=frozenset({"POST"}),
            redirect=0,  # the write API never redirects: a redirect is answered as it is
            raise_on_redirect=False,
        )
        self._client = InfluxDBClient(
            url=self.url,
            token=token,
            org=org,
            timeout=int(timeout * 1000),
            enable_gzip=gzip,
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
        status, headers = self._probe("GET", "/ping", None, timeout)
        if status != ACKNOWLEDGED:
            raise WriteError(self._redact(self._not_influxdb(status, headers) + " (at /ping)"))
        status, headers = self._post_write(b"", "s")
        if status in {400, ACKNOWLEDGED}:  # 400: "writing requires points", all else was fine
            return
        if status == 429 or status >= 500:  # noqa: PLR2004 (busy or starting: writes will retry)
            return
        template = _API_ERRORS.get(status)
        if template is None:
            raise WriteError(self._redact(self._not_influxdb(status, headers)))
        raise WriteError(self._redact(self._describe(status, template, message="at start-up")))

    def _post_write(self, body: bytes, precision: str) -> tuple[int, t.Mapping[str, str]]:
        """One POST to the write API, no retries, answered within 10 s at most."""
        query = urllib.parse.urlencode(
            {"org": self.org, "bucket": self.bucket, "precision": precision}
        )
        return self._probe("POST", f"/api/v2/write?{query}", body, min(self._timeout, 10.0))

    def _probe(
        self, method: str, path: str, body: bytes | None, timeout: float
    ) -> tuple[int, t.Mapping[str, str]]:
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
            with urllib.request.urlopen(request, timeout=timeout, context=self._ssl) as answer:  # noqa: S310
                return int(answer.status), dict(answer.headers.items())
        except urllib.error.HTTPError as exc:
            return int(exc.code), dict(exc.headers.items())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            msg = (
                f"could not reach InfluxDB at {self.url} ({_cause(reason)}): start InfluxDB, or "
                "check INFLUXDB_URL (the `url` setting)"
            )
            raise WriteError(self._redact(msg)) from None

    def write(self, stream_name: str, points: Points) -> str:
        """Write one batch; raise :class:`WriteError` unless InfluxDB acknowledged it.

        Returns:
            Where the points went, for the log.

        Raises:
            WriteError: on any final failure, with the cause and what to change.
        """
        precision = batch_precision(ts for _, ts in points)
        body = render_lines(points, precision)
        try:
            _, status, headers = self._write_service.post_write_with_http_info(
                org=self.org,
                bucket=self.bucket,
                body=body.encode(),
                precision=precision,
                content_type="text/plain; charset=utf-8",
                _return_http_data_only=False,
            )
        except ApiException as exc:
            raise WriteError(self._redact(self._api_message(exc, stream_name, body))) from None
        except MaxRetryError as exc:
            msg = _RETRIED.format(
                url=self.url, stream=stream_name, retries=self._max_retries, cause=exc.reason
            )
            raise WriteError(self._redact(msg)) from None
        except (HTTPError, OSError) as exc:
            msg = f"could not reach InfluxDB at {self.url}: {exc}; check the `url` setting"
            raise WriteError(self._redact(msg)) from None
        if status != ACKNOWLEDGED:
            raise WriteError(self._redact(self._not_influxdb(status, headers)))
        return f'bucket "{self.bucket}" (precision {precision})'

    def write_once(self, name: str, points: Points) -> str:
        """Write a few points in one attempt, without retries (the run's health points).

        Raises:
            WriteError: unless InfluxDB acknowledged them.
        """
        precision = batch_precision(ts for _, ts in points)
        status, headers = self._post_write(render_lines(points, precision).encode(), precision)
        if status == ACKNOWLEDGED:
            return f'bucket "{self.bucket}"'
        if status < 400:  # noqa: PLR2004 (a web page or a redirect)
            raise WriteError(self._redact(self._not_influxdb(status, headers)))
        msg = self._describe(
            status,
            _API_ERRORS.get(status) or _OTHER,
            message=f"writing {name}",
            stream=name,
            line="(not identified)",
        )
        raise WriteError(self._redact(msg))

    def _api_message(self, exc: ApiException, stream_name: str, body: str) -> str:
        status = exc.status or 0
        if 300 <= status < 400:  # noqa: PLR2004 (a redirect: a web server, not the write API)
            return self._not_influxdb(status, exc.headers)
        message = _error_message(exc)
        line = _first_rejected_line(message, body) if status in {400, 422} else ""
        template = _API_ERRORS.get(status) or (_RETRIED if status >= 429 else _OTHER)  # noqa: PLR2004
        return self._describe(status, template, message=message, stream=stream_name, line=line)

    def _describe(
        self, status: int, template: str, *, message: str, stream: str = "", line: str = ""
    ) -> str:
        """An answer of the write API in one of the messages above."""
        return template.format(
            status=status,
            message=message,
            stream=stream,
            url=self.url,
            org=self.org,
            bucket=self.bucket,
            retries=self._max_retries,
            line=line,
            cause=f"{status} {message}",
        )

    def _not_influxdb(self, status: int, headers: t.Mapping[str, str] | None) -> str:
        content_type = (headers or {}).get("Content-Type") or "with no content type"
        return _NOT_INFLUXDB.format(url=self.url, status=status, content_type=content_type)

    def _redact(self, message: str) -> str:
        return message.replace(self._token, "***") if self._token else message


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
    try:
        parsed = json.loads(raw)
    except ValueError:
        return raw.strip()[:500] or str(exc.reason)
    return (
        str(parsed.get("message") or parsed.get("error") or raw)
        if isinstance(parsed, dict)
        else raw
    )


def _first_rejected_line(message: str, body: str) -> str:
    """Name the first line InfluxDB rejected, from its error message and the batch body."""
    if match := _UNPARSABLE_LINE.search(message):
        return match.group(1)
    if match := _CONFLICT.search(message):
        prefix = escape_measurement(match["measurement"])
        key = escape_key(match["field"]) + "="
        for line in body.splitlines():
            head, rest = _split_series(line)
            if _UNESCAPED_COMMA.split(head, 1)[0] == prefix and (
                rest.startswith(key) or f",{key}" in rest
            ):
                return line
    return "(not identified in the batch)"


_UNESCAPED_SPACE = re.compile(r"(?<!\\)(?:\\\\)* ")
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")


def _split_series(line: str) -> tuple[str, str]:
    """A line's measurement and tags, and the rest: split at its first unescaped space."""
    match = _UNESCAPED_SPACE.search(line)
    if match is None:
        return line, ""
    return line[: match.end() - 1], line[match.end() :]


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
        data = (render_lines(points, "ns") + "\n").encode()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            size = self._cut_partial_line(fd, path)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            except OSError as exc:
                os.ftruncate(fd, size)
                msg = (
                    f'could not append {len(points)} points of stream "{stream_name}" to '
                    f"{path} ({exc.strerror or exc}); the batch was not written: free space "
                    "there, or change `output_path`"
                )
                raise WriteError(msg) from None
        finally:
            os.close(fd)
        return str(path)

    write_once = write

    def _cut_partial_line(self, fd: int, path: Path) -> int:
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
        self.logger.warning(
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
