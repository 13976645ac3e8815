"""Build Singer messages and run the plugins as a user would: as processes, over pipes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
from dataclasses import dataclass, field

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from pathlib import Path


def schema(
    stream: str,
    properties: Mapping[str, t.Any],
    key_properties: Sequence[str] = (),
    bookmark_properties: Sequence[str] = (),
) -> dict[str, t.Any]:
    """A SCHEMA message."""
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {"type": "object", "properties": dict(properties)},
        "key_properties": list(key_properties),
        "bookmark_properties": list(bookmark_properties),
    }


def record(stream: str, values: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """A RECORD message."""
    return {"type": "RECORD", "stream": stream, "record": dict(values)}


def state(value: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """A STATE message."""
    return {"type": "STATE", "value": dict(value)}


def encode(messages: Iterable[Mapping[str, t.Any]]) -> str:
    """Messages as JSON lines."""
    return "".join(json.dumps(m) + "\n" for m in messages)


@dataclass
class TargetRun:
    """What a target process did: exit code, STATE lines and its log."""

    returncode: int
    states: list[dict[str, t.Any]]
    log: str

    @property
    def passed_on(self) -> list[dict[str, t.Any]]:
        """The states passed on, each once (the end of the input repeats the last one)."""
        return passed_on(self.states)


def passed_on(states: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """States in order, a state repeated right after itself counted once."""
    return [state for n, state in enumerate(states) if n == 0 or state != states[n - 1]]


def target_command(config_path: Path) -> list[str]:
    """The command line of target-influxdb with a config file."""
    return [sys.executable, "-m", "target_influxdb", "--config", str(config_path)]


def write_config(tmp_path: Path, config: Mapping[str, t.Any], name: str = "config.json") -> Path:
    """Write a config file and return its path."""
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return path


def run_target(
    tmp_path: Path,
    config: Mapping[str, t.Any],
    messages: Iterable[Mapping[str, t.Any]] | str,
    timeout: float = 120,
    env: Mapping[str, str] | None = None,
) -> TargetRun:
    """Run target-influxdb on the messages and collect what it printed."""
    stdin = messages if isinstance(messages, str) else encode(messages)
    proc = subprocess.run(
        target_command(write_config(tmp_path, config)),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
    states = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return TargetRun(proc.returncode, states, proc.stderr)


def structured_logging(tmp_path: Path) -> dict[str, str]:
    """Variables that make a plugin log JSON lines, as Meltano has it do (StructuredFormatter)."""
    path = tmp_path / "logging.json"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {"singer": {"()": "singer_sdk.logging.StructuredFormatter"}},
                "handlers": {
                    "console": {
                        "class": "logging.StreamHandler",
                        "formatter": "singer",
                        "stream": "ext://sys.stderr",
                    }
                },
                "root": {"handlers": ["console"], "level": "INFO"},
            }
        )
    )
    return {"SINGER_SDK_LOG_CONFIG": str(path)}


def log_records(log: str) -> list[dict[str, t.Any]]:
    """The JSON log lines of a plugin that logged with :func:`structured_logging`."""
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


@dataclass
class TapRun:
    """What a tap process did: exit code, records by stream, the last STATE and its log."""

    returncode: int
    records: dict[str, list[dict[str, t.Any]]]
    state: dict[str, t.Any] | None
    log: str
    messages: list[dict[str, t.Any]] = field(default_factory=list)
    """Every message, in order."""

    def bookmark(self, stream: str) -> t.Any:  # noqa: ANN401
        """The replication key value the last STATE holds for a stream."""
        return ((self.state or {}).get("bookmarks", {}).get(stream) or {}).get(
            "replication_key_value"
        )


def run_tap(  # noqa: PLR0913
    tmp_path: Path,
    config: Mapping[str, t.Any],
    state_value: Mapping[str, t.Any] | None = None,
    timeout: float = 120,
    env: Mapping[str, str] | None = None,
    *,
    catalog: Path | None = None,
) -> TapRun:
    """Run tap-nationalgas and collect its messages (``env``: the process's environment).

    ``catalog``: a catalog file that selects the streams (else every stream is read).
    """
    command = [
        sys.executable,
        "-m",
        "tap_nationalgas",
        "--config",
        str(write_config(tmp_path, config, "tap.json")),
    ]
    if state_value is not None:
        command += ["--state", str(write_config(tmp_path, state_value, "state.json"))]
    if catalog is not None:
        command += ["--catalog", str(catalog)]
    proc = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    records: dict[str, list[dict[str, t.Any]]] = {}
    state = None
    messages = [json.loads(line) for line in proc.stdout.splitlines()]
    for message in messages:
        if message["type"] == "RECORD":
            records.setdefault(message["stream"], []).append(message["record"])
        elif message["type"] == "STATE":
            state = message["value"]
    return TapRun(proc.returncode, records, state, proc.stderr, messages)
