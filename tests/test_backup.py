"""Backups and restore: the state IDs, InfluxDB through a stand-in ``influx``, daily retention."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_imports import backup
from data_imports.options import OptionError, backup_keep_days
from testkit import expected
from testkit.fixtures import (
    FAKE_NOW,
    MELTANO,
    published,
)
from testkit.fixtures import meltano as meltano_in
from testkit.nationalgas_data import GAS_QUALITY_SITES
from testkit.processes import REPO_ROOT, process_tree, wait_until

JOB, FLOWS_JOB = "nationalgas-to-influxdb", "nationalgas-flows"
STATE_ID = "dev:tap-nationalgas-to-target-influxdb"
BACKUP = str(REPO_ROOT / "scripts" / "backup.sh")
RESTORE = str(REPO_ROOT / "scripts" / "restore.sh")
OPERATOR_TOKEN = "operator-token-7f3a"
INFLUX_401 = (
    "Error: failed to backup metadata: failed to download metadata snapshot: "
    "401 Unauthorized: read:authorizations is unauthorized"
)
STAND_IN = """\
#!{python}
# A stand-in for the InfluxDB 2.x CLI: it records its arguments and its INFLUX_* variables.
import json, os, sys
from pathlib import Path

with open(os.environ["STAND_IN_LOG"], "a") as log:
    seen = {{k: v for k, v in os.environ.items() if k.startswith("INFLUX_")}}
    log.write(json.dumps({{"argv": sys.argv[1:], "env": seen}}) + "\\n")
if sys.argv[1:] == ["version"]:
    print("Influx CLI 2.7.5 (git: stand-in) build_date: 2024-04-16T14:34:32Z")
elif os.environ.get("STAND_IN_FAIL"):
    print({failure!r}, file=sys.stderr)
    sys.exit(1)
elif sys.argv[1] == "backup":
    folder = Path(sys.argv[-1])
    folder.mkdir(parents=True)
    (folder / "20260329T080000Z.bolt").write_text("metadata")
    (folder / "20260329T080000Z.manifest").write_text("{{}}")
"""


@pytest.fixture
def influx_cli(tmp_path: Path) -> Path:
    """A folder holding the stand-in ``influx``, to put first on the PATH."""
    folder = tmp_path / "stand-in"
    folder.mkdir()
    cli = folder / "influx"
    cli.write_text(STAND_IN.format(python=sys.executable, failure=INFLUX_401))
    cli.chmod(0o755)
    return folder


def influx_calls(env: dict[str, str]) -> list[dict]:
    """What the stand-in ``influx`` was called with, ``version`` left out."""
    log = Path(env["STAND_IN_LOG"])
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return [call for call in calls if call["argv"] != ["version"]]


@pytest.fixture
def env(project_env: dict[str, str], influx_cli: Path, tmp_path: Path) -> dict[str, str]:
    """The project's environment with the stand-in ``influx`` first on the PATH."""
    return {
        **project_env,
        "MELTANO": MELTANO,
        "PATH": f"{influx_cli}:{project_env['PATH']}",
        "STAND_IN_LOG": str(tmp_path / "influx-calls.jsonl"),
    }


