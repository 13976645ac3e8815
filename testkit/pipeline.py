"""The pipeline as ``meltano run`` drives it, without Meltano's start-up cost.

tap-nationalgas and target-influxdb run as processes joined by a pipe, with the stream
selections, mappings and static tags of ``meltano.yml``. Each STATE line the target prints is
stored per extractor as Meltano's state backend stores it for a job (:class:`JobState`), and
the merged state is handed to its next run's tap.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import subprocess
import sys
import typing as t
from dataclasses import dataclass, field

import yaml

from testkit.processes import REPO_ROOT

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from pathlib import Path

MAIN = "tap-nationalgas"
FLOWS = "tap-nationalgas-flows"
BACKFILL = "tap-nationalgas-backfill"


def project() -> dict[str, t.Any]:
    """meltano.yml, parsed."""
    return t.cast("dict[str, t.Any]", yaml.safe_load((REPO_ROOT / "meltano.yml").read_text()))


def selected_streams(extractor: str) -> list[str]:
    """The streams an extractor of meltano.yml selects."""
    plugins = {p["name"]: p for p in project()["plugins"]["extractors"]}
    plugin = plugins[extractor]
    while "select" not in plugin:
        plugin = plugins[plugin["inherit_from"]]
    return [pattern.removesuffix(".*") for pattern in plugin["select"]]


def project_target_settings() -> dict[str, t.Any]:
    """The loader's mappings and static tags of meltano.yml."""
    config = project()["plugins"]["loaders"][0]["config"]
    return {"mappings": config["mappings"], "static_tags": config["static_tags"]}


def merge(src: Mapping[str, t.Any], dest: dict[str, t.Any]) -> dict[str, t.Any]:
    """Merge ``src`` into ``dest`` key by key at every depth, as Meltano merges states.

    A mapping is merged into the mapping under the same key; anything else, a list included,
    replaces what ``dest`` held. ``dest`` is changed and returned.
    """
    for key, value in src.items():
        if isinstance(value, dict):
            merge(value, dest.setdefault(key, {}))
        else:
            dest[key] = value
    return dest


@dataclass
class JobState:
    """A job's state as Meltano keeps it: a completed state and a partial one merged onto it.

    Each STATE line of a run is stored when it arrives. By default (``--state-strategy auto``,
    no full refresh) it replaces the completed state and clears the partial one; with
    ``merge`` it is merged key by key into the partial state. An empty state is not stored.
    The next run reads the partial state merged onto the completed one.
    """

    completed: dict[str, t.Any] = field(default_factory=dict)
    partial: dict[str, t.Any] = field(default_factory=dict)

    def store(self, state: Mapping[str, t.Any], *, merge_states: bool = False) -> None:
        """Store one STATE line's value."""
        if not state:
            return
        if merge_states:
            merge(copy.deepcopy(dict(state)), self.partial)
        else:
            self.completed, self.partial = copy.deepcopy(dict(state)), {}

    def merged(self) -> dict[str, t.Any]:
        """The state the next run's tap is given."""
        return merge(copy.deepcopy(self.partial), copy.deepcopy(self.completed))


@dataclass
class PipelineRun:
    """One run: both exit codes, the STATE lines the target printed, and both logs."""

    tap_code: int | None
    target_code: int | None
    states: list[dict[str, t.Any]]
    log: str

    @property
    def ok(self) -> bool:
        """True when both processes exited 0."""
        return self.tap_code == 0 and self.target_code == 0


@dataclass
class Running:
    """A run in progress."""

    extractor: str
    tap: subprocess.Popen[bytes]
    target: subprocess.Popen[bytes]
    logs: tuple[Path, Path]


