"""Real InfluxDB engines for the tests, and reading points back from them.

:class:`LocalInfluxDB` starts Debian's ``influxd`` (1.6.7, the real storage engine) on
loopback with a temporary data directory, behind :mod:`testkit.influx_proxy`, which
serves the 2.x write API. :class:`RemoteInfluxDB2` uses a real InfluxDB 2.x named by
``INFLUXDB_TEST_URL``, ``INFLUXDB_TEST_TOKEN`` and ``INFLUXDB_TEST_ORG``. Both offer the
same calls: ``create_bucket``, ``points`` and ``field_types``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import typing as t
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from testkit.processes import free_port, http_status, start_server, stop_process, wait_until

INFLUXD = shutil.which("influxd") or "/usr/bin/influxd"


@dataclass(frozen=True)
class Point:
    """One stored point, with fields typed as the engine stores them."""

    measurement: str
    time_ns: int
    tags: dict[str, str] = field(default_factory=dict)
    fields: dict[str, t.Any] = field(default_factory=dict)


def quote_ident(name: str) -> str:
    """Quote an InfluxQL identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _typed(value: object, kind: str) -> object:
    if kind == "float":
        return float(t.cast("float", value))
    if kind == "integer":
        return int(t.cast("int", value))
    return value


INFLUXD_CONFIG = """\
reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{dir}/meta"
[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false
  max-series-per-database = 0
  max-values-per-tag = 0
[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = false
  log-enabled = false
  max-body-size = 0
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
"""


class LocalInfluxDB:
    """Debian's influxd behind the 2.x write proxy, on loopback, in a temporary folder."""

    def __init__(self, workdir: Path, token: str = "testkit-token", org: str = "testkit") -> None:
        """Prepare ports and paths; nothing starts before :meth:`start`."""
        self.workdir = workdir
        self.token, self.org = token, org
        self.http_port, self.rpc_port = free_port(), free_port()
        self.raw_url = f"http://127.0.0.1:{self.http_port}"
        self.url = ""
        self._engine: subprocess.Popen[bytes] | None = None
        self._proxy: subprocess.Popen[str] | None = None

    def start(self) -> LocalInfluxDB:
        """Start the engine and the proxy; return once both answer."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "influxdb.conf"
        config.write_text(
            INFLUXD_CONFIG.format(
                dir=self.workdir, rpc_port=self.rpc_port, http_port=self.http_port
            ),
        )
        self.start_engine()
        try:
            self._proxy, self.url = start_server(
                "testkit.influx_proxy",
                "--port",
                "0",
                "--upstream",
                self.raw_url,
                "--token",
                self.token,
            )
        except RuntimeError:
            self.stop()
            raise
        wait_until(lambda: http_status(f"{self.url}/health") == 200, "the proxy's /health")
        return self

    def start_engine(self) -> None:
        """(Re)start influxd on its ports, with the data it already holds."""
        log = (self.workdir / "influxd.log").open("ab")
        self._engine = subprocess.Popen(
            [INFLUXD, "-config", str(self.workdir / "influxdb.conf")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_until(lambda: http_status(f"{self.raw_url}/ping") == 204, "influxd /ping")

    def stop_engine(self) -> None:
        """Stop influxd only; the proxy then answers writes with 503."""
        stop_process(self._engine)
        self._engine = None

    @property
    def engine_running(self) -> bool:
        """True while influxd runs."""
        return self._engine is not None and self._engine.poll() is None

    def stop(self) -> None:
        """Stop both processes and delete the data."""
        stop_process(self._proxy)
        self.stop_engine()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def query(self, bucket: str, influxql: str) -> list[dict[str, t.Any]]:
        """Run InfluxQL on the engine and return its series."""
        return influxql_series(f"{self.raw_url}/query", {}, bucket, influxql)

    def create_bucket(self, name: str) -> None:
        """Create a bucket (a 1.x database)."""
        data = urllib.parse.urlencode({"q": f"CREATE DATABASE {quote_ident(name)}"}).encode()
        with urllib.request.urlopen(f"{self.raw_url}/query", data=data, timeout=30):
            pass

    def field_types(self, bucket: str, measurement: str) -> dict[str, str]:
        """Field key -> stored type (float, integer, boolean, string)."""
        series = self.query(bucket, f"SHOW FIELD KEYS FROM {quote_ident(measurement)}")
        return {row[0]: row[1] for s in series for row in s["values"]}

    def points(self, bucket: str, measurement: str) -> list[Point]:
        """Every point of one measurement, oldest first."""
        m = quote_ident(measurement)
        tag_keys = {
            row[0] for s in self.query(bucket, f"SHOW TAG KEYS FROM {m}") for row in s["values"]
        }
        types = self.field_types(bucket, measurement)
        found = []
        for series in self.query(bucket, f"SELECT * FROM {m}"):
            columns = series["columns"]
            for row in series["values"]:
                values = dict(zip(columns, row, strict=True))
                found.append(
                    Point(
                        measurement,
                        int(values["time"]),
                        {k: v for k, v in values.items() if k in tag_keys and v is not None},
                        {
                            k: _typed(v, types[k])
                            for k, v in values.items()
                            if k in types and v is not None
                        },
                    )
                )
        return found

    def queue_faults(self, faults: list[dict[str, t.Any]]) -> None:
        """Make the next writes fail: ``{"status": 503, "retry_after": 1}`` or ``{"hang": 5}``."""
        request = urllib.request.Request(f"{self.url}/__faults", data=json.dumps(faults).encode())
        with urllib.request.urlopen(request, timeout=10):
            pass

    def clear_faults(self) -> None:
        """Drop the faults still queued and reset the counters."""
        request = urllib.request.Request(f"{self.url}/__faults", method="DELETE")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def proxy_stats(self) -> dict[str, t.Any]:
        """The proxy's counters and queued faults."""
        with urllib.request.urlopen(f"{self.url}/__faults", timeout=10) as response:
            return dict(json.load(response))


