r"""Check a running Grafana through its HTTP API: what grafana/ provisions is there and works.

Each dashboard of ``grafana/dashboards`` loads from the folder "GB gas", the InfluxQL
datasource passes its health check, both alert rules are provisioned, and every panel query
runs through the datasource without error. Exits 1 naming each failure.

    .venv/bin/python scripts/check_grafana.py --url http://127.0.0.1:3000 \\
        --user admin --password "$GRAFANA_ADMIN_PASSWORD"
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
import typing as t
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "grafana" / "dashboards"
DATASOURCE_UID = "influxdb-influxql"
ALERT_UIDS = {"gb-gas-no-gas-quality", "gb-gas-no-flows"}
WINDOW_MS = 7 * 24 * 3600 * 1000


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Follow no redirect: urllib then raises the 3xx as an ``HTTPError``."""

    def redirect_request(self, *_args: t.Any, **_kwargs: t.Any) -> None:  # noqa: ANN401
        """Answer the redirect as it is."""
        return


class Grafana:
    """A few calls of Grafana's HTTP API with basic authentication.

    A call never follows a redirect: it carries the admin's login, which would go to the host
    the redirect names. A redirect ends the check with its cause.
    """

    def __init__(self, url: str, user: str, password: str) -> None:
        """Remember where Grafana is and how to log in."""
        self.url = url.rstrip("/")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
        self._opener = urllib.request.build_opener(_NoRedirect)

    def call(self, path: str, body: object = None) -> tuple[int, t.Any]:
        """GET (or POST a JSON body); return the status and the decoded answer.

        Raises:
            SystemExit: on a redirect, naming it (it is not followed).
        """
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 (the URL given on the command line)
            self.url + path, data=data, headers=self.headers
        )
        try:
            with self._opener.open(request, timeout=60) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as exc:
            if 300 <= exc.code < 400:  # noqa: PLR2004
                location = exc.headers.get("Location") or "no Location"
                msg = (
                    f"Grafana at {self.url} answered {exc.code} (redirect to {location}) to "
                    f"{path}: not Grafana's API (the redirect was not followed, the login went "
                    "nowhere else); set --url to the URL Grafana itself answers on"
                )
                raise SystemExit(msg) from None
            text = exc.read().decode(errors="replace")
            try:
                return exc.code, json.loads(text)
            except ValueError:
                return exc.code, text

    def wait_healthy(self, seconds: float) -> None:
        """Wait until /api/health answers 200."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                if self.call("/api/health")[0] == 200:  # noqa: PLR2004
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                msg = f"Grafana at {self.url} not healthy after {seconds:.0f} s"
                raise SystemExit(msg)
            time.sleep(2)


def filled_in(text: str, now_ms: int) -> str:
    """What Grafana's front end fills in before a query reaches the datasource."""
    return (
        text.replace("$site", ".*")
        .replace("$__from", str(now_ms - WINDOW_MS))
        .replace("$__to", str(now_ms))
    )


def check_dashboard(grafana: Grafana, path: Path, now_ms: int) -> list[str]:
    """Problems of one provisioned dashboard and of each of its panel queries."""
    board = json.loads(path.read_text())
    status, found = grafana.call(f"/api/dashboards/uid/{board['uid']}")
    if status != 200:  # noqa: PLR2004
        return [f"{path.name}: dashboard {board['uid']} did not load ({status} {found})"]
    problems = []
    meta = found["meta"]
    if meta.get("folderTitle") != "GB gas" or not meta.get("provisioned"):
        problems.append(f"{path.name}: not provisioned in the folder GB gas ({meta})")
    for panel in found["dashboard"]["panels"]:
        for target in panel["targets"]:
            query = {
                **target,
                "query": filled_in(target["query"], now_ms),
                "intervalMs": 60_000,
                "maxDataPoints": 1000,
            }
            body = {"queries": [query], "from": str(now_ms - WINDOW_MS), "to": str(now_ms)}
            status, answer = grafana.call("/api/ds/query", body)
            error = (answer or {}).get("results", {}).get(target["refId"], {}).get("error")
            if status != 200 or error:  # noqa: PLR2004
                problems.append(f"{path.name}: {panel['title']}: {status} {error or answer}")
    return problems


def main() -> int:
    """Check everything; print one line per check, and each problem."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", required=True)
    parser.add_argument("--wait", type=float, default=120, help="seconds to wait for health")
    args = parser.parse_args()
    grafana = Grafana(args.url, args.user, args.password)
    grafana.wait_healthy(args.wait)
    problems = []

    status, health = grafana.call(f"/api/datasources/uid/{DATASOURCE_UID}/health")
    if status != 200 or (health or {}).get("status") != "OK":  # noqa: PLR2004
        problems.append(f"datasource {DATASOURCE_UID}: health check {status} {health}")
    print(f"datasource {DATASOURCE_UID}: {status} {health}")

    status, rules = grafana.call("/api/v1/provisioning/alert-rules")
    found = {rule["uid"] for rule in rules} if status == 200 else set()  # noqa: PLR2004
    if not found >= ALERT_UIDS:
        problems.append(f"alert rules missing: {sorted(ALERT_UIDS - found)} ({status})")
    print(f"alert rules: {sorted(found)}")

    now_ms = int(time.time() * 1000)
    for path in sorted(DASHBOARDS.glob("*.json")):
        found_problems = check_dashboard(grafana, path, now_ms)
        print(f"{path.name}: {'ok' if not found_problems else 'FAILED'}")
        problems += found_problems

    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
