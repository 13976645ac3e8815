"""A local fake of the National Gas operational data API, faithful to its known shapes and quirks.

Serves, under any base path ending in ``/operationaldata/v1`` or at the root, the paths of
``testkit.nationalgas_data.ROUTES`` (``GET /gasquality/latestdata``, ``POST
/gasquality/historicdata``, ``GET /instantaneousflow/sites``, ``GET /publications/catalogue``,
``POST /publications/gasday``, and any path added there), each answered by the data generator,
with the quirks the real API shows: numbers that arrive as strings (publication values always;
gas quality and flows with ``--string-numbers``), nulls (``--nulls``), 400 for an unknown
publication id, HTML with status 200 for an unknown path, and, queued as faults, 429 bursts with
``Retry-After``, 5xx, HTML or empty bodies with status 200, and slow answers.

Control (for tests): ``POST /__control/clock`` ``{"now": ISO}`` or ``{"advance_minutes": N}``;
``POST /__control/faults`` ``[{"path": "/gasquality", "status": 429, "retry_after": 1}, ...]``
(also ``"html": true``, ``"empty": true``, ``"body": <JSON to answer>``, ``"hang": seconds``,
``"truncated": "<text>"`` answered as it is, as JSON cut short; ``"oversize_mb": N`` a valid
JSON list of N MB, streamed;
an answer altered: ``"drop_first_row": true`` leaves out the first row of a list answer,
``"rename": {"OLD": "New"}`` renames a site; a fault with none of these answers normally;
``"count"`` repeats one);
``DELETE /__control/faults``; ``GET /__control/stats`` (requests per path, clock, faults left).

Run: ``python -m testkit.fake_nationalgas --port 8765 --seed 1 --now 2026-08-11T07:59:24+01:00``.
It answers only on loopback and prints ``listening on http://127.0.0.1:PORT`` once ready.
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.utils
import json
import socket
import threading
import time
import typing as t
import urllib.parse
import urllib.request
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from testkit import nationalgas_data
from testkit.nationalgas_data import ROUTES, BadRequestError, NationalGasData
from testkit.processes import serve, start_server, stop_process, wait_until

BASE_PATH = "/operationaldata/v1"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
catalogue_payload = nationalgas_data.catalogue_payload  # where the tap's tests take it from
SPA_SHELL = (
    b'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>National Gas Data Portal'
    b'</title></head><body><div id="root"></div><script src="/static/js/main.js"></script>'
    b"</body></html>"
)


class FakeState:
    """The fake's data (its clock and quirks), queued faults and request counters."""

    def __init__(self, data: NationalGasData) -> None:
        """Hold the data source."""
        self.data = data
        self.lock = threading.Lock()
        self.faults: deque[dict[str, t.Any]] = deque()
        self.requests: Counter[str] = Counter()

    def take_fault(self, path: str) -> dict[str, t.Any] | None:
        """Count the request and pop the first queued fault that applies to this path."""
        with self.lock:
            self.requests[path] += 1
            for fault in self.faults:
                if path.startswith(fault.get("path", "")):
                    self.faults.remove(fault)
                    return fault
        return None


