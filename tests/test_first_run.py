"""A new user's first run: a fresh clone, ./setup.sh, ./run-etl.sh, with nothing else installed."""

from __future__ import annotations

import os
import re
import subprocess
import typing as t

from data_imports.project import Project
from testkit.processes import REPO_ROOT

if t.TYPE_CHECKING:
    from testkit.fake_nationalgas import FakeNationalGasProcess


def test_a_fresh_clone_sets_up_and_runs_in_file_mode(tmp_path, fake_api: FakeNationalGasProcess):
    clone = tmp_path / "data-imports"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True, timeout=120)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("INFLUXDB_", "MELTANO_", "TAP_", "TARGET_", "DATA_IMPORTS_"))
    }
    setup = subprocess.run(
        ["./setup.sh"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    assert (clone / ".env").stat().st_mode & 0o077 == 0

    run = subprocess.run(
        ["./run-etl.sh"],
        cwd=clone,
        env={
            **env,
            "TAP_NATIONALGAS_API_URL": fake_api.url,
        },  # the .env setup.sh made, and the fake
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert f"the points are line protocol in {clone / 'output'}" in run.stdout
    assert "influx write --bucket" in run.stdout
    project = Project.load(clone)  # the meltano.yml the run read: the clone's
    mappings = project.mappings()
    job = project.job(project.job_names[0])  # the job ./run-etl.sh runs with no argument
    for stream in job.streams:
        lines = (clone / "output" / f"{stream}.lp").read_text().splitlines()
        assert lines, stream
        starts = re.compile(rf"{re.escape(mappings[stream].measurement)}[, ]")
        assert all(starts.match(line) for line in lines), (stream, lines[:3])
