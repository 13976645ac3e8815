"""Meltano's log lines as events: one JSON object a line, with the plugins' own level and logger.

Meltano is run with the logging configuration :func:`meltano_logging` (JSON lines on stderr), and
the plugins declare the ``structured-logging`` capability, so each line of a plugin arrives with
the level and the logger it was logged with (``plugin_logger``) and its extra fields. What a run
shows is decided by level and logger, never by the text of a message: warnings and errors always,
the INFO lines of each plugin's report logger (``<plugin>.report``) by default, the rest (Meltano's
and the SDK's routine lines) only at a more verbose level.
"""

from __future__ import annotations

import json
import logging
import typing as t
from dataclasses import dataclass, field

if t.TYPE_CHECKING:
    from collections.abc import Mapping

REPORT_LOGGER = "report"
"""The last part of the name of a plugin's report logger: ``tap-nationalgas.report``."""
SDK_LOGGER = "singer_sdk"
"""The SDK's own loggers (metrics, state helpers): routine below ERROR."""


def meltano_logging(level: str) -> dict[str, t.Any]:
    """Meltano's logging configuration for a run: JSON lines on stderr, routine lines left out.

    At ``warning``, Meltano's own INFO lines are left out at the source, and so is the warning
    that ``--force`` is on (the runner holds the job's lock, so a run marked as running in the
    system database is one a kill left behind).
    """
    loggers: dict[str, t.Any] = {
        "meltano.plugin": {"level": "DEBUG" if level == "debug" else "INFO"}
    }
    if level == "warning":
        loggers |= {
            "meltano": {"level": "WARNING"},
            "meltano.core.block.extract_load": {"level": "ERROR"},
        }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "meltano.core.logging.json_formatter"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level.upper(), "handlers": ["console"]},
        "loggers": loggers,
    }


@dataclass(frozen=True)
class Event:
    """One line of Meltano's log."""

    level: int
    message: str
    source: str
    """The plugin that logged it, else ``meltano``."""
    logger: str = ""
    """The plugin's own logger, for a plugin's line."""
    time: str = ""
    fields: Mapping[str, t.Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, line: str) -> Event:
        """A JSON line of Meltano's; any other line is kept as an INFO line of Meltano's."""
        try:
            data = json.loads(line)
        except ValueError:
            data = None
        if not isinstance(data, dict) or "event" not in data:
            return cls(logging.INFO, line.rstrip(), "meltano")
        level = logging.getLevelNamesMapping().get(str(data.get("level", "info")).upper(), 20)
        return cls(
            level=level,
            message=str(data["event"]),
            source=str(data.get("name") or "meltano"),
            logger=str(data.get("plugin_logger") or ""),
            time=str(data.get("timestamp") or ""),
            fields=data,
        )

    @property
    def from_plugin(self) -> bool:
        """True for a line a plugin logged."""
        return bool(self.logger) or self.source != "meltano"

    @property
    def is_report(self) -> bool:
        """True for a line of a plugin's report logger."""
        return REPORT_LOGGER in self.logger.split(".")[1:]

    @property
    def from_sdk(self) -> bool:
        """True for a line of the SDK's own loggers."""
        return self.logger == SDK_LOGGER or self.logger.startswith(SDK_LOGGER + ".")

    def shown(self, level: str) -> bool:
        """Whether the line is shown at the runner's log level (warning, info or debug)."""
        if level == "debug" or self.level >= logging.ERROR:
            return True
        if level == "info":
            return self.level >= logging.INFO
        if self.is_report:
            return self.level >= logging.INFO
        return self.level >= logging.WARNING and not self.from_sdk

    @property
    def traceback(self) -> str:
        """The exception a line carries, as text (Meltano's, or a plugin's); '' if none."""
        if exceptions := self.fields.get("exception"):
            return "\n".join(_meltano_exception(e) for e in exceptions if isinstance(e, dict))
        plugin = self.fields.get("plugin_exception")
        if isinstance(plugin, dict):
            return _plugin_exception(plugin)
        return str(plugin) if plugin else ""

    @property
    def exception_name(self) -> str:
        """``Type: message`` of the exception the line carries, if any."""
        plugin = self.fields.get("plugin_exception")
        if isinstance(plugin, dict):
            return f"{plugin.get('type', 'Error')}: {_first_line(plugin.get('message'))}"
        exceptions = self.fields.get("exception") or []
        last = exceptions[-1] if exceptions and isinstance(exceptions[-1], dict) else None
        if last is None:
            return ""
        return f"{last.get('exc_type', 'Error')}: {_first_line(last.get('exc_value'))}"


def _first_line(text: object) -> str:
    lines = str(text or "").strip().splitlines()
    return lines[0] if lines else ""


def _meltano_exception(data: Mapping[str, t.Any]) -> str:
    frames = [
        f'  File "{f.get("filename")}", line {f.get("lineno")}, in {f.get("name")}'
        for f in data.get("frames") or []
        if isinstance(f, dict)
    ]
    return "\n".join(
        [
            "Traceback (most recent call last):",
            *frames,
            f"{data.get('exc_type')}: {data.get('exc_value')}",
        ]
    )


def _plugin_exception(data: Mapping[str, t.Any]) -> str:
    lines = ["Traceback (most recent call last):"]
    for frame in data.get("traceback") or []:
        if isinstance(frame, dict):
            lines.append(
                f'  File "{frame.get("filename")}", line {frame.get("lineno")}, '
                f"in {frame.get('function')}"
            )
            lines.append(f"    {str(frame.get('line') or '').strip()}")
    lines.append(f"{data.get('type')}: {data.get('message')}")
    if isinstance(cause := data.get("cause") or data.get("context"), dict):
        lines = [_plugin_exception(cause), "During handling of it:", *lines]
    return "\n".join(lines)


def render(time: str, level: int, source: str, message: str) -> str:
    """One line of the runner's output: ``2026-03-29T08:00:00Z warning tap-nationalgas ...``."""
    stamp = time[:19] + "Z" if len(time) >= 19 else time  # noqa: PLR2004 (YYYY-MM-DDTHH:MM:SS)
    return f"{stamp} {logging.getLevelName(level).lower():<7} {source} {message}"