class Handler(BaseHTTPRequestHandler):
    """Routes the paths of ``ROUTES``, the quirks and the control calls."""

    protocol_version = "HTTP/1.1"
    server: FakeServer
    raw_body = b""

    def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002, ANN401
        """Keep test output quiet."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header: the fake's clock, as a real server gives its own."""
        now = self.server.state.data.now.timestamp() if timestamp is None else timestamp
        return email.utils.formatdate(now, usegmt=True)

    # plumbing
    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_oversized(self, megabytes: int) -> None:
        """A valid JSON list of ``megabytes`` MB, written 1 MB at a time (never held whole)."""
        chunk = (b'"' + b"x" * 1020 + b'",') * 1024  # 1024 strings of 1 KB with their commas
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(1 + megabytes * len(chunk) + 3))
        self.end_headers()
        try:
            self.wfile.write(b"[")
            for _ in range(megabytes):
                self.wfile.write(chunk)
            self.wfile.write(b'""]')
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading
            self.close_connection = True

    def _json(self, payload: object, status: int = 200) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json; charset=utf-8")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _read_json(self) -> dict[str, t.Any]:
        try:
            body = json.loads(self.raw_body or b"{}")
        except ValueError as exc:
            raise BadRequestError("body is not JSON") from exc
        if not isinstance(body, dict):
            raise BadRequestError("body must be a JSON object")
        return body

    def _route(self) -> str:
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        return path.removeprefix(BASE_PATH) if path.startswith(BASE_PATH) else path

    def _apply_fault(self, fault: dict[str, t.Any]) -> bool:
        """Serve a queued fault; True when it answered the request."""
        if fault.get("hang"):
            time.sleep(float(fault["hang"]))
        if "body" in fault:
            self._json(fault["body"])
        elif fault.get("html"):
            self._send(200, SPA_SHELL, "text/html; charset=utf-8")
        elif fault.get("empty"):
            self._send(200, b"", "application/json")
        elif "truncated" in fault:
            self._send(200, str(fault["truncated"]).encode(), "application/json")
        elif fault.get("oversize_mb"):
            self._send_oversized(int(fault["oversize_mb"]))
        elif fault.get("status"):
            headers = {"Retry-After": fault["retry_after"]} if "retry_after" in fault else {}
            self._send(int(fault["status"]), b"", "text/plain", headers)
        else:
            return False
        return True

    # verbs
    def do_GET(self) -> None:
        """Serve the GET endpoints and the control stats."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """Serve the POST endpoints and the control calls."""
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        """Clear queued faults."""
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        # read the whole body first: a fault answers early, and the connection is kept alive
        self.raw_body = self._read_body()
        route = self._route()
        if route.startswith("/__control"):
            self._control(method, route)
            return
        state = self.server.state
        fault = state.take_fault(route)
        if fault:
            if "count" in fault and int(fault["count"]) > 1:
                with state.lock:
                    state.faults.appendleft({**fault, "count": int(fault["count"]) - 1})
            if self._apply_fault(fault):
                return
        served = ROUTES.get(route)
        if served is None or served.method != method:
            # the portal answers unknown paths with its single-page app shell
            self._send(200, SPA_SHELL, "text/html; charset=utf-8")
            return
        try:
            body = self._read_json() if method == "POST" else {}
            with state.lock:
                payload = served.answer(state.data, body)
        except BadRequestError as exc:
            self._json({"status": 400, "error": "Bad Request", "message": str(exc)}, 400)
            return
        self._json(_altered(payload, fault or {}))

    def _control(self, method: str, route: str) -> None:
        state = self.server.state
        with state.lock:
            if method == "GET" and route == "/__control/stats":
                self._json(
                    {
                        "requests": dict(state.requests),
                        "now": state.data.now.isoformat(),
                        "faults": list(state.faults),
                    }
                )
                return
            if method == "DELETE" and route == "/__control/faults":
                state.faults.clear()
                state.requests.clear()
            elif method == "POST" and route == "/__control/faults":
                state.faults.extend(self._read_json_list())
            elif method == "POST" and route == "/__control/clock":
                body = self._read_json()
                if "now" in body:
                    state.data.now = dt.datetime.fromisoformat(body["now"]).astimezone(dt.UTC)
                state.data.now += dt.timedelta(minutes=float(body.get("advance_minutes", 0)))
            else:
                self._json({"message": "unknown control call"}, 404)
                return
        self._send(204, b"", "text/plain")

    def _read_json_list(self) -> list[dict[str, t.Any]]:
        return list(json.loads(self.raw_body or b"[]"))


def _altered(payload: object, fault: dict[str, t.Any]) -> object:
    """An answer altered as a fault asks: a row left out, names changed."""
    if fault.get("drop_first_row") and isinstance(payload, list) and payload:
        rows = payload[0].get("publications") or payload[0].get("siteGasQualityDetail") or []
        if rows:
            rows.pop(0)
    renames = fault.get("rename") or {}
    if renames:
        text = json.dumps(payload)
        for old, new in renames.items():
            text = text.replace(json.dumps(old), json.dumps(new))
        payload = json.loads(text)
    return payload


class FakeServer(ThreadingHTTPServer):
    """The fake's HTTP server, on loopback only."""

    daemon_threads = True

    def __init__(self, host: str, port: int, state: FakeState) -> None:
        """Bind; refuse anything but a loopback address."""
        if host not in LOOPBACK:
            raise ValueError(f"the fake API answers only on loopback, not on {host!r}")
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), Handler)
        self.state = state


def main(argv: list[str] | None = None) -> None:
    """Run the fake until it is terminated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated data")
    parser.add_argument(
        "--now", default=None, help="the fake's clock, ISO 8601 (default: real time)"
    )
    parser.add_argument(
        "--string-numbers", action="store_true", help="send some numbers as strings"
    )
    parser.add_argument("--nulls", action="store_true", help="send some values as null")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        type=json.loads,
        help='queue a fault, e.g. \'{"path": "/gasquality", "status": 429, "retry_after": 1}\'',
    )
    args = parser.parse_args(argv)
    now = dt.datetime.fromisoformat(args.now) if args.now else dt.datetime.now(dt.UTC)
    state = FakeState(
        NationalGasData(args.seed, now, string_numbers=args.string_numbers, nulls=args.nulls)
    )
    state.faults.extend(args.fault)
    try:
        server = FakeServer(args.host, args.port, state)
    except ValueError as exc:
        parser.error(str(exc))
    serve(server, args.host)


if __name__ == "__main__":
    main()


class FakeNationalGasProcess:
    """The fake API as a process on loopback, for tests and benchmarks; stop it by :meth:`stop`."""

    def __init__(self, *, now: str, seed: int = 1, flags: tuple[str, ...] = ()) -> None:
        """Start the fake with its clock at ``now``; return once it listens."""
        self._proc, self.root = start_server(
            "testkit.fake_nationalgas",
            "--port",
            "0",
            "--seed",
            str(seed),
            "--now",
            now,
            *flags,
        )
        self.url = self.root + BASE_PATH
        self.start_now = now
        wait_until(lambda: bool(self.stats()), "the fake API")

    def _call(self, method: str, path: str, payload: object = None) -> object:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.root + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def get(self, path: str) -> t.Any:  # noqa: ANN401
        """What the fake answers to ``GET path`` (under the API's base path) now."""
        return self._call("GET", BASE_PATH + path)

    def stats(self) -> dict[str, t.Any]:
        """Requests per path, the clock and the faults still queued."""
        return t.cast("dict[str, t.Any]", self._call("GET", "/__control/stats"))

    def set_now(self, now: str) -> None:
        """Set the fake's clock."""
        self._call("POST", "/__control/clock", {"now": now})

    def advance(self, minutes: float) -> None:
        """Move the fake's clock forward."""
        self._call("POST", "/__control/clock", {"advance_minutes": minutes})

    def queue_faults(self, faults: list[dict[str, t.Any]]) -> None:
        """Queue faults for the next matching requests."""
        self._call("POST", "/__control/faults", faults)

    def reset(self) -> None:
        """Clock back to the start, no faults, counters at zero."""
        self._call("DELETE", "/__control/faults")
        self.set_now(self.start_now)

    def stop(self) -> None:
        """Stop the process by its PID."""
        stop_process(self._proc)
