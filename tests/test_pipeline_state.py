"""The fault matrix's pipeline stores state as ``meltano run`` does, partitions and gaps too."""

from __future__ import annotations

import datetime as dt
import json
import typing as t

import pytest

from testkit.fixtures import FAKE_NOW, meltano
from testkit.pipeline import MAIN, JobState, Pipeline

if t.TYPE_CHECKING:
    from pathlib import Path

    from testkit.fake_nationalgas import FakeNationalGasProcess

JOB = "nationalgas-to-influxdb"
STATE_ID = f"dev:{MAIN}-to-target-influxdb"
LATER = (dt.datetime.fromisoformat(FAKE_NOW) + dt.timedelta(hours=1)).isoformat()
FAULTS = [{"path": "/publications/gasday", "drop_first_row": True}]
"""A row missing from the first answer: a pending gap for one data item, filled a run later."""


def test_merge_replaces_lists_and_merges_mappings_at_every_depth() -> None:
    job = JobState()
    job.store({"bookmarks": {"a": {"partition_bookmarks": [1, 2], "v": 1}, "b": {"v": 1}}})
    job.store({"bookmarks": {"a": {"partition_bookmarks": [3]}}}, merge_states=True)
    job.store({}, merge_states=True)  # an empty state is not stored
    assert job.merged() == {"bookmarks": {"a": {"partition_bookmarks": [3], "v": 1}, "b": {"v": 1}}}
    job.store({"bookmarks": {"c": {}}})  # a completed state replaces both
    assert job.merged() == {"bookmarks": {"c": {}}}


def clockless(value: object) -> object:
    """``value`` with the SDK's signposts (this machine's clock at a run's start) as "now".

    With ``merge`` a signpost of a progress STATE stays in the partial state, as Meltano keeps
    it; its time differs from run to run.
    """
    if isinstance(value, dict):
        return {
            k: "now" if k == "replication_key_signpost" else clockless(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [clockless(v) for v in value]
    return value


def meltano_runs(env: dict[str, str], fake: FakeNationalGasProcess) -> list[dict[str, t.Any]]:
    """The scenario with ``meltano run``: the state Meltano holds after each run."""
    states = []
    for now, faults in ((FAKE_NOW, FAULTS), (LATER, [])):
        fake.set_now(now)
        fake.queue_faults(faults)
        run = meltano(env, "run", JOB)
        assert run.returncode == 0, run.stderr[-3000:]
        got = meltano(env, "state", "get", STATE_ID)
        assert got.returncode == 0, got.stderr[-2000:]
        states.append(json.loads(got.stdout)["singer_state"])
    return states


def pipeline_runs(pipeline: Pipeline, fake: FakeNationalGasProcess) -> list[dict[str, t.Any]]:
    """The same scenario with the fault matrix's pipeline: its state after each run."""
    states = []
    for now, faults in ((FAKE_NOW, FAULTS), (LATER, [])):
        fake.set_now(now)
        fake.queue_faults(faults)
        run = pipeline.run(MAIN)
        assert run.ok, run.log[-3000:]
        states.append(pipeline.states[MAIN])
    return states


@pytest.mark.parametrize("strategy", ["auto", "merge"])
def test_pipeline_state_equals_meltano_run_state(
    project_env: dict[str, str],
    fake_api: FakeNationalGasProcess,
    target_config: dict[str, t.Any],
    tmp_path: Path,
    strategy: str,
) -> None:
    env = {**project_env, "MELTANO_RUN_STATE_STRATEGY": strategy}
    printed = meltano(env, "--environment=dev", "config", "print", MAIN)
    assert printed.returncode == 0, printed.stderr[-2000:]
    tap_config = json.loads(printed.stdout)

    by_meltano = meltano_runs(env, fake_api)
    fake_api.reset()
    workdir = tmp_path / "pipeline"
    workdir.mkdir()
    pipeline = Pipeline(workdir, tap_config, target_config, merge_states=strategy == "merge")
    by_pipeline = pipeline_runs(pipeline, fake_api)

    first = by_meltano[0]["bookmarks"]
    assert len(first["gas_quality"]["partition_bookmarks"]) > 1  # several partitions
    assert len(first["publications"]["partition_bookmarks"]) > 1
    assert first["publications"]["pending_gaps"]  # the row the first answer lacked
    assert by_meltano[1]["bookmarks"]["publications"]["pending_gaps"] == []
    assert clockless(by_pipeline) == clockless(by_meltano)
