"""A stand-in for the parts of Grafana's HTTP API that ``scripts/check_grafana.py`` calls.

It serves the committed dashboards and alert rules as Grafana would once it provisioned them,
and answers ``/api/ds/query`` the way Grafana's InfluxQL backend does: ``$timeFilter`` and
``$__interval`` filled in from the request, the query run on a real engine.
"""

from __future__ import annotations

import base64
import json
import threading
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from string import Template

import yaml

from testkit.processes import REPO_ROOT

if t.TYPE_CHECKING:
    from pathlib import Path

    from testkit.influx import LocalInfluxDB, RemoteInfluxDB2

GRAFANA = REPO_ROOT / "grafana"


def time_filter(start_ms: int | str, end_ms: int | str) -> str:
    """What Grafana's InfluxQL backend writes for ``$timeFilter``."""
    return f"time >= {start_ms}ms and time <= {end_ms}ms"


def legend(target: dict[str, t.Any], panel: dict[str, t.Any], tags: dict[str, str]) -> str:
    """The name Grafana shows for a series: its alias with tags filled in, or an override's."""
    name = target.get("alias") or ""
    for key, value in tags.items():
        name = name.replace(f"$tag_{key}", value)
    for item in panel["fieldConfig"]["overrides"]:
        if item["matcher"]["options"] == name:
            name = next((p["value"] for p in item["properties"] if p["id"] == "displayName"), name)
    return name


class FakeGrafana:
    """Grafana's API on loopback, with one admin user, over one bucket of a real engine.

    As in Grafana, ``/api/health`` needs no login and every other call does.
    """

    def __init__(  # noqa: PLR0913 (the test's knobs, keyword-only)
        self,
        engine: LocalInfluxDB | RemoteInfluxDB2,
        bucket: str,
        password: str,
        *,
        missing: frozenset[str] = frozenset(),
        alerting: Path = GRAFANA / "provisioning" / "alerting",
        environ: t.Mapping[str, str] | None = None,
    ) -> None:
        """Start serving; ``missing`` names dashboard uids it pretends not to have.

        ``alerting`` is the folder of alerting provisioning files it applies, with the
        ``${VARIABLE}``s in them filled in from ``environ``, as Grafana does from its environment.
        """
        self.engine, self.bucket, self.missing = engine, bucket, missing
        self.alerting = [
            yaml.safe_load(Template(path.read_text()).safe_substitute(environ or {}))
            for path in sorted(alerting.glob("*.yaml"))
        ]
        self.auth = "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()
        self.boards = {
            board["uid"]: board
            for board in (
                json.loads(p.read_text()) for p in (GRAFANA / "dashboards").glob("*.json")
            )
        }
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)

    def answer(self, method: str, path: str, body: t.Any) -> tuple[int, t.Any]:  # noqa: ANN401, PLR0911
        """Status and JSON answer of one call."""
        if path == "/api/health":
            return 200, {"database": "ok"}
        if path == "/api/datasources/uid/influxdb-influxql/health":
            self.engine.query(self.bucket, "SHOW MEASUREMENTS")
            return 200, {"status": "OK", "message": "datasource is working. 5 measurements found"}
        if path == "/api/v1/provisioning/alert-rules":
            return 200, [
                {**rule, "folder": group["folder"]}
                for f in self.alerting
                for group in f.get("groups", [])
                for rule in group["rules"]
            ]
        if path == "/api/v1/provisioning/contact-points":
            return 200, [
                {**receiver, "name": point["name"]}
                for f in self.alerting
                for point in f.get("contactPoints", [])
                for receiver in point["receivers"]
            ]
        if path == "/api/v1/provisioning/policies":
            trees = [tree for f in self.alerting for tree in f.get("policies", [])]
            return 200, trees[-1] if trees else {"receiver": "grafana-default-email"}
        if path.startswith("/api/dashboards/uid/"):
            uid = path.rsplit("/", 1)[1]
            if uid in self.missing or uid not in self.boards:
                return 404, {"message": "Dashboard not found"}
            meta = {"folderTitle": "GB gas", "provisioned": True}
            return 200, {"dashboard": self.boards[uid], "meta": meta}
        if method == "POST" and path == "/api/ds/query":
            return self.query(body)
        return 404, {"message": "Not found"}

    def query(self, body: dict[str, t.Any]) -> tuple[int, t.Any]:
        """Run each InfluxQL query as Grafana's backend would."""
        results = {}
        status = 200
        for item in body["queries"]:
            text = (
                item["query"]
                .replace("$timeFilter", time_filter(body["from"], body["to"]))
                .replace("$__interval", f"{item['intervalMs']}ms")
            )
            try:
                series = self.engine.query(self.bucket, text)
            except RuntimeError as exc:
                results[item["refId"]] = {"error": str(exc), "status": 400}
                status = 400
            else:
                results[item["refId"]] = {"status": 200, "frames": series}
        return status, {"results": results}


def _handler(fake: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002, ANN401
            pass

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            if self.path != "/api/health" and self.headers.get("Authorization") != fake.auth:
                status, answer = 401, {"message": "Invalid username or password"}
            else:
                status, answer = fake.answer(method, self.path, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler
