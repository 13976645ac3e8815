"""The token stays where it belongs: no request that carries it follows a redirect (a 3xx from
the InfluxDB URL is a failure that names the redirect, and the host it points to receives
nothing), and a token with a line break is refused at start-up without being shown."""

from __future__ import annotations

import pytest

from target_influxdb.writers import InfluxDBWriter, WriteError
from testkit import singer
from testkit.redirects import Recorder, Redirector, influxdb_checks_pass

TOKEN = "secret-token-do-not-follow"
REDIRECTS = [301, 302, 307, 308]
SCHEMA = singer.schema(
    "s",
    {
        "k": {"type": "integer"},
        "v": {"type": "number"},
        "at": {"type": "string", "format": "date-time"},
    },
    ["k"],
    ["at"],
)


def writer(url: str) -> InfluxDBWriter:
    """A writer to ``url`` without retries."""
    return InfluxDBWriter(
        url=url, token=TOKEN, org="o", bucket="b", max_retries=0, timeout=5, retry_interval=0
    )


def config(url: str) -> dict[str, object]:
    """The target's settings for ``url``."""
    return {"url": url, "token": TOKEN, "org": "o", "bucket": "b", "max_retries": 1}


def redirect_text(status: int, redirector: Redirector, path: str) -> str:
    """The start of the failure a redirect gives."""
    return f"INFLUXDB_URL {redirector.url} answered {status} (redirect to {redirector.target}{path}"


@pytest.mark.parametrize("status", REDIRECTS)
def test_the_start_up_check_refuses_a_redirect(tmp_path, status):
    with Recorder() as elsewhere, Redirector(status, elsewhere.url) as redirector:
        done = singer.run_target(tmp_path, config(redirector.url), [SCHEMA], timeout=60)
    assert done.returncode == 1
    assert redirect_text(status, redirector, "/ping") in done.log
    assert "set INFLUXDB_URL (the `url` setting) to the URL InfluxDB itself answers on" in done.log
    assert "Traceback" not in done.log
    assert TOKEN not in done.log
    assert elsewhere.received == []
    assert [r.path for r in redirector.received] == ["/ping"]


@pytest.mark.parametrize("status", REDIRECTS)
def test_the_health_point_write_refuses_a_redirect(status):
    with (
        Recorder() as elsewhere,
        Redirector(status, elsewhere.url) as redirector,
        pytest.raises(WriteError) as failure,
    ):
        writer(redirector.url).write_once("data_imports_run", [("run,job=j records=1i", 1)])
    assert str(failure.value).startswith(redirect_text(status, redirector, "/api/v2/write?"))
    assert elsewhere.received == []


@pytest.mark.parametrize("status", REDIRECTS)
def test_a_batch_of_data_refuses_a_redirect(status):
    with (
        Recorder() as elsewhere,
        Redirector(status, elsewhere.url) as redirector,
        pytest.raises(WriteError) as failure,
    ):
        writer(redirector.url).write("s", [("s,k=1 v=1.0", 1_767_225_600_000_000)])
    assert str(failure.value).startswith(redirect_text(status, redirector, "/api/v2/write?"))
    assert elsewhere.received == []
    assert len(redirector.received) == 1  # a redirect is not retried either


@pytest.mark.parametrize("status", [307, 308])
def test_a_redirected_batch_fails_the_run_and_its_state_is_not_passed_on(tmp_path, status):
    values = [{"k": k, "v": 1.5, "at": "2026-01-01T00:00:00Z"} for k in range(3)]
    records = [singer.record("s", value) for value in values]
    messages = [SCHEMA, *records, singer.state({"bookmarks": {"s": {"at": "x"}}})]
    with (
        Recorder() as elsewhere,
        Redirector(status, elsewhere.url, influxdb_checks_pass) as redirector,
    ):
        done = singer.run_target(tmp_path, config(redirector.url), messages, timeout=60)
    assert done.returncode == 1
    assert done.states == []
    assert redirect_text(status, redirector, "/api/v2/write?") in done.log
    assert TOKEN not in done.log
    assert elsewhere.received == []
    written = [r for r in redirector.received if r.path.startswith("/api/v2/write") and r.body]
    assert written  # the batch was sent to the URL configured, and to no other


@pytest.mark.parametrize("line_break", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({}, "the `token` setting"),
        ({"TARGET_INFLUXDB_TOKEN": TOKEN + "\n"}, "TARGET_INFLUXDB_TOKEN (the `token` setting)"),
        ({"INFLUXDB_TOKEN": TOKEN + "\n"}, "INFLUXDB_TOKEN (the `token` setting)"),
    ],
)
def test_a_token_with_a_line_break_is_refused_without_being_shown(
    tmp_path, line_break, environ, named
):
    token = TOKEN + line_break
    environ = dict.fromkeys(environ, token)
    with Recorder() as influxdb:
        settings = {**config(influxdb.url), "token": token}
        done = singer.run_target(tmp_path, settings, [SCHEMA], timeout=60, env=environ)
    assert done.returncode == 1
    assert f"{named} holds a line break (CR or LF), which no token has: set it again" in done.log
    assert "Traceback" not in done.log
    assert TOKEN not in done.log
    assert not done.states
    assert influxdb.received == []  # refused before any request
