"""Writes overlap encoding: one batch in flight, STATE passed on only once it is stored."""

from __future__ import annotations

import io
import threading
import time
import typing as t

import pytest

from target_influxdb.target import TargetInfluxDB
from target_influxdb.writers import WriteError
from testkit import singer

PROPS = {
    "site_id": {"type": "integer"},
    "at": {"type": "string", "format": "date-time"},
    "cv": {"type": "number"},
}


class SlowWriter:
    """A destination that takes a while per write and notes what happens meanwhile."""

    def __init__(self, target: TargetInfluxDB, fail_at: int | None = None) -> None:
        self.target, self.fail_at = target, fail_at
        self.events: list[tuple[str, t.Any]] = []
        self.in_flight = 0
        self.writes = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()

    def write(self, stream: str, points: list[tuple[str, int]]) -> str:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        before = self.target.stream_runs[stream].records
        time.sleep(0.2)
        after = self.target.stream_runs[stream].records
        with self.lock:
            self.in_flight -= 1
        self.writes += 1
        if self.writes == self.fail_at:
            msg = "InfluxDB did not accept the batch"
            raise WriteError(msg)
        self.events.append(("stored", (len(points), after - before)))
        return "slow"

    def write_once(self, measurement: str, points: list[tuple[str, int]]) -> str:
        return "slow"


def run(tmp_path, messages, fail_at=None) -> tuple[TargetInfluxDB, SlowWriter]:
    """Run the target in this process with a slow destination; return both."""
    config = {"output_path": str(tmp_path), "batch_size": 10, "run_measurement": ""}
    target = TargetInfluxDB(config=config, parse_env_config=False)
    writer = SlowWriter(target, fail_at)
    target.__dict__["writer"] = writer  # the sinks' destination (a cached property)
    passed_on = target.pass_on

    def pass_on(state: dict) -> None:
        writer.events.append(("state", state))
        passed_on(state)

    target.pass_on = pass_on  # type: ignore[method-assign]
    target.listen(io.StringIO(singer.encode(messages)))
    return target, writer


def readings(first: int, count: int) -> list[dict[str, t.Any]]:
    return [
        singer.record("s", {"site_id": 1, "at": f"2026-03-29T08:{n:02}:00Z", "cv": 1.5})
        for n in range(first, count)
    ]


def test_the_next_batch_is_encoded_while_one_is_written(tmp_path, capsys):
    schema = singer.schema("s", PROPS, ["site_id", "at"], ["at"])
    messages = [schema, *readings(0, 30), singer.state({"s": 30}), *readings(30, 35)]
    messages.append(singer.state({"s": 35}))
    _, writer = run(tmp_path, messages)
    assert writer.most_in_flight == 1
    stored = [value for kind, value in writer.events if kind == "stored"]
    assert [size for size, _ in stored] == [10, 10, 10, 5]
    # while the first batch was written, the second was encoded (records went on being read)
    assert stored[0][1] >= 10
    # each state only after every point before it was stored
    assert writer.events == [
        ("stored", stored[0]),
        ("stored", stored[1]),
        ("stored", stored[2]),
        ("state", {"s": 30}),
        ("stored", stored[3]),
        ("state", {"s": 35}),
    ]
    out = capsys.readouterr().out.splitlines()
    assert out == ['{"s": 30}', '{"s": 35}']


def test_a_failed_write_in_flight_holds_back_every_later_state(tmp_path, capsys):
    schema = singer.schema("s", PROPS, ["site_id", "at"], ["at"])
    messages = [schema, *readings(0, 10), singer.state({"s": 10}), *readings(10, 40)]
    messages.append(singer.state({"s": 40}))
    with pytest.raises(WriteError):
        run(tmp_path, messages, fail_at=2)
    assert capsys.readouterr().out.splitlines() == ['{"s": 10}']
