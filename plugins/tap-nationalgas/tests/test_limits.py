"""Answers are read up to ``max_response_mb``: a larger one stops the run before it is parsed,
with the tap's memory bounded by the limit, not by the answer, and no bookmark past the data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t

from testkit.singer import TapRun, write_config

if t.TYPE_CHECKING:
    from pathlib import Path

    from testkit.fake_nationalgas import FakeNationalGasProcess

PUBLICATIONS = "/publications/gasday"
MB = 1024 * 1024


def run_tap_measured(tmp_path: Path, config: dict[str, t.Any]) -> tuple[TapRun, int]:
    """Run the tap as a process; return what it did and its peak resident memory in bytes."""
    command = [sys.executable, "-m", "tap_nationalgas", "--config"]
    command.append(str(write_config(tmp_path, config, "tap.json")))
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(command, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak, no other's
    proc.returncode = os.waitstatus_to_exitcode(status)
    messages = [json.loads(line) for line in out.read_text().splitlines()]
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    records: dict[str, list[dict[str, t.Any]]] = {}
    for message in messages:
        if message["type"] == "RECORD":
            records.setdefault(message["stream"], []).append(message["record"])
    state = states[-1] if states else None
    run = TapRun(proc.returncode, records, state, err.read_text(), messages)
    return run, usage.ru_maxrss * 1024  # kilobytes on Linux


def test_an_answer_past_the_limit_fails_the_run_without_reading_it_whole(
    tmp_path, fake_api: FakeNationalGasProcess, tap_config
):
    config = {**tap_config, "publication_ids": ["PUBOB637"], "max_response_mb": 5}
    (tmp_path / "normal").mkdir()
    normal, baseline = run_tap_measured(tmp_path / "normal", config)
    assert normal.returncode == 0, normal.log[-3000:]
    assert normal.records["publications"]

    fake_api.reset()
    fake_api.queue_faults([{"path": PUBLICATIONS, "oversize_mb": 200}])
    (tmp_path / "big").mkdir()
    big, peak = run_tap_measured(tmp_path / "big", config)

    assert big.returncode == 1
    failure = [line for line in big.log.splitlines() if "failed: " in line]
    assert len(failure) == 1, big.log[-3000:]
    assert failure[0].endswith(
        f"failed: the answer to POST {fake_api.url}{PUBLICATIONS} (days 2026-03-19 to "
        "2026-03-29) is larger than 5 MB, the setting `max_response_mb`: it was not read "
        "further; raise `max_response_mb`, or lower `publication_window_days` to ask for fewer "
        "days at once"
    )
    assert "Traceback" not in big.log
    assert "JSONDecodeError" not in big.log  # stopped before parsing
    assert fake_api.stats()["requests"][PUBLICATIONS] == 1  # not retried
    # memory grew by about the limit, far from the answer's 200 MB
    sys.stderr.write(f"peak RSS: {peak / MB:.0f} MB, a normal run's {baseline / MB:.0f} MB\n")
    assert peak - baseline < 40 * MB, (peak / MB, baseline / MB)
    # no record and no bookmark of the stream whose answer was refused
    assert "publications" not in big.records
    assert "publications" not in ((big.state or {}).get("bookmarks") or {})
    assert big.records["gas_quality"]  # the streams before it were read as usual


def test_an_answer_within_the_limit_is_read_whole_and_parsed(
    tmp_path, fake_api: FakeNationalGasProcess, tap_config
):
    fake_api.queue_faults([{"path": PUBLICATIONS, "oversize_mb": 3}])
    run, _ = run_tap_measured(
        tmp_path, {**tap_config, "publication_ids": ["PUBOB637"], "max_response_mb": 4}
    )
    # 3 MB of valid JSON, read whole and parsed: refused for its shape, not its size
    assert run.returncode == 1
    assert run.log.rstrip().endswith(
        f"failed: {fake_api.url}{PUBLICATIONS}: the response has no 'publicationId'"
    )
