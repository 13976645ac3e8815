"""Test-only proxy that serves InfluxDB 2.x's write API on top of an InfluxDB 1.x engine.

Debian ships only ``influxd`` 1.6.7 (the real TSM engine, v1 API). This proxy answers the
part of the 2.x API a writer uses, in 2.x's words: ``POST /api/v2/write`` (token, org,
bucket, precision, gzip; 400/401/404/422/503 with ``{"code", "message"}`` bodies),
``POST /api/v2/delete`` (as ``influx delete`` sends it: ``start``, ``stop`` inclusive, and a
predicate of ``_measurement`` and tags compared with ``=`` joined by ``AND``),
``GET /health`` and ``GET|HEAD /ping``. InfluxDB 2.x forgets a measurement's field types in a
shard once no series of it is left there; 1.6.7 forgets them only when the measurement is
dropped, so after a delete the proxy drops each shard of the range that holds no point any
more, and a measurement with no point left (never what 2.x would keep). Faults can be queued
for the next writes through ``POST /__faults``
(``[{"status": 503, "retry_after": 1}, {"hang": 5}, {"html": true}]``; ``html`` answers a
web page, status 200 unless ``status`` says; faults apply to writes that carry points, not to
the empty write of a start-up check); ``GET /__faults`` reports the queue and the write
counters; ``DELETE /__faults`` clears the queue and the counters.

Run: ``python -m testkit.influx_proxy --port 0 --upstream http://127.0.0.1:8086 --token T``.
It prints ``listening on http://127.0.0.1:PORT`` once ready and answers only on loopback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import http.client
import json
import re
import threading
import time
import typing as t
import urllib.parse
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from testkit.processes import serve

PRECISIONS = {"ns": "n", "us": "u", "ms": "ms", "s": "s"}
VERSION = "v2.7.0-testkit"


class ProxyState:
    """What the handlers share: upstream, token, queued faults and counters."""

    def __init__(self, upstream: str, token: str) -> None:
        """Remember the upstream engine and the only token accepted."""
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host = parsed.hostname or "127.0.0.1"
        self.upstream_port = parsed.port or 8086
        self.token = token
        self.faults: deque[dict[str, t.Any]] = deque()
        self.lock = threading.Lock()
        self.counters = {"write_requests": 0, "writes_accepted": 0, "faults_served": 0}

    def next_fault(self) -> dict[str, t.Any] | None:
        """Pop the fault queued for this write, if any."""
        with self.lock:
            self.counters["write_requests"] += 1
            if not self.faults:
                return None
            self.counters["faults_served"] += 1
            return self.faults.popleft()

    def count(self, name: str) -> None:
        """Increase one counter."""
        with self.lock:
            self.counters[name] += 1


class Handler(BaseHTTPRequestHandler):
    """2.x-shaped answers for write, health and ping; fault control under /__faults."""

    protocol_version = "HTTP/1.1"
    server: ProxyServer

    def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002, ANN401
        """Keep test output quiet."""

    def _send(
        self, status: int, body: object = None, headers: dict[str, str] | None = None
    ) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _error(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
        self._send(
            status,
            {"code": code, "message": message},
            {"X-Platform-Error-Code": code, **(headers or {})},
        )

    def _html(self, status: int) -> None:
        """Answer as a web server or a login proxy in front of InfluxDB would."""
        page = b"<!doctype html><html><body><h1>Sign in</h1></body></html>"
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        if 300 <= status < 400:
            self.send_header("Location", "/login")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_HEAD(self) -> None:
        """Answer HEAD /ping."""
        self.do_GET()

    def do_GET(self) -> None:
        """Answer /health, /ping and /__faults."""
        path = urllib.parse.urlsplit(self.path).path
        state = self.server.state
        if path == "/health":
            self._send(
                200,
                {
                    "name": "influxdb",
                    "message": "ready for queries and writes",
                    "status": "pass",
                    "checks": [],
                    "version": VERSION,
                    "commit": "testkit",
                },
            )
        elif path == "/ping":
            self._send(204, None, {"X-Influxdb-Version": VERSION, "X-Influxdb-Build": "OSS"})
        elif path == "/__faults":
            with state.lock:
                self._send(200, {"queued": list(state.faults), **state.counters})
        else:
            self._error(404, "not found", "path not found")

    def do_DELETE(self) -> None:
        """Clear queued faults and reset the counters."""
        with self.server.state.lock:
            self.server.state.faults.clear()
            self.server.state.counters = dict.fromkeys(self.server.state.counters, 0)
        self._send(204)

    def do_POST(self) -> None:
        """Queue faults, or handle a write."""
        path = urllib.parse.urlsplit(self.path).path
        body = self._body()
        if path == "/__faults":
            with self.server.state.lock:
                self.server.state.faults.extend(json.loads(body or b"[]"))
            self._send(204)
        elif path == "/api/v2/write":
            self._write(body)
        elif path == "/api/v2/delete":
            self._delete(body)
        else:
            self._error(404, "not found", "path not found")

    def _write(self, body: bytes) -> None:
        state = self.server.state
        fault = state.next_fault() if body else None  # a start-up check's empty write: no fault
        if fault and fault.get("hang"):
            time.sleep(float(fault["hang"]))
        elif fault and fault.get("html"):
            self._html(int(fault.get("status", 200)))
            return
        elif fault:
            headers = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else {}
            self._error(int(fault.get("status", 503)), "unavailable", "injected fault", headers)
            return
        if self.headers.get("Authorization") != f"Token {state.token}":
            self._error(401, "unauthorized", "unauthorized access")
            return
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        org = (query.get("org") or query.get("orgID") or [""])[0]
        bucket = (query.get("bucket") or query.get("bucketID") or [""])[0]
        precision = (query.get("precision") or ["ns"])[0]
        if not org:
            self._error(400, "invalid", "Please provide either orgID or org")
        elif not bucket:
            self._error(404, "not found", "bucket not found")
        elif precision not in PRECISIONS:
            self._error(
                400, "invalid", "invalid precision; valid precision units are ns, us, ms, and s"
            )
        else:
            self._forward(body, bucket, precision)

    def _delete(self, body: bytes) -> None:
        if self.headers.get("Authorization") != f"Token {self.server.state.token}":
            self._error(401, "unauthorized", "unauthorized access")
            return
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        bucket = (query.get("bucket") or query.get("bucketID") or [""])[0]
        if not self._bucket_exists(bucket):
            self._error(404, "not found", f'bucket "{bucket}" not found')
            return
        try:
            request = json.loads(body)
            start, stop = request["start"], request["stop"]
            where = [f"time >= '{start}'", f"time <= '{stop}'"]
            measurement, tags = _parse_predicate(str(request.get("predicate") or ""))
        except (ValueError, KeyError, TypeError) as exc:
            self._error(400, "invalid", f"invalid request; error parsing request json: {exc}")
            return
        where += [f"{_ident(k)} = {_literal(v)}" for k, v in tags.items()]
        target = f"FROM {_ident(measurement)} " if measurement else ""
        try:
            self._influxql(bucket, f"DELETE {target}WHERE {' AND '.join(where)}")
            self._forget_emptied(bucket, _time(start), _time(stop), measurement)
        except (OSError, ValueError, RuntimeError) as exc:
            self._error(500, "internal error", f"unable to delete: {exc}")
            return
        self._send(204)

    def _forget_emptied(
        self, bucket: str, start: dt.datetime, stop: dt.datetime, measurement: str
    ) -> None:
        """Drop the shards of the range left with no point, and a measurement left with none."""
        shards = self._influxql("", "SHOW SHARDS")
        for series in shards:
            if series.get("name") != bucket:
                continue
            columns = series["columns"]
            for values in series["values"]:
                shard = dict(zip(columns, values, strict=True))
                if _time(shard["end_time"]) <= start or _time(shard["start_time"]) > stop:
                    continue
                left = self._influxql(
                    bucket,
                    "SELECT COUNT(*) FROM /.*/ WHERE "
                    f"time >= '{shard['start_time']}' AND time < '{shard['end_time']}'",
                )
                if not left:
                    self._influxql("", f"DROP SHARD {int(shard['id'])}")
        if measurement and not self._influxql(
            bucket, f"SELECT COUNT(*) FROM {_ident(measurement)}"
        ):
            self._influxql(bucket, f"DROP MEASUREMENT {_ident(measurement)}")

    def _influxql(self, database: str, statement: str) -> list[dict[str, t.Any]]:
        state = self.server.state
        params = urllib.parse.urlencode({"db": database, "q": statement})
        conn = http.client.HTTPConnection(state.upstream_host, state.upstream_port, timeout=60)
        conn.request("POST", f"/query?{params}")
        payload = json.loads(conn.getresponse().read() or b"{}")
        conn.close()
        result = payload.get("results", [{}])[0]
        if "error" in result:
            raise RuntimeError(result["error"])
        return list(result.get("series", []))

    def _forward(self, body: bytes, bucket: str, precision: str) -> None:
        if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError) as exc:
                self._error(400, "invalid", f"unable to decompress gzip body: {exc}")
                return
        if not body.strip():
            # 2.x finds the bucket before it reads the body
            if self._bucket_exists(bucket):
                self._error(400, "invalid", "writing requires points")
            else:
                self._error(404, "not found", f'bucket "{bucket}" not found')
            return
        params = urllib.parse.urlencode({"db": bucket, "precision": PRECISIONS[precision]})
        state = self.server.state
        try:
            conn = http.client.HTTPConnection(state.upstream_host, state.upstream_port, timeout=120)
            conn.request("POST", f"/write?{params}", body, {"Content-Type": "text/plain"})
            response = conn.getresponse()
            status, text = response.status, response.read().decode(errors="replace")
            conn.close()
        except OSError as exc:
            self._error(503, "unavailable", f"storage engine unavailable: {exc}")
            return
        self._answer_upstream(status, text, bucket)

    def _bucket_exists(self, bucket: str) -> bool:
        state = self.server.state
        query = urllib.parse.urlencode({"q": "SHOW DATABASES"})
        try:
            conn = http.client.HTTPConnection(state.upstream_host, state.upstream_port, timeout=30)
            conn.request("GET", f"/query?{query}")
            payload = json.loads(conn.getresponse().read() or b"{}")
            conn.close()
        except (OSError, ValueError):
            return True
        series = payload.get("results", [{}])[0].get("series", [])
        return any(row[0] == bucket for s in series for row in s.get("values", []))

    def _answer_upstream(self, status: int, text: str, bucket: str) -> None:
        if status == 204:
            self.server.state.count("writes_accepted")
            self._send(204)
            return
        try:
            message = str(json.loads(text).get("error", text))
        except ValueError:
            message = text.strip()
        if status == 404 or "database not found" in message:
            self._error(404, "not found", f'bucket "{bucket}" not found')
        elif "partial write" in message:
            self._error(
                422, "unprocessable entity", f"failure writing points to database: {message}"
            )
        elif status == 400:
            self._error(400, "invalid", message)
        else:
            self._error(max(status, 500), "internal error", message)


_PREDICATE_TERM = re.compile(r'\s*("?)([^"=\s]+)\1\s*=\s*"((?:[^"\\]|\\.)*)"\s*')


def _parse_predicate(predicate: str) -> tuple[str, dict[str, str]]:
    """The measurement and the tags of a delete predicate (``key="value"`` terms, ``AND``)."""
    measurement, tags = "", {}
    terms = re.split(r"\s+AND\s+", predicate.strip(), flags=re.IGNORECASE) if predicate else []
    for term in terms:
        match = _PREDICATE_TERM.fullmatch(term)
        if match is None:
            raise ValueError(f"unsupported predicate term {term!r}")
        key, value = match[2], re.sub(r"\\(.)", r"\1", match[3])
        if key == "_measurement":
            measurement = value
        else:
            tags[key] = value
    return measurement, tags


def _time(text: str) -> dt.datetime:
    """An RFC 3339 time, its fraction cut to microseconds."""
    return dt.datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text))


def _ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ProxyServer(ThreadingHTTPServer):
    """The proxy's HTTP server, carrying the shared state."""

    daemon_threads = True

    def __init__(self, port: int, state: ProxyState) -> None:
        """Bind on loopback only."""
        super().__init__(("127.0.0.1", port), Handler)
        self.state = state


def main(argv: list[str] | None = None) -> None:
    """Run the proxy until it is terminated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--upstream", required=True, help="InfluxDB 1.x base URL")
    parser.add_argument("--token", required=True, help="the only API token accepted")
    args = parser.parse_args(argv)
    server = ProxyServer(args.port, ProxyState(args.upstream, args.token))
    serve(server, "127.0.0.1")


if __name__ == "__main__":
    main()
