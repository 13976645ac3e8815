"""Servers on loopback for redirect tests: one that redirects, one that records what reaches it.

A request that carries a token or a password must never follow a redirect: the
:class:`Redirector` answers with a 3xx pointing at the :class:`Recorder`, and a test asserts
that the recorder received nothing.
"""

from __future__ import annotations

import threading
import typing as t
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

if t.TYPE_CHECKING:
    from collections.abc import Callable


@dataclass(frozen=True)
class Received:
    """One request a server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Answer = tuple[int, dict[str, str], bytes]
"""Status, headers and body of an answer."""


class LoopbackServer:
    """An HTTP server in a thread on 127.0.0.1 that records every request and answers by a rule.

    Use it as a context manager, or call :meth:`stop`.
    """

    def __init__(self, answer: Callable[[Received], Answer]) -> None:
        """Start serving; ``answer`` decides the answer to each request."""
        self.received: list[Received] = []
        self._answer = answer
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def take(self, request: Received) -> Answer:
        """Record a request and return its answer."""
        with self._lock:
            self.received.append(request)
        return self._answer(request)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> t.Self:
        """Serve within a ``with`` block."""
        return self

    def __exit__(self, *_exc: object) -> None:
        """Stop at the end of the ``with`` block."""
        self.stop()


class Recorder(LoopbackServer):
    """Records every request and answers 200 ``{}``: where a followed redirect would land."""

    def __init__(self) -> None:
        """Start serving."""
        super().__init__(lambda _request: (200, {"Content-Type": "application/json"}, b"{}"))


class Redirector(LoopbackServer):
    """Answers every request (but those ``passes`` lets through) with a redirect to ``target``.

    The redirect keeps the path and query: ``Location`` is ``target`` + the request's path.
    """

    def __init__(
        self, status: int, target: str, passes: Callable[[Received], Answer | None] | None = None
    ) -> None:
        """Start serving; ``passes`` may answer a request itself (None: redirect it)."""
        self.status, self.target = status, target.rstrip("/")

        def answer(request: Received) -> Answer:
            own = passes(request) if passes else None
            if own is not None:
                return own
            headers = {"Location": self.target + request.path, "Content-Type": "text/plain"}
            return self.status, headers, b"moved"

        super().__init__(answer)


def influxdb_checks_pass(request: Received) -> Answer | None:
    """Answer InfluxDB's start-up checks as InfluxDB does (``/ping`` 204, an empty write 400).

    A :class:`Redirector` with it lets a target start and redirects its writes of data.
    """
    if request.path.startswith("/ping"):
        return 204, {}, b""
    if request.path.startswith("/api/v2/write") and not request.body:
        body = b'{"code":"invalid","message":"writing requires points"}'
        return 400, {"Content-Type": "application/json"}, body
    return None


def _handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002, ANN401
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Received(self.command, self.path, dict(self.headers.items()), body)
            status, headers, data = server.take(request)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

    return Handler
