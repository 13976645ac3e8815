"""Meltano's state in S3 (a local moto server), through run-etl.sh: runs that continue from the
bookmarks, on this host and on a new one, one host at a time, and a bucket S3 refuses, named.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import time
import typing as t

import pytest

from data_imports import s3state
from testkit import expected
from testkit.fixtures import FAKE_NOW, MELTANO, published, start_run_etl
from testkit.nationalgas_data import GAS_QUALITY_SITES
from testkit.processes import REPO_ROOT, free_port, process_tree, wait_until
from testkit.s3 import LocalS3

if t.TYPE_CHECKING:
    from pathlib import Path

    from testkit.fake_nationalgas import FakeNationalGasProcess

SCRIPT = str(REPO_ROOT / "run-etl.sh")
JOB = "nationalgas-to-influxdb"
STATE_ID = "dev:tap-nationalgas-to-target-influxdb"
PREFIX = "meltano"


def run_etl(env: dict[str, str], job: str = JOB) -> subprocess.CompletedProcess:
    """One run of run-etl.sh to its end."""
    return subprocess.run(
        [SCRIPT, job],
        cwd="/",
        env={**env, "MELTANO": MELTANO},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def last_line(out: str) -> str:
    """The last line run-etl.sh printed, less its time and level."""
    return out.strip().splitlines()[-1].split(" run-etl ", 1)[1]


def on_host(env: dict[str, str], folder: Path) -> dict[str, str]:
    """The environment of another host: its own system database, locks and logs in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        **env,
        "MELTANO_DATABASE_URI": f"sqlite:///{folder}/meltano.db",
        "DATA_IMPORTS_LOCK_DIR": str(folder / "locks"),
        "DATA_IMPORTS_LOG_DIR": str(folder / "logs"),
    }


def state_in_s3(s3: LocalS3, bucket: str) -> dict[str, t.Any]:
    """The job's state object in the bucket."""
    return dict(json.loads(s3.read(bucket, f"{PREFIX}/{STATE_ID}/state.json")))


def bookmark(state: dict[str, t.Any]) -> str:
    """The gas_quality bookmark of a state object."""
    return str(
        state["completed"]["singer_state"]["bookmarks"]["gas_quality"]["replication_key_value"]
    )


def records(out: str, stream: str) -> int:
    """The records the target reported for one stream ("Stream 'S': N records, ...")."""
    for line in out.splitlines():
        if f"target-influxdb Stream '{stream}': " in line:
            return int(line.split(f"Stream '{stream}': ", 1)[1].split(" records", 1)[0])
    return 0


