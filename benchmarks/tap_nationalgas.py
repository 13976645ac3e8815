"""Benchmark a gas quality history backfill of tap-nationalgas against the local fake API.

Runs the tap with only ``gas_quality_history`` selected over a month and over a year of
hourly readings for every site, its output sent to /dev/null, and reports records/s (wall
clock and the tap's own CPU time), requests made and the tap's peak memory.

Run from the repository root: ``.venv/bin/python -m benchmarks.tap_nationalgas``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.measure import run_measured
from testkit.fake_nationalgas import FakeNationalGasProcess
from testkit.nationalgas_data import GAS_QUALITY_SITES, NationalGasData

STREAM = "gas_quality_history"
FAKE_NOW = "2026-01-01T06:00:00+00:00"


def selected_catalog(config_path: Path, workdir: Path) -> Path:
    """The tap's catalog with only the history stream selected."""
    discovered = subprocess.run(
        [sys.executable, "-m", "tap_nationalgas", "--config", str(config_path), "--discover"],
        capture_output=True,
        text=True,
        check=True,
    )
    catalog = json.loads(discovered.stdout)
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if not entry["breadcrumb"]:
                entry["metadata"]["selected"] = stream["tap_stream_id"] == STREAM
    path = workdir / "catalog.json"
    path.write_text(json.dumps(catalog))
    return path


def backfill(fake: FakeNationalGasProcess, workdir: Path, first: dt.date, last: dt.date) -> dict:
    """Run one backfill; return its measurements."""
    config = {
        "api_url": fake.url,
        "start_date": f"{first.isoformat()}T00:00:00Z",
        "end_date": last.isoformat(),
    }
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config))
    catalog = selected_catalog(config_path, workdir)
    fake.reset()
    command = [
        sys.executable,
        "-m",
        "tap_nationalgas",
        "--config",
        str(config_path),
        "--catalog",
        str(catalog),
    ]
    with Path(os.devnull).open("wb") as devnull:
        measured = run_measured(command, None, devnull)
    data = NationalGasData(1, dt.datetime.fromisoformat(FAKE_NOW))
    readings = len(data.gas_quality_times(first, last)) - 1  # the start instant is not re-emitted
    records = readings * len(GAS_QUALITY_SITES)
    requests = fake.stats()["requests"].get("/gasquality/historicdata", 0)
    return {
        "days": (last - first).days + 1,
        "records": records,
        "seconds": measured.seconds,
        "cpu": measured.cpu_seconds,
        "requests": requests,
        "peak_mb": measured.peak_mb,
    }


def main() -> None:
    """Run a month and a year; print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    fake = FakeNationalGasProcess(now=FAKE_NOW)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-tap-") as tmp:
            rows = [
                backfill(fake, Path(tmp), dt.date(2025, 12, 1), dt.date(2025, 12, 31)),
                backfill(fake, Path(tmp), dt.date(2025, 1, 1), dt.date(2025, 12, 31)),
            ]
    finally:
        fake.stop()
    print(
        f"gas quality history, {len(GAS_QUALITY_SITES)} sites, hourly readings, output to /dev/null"
    )
    header = (
        "range",
        "records",
        "requests",
        "seconds",
        "records/s",
        "records per CPU second",
        "peak RSS (MB)",
    )
    print("| " + " | ".join(header) + " |")
    print("|---|" + "---:|" * (len(header) - 1))
    for row in rows:
        cells = (
            f"{row['days']} days",
            f"{row['records']:,}",
            str(row["requests"]),
            f"{row['seconds']:.1f}",
            f"{row['records'] / row['seconds']:,.0f}",
            f"{row['records'] / row['cpu']:,.0f}",
            f"{row['peak_mb']:.0f}",
        )
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
