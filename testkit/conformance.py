"""The target's conformance cases: recorded Singer message files, run in both modes.

A case is a file ``plugins/target-influxdb/tests/conformance/<name>.jsonl`` of Singer messages
as a tap would send them. :func:`run_both` pipes it into target-influxdb twice: into a bucket
of the real engine, and in file mode, whose files are then loaded into a second bucket the way
``influx write --file`` loads them. A test then reads both buckets back and checks each
outcome: a line file mode wrote that the engine cannot load is a failure of its own.
"""

from __future__ import annotations

import typing as t
import urllib.error
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from testkit import singer
from testkit.influx import write_lines

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from testkit.influx import LocalInfluxDB, Point, RemoteInfluxDB2

CASES = Path(__file__).resolve().parents[1] / "plugins/target-influxdb/tests/conformance"


def case_path(name: str) -> Path:
    """The message file of one case."""
    path = CASES / f"{name}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no conformance case {name!r}: {path} is missing")
    return path


def case_text(name: str) -> str:
    """The Singer messages of one case, as the target reads them."""
    return case_path(name).read_text(encoding="utf-8")


@dataclass
class ModeRun:
    """One mode's run of a case: what the target did and where its points can be read."""

    run: singer.TargetRun
    bucket: str
    engine: LocalInfluxDB | RemoteInfluxDB2
    load_errors: list[str] = field(default_factory=list)
    """File mode only: the files the engine refused to load, with its answer."""

    def points(self, measurement: str) -> list[Point]:
        """The stored points of one measurement, oldest first."""
        return self.engine.points(self.bucket, measurement)

    def measurements(self) -> set[str]:
        """The measurements the bucket holds."""
        series = self.engine.query(self.bucket, "SHOW MEASUREMENTS")
        return {row[0] for s in series for row in s.get("values") or ()}


@dataclass
class BothModes:
    """A case run into InfluxDB and in file mode (its files loaded into a bucket)."""

    influx: ModeRun
    file: ModeRun

    @property
    def modes(self) -> tuple[ModeRun, ModeRun]:
        """Both runs, to check the same outcome of each."""
        return self.influx, self.file


def run_influx(
    tmp_path: Path,
    target_config: Mapping[str, t.Any],
    engine: LocalInfluxDB | RemoteInfluxDB2,
    messages: str,
    config: Mapping[str, t.Any] | None = None,
) -> ModeRun:
    """Run the target on the messages into the bucket of ``target_config``."""
    folder = tmp_path / "influx"
    folder.mkdir(parents=True, exist_ok=True)
    run = singer.run_target(folder, {**target_config, **(config or {})}, messages)
    return ModeRun(run, target_config["bucket"], engine)


def run_file(
    tmp_path: Path,
    engine: LocalInfluxDB | RemoteInfluxDB2,
    messages: str,
    config: Mapping[str, t.Any] | None = None,
) -> ModeRun:
    """Run the target on the messages in file mode, then load its files into a new bucket."""
    folder = tmp_path / "file"
    output = folder / "output"
    folder.mkdir(parents=True, exist_ok=True)
    run = singer.run_target(folder, {"output_path": str(output), **(config or {})}, messages)
    bucket = f"file_{uuid.uuid4().hex[:12]}"
    engine.create_bucket(bucket)
    errors = []
    for path in sorted(output.glob("*.lp")) if output.is_dir() else ():
        body = path.read_bytes()
        if not body.strip():
            continue
        try:
            write_lines(engine, bucket, body)
        except urllib.error.HTTPError as exc:
            errors.append(f"{path.name}: {exc.code} {exc.read().decode(errors='replace')}")
    return ModeRun(run, bucket, engine, errors)


def run_both(  # noqa: PLR0913
    tmp_path: Path,
    target_config: Mapping[str, t.Any],
    engine: LocalInfluxDB | RemoteInfluxDB2,
    name: str,
    config: Mapping[str, t.Any] | None = None,
    *,
    placeholders: Mapping[str, str] | None = None,
) -> BothModes:
    """Run one recorded case in both modes (``config``: settings added in both).

    ``placeholders``: text of the case replaced before it is run, e.g. ``{"@BATCHES@": folder}``
    for the folder where the test wrote the batch files a BATCH message names.
    """
    messages = case_text(name)
    for placeholder, value in (placeholders or {}).items():
        messages = messages.replace(placeholder, value)
    return BothModes(
        run_influx(tmp_path, target_config, engine, messages, config),
        run_file(tmp_path, engine, messages, config),
    )


RunCase = t.Callable[..., BothModes]
"""``run_case(name, config=None, *, placeholders=None)``: :func:`run_both`, this test's bucket."""