def test_runs_continue_from_the_bookmarks_in_s3_on_this_host_and_on_a_new_one(  # noqa: PLR0913, PLR0917
    project_env, s3_server: LocalS3, s3_bucket, influxdb, bucket, fake_api, tmp_path
):
    env = {**project_env, **s3_server.state_env(f"s3://{s3_bucket}/{PREFIX}")}
    now = dt.datetime.fromisoformat(FAKE_NOW)

    first = run_etl(env)
    assert first.returncode == 0, first.stdout[-3000:]
    assert s3_server.keys(s3_bucket) == [f"{PREFIX}/{STATE_ID}/state.json"]  # no lock, no lease
    assert bookmark(state_in_s3(s3_server, s3_bucket)) == "2026-03-29T08:00:00.000000+00:00"
    database = env["MELTANO_DATABASE_URI"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM state").fetchone() == (0,)  # none kept here
    assert expected.snapshot(influxdb, bucket) == published(now, 1, flows=False)

    # Three hours later, on this host: the hours between are caught up from the bookmark.
    fake_api.advance(3 * 60)
    second = run_etl(env)
    assert second.returncode == 0, second.stdout[-3000:]
    assert bookmark(state_in_s3(s3_server, s3_bucket)) == "2026-03-29T11:00:00.000000+00:00"
    stored = expected.snapshot(influxdb, bucket)
    assert stored == published(now + dt.timedelta(hours=3), 4, flows=False, since=[now])

    # Three hours later, on a new host: a new, empty system database, the same S3 URI.
    fake_api.advance(3 * 60)
    new_host = on_host(env, tmp_path / "new-host")
    third = run_etl(new_host)
    assert third.returncode == 0, third.stdout[-3000:]
    assert "No state was found" not in third.stdout
    assert bookmark(state_in_s3(s3_server, s3_bucket)) == "2026-03-29T14:00:00.000000+00:00"
    stored = expected.snapshot(influxdb, bucket)
    earlier = [now, now + dt.timedelta(hours=3)]
    assert stored == published(now + dt.timedelta(hours=6), 7, flows=False, since=earlier)
    # each run read the three hours after the bookmark, no hour before it
    assert records(second.stdout, "gas_quality") == 3 * len(GAS_QUALITY_SITES)
    assert records(third.stdout, "gas_quality") == 3 * len(GAS_QUALITY_SITES)


LEASE = f"{PREFIX}/{STATE_ID}/run-etl.lease"
MELTANO_LOCK = f"{PREFIX}/{STATE_ID}/lock"


def test_a_run_on_a_second_host_stops_while_the_first_one_runs_the_job(
    project_env, s3_server: LocalS3, s3_bucket, fake_api: FakeNationalGasProcess, tmp_path
):
    env = {**project_env, **s3_server.state_env(f"s3://{s3_bucket}/{PREFIX}")}
    fake_api.queue_faults([{"path": "/publications/gasday", "hang": 60}])
    first = start_run_etl(on_host(env, tmp_path / "host-a"))
    wait_until(
        lambda: fake_api.stats()["requests"].get("/publications/gasday", 0) >= 1, "a hang", 90
    )
    assert LEASE in s3_server.keys(s3_bucket)
    holder = json.loads(s3_server.read(s3_bucket, LEASE))
    assert holder["job"] == JOB
    assert holder["pid"] in process_tree(first.pid)

    second = run_etl(on_host(env, tmp_path / "host-b"))
    assert second.returncode == 0, second.stdout[-3000:]
    assert last_line(second.stdout) == (
        f"another run of {JOB} holds its state ({STATE_ID}) in S3 (pid {holder['pid']} on "
        f"{holder['host']}, since {holder['started']}; lease s3://{s3_bucket}/{LEASE} until "
        f"{holder['expires']}): this one stops here"
    )
    assert len(second.stdout.strip().splitlines()) == 2  # starting, and this: nothing ran

    first.terminate()  # the first host's run stops, and lets go of its lease
    out, _ = first.communicate(timeout=120)
    assert first.returncode == 143, out[-3000:]
    assert LEASE not in s3_server.keys(s3_bucket)
    fake_api.reset()
    again = run_etl(on_host(env, tmp_path / "host-b"))
    assert again.returncode == 0, again.stdout[-3000:]


def test_a_killed_hosts_lease_and_meltanos_lock_are_taken_over_once_expired(
    project_env, s3_server: LocalS3, s3_bucket
):
    env = {**project_env, **s3_server.state_env(f"s3://{s3_bucket}/{PREFIX}")}
    # What a host killed mid-run leaves: its lease, renewed last a moment ago, and Meltano's lock.
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=20)
    killed = {"host": "host-a", "pid": 1, "job": JOB, "started": "2026-03-29T08:00:00Z"}
    killed["expires"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    s3_server.write(s3_bucket, LEASE, json.dumps(killed).encode())
    s3_server.write(s3_bucket, MELTANO_LOCK, str(time.time()).encode())

    held = run_etl(env)
    assert held.returncode == 0, held.stdout[-3000:]
    assert last_line(held.stdout).startswith(f"another run of {JOB} holds its state")
    wait_until(lambda: dt.datetime.now(dt.UTC) > expires, "the lease to expire", 30)

    took_over = run_etl(env)
    assert took_over.returncode == 0, took_over.stdout[-3000:]
    assert last_line(took_over.stdout).startswith(f"finished {JOB} in ")
    assert s3_server.keys(s3_bucket) == [f"{PREFIX}/{STATE_ID}/state.json"]


def test_a_lease_is_renewed_while_held_and_only_one_host_gets_it(s3_server: LocalS3, s3_bucket):
    location = s3state.Location.parse(f"s3://{s3_bucket}/{PREFIX}")
    assert location is not None
    first = s3state.Lease(s3_server.client(), location, STATE_ID, JOB, seconds=2, renew_every=0.5)
    first.take()
    try:
        time.sleep(3)  # past its first expiry: renewed meanwhile
        second = s3state.Lease(s3_server.client(), location, STATE_ID, JOB)
        with pytest.raises(s3state.Held, match=f"another run of {JOB} holds its state"):
            second.take()
    finally:
        first.release()
    assert first.lost == ""
    second.take()
    second.release()
    assert s3_server.keys(s3_bucket) == []


def failed(done: subprocess.CompletedProcess) -> str:
    """The cause a failed run gives in its last line."""
    assert done.returncode == 1, done.stdout[-3000:]
    assert "Traceback" not in done.stdout, done.stdout[-3000:]
    line = last_line(done.stdout)
    assert line.startswith(f"{JOB} failed: "), done.stdout[-3000:]
    return line.removeprefix(f"{JOB} failed: ")


def test_a_bucket_that_does_not_exist_is_named(project_env, s3_server: LocalS3):
    env = {**project_env, **s3_server.state_env(f"s3://no-such-bucket/{PREFIX}")}
    assert failed(run_etl(env)) == (
        f"the state backend s3://no-such-bucket/{PREFIX} cannot be used: the bucket "
        '"no-such-bucket" does not exist (NoSuchBucket): create it, or correct '
        "MELTANO_STATE_BACKEND_URI"
    )


def test_an_unreachable_endpoint_is_named_in_seconds(project_env, s3_server: LocalS3):
    closed = f"http://127.0.0.1:{free_port()}"
    env = {**project_env, **s3_server.state_env(f"s3://state/{PREFIX}")}
    env["AWS_ENDPOINT_URL_S3"] = closed
    started = time.monotonic()
    cause = failed(run_etl(env))
    assert cause == (
        f"the state backend s3://state/{PREFIX} cannot be used: S3 at {closed} cannot be "
        "reached: check the network, or AWS_ENDPOINT_URL_S3"
    )
    assert time.monotonic() - started < 60


def test_refused_credentials_are_named(project_env, tmp_path):
    strict = LocalS3(tmp_path / "s3", check_keys=True).start()
    try:
        env = {**project_env, **strict.state_env(f"s3://state/{PREFIX}")}
        assert failed(run_etl(env)) == (
            f"the state backend s3://state/{PREFIX} cannot be used: S3 refused the credentials "
            "(InvalidAccessKeyId): check the host's instance role, or the AWS keys the run gets"
        )
    finally:
        strict.stop()