@dataclass
class Pipeline:
    """tap | target with a state carried from run to run."""

    workdir: Path
    tap_config: dict[str, t.Any]
    target_config: dict[str, t.Any]
    merge_states: bool = False
    """Store STATE lines as ``meltano run --state-strategy merge`` does (default: ``auto``)."""
    jobs: dict[str, JobState] = field(default_factory=dict)
    runs: int = 0
    _catalogs: dict[str, Path] = field(default_factory=dict)

    @property
    def states(self) -> dict[str, dict[str, t.Any]]:
        """Each extractor's state, as its next run reads it."""
        return {extractor: job.merged() for extractor, job in self.jobs.items() if job.merged()}

    def store_states(self, extractor: str, states: Iterable[Mapping[str, t.Any]]) -> None:
        """Store a run's STATE values in order, as Meltano does for the extractor's job."""
        job = self.jobs.setdefault(extractor, JobState())
        for state in states:
            job.store(state, merge_states=self.merge_states)

    def catalog(self, extractor: str) -> Path:
        """A catalog with the streams of ``extractor`` selected, the others not."""
        if extractor not in self._catalogs:
            wanted = set(selected_streams(extractor))
            discovered = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tap_nationalgas",
                    "--config",
                    str(self._tap_file()),
                    "--discover",
                ],
                capture_output=True,
                check=True,
                timeout=60,
            )
            catalog = json.loads(discovered.stdout)
            for stream in catalog["streams"]:
                for entry in stream["metadata"]:
                    if entry["breadcrumb"] == []:
                        entry["metadata"]["selected"] = stream["tap_stream_id"] in wanted
            path = self.workdir / f"catalog-{extractor}.json"
            path.write_text(json.dumps(catalog))
            self._catalogs[extractor] = path
        return self._catalogs[extractor]

    def _tap_file(self, overrides: Mapping[str, t.Any] | None = None) -> Path:
        path = self.workdir / "tap.json"
        path.write_text(json.dumps({**self.tap_config, **(overrides or {})}))
        return path

    def _target_file(self, overrides: Mapping[str, t.Any] | None = None) -> Path:
        path = self.workdir / "target.json"
        path.write_text(
            json.dumps({**project_target_settings(), **self.target_config, **(overrides or {})})
        )
        return path

    def start(
        self,
        extractor: str = MAIN,
        *,
        tap_overrides: Mapping[str, t.Any] | None = None,
        target_overrides: Mapping[str, t.Any] | None = None,
        target_preexec: Callable[[], None] | None = None,
    ) -> Running:
        """Start one run; :meth:`finish` collects it."""
        self.runs += 1
        catalog = self.catalog(extractor)
        tap_command = [
            sys.executable,
            "-m",
            "tap_nationalgas",
            "--config",
            str(self._tap_file(tap_overrides)),
            "--catalog",
            str(catalog),
        ]
        if extractor in self.states:
            state_path = self.workdir / f"state-{extractor}.json"
            state_path.write_text(json.dumps(self.states[extractor]))
            tap_command += ["--state", str(state_path)]
        target_path = self._target_file(target_overrides)
        tap_log = self.workdir / f"run{self.runs}-tap.log"
        target_log = self.workdir / f"run{self.runs}-target.log"
        with tap_log.open("wb") as tap_err, target_log.open("wb") as target_err:
            tap = subprocess.Popen(tap_command, stdout=subprocess.PIPE, stderr=tap_err)
            target = subprocess.Popen(
                [sys.executable, "-m", "target_influxdb", "--config", str(target_path)],
                stdin=tap.stdout,
                stdout=subprocess.PIPE,
                stderr=target_err,
                preexec_fn=target_preexec,  # noqa: PLW1509 (a resource limit, nothing else)
            )
        if tap.stdout is not None:  # the target holds the pipe now
            tap.stdout.close()
        return Running(extractor, tap, target, (tap_log, target_log))

    def finish(self, running: Running, timeout: float = 300) -> PipelineRun:
        """Wait for a run; store its STATE lines for the next run."""
        out, _ = running.target.communicate(timeout=timeout)
        running.tap.wait(timeout=timeout)
        states = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
        self.store_states(running.extractor, states)
        log = "\n".join(path.read_text(errors="replace") for path in running.logs)
        return PipelineRun(running.tap.returncode, running.target.returncode, states, log)

    def tap_in_process(self, extractor: str, tap_overrides: Mapping[str, t.Any]) -> str:
        """Run the tap in this process (no start-up cost); return its Singer messages.

        Its STATE messages are stored as the extractor's state, as if a target had written
        everything: for long simulations whose messages go to one :meth:`load` at the end.
        """
        from tap_nationalgas.tap import TapNationalGas  # noqa: PLC0415 (only here)

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            TapNationalGas(
                config={**self.tap_config, **tap_overrides},
                catalog=json.loads(self.catalog(extractor).read_text()),
                state=self.states.get(extractor),
                parse_env_config=False,
                setup_mapper=True,
            ).sync_all()
        text = out.getvalue()
        messages = (json.loads(line) for line in text.splitlines())
        self.store_states(extractor, (m["value"] for m in messages if m["type"] == "STATE"))
        return text

    def load(self, messages: str, timeout: float = 600) -> PipelineRun:
        """Run the target alone on Singer messages."""
        proc = subprocess.run(
            [sys.executable, "-m", "target_influxdb", "--config", str(self._target_file())],
            input=messages.encode(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        states = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]
        return PipelineRun(0, proc.returncode, states, proc.stderr.decode(errors="replace"))

    def run(self, extractor: str = MAIN, **options: t.Any) -> PipelineRun:  # noqa: ANN401
        """One run, to its end."""
        return self.finish(self.start(extractor, **options))