def script(
    name: str, env: dict[str, str], *args: str, cwd: Path | str = "/"
) -> subprocess.CompletedProcess[str]:
    """scripts/backup.sh or scripts/restore.sh to its end."""
    return subprocess.run(
        [name, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def last(done: subprocess.CompletedProcess[str]) -> str:
    """The last line a script printed, less its time stamp and level."""
    return done.stdout.strip().splitlines()[-1].split(" backup ", 1)[1]


def states(env: dict[str, str]) -> dict[str, str]:
    """Every state ID and its state, as ``meltano state get`` prints it."""
    listed = meltano_in(env, "state", "list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    ids = listed.stdout.split()
    return {sid: meltano_in(env, "state", "get", sid).stdout for sid in ids}


def run_etl(env: dict[str, str], job: str) -> subprocess.CompletedProcess[str]:
    """One run of run-etl.sh to its end."""
    return subprocess.run(
        [str(REPO_ROOT / "run-etl.sh"), job],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def records_read(done: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """Per stream, the records the target reported for a run."""
    found = {}
    for line in done.stdout.splitlines():
        if " target-influxdb Stream '" in line:
            stream, rest = line.split(" target-influxdb Stream '", 1)[1].split("': ", 1)
            found[stream] = int(rest.split(" records", 1)[0])
    return found


def test_losing_the_system_database_then_restoring_loses_and_repeats_nothing(
    env, influxdb, bucket, fake_api, tmp_path
):
    now = dt.datetime.fromisoformat(FAKE_NOW)
    for job in (JOB, FLOWS_JOB):
        first = run_etl(env, job)
        assert first.returncode == 0, first.stdout[-3000:]
    assert expected.snapshot(influxdb, bucket) == published(now, 1)
    before = states(env)
    assert set(before) == {STATE_ID, "dev:tap-nationalgas-flows-to-target-influxdb"}

    made = script(BACKUP, env, "backup-1", cwd=tmp_path)  # a folder relative to where it runs
    assert made.returncode == 0, made.stdout + made.stderr
    folder = tmp_path / "backup-1"
    assert last(made) == (
        f"backup in {folder}: 2 state IDs; the InfluxDB server at {influxdb.url} (influxdb/)"
    )
    assert sorted(p.name for p in (folder / "state").iterdir()) == [
        "dev_tap-nationalgas-flows-to-target-influxdb.json",
        "dev_tap-nationalgas-to-target-influxdb.json",
    ]
    assert folder.stat().st_mode & 0o077 == 0

    Path(env["MELTANO_DATABASE_URI"].removeprefix("sqlite:///")).unlink()
    assert states(env) == {}

    restored = script(RESTORE, env, "--state-only", str(folder))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert last(restored) == (
        f"restored from {folder}: InfluxDB left as it is (--state-only); 2 state IDs restored"
    )
    assert states(env) == before  # exactly what `meltano state get` gave before
    assert [call["argv"][0] for call in influx_calls(env)] == ["backup"]  # InfluxDB left alone

    fake_api.reset()
    fake_api.advance(6 * 60)
    later = now + dt.timedelta(hours=6)
    again = {job: run_etl(env, job) for job in (JOB, FLOWS_JOB)}
    for done in again.values():
        assert done.returncode == 0, done.stdout[-3000:]
    after = expected.snapshot(influxdb, bucket)
    # the six hours in between caught up: nothing lost
    assert after == published(later, 7, since=[now])
    # nothing read twice: only the six new hours of gas quality, one window of history
    assert records_read(again[JOB])["gas_quality"] == 6 * len(GAS_QUALITY_SITES)
    assert fake_api.stats()["requests"]["/gasquality/historicdata"] == 1


BOOKMARK = {"singer_state": {"bookmarks": {"gas_quality": {"replication_key_value": "2026-03-29"}}}}


@pytest.fixture
def state_only_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with one state set by hand (no run needed)."""
    done = meltano_in(env, "state", "set", "--force", STATE_ID, json.dumps(BOOKMARK))
    assert done.returncode == 0, done.stderr[-2000:]
    return env


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def test_file_mode_backs_up_the_state_and_skips_influxdb_with_a_note(state_only_env, tmp_path):
    env = {**state_only_env, "INFLUXDB_URL": ""}
    made = script(BACKUP, env, str(tmp_path / "b"))
    assert made.returncode == 0, made.stdout + made.stderr
    why = "INFLUXDB_URL is empty (file mode: the points are files, not in InfluxDB)"
    assert f" info    backup InfluxDB part skipped: {why}" in made.stdout
    assert manifest(tmp_path / "b")["influxdb"] == {
        "status": "skipped",
        "why": "INFLUXDB_URL is empty (file mode: the points are files, not in InfluxDB)",
    }
    assert manifest(tmp_path / "b")["complete"] is True
    assert (
        json.loads((tmp_path / "b" / "state" / f"{STATE_ID.replace(':', '_')}.json").read_text())
        == BOOKMARK
    )
    assert influx_calls(env) == []


def test_influx_backup_and_restore_get_the_token_in_their_environment_only(
    state_only_env, tmp_path, influxdb
):
    env = {**state_only_env, "INFLUXDB_BACKUP_TOKEN": OPERATOR_TOKEN}
    folder = tmp_path / "b"
    made = script(BACKUP, env, str(folder))
    assert made.returncode == 0, made.stdout + made.stderr
    restored = script(RESTORE, env, str(folder))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert f"InfluxDB restored into {influxdb.url} (the whole server, its tokens included)" in (
        last(restored)
    )

    calls = influx_calls(env)
    assert [call["argv"] for call in calls] == [
        ["backup", str(folder / "influxdb")],
        ["restore", "--full", str(folder / "influxdb")],
    ]
    for call in calls:
        assert call["env"]["INFLUX_HOST"] == influxdb.url
        assert call["env"]["INFLUX_TOKEN"] == OPERATOR_TOKEN
        assert call["env"]["INFLUX_ORG"] == influxdb.org
        assert not any(OPERATOR_TOKEN in arg for arg in call["argv"])
    for text in (made.stdout, restored.stdout, (folder / "manifest.json").read_text()):
        assert OPERATOR_TOKEN not in text
    assert manifest(folder)["influxdb"] == {
        "host": influxdb.url,
        "scope": "full",
        "path": "influxdb",
        "token": "INFLUXDB_BACKUP_TOKEN",
        "status": "backed up",
    }
    assert json.loads(meltano_in(env, "state", "get", STATE_ID).stdout) == BOOKMARK


def test_without_a_backup_token_the_pipelines_token_is_used(state_only_env, tmp_path):
    made = script(BACKUP, state_only_env, str(tmp_path / "b"))
    assert made.returncode == 0, made.stdout + made.stderr
    [call] = influx_calls(state_only_env)
    assert call["env"]["INFLUX_TOKEN"] == state_only_env["INFLUXDB_TOKEN"]
    assert manifest(tmp_path / "b")["influxdb"]["token"] == "INFLUXDB_TOKEN"


def test_a_token_influxdb_refuses_fails_the_backup_naming_its_variable(state_only_env, tmp_path):
    env = {**state_only_env, "INFLUXDB_BACKUP_TOKEN": OPERATOR_TOKEN, "STAND_IN_FAIL": "401"}
    folder = tmp_path / "b"
    made = script(BACKUP, env, str(folder))
    assert made.returncode == 1
    assert last(made) == (
        f"the backup in {folder} lacks InfluxDB: `influx backup` failed with the token of "
        f"INFLUXDB_BACKUP_TOKEN: {INFLUX_401}: INFLUXDB_BACKUP_TOKEN must hold an operator "
        "(all-access) token"
    )
    assert " error   backup " in made.stdout.splitlines()[-1]
    assert OPERATOR_TOKEN not in made.stdout + made.stderr
    written = manifest(folder)  # the state part is written all the same
    assert written["complete"] is False
    assert written["influxdb"]["status"] == "failed"
    assert [s["id"] for s in written["states"]["backed_up"]] == [STATE_ID]

    env = {**state_only_env, "STAND_IN_FAIL": "401"}  # the pipeline's token, write-only
    made = script(BACKUP, env, str(tmp_path / "b2"))
    assert made.returncode == 1
    assert last(made).endswith(
        f"`influx backup` failed with the token of INFLUXDB_TOKEN: {INFLUX_401}: set "
        "INFLUXDB_BACKUP_TOKEN to an operator (all-access) token"
    )


def test_without_an_influx_cli_influxdb_is_skipped_naming_what_to_install(state_only_env, tmp_path):
    path = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    assert shutil.which("influx", path=path) is None  # this machine has no influx 2.x CLI
    made = script(BACKUP, {**state_only_env, "PATH": path}, str(tmp_path / "b"))
    assert made.returncode == 0, made.stdout + made.stderr
    assert (
        " warning backup InfluxDB part skipped: no `influx` on the PATH: install the InfluxDB 2.x "
        "CLI `influx` (influx-cli, https://docs.influxdata.com/influxdb/v2/tools/influx-cli/)"
    ) in made.stdout
    assert manifest(tmp_path / "b")["influxdb"]["status"] == "skipped"


def test_restore_refuses_a_folder_that_is_not_a_backup(state_only_env, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = script(RESTORE, state_only_env, str(empty))
    assert refused.returncode == 1
    assert last(refused) == (
        f"{empty} is not a backup: it has no manifest.json (a backup writes it last, so one cut "
        "short has none)"
    )

    folder = tmp_path / "b"
    made = script(BACKUP, state_only_env, str(folder))
    assert made.returncode == 0, made.stdout + made.stderr
    (folder / "state" / f"{STATE_ID.replace(':', '_')}.json").unlink()
    shutil.rmtree(folder / "influxdb")
    refused = script(RESTORE, state_only_env, str(folder))
    assert refused.returncode == 1
    assert last(refused) == (
        f"{folder} is not a whole backup: state/dev_tap-nationalgas-to-target-influxdb.json, "
        "influxdb missing"
    )
    assert [call["argv"][0] for call in influx_calls(state_only_env)] == ["backup"]


def test_a_backup_goes_into_a_new_folder_only(state_only_env, tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("mine")
    refused = script(BACKUP, state_only_env, str(tmp_path / "used"))
    assert refused.returncode == 1
    assert (
        last(refused)
        == f"{tmp_path / 'used'} is not an empty folder: give a new one for the backup"
    )


def test_restore_refuses_while_a_run_holds_its_jobs_lock(state_only_env, tmp_path):
    folder = tmp_path / "b"
    assert script(BACKUP, state_only_env, str(folder)).returncode == 0
    changed = {"singer_state": {"bookmarks": {}}}
    assert (
        meltano_in(
            state_only_env, "state", "set", "--force", STATE_ID, json.dumps(changed)
        ).returncode
        == 0
    )
    locks = Path(state_only_env["DATA_IMPORTS_LOCK_DIR"])
    with (locks / f"run-etl-{FLOWS_JOB}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a run of the flows job holds it
        refused = script(RESTORE, state_only_env, "--state-only", str(folder))
    assert refused.returncode == 1
    assert last(refused) == (
        f"a run of {FLOWS_JOB} is in progress: restore once it has ended (stop the scheduler "
        "first, so that no run starts)"
    )
    assert json.loads(meltano_in(state_only_env, "state", "get", STATE_ID).stdout) == changed


# daily backups


def fake_backup(root: Path, name: str, *, complete: bool = True) -> Path:
    """A folder that looks like a backup of ours (its manifest says whether it is whole)."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(
        json.dumps({"format": backup.FORMAT, "complete": complete})
    )
    return folder


def test_retention_keeps_n_days_and_the_newest_whole_backup(tmp_path):
    today = dt.date(2026, 3, 29)
    for days_ago in (0, 1, 13, 14, 20):
        fake_backup(tmp_path, (today - dt.timedelta(days=days_ago)).isoformat())
    fake_backup(tmp_path, "2026-03-01.incomplete", complete=False)
    partial = tmp_path / ".partial-2026-03-29"
    partial.mkdir()
    (tmp_path / "notes").mkdir()
    removed = backup.prune(tmp_path, today, 14)
    assert sorted(removed) == ["2026-03-01.incomplete", "2026-03-09", "2026-03-15"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".partial-2026-03-29",
        "2026-03-16",
        "2026-03-28",
        "2026-03-29",
        "notes",
    ]


def test_retention_never_removes_the_newest_whole_backup_and_never_counts_a_partial(tmp_path):
    today = dt.date(2026, 3, 29)
    fake_backup(tmp_path, "2026-02-01")
    fake_backup(tmp_path, "2026-02-02")
    fake_backup(tmp_path, "2026-02-03", complete=False)  # its InfluxDB part failed
    fake_backup(tmp_path, "2026-03-28.incomplete", complete=False)
    (tmp_path / "2026-02-04").mkdir()  # no manifest: cut short
    assert backup.prune(tmp_path, today, 3) == ["2026-02-01", "2026-02-03", "2026-02-04"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-02-02", "2026-03-28.incomplete"]


def test_keep_days_is_a_whole_number_of_one_or_more():
    assert backup_keep_days({}) == 14
    assert backup_keep_days({"DATA_IMPORTS_BACKUP_KEEP_DAYS": "3"}) == 3
    for wrong in ("0", "two"):
        with pytest.raises(OptionError, match="DATA_IMPORTS_BACKUP_KEEP_DAYS="):
            backup_keep_days({"DATA_IMPORTS_BACKUP_KEEP_DAYS": wrong})


def start_daily(env: dict[str, str], root: Path) -> subprocess.Popen[str]:
    """``python -m data_imports.backup daily ROOT`` in a session of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "data_imports.backup", "daily", str(root)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_daily_backups_replace_a_killed_one_remove_old_ones_and_stop_on_sigterm(
    state_only_env, tmp_path
):
    env = {**state_only_env, "INFLUXDB_URL": "", "DATA_IMPORTS_BACKUP_KEEP_DAYS": "2"}
    root = tmp_path / "backups"
    today = dt.datetime.now(dt.UTC).date()
    old = fake_backup(root, (today - dt.timedelta(days=5)).isoformat())
    kept = fake_backup(root, (today - dt.timedelta(days=1)).isoformat())

    killed = start_daily(env, root)  # killed while its backup is being made
    wait_until((root / f".partial-{today}" / "state").exists, "a backup under way", 60)
    for pid in process_tree(killed.pid):
        os.kill(pid, signal.SIGKILL)
    killed.communicate(timeout=30)
    assert not (root / today.isoformat()).exists()  # never looks like a backup
    assert not backup.is_complete(root / f".partial-{today}")
    assert old.exists()

    daily = start_daily(env, root)
    try:
        wait_until(lambda: backup.is_complete(root / today.isoformat()), "today's backup", 120)
        wait_until(lambda: not old.exists(), "the old backup removed", 30)
    finally:
        started = time.monotonic()
        daily.send_signal(signal.SIGTERM)
        out, _ = daily.communicate(timeout=60)
    assert daily.returncode == 0, out
    assert time.monotonic() - started < 15
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".daily")) == [
        kept.name,
        today.isoformat(),
    ]
    lines = out.strip().splitlines()
    assert lines[-1].endswith(" info    backup daily backups stopped by SIGTERM")
    assert f"removed the backup {old.name} (older than 2 days)" in out
    assert [s["id"] for s in manifest(root / today.isoformat())["states"]["backed_up"]] == [
        STATE_ID
    ]


def test_daily_backups_stopped_during_a_backup_leave_no_partial(state_only_env, tmp_path):
    root = tmp_path / "backups"
    daily = start_daily({**state_only_env, "INFLUXDB_URL": ""}, root)
    today = dt.datetime.now(dt.UTC).date()
    wait_until((root / f".partial-{today}").exists, "a backup under way", 60)
    started = time.monotonic()
    daily.send_signal(signal.SIGTERM)
    out, _ = daily.communicate(timeout=60)
    assert daily.returncode == 0, out
    assert time.monotonic() - started < 15
    assert [p.name for p in root.iterdir() if not p.name.startswith(".daily")] == []