class RemoteInfluxDB2:
    """A real InfluxDB 2.x named by the environment; buckets made here are deleted at close."""

    def __init__(self, url: str, token: str, org: str) -> None:
        """Connect with the official client."""
        from influxdb_client import InfluxDBClient  # noqa: PLC0415

        self.url, self.token, self.org = url.rstrip("/"), token, org
        self._client = InfluxDBClient(url=self.url, token=token, org=org, timeout=60_000)
        self._buckets: list[t.Any] = []

    def create_bucket(self, name: str) -> None:
        """Create a bucket in the org."""
        self._buckets.append(
            self._client.buckets_api().create_bucket(bucket_name=name, org=self.org)
        )

    def query(self, bucket: str, influxql: str) -> list[dict[str, t.Any]]:
        """Run InfluxQL through the bucket's DBRP mapping (``/query``, as Grafana does)."""
        headers = {"Authorization": f"Token {self.token}"}
        return influxql_series(f"{self.url}/query", headers, bucket, influxql)

    def points(self, bucket: str, measurement: str) -> list[Point]:
        """Every point of one measurement, oldest first."""
        flux = (
            f'from(bucket: "{bucket}") |> range(start: 0) |> filter(fn: (r) => r._measurement == '
            + json.dumps(measurement, ensure_ascii=False)
            + ")"
        )
        merged: dict[tuple[int, tuple[tuple[str, str], ...]], dict[str, t.Any]] = {}
        skip = {"result", "table", "_start", "_stop", "_time", "_value", "_field", "_measurement"}
        for table in self._client.query_api().query(flux, org=self.org):
            for record in table.records:
                stamp = record.get_time()
                time_ns = (int(stamp.timestamp()) * 1_000_000 + stamp.microsecond) * 1000
                tags = tuple(sorted((k, v) for k, v in record.values.items() if k not in skip))
                merged.setdefault((time_ns, tags), {})[record.get_field()] = record.get_value()
        return [Point(measurement, k[0], dict(k[1]), v) for k, v in sorted(merged.items())]

    def field_types(self, bucket: str, measurement: str) -> dict[str, str]:
        """Field key -> stored type, read from the values' types."""
        names = {bool: "boolean", int: "integer", float: "float", str: "string"}
        return {
            k: names[type(v)] for p in self.points(bucket, measurement) for k, v in p.fields.items()
        }

    def stop(self) -> None:
        """Delete the buckets created here and close the client."""
        for bucket in self._buckets:
            self._client.buckets_api().delete_bucket(bucket)
        self._client.close()


def influxql_series(
    url: str, headers: dict[str, str], database: str, influxql: str
) -> list[dict[str, t.Any]]:
    """The series of one InfluxQL statement; an error of the engine raises RuntimeError."""
    data = urllib.parse.urlencode({"db": database, "q": influxql, "epoch": "ns"}).encode()
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            result = json.load(response)["results"][0]
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{exc.code}: {exc.read().decode(errors='replace')}") from None
    if "error" in result:
        raise RuntimeError(result["error"])
    return list(result.get("series", []))


def run_influx_delete(engine: LocalInfluxDB | RemoteInfluxDB2, command: str) -> None:
    """Run an ``influx delete`` command line as the influx CLI does: ``POST /api/v2/delete``."""
    words = shlex.split(command)
    if words[:2] != ["influx", "delete"]:
        raise ValueError(f"not an influx delete command: {command}")
    flags = dict(zip(words[2::2], words[3::2], strict=True))
    query = urllib.parse.urlencode({"org": flags["--org"], "bucket": flags["--bucket"]})
    body = {"start": flags["--start"], "stop": flags["--stop"]}
    if "--predicate" in flags:
        body["predicate"] = flags["--predicate"]
    request = urllib.request.Request(
        f"{engine.url}/api/v2/delete?{query}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Token {engine.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        if response.status != 204:
            raise RuntimeError(f"delete answered {response.status}")


def run_influx_write(engine: LocalInfluxDB | RemoteInfluxDB2, command: str) -> None:
    """Run an ``influx write --bucket B --org O --file F [--file F...]`` command line."""
    words = shlex.split(command)
    if words[:2] != ["influx", "write"]:
        raise ValueError(f"not an influx write command: {command}")
    pairs = list(zip(words[2::2], words[3::2], strict=True))
    bucket = dict(pairs)["--bucket"]
    for flag, value in pairs:
        if flag == "--file":
            write_lines(engine, bucket, Path(value).read_bytes())


def write_lines(engine: LocalInfluxDB | RemoteInfluxDB2, bucket: str, body: bytes) -> None:
    """Write line protocol in nanosecond precision, as ``influx write --file`` does by default."""
    query = urllib.parse.urlencode({"org": engine.org, "bucket": bucket, "precision": "ns"})
    request = urllib.request.Request(
        f"{engine.url}/api/v2/write?{query}",
        data=body,
        headers={"Authorization": f"Token {engine.token}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        if response.status != 204:
            raise RuntimeError(f"write answered {response.status}")


def influxdb_from_env(workdir: Path) -> LocalInfluxDB | RemoteInfluxDB2:
    """A real 2.x when ``INFLUXDB_TEST_URL`` is set, else a started local engine."""
    url = os.environ.get("INFLUXDB_TEST_URL")
    if url:
        return RemoteInfluxDB2(
            url, os.environ["INFLUXDB_TEST_TOKEN"], os.environ["INFLUXDB_TEST_ORG"]
        )
    return LocalInfluxDB(workdir).start()
