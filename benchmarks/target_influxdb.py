"""Benchmark target-influxdb: InfluxDB mode against file mode and the engine's raw write limit.

Writes N records of a realistic gas-quality stream in one run: POSTed into the real engine
(Debian's influxd behind the 2.x proxy, or INFLUXDB_TEST_URL) as pre-built line protocol in
batches of 5,000 with one HTTP client (the raw limit); then through the target, as RECORD
messages of a Singer file and as one BATCH message naming the same records in an SDK batch file
(JSONL + gzip), each in file mode (`output_path`, no `url`: encoding alone) and into InfluxDB.
Reports records/s, seconds, InfluxDB mode's rate as a share of file mode's for the same messages
(1.0: writing costs nothing on top of encoding), the share of raw and the target's peak memory,
and checks every point arrived. ``--repeat N`` keeps each row's fastest of N runs.

Run from the repository root: ``.venv/bin/python -m benchmarks.target_influxdb --records 200000``
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from benchmarks.measure import Measurement, run_measured
from testkit.influx import LocalInfluxDB, RemoteInfluxDB2, influxdb_from_env

STREAM = "gas_quality"
SITES = 40
START_S = 1_704_067_200  # 2024-01-01T00:00:00Z
PROPERTIES = {
    "site_id": {"type": "integer"},
    "site_name": {"type": "string"},
    "area_name": {"type": "string"},
    "published_time": {"type": "string", "format": "date-time"},
    **{k: {"type": ["number", "null"]} for k in ("cv", "cv24", "sg", "sg24", "wi", "co2", "n2")},
}
MAPPING = {STREAM: {"tags": ["site_id", "site_name", "area_name"], "timestamp": "published_time"}}
BATCH = 5000


def values(i: int) -> tuple[int, int, list[float]]:
    """Site, epoch seconds and the seven metrics of record i (hourly readings per site)."""
    site, hour = i % SITES, i // SITES
    base = 38.5 + (site % 9) * 0.3 + (hour % 24) * 0.01
    return (
        site,
        START_S + hour * 3600,
        [
            round(base, 3),
            round(base - 0.02, 3),
            round(0.6 + site / 1000, 4),
            round(0.6 + site / 1000 - 0.001, 4),
            round(base * 1.29, 3),
            round(1.0 + (hour % 10) / 10, 2),
            round(1.5 + (site % 5) / 10, 2),
        ],
    )


SCHEMA = {
    "type": "SCHEMA",
    "stream": STREAM,
    "schema": {"properties": PROPERTIES},
    "key_properties": ["site_id", "published_time"],
    "bookmark_properties": ["published_time"],
}


def record(i: int) -> dict[str, object]:
    """Record i of the stream."""
    site, stamp, metrics = values(i)
    names = ("cv", "cv24", "sg", "sg24", "wi", "co2", "n2")
    return {
        "site_id": site,
        "site_name": f"SITE {site:02d}",
        "area_name": f"AREA {site % 8}",
        "published_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp)),
        **dict(zip(names, metrics, strict=True)),
    }


def final_state(records: int) -> str:
    """The STATE line that ends a Singer file."""
    return json.dumps({"type": "STATE", "value": {"bookmarks": {STREAM: {"n": records}}}}) + "\n"


def write_singer_file(path: Path, records: int) -> None:
    """SCHEMA, the records and a final STATE, as JSON lines."""
    with path.open("w") as out:
        out.write(json.dumps(SCHEMA) + "\n")
        for i in range(records):
            out.write(json.dumps({"type": "RECORD", "stream": STREAM, "record": record(i)}) + "\n")
        out.write(final_state(records))


def write_batch_files(path: Path, batch_file: Path, records: int) -> None:
    """The same records in one SDK batch file (JSONL + gzip), and SCHEMA, BATCH, STATE."""
    with gzip.open(batch_file, "wt", compresslevel=1) as out:
        for i in range(records):
            out.write(json.dumps(record(i)) + "\n")
    batch = {
        "type": "BATCH",
        "stream": STREAM,
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "manifest": [batch_file.as_uri()],
    }
    path.write_text(json.dumps(SCHEMA) + "\n" + json.dumps(batch) + "\n" + final_state(records))


def raw_batches(records: int) -> list[bytes]:
    """The same points as line protocol, in batches of 5,000 (built before timing)."""
    batches, lines = [], []
    for i in range(records):
        site, stamp, m = values(i)
        lines.append(
            f"{STREAM},area_name=AREA\\ {site % 8},site_id={site},site_name=SITE\\ {site:02d} "
            f"cv={m[0]!r},cv24={m[1]!r},sg={m[2]!r},sg24={m[3]!r},wi={m[4]!r},co2={m[5]!r},"
            f"n2={m[6]!r} {stamp}"
        )
        if len(lines) == BATCH:
            batches.append("\n".join(lines).encode())
            lines = []
    if lines:
        batches.append("\n".join(lines).encode())
    return batches


def post_raw(engine: LocalInfluxDB | RemoteInfluxDB2, bucket: str, batches: list[bytes]) -> float:
    """POST the batches one after another; return the seconds taken."""
    url = f"{engine.url}/api/v2/write?org={engine.org}&bucket={bucket}&precision=s"
    headers = {
        "Authorization": f"Token {engine.token}",
        "Content-Type": "text/plain; charset=utf-8",
    }
    started = time.perf_counter()
    for body in batches:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers)) as r:  # noqa: S310
            if r.status != 204:
                raise RuntimeError(f"raw write answered {r.status}")
    return time.perf_counter() - started


def run_target(singer_file: Path, config: dict[str, object], config_path: Path) -> Measurement:
    """Run the target on the Singer file with this config."""
    config_path.write_text(json.dumps({"mappings": MAPPING, **config}))
    command = [sys.executable, "-m", "target_influxdb", "--config", str(config_path)]
    with singer_file.open("rb") as stdin:
        return run_measured(command, stdin, subprocess.DEVNULL)


def count(engine: LocalInfluxDB | RemoteInfluxDB2, bucket: str) -> int:
    """Points stored in the bucket."""
    if isinstance(engine, LocalInfluxDB):
        series = engine.query(bucket, f'SELECT count("cv") FROM "{STREAM}"')  # noqa: S608
        return int(series[0]["values"][0][1]) if series else 0
    return len(engine.points(bucket, STREAM))


def count_lines(folder: Path) -> int:
    """Lines the target wrote in file mode."""
    with (folder / f"{STREAM}.lp").open("rb") as lines:
        return sum(1 for _ in lines)


@dataclass(frozen=True)
class Row:
    """One way of writing the records, measured."""

    label: str
    messages: str  # "raw", "RECORD" or "BATCH"
    mode: str  # "file" or "InfluxDB"
    seconds: float
    peak_mb: float


ROWS: tuple[tuple[str, str, str, dict[str, object]], ...] = (
    ("raw line protocol, 1 client, batches of 5,000", "raw", "InfluxDB", {}),
    ("RECORD messages, file mode (`output_path`)", "RECORD", "file", {}),
    ("RECORD messages, InfluxDB, defaults (gzip on)", "RECORD", "InfluxDB", {}),
    ("RECORD messages, InfluxDB, gzip off", "RECORD", "InfluxDB", {"gzip": False}),
    ("BATCH (JSONL + gzip file), file mode", "BATCH", "file", {}),
    ("BATCH (JSONL + gzip file), InfluxDB, defaults", "BATCH", "InfluxDB", {}),
    ("BATCH (JSONL + gzip file), InfluxDB, gzip off", "BATCH", "InfluxDB", {"gzip": False}),
)
"""(label, messages, mode, settings on top of the defaults) of each row, in the order run."""


class Bench:
    """The inputs of one benchmark run, and the engine they are written into."""

    def __init__(self, workdir: Path, records: int, engine: LocalInfluxDB | RemoteInfluxDB2):
        """Write the inputs: a Singer file of RECORDs, a BATCH message with its file, raw lines."""
        self.workdir, self.records, self.engine = workdir, records, engine
        self.inputs = {
            "RECORD": workdir / "gas_quality.singer",
            "BATCH": workdir / "gas_quality-batch.singer",
        }
        write_singer_file(self.inputs["RECORD"], records)
        write_batch_files(self.inputs["BATCH"], workdir / "gas_quality-1.json.gz", records)
        self.raw = raw_batches(records)
        self.runs = 0

    def once(self, messages: str, mode: str, extra: dict[str, object]) -> tuple[float, float]:
        """One run of a row: (seconds, peak RSS in MB); fail unless every point arrived."""
        self.runs += 1
        name = f"bench_{self.runs}"
        if mode == "file":
            folder = self.workdir / name
            config: dict[str, object] = {"output_path": str(folder), **extra}
            measured = run_target(self.inputs[messages], config, self.workdir / f"{name}.json")
            stored = count_lines(folder)
            shutil.rmtree(folder)
            seconds, peak = measured.seconds, measured.peak_mb
        else:
            engine = self.engine
            engine.create_bucket(name)
            if messages == "raw":
                seconds, peak = post_raw(engine, name, self.raw), float("nan")
            else:
                config = {"url": engine.url, "token": engine.token, "org": engine.org}
                config |= {"bucket": name, **extra}
                measured = run_target(self.inputs[messages], config, self.workdir / f"{name}.json")
                seconds, peak = measured.seconds, measured.peak_mb
            stored = count(engine, name)
        if stored != self.records:
            raise RuntimeError(f"{messages} {mode}: {stored} points stored, {self.records} due")
        return seconds, peak


def measure(bench: Bench, repeat: int) -> list[Row]:
    """Every row, each run ``repeat`` times: its fastest run, and the highest peak memory."""
    rows = []
    for label, messages, mode, extra in ROWS:
        runs = [bench.once(messages, mode, extra) for _ in range(repeat)]
        peak = max(peak for _, peak in runs)
        rows.append(Row(label, messages, mode, min(seconds for seconds, _ in runs), peak))
    return rows


def table(rows: list[Row], records: int) -> list[str]:
    """The rows as a Markdown table; the ratio is InfluxDB mode's rate over file mode's."""
    raw = next(row.seconds for row in rows if row.messages == "raw")
    file_seconds = {row.messages: row.seconds for row in rows if row.mode == "file"}
    lines = [
        "| writer | records/s | seconds | InfluxDB / file | share of raw | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        file_mode = file_seconds.get(row.messages)
        ratio = "-" if file_mode is None else f"{file_mode / row.seconds:.2f}"
        memory = "-" if math.isnan(row.peak_mb) else f"{row.peak_mb:.0f}"
        lines.append(
            f"| {row.label} | {records / row.seconds:,.0f} | {row.seconds:.1f} | {ratio} | "
            f"{raw / row.seconds:.0%} | {memory} |"
        )
    return lines


def main() -> None:
    """Run every row and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each row (fastest kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-target-") as tmp:
        workdir = Path(tmp)
        engine = influxdb_from_env(workdir / "influxdb")
        try:
            rows = measure(Bench(workdir, args.records, engine), args.repeat)
        finally:
            engine.stop()
    engine_name = os.environ.get("INFLUXDB_TEST_URL") or "local influxd 1.6.7 + 2.x proxy"
    print(f"records: {args.records:,}; best of {args.repeat}; engine: {engine_name}")
    print("\n".join(table(rows, args.records)))


if __name__ == "__main__":
    main()
