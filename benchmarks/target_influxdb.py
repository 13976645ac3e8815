"""Benchmark target-influxdb against the raw write limit of the same InfluxDB engine.

Writes N records of a realistic gas-quality stream into the real engine (Debian's influxd
behind the 2.x proxy, or INFLUXDB_TEST_URL) three ways in one run: POSTed as pre-built line
protocol in batches of 5,000 with one HTTP client (the raw limit), as RECORD messages of a
Singer file, and as one BATCH message naming the same records in an SDK batch file (JSONL +
gzip). Reports records/s, the share of raw, the target's peak memory, and checks every point
arrived.

Run from the repository root: ``.venv/bin/python -m benchmarks.target_influxdb --records 1000000``
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.measure import run_measured
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


def run_target(
    engine: LocalInfluxDB | RemoteInfluxDB2,
    bucket: str,
    singer_file: Path,
    workdir: Path,
    **extra: object,
) -> tuple[float, float]:
    """Run the target on the file; return (seconds, peak RSS in MB)."""
    config = {
        "url": engine.url,
        "token": engine.token,
        "org": engine.org,
        "bucket": bucket,
        "mappings": MAPPING,
        **extra,
    }
    config_path = workdir / f"config-{bucket}.json"
    config_path.write_text(json.dumps(config))
    command = [sys.executable, "-m", "target_influxdb", "--config", str(config_path)]
    with singer_file.open("rb") as stdin:
        measured = run_measured(command, stdin, subprocess.DEVNULL)
    return measured.seconds, measured.peak_mb


def count(engine: LocalInfluxDB | RemoteInfluxDB2, bucket: str) -> int:
    """Points stored in the bucket."""
    if isinstance(engine, LocalInfluxDB):
        series = engine.query(bucket, f'SELECT count("cv") FROM "{STREAM}"')  # noqa: S608
        return int(series[0]["values"][0][1]) if series else 0
    return len(engine.points(bucket, STREAM))


def main() -> None:
    """Run both sides and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-target-") as tmp:
        workdir = Path(tmp)
        singer_file = workdir / "gas_quality.singer"
        write_singer_file(singer_file, args.records)
        batch_messages = workdir / "gas_quality-batch.singer"
        write_batch_files(batch_messages, workdir / "gas_quality-1.json.gz", args.records)
        batches = raw_batches(args.records)
        engine = influxdb_from_env(workdir / "influxdb")
        try:
            rows: list[tuple[str, float, float, float]] = []
            for label, kind, extra in (
                ("raw line protocol, 1 client, batches of 5,000", "raw", {}),
                ("target-influxdb, RECORD messages, defaults (gzip on)", "record", {}),
                ("target-influxdb, RECORD messages, gzip off", "record", {"gzip": False}),
                ("target-influxdb, BATCH (JSONL + gzip file), defaults", "batch", {}),
                ("target-influxdb, BATCH (JSONL + gzip file), gzip off", "batch", {"gzip": False}),
            ):
                bucket = f"bench_{len(rows)}"
                engine.create_bucket(bucket)
                if kind == "raw":
                    seconds, peak = post_raw(engine, bucket, batches), float("nan")
                else:
                    messages = singer_file if kind == "record" else batch_messages
                    seconds, peak = run_target(engine, bucket, messages, workdir, **extra)
                stored = count(engine, bucket)
                if stored != args.records:
                    raise RuntimeError(f"{label}: {stored} points stored, {args.records} expected")
                rows.append((label, args.records / seconds, seconds, peak))
        finally:
            engine.stop()
    raw_rate = rows[0][1]
    print(
        f"records: {args.records:,}; engine: "
        + (os.environ.get("INFLUXDB_TEST_URL") or "local influxd 1.6.7 + 2.x proxy")
    )
    print("| writer | records/s | seconds | share of raw | peak RSS (MB) |")
    print("|---|---:|---:|---:|---:|")
    for label, rate, seconds, peak in rows:
        memory = "-" if peak != peak else f"{peak:.0f}"  # noqa: PLR0124 (NaN check)
        print(f"| {label} | {rate:,.0f} | {seconds:.1f} | {rate / raw_rate:.0%} | {memory} |")


if __name__ == "__main__":
    main()
