"""Keep each fact in one home, the plugins' code, and write what repeats it.

From the tap's list of streams (``tap_nationalgas.streams.STREAMS``), this writes the stream
table of the tap's README (between ``<!-- streams:start -->`` and ``<!-- streams:end -->``).
From each plugin's own settings (``config_jsonschema``), it writes:

- the settings table of the plugin's README (the rows of ``<plugin> --about --format=markdown``
  for the plugin's own settings, between ``<!-- settings:start -->`` and ``<!-- settings:end -->``);
- the ``settings:`` list of the plugin in ``meltano.yml``: name, kind, description, ``sensitive``
  for secrets and the options of a setting with allowed values. Defaults stay in the plugin;
  ``meltano.yml`` gives only the project's own values, under ``config:``.

From the runner's own variables (``data_imports.options.OPTIONS``), it writes their table in the
top-level README (between ``<!-- runner:start -->`` and ``<!-- runner:end -->``).

From the list of every variable an operator sets (``data_imports.variables``), it writes the
``environment:`` lists of ``docker-compose.yml`` (between ``<!-- pipeline-variables:start -->``
and ``...:end -->``, and the same for ``stack-variables``), ``deploy/variables.json`` (what the
deploy writes to the host) and the README's table of settings for production (between
``<!-- production:start -->`` and ``<!-- production:end -->``).

From ``meltano.yml``'s mappings and static tags of target-influxdb and the streams' schemas, it
writes the README's table of measurements (between ``<!-- measurements:start -->`` and
``<!-- measurements:end -->``).

From ``meltano.yml``'s schedules, jobs and selections, it writes the README's table of schedules
(between ``<!-- schedules:start -->`` and ``<!-- schedules:end -->``) and the cron lines of the
README and of ``QUICKSTART.md`` (between ``<!-- cron:start -->`` and ``<!-- cron:end -->``).

Run ``.venv/bin/python scripts/sync_from_plugins.py`` after changing a stream, a setting or a
schedule;
``--check`` (what the tests run) exits 1 and names the files that differ.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import typing as t
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import FoldedScalarString

if t.TYPE_CHECKING:
    from data_imports.project import Project

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ("<!-- settings:start -->", "<!-- settings:end -->")
STREAMS = ("<!-- streams:start -->", "<!-- streams:end -->")
RUNNER = ("<!-- runner:start -->", "<!-- runner:end -->")
SETS = ("<!-- sets:start -->", "<!-- sets:end -->")
MEASUREMENTS = ("<!-- measurements:start -->", "<!-- measurements:end -->")
PRODUCTION = ("<!-- production:start -->", "<!-- production:end -->")
SCHEDULES = ("<!-- schedules:start -->", "<!-- schedules:end -->")
CRON = ("<!-- cron:start -->", "<!-- cron:end -->")
RUN_ETL = "/opt/data-imports/run-etl.sh"
COMPOSE_LISTS = ("pipeline-variables", "stack-variables")
# Meltano 4.4's `decimal` kind fails on a value from an environment variable, so settings that
# the plugins take as numbers are whole seconds in meltano.yml; the plugins accept fractions.
KINDS = {"string": "string", "integer": "integer", "number": "integer", "boolean": "boolean"}
KINDS |= {"array": "array", "object": "object"}
FORMAT_KINDS = {"date-time": "date_iso8601", "date": "date_iso8601"}


class Plugin(t.NamedTuple):
    """A plugin of this project: its Meltano name, package folder and class."""

    name: str
    kind: str
    folder: str
    load: t.Callable[[], dict[str, t.Any]]


def _tap_schema() -> dict[str, t.Any]:
    from tap_nationalgas.tap import TapNationalGas  # noqa: PLC0415

    return TapNationalGas.config_jsonschema


def _target_schema() -> dict[str, t.Any]:
    from target_influxdb.target import TargetInfluxDB  # noqa: PLC0415

    return TargetInfluxDB.config_jsonschema


PLUGINS = (
    Plugin("tap-nationalgas", "extractors", "plugins/tap-nationalgas", _tap_schema),
    Plugin("target-influxdb", "loaders", "plugins/target-influxdb", _target_schema),
)


def readme_table(plugin: Plugin) -> str:
    """The plugin's own rows of the settings table its ``--about`` prints."""
    own = set(plugin.load()["properties"])
    about = subprocess.run(
        [str(Path(sys.executable).parent / plugin.name), "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    table = about.split("## Settings", 1)[1].strip().split("\n\n", 1)[0].splitlines()
    rows = [r for r in table[2:] if r.split("|")[1].strip() in own]
    return "\n".join([*table[:2], *rows])


def with_table(text: str, table: str, markers: tuple[str, str] = SETTINGS) -> str:
    """A README with the table between two markers replaced."""
    start, end = markers
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{table}\n{end}{tail}"


def streams_table() -> str:
    """The tap's streams: what each reads, its keys and its fields."""
    from tap_nationalgas.streams import STREAMS as TAP_STREAMS  # noqa: PLC0415

    def names(values: t.Iterable[str]) -> str:
        return ", ".join(f"`{v}`" for v in values) or "(none)"

    rows = [
        "| stream | what it reads | primary key | replication key | fields |",
        "|---|---|---|---|---|",
    ]
    for stream in t.cast("tuple[t.Any, ...]", TAP_STREAMS):  # class attributes, not properties
        summary = (stream.__doc__ or "").strip().splitlines()[0].replace("``", "`")
        rows.append(
            f"| `{stream.name}` | {summary} | {names(stream.primary_keys or ())} | "
            f"{names([stream.replication_key] if stream.replication_key else [])} | "
            f"{names(stream.schema['properties'])} |"
        )
    return "\n".join(rows)


def sets_table() -> str:
    """The tap's ready sets: their data items, units and where their names come from."""
    from tap_nationalgas.sets import DEFAULT_SETS  # noqa: PLC0415
    from tap_nationalgas.sets import SETS as READY_SETS  # noqa: PLC0415

    rows = ["| set | catalogue name | id | unit | name from |", "|---|---|---|---|---|"]
    for name, ready in READY_SETS.items():
        default = " (default)" if name in DEFAULT_SETS else ""
        for n, item in enumerate(ready.items):
            first = f"`{name}`{default}: {ready.description}" if n == 0 else ""
            rows.append(
                f"| {first} | {item.name} | `{item.publication_id}` | {item.unit} | {item.source} |"
            )
    return "\n".join(rows)


def measurements_table() -> str:
    """What each stream becomes in InfluxDB, from ``meltano.yml``'s mappings and the schemas.

    A sentence naming the static tags of every point comes first.
    """
    from tap_nationalgas.streams import STREAMS as TAP_STREAMS  # noqa: PLC0415

    project = _project()
    mappings = project.mappings()
    static = (project.plugin("target-influxdb").inherited("config") or {}).get("static_tags") or {}
    rows: dict[str, list[str]] = {}  # a row per mapping; streams of the same mapping share it

    def described(name: str, properties: dict[str, t.Any]) -> str:
        text = properties[name].get("description")
        return f"`{name}`" + (f" ({text})" if text else "")

    for stream in t.cast("tuple[t.Any, ...]", TAP_STREAMS):
        mapping = mappings.get(stream.name)
        if mapping is None:
            continue
        skip = {*mapping.tags, mapping.timestamp, *mapping.exclude}
        properties = stream.schema["properties"]
        cells = [
            f"`{mapping.measurement}`",
            ", ".join(described(tag, properties) for tag in mapping.tags),
            ", ".join(described(n, properties) for n in properties if n not in skip),
            described(mapping.timestamp, properties),
        ]
        key = json.dumps(cells)
        rows.setdefault(key, []).append(f"`{stream.name}`")
    tags = ", ".join(f"`{k}={v}`" for k, v in static.items())
    plural = "s" if len(static) > 1 else ""
    lines = [f"Every point carries the tag{plural} {tags}.", ""] if static else []
    lines += ["| measurement | from stream | tags | fields | time |", "|---|---|---|---|---|"]
    for key, streams in rows.items():
        measurement, tags, fields, time = json.loads(key)
        lines.append(f"| {measurement} | {', '.join(streams)} | {tags} | {fields} | {time} |")
    return "\n".join(lines)


def _project() -> Project:
    """``meltano.yml`` as the runner reads it (``data_imports.project``)."""
    sys.path.insert(0, str(ROOT))  # the project's own package, beside scripts/
    from data_imports.project import Project  # noqa: PLC0415

    return Project.load(ROOT)


def schedules_table() -> str:
    """``meltano.yml``'s schedules: cron, job, and the streams the job reads."""
    project = _project()
    rows = ["| schedule | cron (UTC) | job | streams |", "|---|---|---|---|"]
    for schedule in project.data["schedules"]:
        streams = ", ".join(f"`{s}`" for s in project.job(schedule["job"]).streams)
        rows.append(
            f"| `{schedule['name']}` | `{schedule['interval']}` | `{schedule['job']}` | {streams} |"
        )
    return "\n".join(rows)


def cron_block() -> str:
    """``meltano.yml``'s schedules as crontab lines that start ``run-etl.sh``."""
    schedules = _project().data["schedules"]
    width = max(len(s["interval"]) for s in schedules)
    lines = [f"{s['interval']:<{width}} {RUN_ETL} {s['job']}" for s in schedules]
    return "\n".join(["```cron", *lines, "```"])


def runner_table() -> str:
    """The runner's and the scheduler's variables: default and meaning."""
    sys.path.insert(0, str(ROOT))  # the project's own package, beside scripts/
    from data_imports.options import OPTIONS  # noqa: PLC0415

    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{o.name}` | {o.default} | {o.description} |" for o in OPTIONS]
    return "\n".join(rows)


def _variables() -> tuple[list[t.Any], list[t.Any]]:
    """The pipeline's and the stack's variables (``data_imports.variables``)."""
    sys.path.insert(0, str(ROOT))
    from data_imports.variables import pipeline_variables, stack_variables  # noqa: PLC0415

    return pipeline_variables(ROOT), stack_variables()


def image_variables(dockerfile: str) -> set[str]:
    """The variables the image sets (its paths): compose leaves them to the image."""
    names: set[str] = set()
    for instruction in re.findall(r"^ENV\s+((?:.*\\\n)*.*)$", dockerfile, re.MULTILINE):
        names |= set(re.findall(r"(?:^|\s)([A-Z_][A-Z0-9_]*)=", instruction))
    return names


def synced_compose(text: str, dockerfile: str) -> str:
    """docker-compose.yml with each generated ``environment:`` list written.

    A list holds every variable of its kind by name, less the ones its service sets itself (or
    reads from a ``NAME_FILE``), the image's own and the ones the stack provides.
    """
    sys.path.insert(0, str(ROOT))
    from data_imports.variables import STACK_PROVIDED  # noqa: PLC0415

    pipeline, stack = _variables()
    kinds = {"pipeline-variables": pipeline, "stack-variables": stack}
    lines = text.splitlines(keepends=True)
    own = _set_by_service(lines)
    out: list[str] = []
    service, skipping = "", False
    for line in lines:
        found = re.match(r"^  ([a-z][a-z0-9-]*):\s*$", line)
        service = found.group(1) if found else service
        marker = re.search(r"<!-- ([a-z-]+):(start|end) -->", line)
        if marker and marker.group(1) in kinds and marker.group(2) == "end":
            skipping = False
        if skipping:
            continue
        out.append(line)
        if marker and marker.group(1) in kinds and marker.group(2) == "start":
            skipping = True
            indent = line[: len(line) - len(line.lstrip())]
            left_out = own.get(service, set()) | image_variables(dockerfile) | STACK_PROVIDED
            out += [
                f"{indent}- {v.name}\n" for v in kinds[marker.group(1)] if v.name not in left_out
            ]
    return "".join(out)


def _set_by_service(lines: list[str]) -> dict[str, set[str]]:
    """Per service, the variables its ``environment:`` sets outside the generated lists."""
    own: dict[str, set[str]] = {}
    service, generated = "", False
    for line in lines:
        found = re.match(r"^  ([a-z][a-z0-9-]*):\s*$", line)
        service = found.group(1) if found else service
        marker = re.search(r"<!-- ([a-z-]+):(start|end) -->", line)
        if marker and marker.group(1) in COMPOSE_LISTS:
            generated = marker.group(2) == "start"
            continue
        entry = re.match(r"^\s+- ([A-Z_][A-Z0-9_]*)(=|$)", line) or re.match(
            r"^      ([A-Z_][A-Z0-9_]*):", line
        )
        if entry and not generated:
            name = entry.group(1)
            own.setdefault(service, set()).update({name, name.removesuffix("_FILE")})
    return own


def variables_json() -> str:
    """deploy/variables.json: every variable, its shape and whether it is a secret."""
    pipeline, stack = _variables()
    entries = [
        {"name": v.name, "secret": v.secret, "shape": shape}
        for shape, variables in (("pipeline", pipeline), ("stack", stack))
        for v in variables
    ]
    return json.dumps(entries, indent=2) + "\n"


def production_table() -> str:
    """The README's table of what to set for production."""
    sys.path.insert(0, str(ROOT))
    from data_imports.variables import STACK_PROVIDED  # noqa: PLC0415

    pipeline, stack = _variables()
    rows = ["| variable | set as | shapes | meaning |", "|---|---|---|---|"]
    for shape, variables in (("`pipeline`, `stack`", pipeline), ("`stack`", stack)):
        for v in variables:
            where = "secret" if v.secret else "variable"
            shapes = "`pipeline`" if v.name in STACK_PROVIDED else shape
            text = v.description.replace("|", "\\|").replace("\n", " ")
            rows.append(f"| `{v.name}` | {where} | {shapes} | {text} |")
    return "\n".join(rows)


def meltano_settings(plugin: Plugin) -> list[dict[str, t.Any]]:
    """The ``settings:`` entries of a plugin in meltano.yml, from its schema."""
    entries = []
    for name, prop in plugin.load()["properties"].items():
        types = prop.get("type") or "string"
        main = next(x for x in ([types] if isinstance(types, str) else types) if x != "null")
        entry: dict[str, t.Any] = {"name": name}
        if "enum" in prop:
            entry["kind"] = "options"
            entry["options"] = [
                {"label": str(v), "value": v} for v in prop["enum"] if v is not None
            ]
        else:
            entry["kind"] = FORMAT_KINDS.get(prop.get("format", ""), KINDS[main])
        if prop.get("secret"):
            entry["sensitive"] = True
        description = prop.get("description", "")
        entry["description"] = (
            FoldedScalarString(description) if len(description) > 80 else description  # noqa: PLR2004
        )
        entries.append(entry)
    return entries


def synced_meltano_yml(text: str) -> str:
    """meltano.yml with every plugin's settings list written from its schema."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 90
    yaml.indent(mapping=2, sequence=2, offset=0)
    project = yaml.load(text)
    for plugin in PLUGINS:
        entry = next(p for p in project["plugins"][plugin.kind] if p["name"] == plugin.name)
        entry["settings"] = meltano_settings(plugin)
    out = io.StringIO()
    yaml.dump(project, out)
    return out.getvalue()


def wanted_texts() -> dict[Path, str]:
    """Every generated file as the plugins, ``meltano.yml`` and the Dockerfile make it now."""
    wanted: dict[Path, str] = {}
    for plugin in PLUGINS:
        readme = ROOT / plugin.folder / "README.md"
        wanted[readme] = with_table(readme.read_text(), readme_table(plugin))
    tap_readme = ROOT / PLUGINS[0].folder / "README.md"
    wanted[tap_readme] = with_table(wanted[tap_readme], streams_table(), STREAMS)
    wanted[tap_readme] = with_table(wanted[tap_readme], sets_table(), SETS)
    readme = ROOT / "README.md"
    wanted[readme] = with_table(readme.read_text(), runner_table(), RUNNER)
    wanted[readme] = with_table(wanted[readme], production_table(), PRODUCTION)
    wanted[readme] = with_table(wanted[readme], measurements_table(), MEASUREMENTS)
    wanted[readme] = with_table(wanted[readme], schedules_table(), SCHEDULES)
    wanted[readme] = with_table(wanted[readme], cron_block(), CRON)
    quickstart = ROOT / "QUICKSTART.md"
    wanted[quickstart] = with_table(quickstart.read_text(), cron_block(), CRON)
    compose = ROOT / "docker-compose.yml"
    wanted[compose] = synced_compose(compose.read_text(), (ROOT / "Dockerfile").read_text())
    wanted[ROOT / "deploy" / "variables.json"] = variables_json()
    meltano_yml = ROOT / "meltano.yml"
    wanted[meltano_yml] = synced_meltano_yml(meltano_yml.read_text())
    return wanted


def main(argv: list[str] | None = None) -> int:
    """Write, or with ``--check`` compare, the generated parts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on a change")
    args = parser.parse_args(argv)
    # some parts are made from meltano.yml's settings, which the last part writes: a second
    # pass writes them from the new meltano.yml, and a third finds nothing to write
    for _ in range(3):
        wanted = wanted_texts()
        stale = [p for p, text in wanted.items() if not p.exists() or p.read_text() != text]
        if args.check:
            for path in stale:
                print(f"{path.relative_to(ROOT)} differs from its sources: run {__file__}")
            return 1 if stale else 0
        if not stale:
            return 0
        for path in stale:
            path.write_text(wanted[path])
            print(f"wrote {path.relative_to(ROOT)}")
    print("the generated parts do not settle: each pass writes them differently")
    return 1


if __name__ == "__main__":
    sys.exit(main())
