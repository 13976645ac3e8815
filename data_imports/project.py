"""The Meltano project as the runner sees it: jobs, plugins, selections, state IDs (meltano.yml)."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import typing as t
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
"""The project folder: meltano.yml, .env, logs/."""


class ProjectError(Exception):
    """meltano.yml does not hold what was asked for; the message says what it holds."""


@dataclass(frozen=True)
class Plugin:
    """An extractor or loader of meltano.yml, with the plugin it inherits from."""

    name: str
    kind: str
    """``extractors`` or ``loaders``."""
    entry: t.Mapping[str, t.Any]
    parent: Plugin | None = None

    @property
    def lineage(self) -> list[Plugin]:
        """This plugin, then the ones it inherits from."""
        return [self, *(self.parent.lineage if self.parent else [])]

    def inherited(self, key: str) -> t.Any:  # noqa: ANN401
        """The first value of ``key`` along the lineage (``select``, ``executable``...)."""
        return next((p.entry[key] for p in self.lineage if key in p.entry), None)

    @property
    def executable(self) -> str:
        """The command Meltano runs."""
        return str(self.inherited("executable") or self.lineage[-1].name)

    @property
    def selected_streams(self) -> list[str]:
        """The streams of an extractor's ``select`` patterns (``stream.*``)."""
        patterns = self.inherited("select") or []
        return [str(p).split(".", 1)[0] for p in patterns if not str(p).startswith("!")]

    @property
    def declared(self) -> dict[str, str]:
        """The settings meltano.yml declares for this plugin, with their Meltano kind."""
        settings = self.inherited("settings") or []
        return {str(s["name"]): str(s.get("kind", "string")) for s in settings}

    @property
    def env_prefix(self) -> str:
        """The prefix of the variables Meltano reads for this plugin's own settings."""
        return self.name.upper().replace("-", "_") + "_"

    @cached_property
    def schema(self) -> dict[str, t.Any]:
        """The plugin's own settings schema (``config_jsonschema``), the one home of each setting.

        Raises:
            ProjectError: when the plugin's package is not installed beside the runner.
        """
        found = importlib.metadata.entry_points(group="console_scripts", name=self.executable)
        if not found:
            raise ProjectError(
                f"the plugin {self.executable} is not installed beside the runner: run ./setup.sh"
            )
        module = importlib.import_module(next(iter(found)).module)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and getattr(value, "name", None) == self.executable
                and isinstance(getattr(value, "config_jsonschema", None), dict)
            ):
                return t.cast("dict[str, t.Any]", getattr(value, "config_jsonschema", {}))
        raise ProjectError(f"{module.__name__} defines no plugin class named {self.executable}")


@dataclass(frozen=True)
class Mapping:
    """How target-influxdb stores a stream (``mappings.<stream>`` of meltano.yml)."""

    measurement: str
    tags: tuple[str, ...]
    timestamp: str
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class Task:
    """One ``extractor loader`` pair of a job: one state ID."""

    extractor: Plugin
    loader: Plugin

    def state_id(self, environment: str | None) -> str:
        """The state ID Meltano gives this pair's runs."""
        pair = f"{self.extractor.name}-to-{self.loader.name}"
        return f"{environment}:{pair}" if environment else pair


@dataclass(frozen=True)
class Job:
    """A job of meltano.yml."""

    name: str
    tasks: tuple[Task, ...]

    @property
    def plugins(self) -> list[Plugin]:
        """Every extractor and loader the job runs, in order, each once."""
        found: dict[str, Plugin] = {}
        for task in self.tasks:
            found.setdefault(task.extractor.name, task.extractor)
            found.setdefault(task.loader.name, task.loader)
        return list(found.values())

    @property
    def streams(self) -> list[str]:
        """The streams the job's extractors select."""
        return [s for task in self.tasks for s in task.extractor.selected_streams]


@dataclass(frozen=True)
class Project:
    """meltano.yml, parsed."""

    root: Path
    data: t.Mapping[str, t.Any]

    @classmethod
    def load(cls, root: Path = ROOT) -> Project:
        """Read ``root/meltano.yml``."""
        path = root / "meltano.yml"
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ProjectError(f"cannot read {path}: {exc}") from None
        return cls(root, data or {})

    def environment(self, env: t.Mapping[str, str]) -> str | None:
        """The active Meltano environment: ``MELTANO_ENVIRONMENT``, else the default one."""
        return env.get("MELTANO_ENVIRONMENT") or self.data.get("default_environment")

    @property
    def job_names(self) -> list[str]:
        """The jobs, in meltano.yml's order."""
        return [str(j["name"]) for j in self.data.get("jobs") or []]

    def job(self, name: str) -> Job:
        """The job called ``name``.

        Raises:
            ProjectError: naming the jobs there are.
        """
        for entry in self.data.get("jobs") or []:
            if entry["name"] == name:
                return Job(name, tuple(self._task(str(task)) for task in entry["tasks"]))
        raise ProjectError(
            f"meltano.yml has no job {name!r}; its jobs are {', '.join(self.job_names)}"
        )

    def _task(self, text: str) -> Task:
        names = text.split()
        plugins = [self.plugin(n) for n in names]
        extractors = [p for p in plugins if p.kind == "extractors"]
        loaders = [p for p in plugins if p.kind == "loaders"]
        if len(extractors) != 1 or len(loaders) != 1:
            raise ProjectError(f"the task {text!r} is not one extractor and one loader")
        return Task(extractors[0], loaders[0])

    def plugin(self, name: str) -> Plugin:
        """The extractor or loader called ``name``, with what it inherits from."""
        for kind in ("extractors", "loaders"):
            for entry in (self.data.get("plugins") or {}).get(kind) or []:
                if entry["name"] == name:
                    parent = entry.get("inherit_from")
                    return Plugin(name, kind, entry, self.plugin(parent) if parent else None)
        raise ProjectError(f"meltano.yml has no extractor or loader {name!r}")

    def mappings(self, loader: str = "target-influxdb") -> dict[str, Mapping]:
        """How each stream is stored: the loader's ``mappings``, by stream name."""
        config = self.plugin(loader).inherited("config") or {}
        return {
            str(stream): Mapping(
                str(entry["measurement"]),
                tuple(entry.get("tags") or ()),
                str(entry["timestamp"]),
                tuple(entry.get("exclude") or ()),
            )
            for stream, entry in (config.get("mappings") or {}).items()
        }

    def measurement(self, stream: str, loader: str = "target-influxdb") -> str:
        """The measurement the loader's mapping stores a stream in."""
        return self.mappings(loader)[stream].measurement

    def measurements(self, loader: str = "target-influxdb") -> list[str]:
        """Every measurement the loader's mappings write, each once, in their order."""
        return list(dict.fromkeys(m.measurement for m in self.mappings(loader).values()))

    def environment_config(self, environment: str | None, plugin: Plugin) -> dict[str, t.Any]:
        """The ``config`` an environment of meltano.yml gives this plugin."""
        for entry in self.data.get("environments") or []:
            if entry.get("name") != environment:
                continue
            plugins = ((entry.get("config") or {}).get("plugins") or {}).get(plugin.kind) or []
            for item in plugins:
                if item.get("name") == plugin.name:
                    return dict(item.get("config") or {})
        return {}
