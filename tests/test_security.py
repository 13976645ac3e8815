"""Secure by default: no token or password follows a redirect, no setting holds a line break,
and what the setup check and Grafana's check send goes to the URL given and nowhere else."""

from __future__ import annotations

import pytest

import test_setup
from testkit.processes import run_script
from testkit.redirects import Received, Recorder, Redirector

TOKEN = "secret-token-do-not-follow"
REDIRECTS = [301, 302, 307, 308]


def influxdb_env(url: str) -> dict[str, str]:
    """The variables test_setup.py reads for InfluxDB."""
    return {
        "INFLUXDB_URL": url,
        "INFLUXDB_TOKEN": TOKEN,
        "INFLUXDB_ORG": "o",
        "INFLUXDB_BUCKET": "b",
    }


@pytest.mark.parametrize("status", REDIRECTS)
def test_setup_check_does_not_follow_a_redirect_of_influxdb(status):
    with Recorder() as elsewhere, Redirector(status, elsewhere.url) as redirector:
        results = test_setup.check_influxdb(influxdb_env(redirector.url))
    assert [(r.status, r.check) for r in results] == [("FAIL", "InfluxDB reachable")]
    assert results[0].detail == (
        f"INFLUXDB_URL {redirector.url} answered {status} (redirect to {elsewhere.url}/ping): not "
        "InfluxDB, which never redirects (the redirect was not followed); set INFLUXDB_URL to "
        "the URL InfluxDB itself answers on"
    )
    assert elsewhere.received == []


def ping_passes(request: Received) -> tuple[int, dict[str, str], bytes] | None:
    """InfluxDB's ``/ping``; everything else is redirected."""
    return (204, {}, b"") if request.path == "/ping" else None


@pytest.mark.parametrize("status", REDIRECTS)
def test_setup_check_does_not_send_the_token_where_a_write_is_redirected(status):
    with Recorder() as elsewhere, Redirector(status, elsewhere.url, ping_passes) as redirector:
        results = test_setup.check_influxdb(influxdb_env(redirector.url))
    assert [r.status for r in results] == ["PASS", "FAIL"]
    assert results[1].detail.startswith(
        f"INFLUXDB_URL {redirector.url} answered {status} (redirect to {elsewhere.url}"
        "/api/v2/write?org=o&bucket=b&precision=s): not InfluxDB"
    )
    assert elsewhere.received == []
    assert any(TOKEN in r.headers.get("Authorization", "") for r in redirector.received)


def health_passes(request: Received) -> tuple[int, dict[str, str], bytes] | None:
    """Grafana's ``/api/health``; every call that logs in is redirected."""
    if request.path == "/api/health":
        return 200, {"Content-Type": "application/json"}, b'{"database": "ok"}'
    return None


@pytest.mark.parametrize("status", REDIRECTS)
@pytest.mark.parametrize("redirect_health", [True, False])
def test_grafana_check_does_not_send_the_login_where_it_is_redirected(status, redirect_health):
    passes = None if redirect_health else health_passes
    with Recorder() as elsewhere, Redirector(status, elsewhere.url, passes) as redirector:
        done = run_script(
            "check_grafana.py", "--url", redirector.url, "--password", TOKEN, "--wait", "5"
        )
    path = "/api/health" if redirect_health else "/api/datasources/uid/influxdb-influxql/health"
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"Grafana at {redirector.url} answered {status} (redirect to {elsewhere.url}{path}) to "
        f"{path}: not Grafana's API (the redirect was not followed, the login went nowhere "
        "else); set --url to the URL Grafana itself answers on"
    )
    assert elsewhere.received == []
