"""Starting, waiting for and stopping the local processes the tests use, on loopback only."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import typing as t
import urllib.error
import urllib.request
from pathlib import Path

if t.TYPE_CHECKING:
    from http.server import HTTPServer

REPO_ROOT = Path(__file__).resolve().parent.parent
LISTENING = "listening on "


def run_script(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/<name>`` in a fresh interpreter and collect what it printed."""
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: t.Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Poll ``check`` every 50 ms until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    msg = f"timed out after {timeout}s waiting for {what}"
    raise TimeoutError(msg)


def http_status(url: str, method: str = "GET") -> int:
    """Return the HTTP status of a request, 0 when nothing answers."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def stop_process(proc: subprocess.Popen[t.Any] | None) -> None:
    """Terminate one process we started, by its PID, and reap it."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    if proc.stdout:
        proc.stdout.close()


def start_server(module: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Run ``python -m module args``, a server that prints its URL; return it and the URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        start_new_session=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith(LISTENING):
        stop_process(proc)
        msg = f"{module} did not start: {line!r}"
        raise RuntimeError(msg)
    return proc, line.split()[-1]


def serve(server: HTTPServer, host: str) -> None:
    """Print the server's URL (what :func:`start_server` waits for), then serve until stopped."""
    shown = f"[{host}]" if ":" in host else host
    print(f"{LISTENING}http://{shown}:{server.server_address[1]}", flush=True)  # noqa: T201
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


def process_tree(root: int) -> dict[int, str]:
    """The live processes under ``root`` (itself included) and their command lines."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            pid = int(stat.parent.name)
            parents[pid], commands[pid] = int(fields[1]), command
    tree = {root} if root in commands else set()
    grew = True
    while grew:
        below = {pid for pid, parent in parents.items() if parent in tree} - tree
        grew = bool(below)
        tree |= below
    return {pid: commands[pid] for pid in tree}
