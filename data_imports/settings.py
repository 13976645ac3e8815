"""Plugin settings checked before anything runs, each against its kind in the plugin's schema.

A value comes, as Meltano takes it, from the plugin's variable (``TAP_NATIONALGAS_MAX_RETRIES``,
also from ``.env``), else from meltano.yml (an environment's ``config``, then the plugin's, with
``${VARIABLE}`` filled in), along the plugins a plugin inherits from, else from the schema's
default. Each is read as the schema's type says (a comma list where a list is expected, ISO 8601
dates only, URLs with a scheme) and checked against its bounds; no text of it may hold a line
break (in an HTTP header it would fail the request, with the value in the error). The result is
every plugin's config, typed, the variables to hand to Meltano in a form it reads as meant (a
comma list as JSON), and one sentence per value that is wrong: the variable, the value (never a
secret's) and the form expected.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import typing as t
import urllib.parse
from dataclasses import dataclass, field

import jsonschema

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from data_imports.project import Plugin, Project

_VARIABLE = re.compile(r"\$\{(\w+)\}")
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


class BadValueError(ValueError):
    """A value that is not of the form its setting takes."""


@dataclass(frozen=True)
class Found:
    """A setting's value as found, and where."""

    value: object
    where: str
    """The variable that held it (directly or through meltano.yml), else ``meltano.yml``."""
    variable: str | None = None
    """The plugin variable that held it, which Meltano is handed again in canonical form."""
    owner: str = ""
    """The plugin whose variable or config held it (the plugin, or one it inherits from)."""


@dataclass
class Checked:
    """The outcome of a check."""

    config: dict[str, dict[str, t.Any]] = field(default_factory=dict)
    """Per plugin, every setting that has a value, typed."""
    environ: dict[str, str] = field(default_factory=dict)
    """Variables to hand to Meltano instead of what was set (a comma list as JSON)."""
    problems: list[str] = field(default_factory=list)


def check(
    project: Project, plugins: t.Iterable[Plugin], env: Mapping[str, str], now: dt.datetime
) -> Checked:
    """Read and check every declared setting of ``plugins``."""
    checked = Checked()
    environment = project.environment(env)
    for plugin in plugins:
        config = checked.config.setdefault(plugin.name, {})
        sources: dict[str, Found] = {}
        properties = plugin.schema.get("properties", {})
        for name, kind in plugin.declared.items():
            schema = properties.get(name, {})
            found = find(project, environment, plugin, name, env)
            if found is None:
                if "default" in schema:
                    config[name] = schema["default"]
                continue
            try:
                value = read(found.value, schema, kind, from_text=found.variable is not None)
            except BadValueError as exc:
                problem = _problem(found, schema, f"{found.owner} `{name}` {exc}")
                if problem not in checked.problems:
                    checked.problems.append(problem)
                continue
            config[name], sources[name] = value, found
            if found.variable and isinstance(found.value, str):
                text = canonical(value)
                if text != found.value:
                    checked.environ[found.variable] = text
        checked.problems += [
            p for p in _dates_in_order(config, sources, now) if p not in checked.problems
        ]
    return checked


def find(
    project: Project, environment: str | None, plugin: Plugin, name: str, env: Mapping[str, str]
) -> Found | None:
    """Where Meltano takes a setting's value from, along the plugin's lineage."""
    for member in plugin.lineage:
        variable = member.env_prefix + name.upper()
        if env.get(variable):
            return Found(env[variable], variable, variable, member.name)
        layers = (
            project.environment_config(environment, member),
            dict(member.entry.get("config") or {}),
        )
        for layer in layers:
            if name in layer:
                return _expanded(layer[name], env, project, member.name)
    return None


def _expanded(value: object, env: Mapping[str, str], project: Project, owner: str) -> Found | None:
    """A meltano.yml value with its ``${VARIABLE}``s filled in; None when that leaves nothing."""
    names = _VARIABLE.findall(value) if isinstance(value, str) else []
    if not names:
        return Found(value, "meltano.yml", owner=owner)
    known = {"MELTANO_PROJECT_ROOT": str(project.root), **env}
    text = _VARIABLE.sub(lambda m: known.get(m.group(1), ""), t.cast("str", value))
    return Found(text, ", ".join(names), owner=owner) if text else None


def read(value: object, schema: Mapping[str, t.Any], kind: str, *, from_text: bool) -> t.Any:  # noqa: ANN401
    """``value`` as the schema's type, checked against the schema.

    Raises:
        BadValueError: naming the form the setting takes.
    """
    types = _types(schema)
    try:
        typed = _typed(value, types, schema, whole=from_text and kind == "integer")
        if isinstance(typed, str):
            _check_format(typed, schema.get("format"))
        bare = {k: v for k, v in schema.items() if k not in {"format", "description", "default"}}
        jsonschema.validate(typed, bare)
    except (ValueError, jsonschema.ValidationError):
        raise BadValueError(f"takes {form(schema, kind, from_text=from_text)}") from None
    if _has_line_break(typed):
        raise BadValueError(LINE_BREAK)
    if _is_secret(schema) and isinstance(typed, str) and typed.startswith(PLACEHOLDER):
        raise BadValueError(f"is still a placeholder ({PLACEHOLDER}...): set the real secret")
    return typed


LINE_BREAK = "holds a line break (CR or LF), which no setting takes: set it again without one"
PLACEHOLDER = "change-me"


def _is_secret(schema: Mapping[str, t.Any]) -> bool:
    """True for a setting the plugin declares secret."""
    return bool(schema.get("secret") or schema.get("writeOnly"))


def _has_line_break(value: object) -> bool:
    """True when a text of the value (in a list or an object too) holds a CR or LF."""
    if isinstance(value, str):
        return "\r" in value or "\n" in value
    if isinstance(value, dict):
        return any(_has_line_break(k) or _has_line_break(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_line_break(item) for item in value)
    return False


def _types(schema: Mapping[str, t.Any]) -> list[str]:
    declared = schema.get("type", "string")
    types = [declared] if isinstance(declared, str) else list(declared)
    return [kind for kind in types if kind != "null"] or ["string"]


def _typed(  # noqa: PLR0911 (one return per type)
    value: object, types: list[str], schema: Mapping[str, t.Any], *, whole: bool
) -> object:
    """A text value turned into the schema's type; other values as they are."""
    if isinstance(value, dt.date):
        value = value.isoformat()
    if not isinstance(value, str) or "string" in types:
        return value
    text = value.strip()
    if "integer" in types or ("number" in types and whole):
        if not _INTEGER.fullmatch(text):
            raise ValueError(text)
        return int(text)
    if "number" in types:
        if not _NUMBER.fullmatch(text):
            raise ValueError(text)
        number = float(text)
        return int(number) if number.is_integer() else number
    if "boolean" in types:
        return _boolean(text)
    if "array" in types:
        items = json.loads(text) if text.startswith("[") else _comma_list(text)
        item_schema = schema.get("items") or {}
        return [_typed(item, _types(item_schema), item_schema, whole=True) for item in items]
    if "object" in types:
        return json.loads(text)
    return value


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(text)


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _check_format(text: str, fmt: str | None) -> None:
    if fmt == "date-time":
        parse_instant(text)
    elif fmt == "date":
        dt.date.fromisoformat(text.strip())
    elif fmt == "uri":
        parts = urllib.parse.urlsplit(text.strip())
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError(text)


def parse_instant(text: str) -> dt.datetime:
    """An ISO 8601 date or date-time as an aware instant (a time without offset is UTC).

    Raises:
        ValueError: for anything else (``01/02/2026``, ``2026-13-01``).
    """
    moment = dt.datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def form(schema: Mapping[str, t.Any], kind: str, *, from_text: bool) -> str:  # noqa: PLR0911
    """The form a setting takes, in words, with an example."""
    types, fmt = _types(schema), schema.get("format")
    bounds = _bounds(schema)
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    if "integer" in types:
        return f"a whole number{bounds}, e.g. {schema.get('default', 5)}"
    if "number" in types and from_text and kind == "integer":
        return (
            f"a whole number{bounds}, e.g. {schema.get('default', 5)} (Meltano reads this "
            "variable as an integer; a fraction can be set in meltano.yml)"
        )
    if "number" in types:
        return f"a number{bounds}, e.g. {schema.get('default', 5)}"
    if "boolean" in types:
        return "true or false"
    if "array" in types:
        if _types(schema.get("items") or {})[0] == "integer":
            return "a list: comma-separated (1, 2) or JSON ([1, 2])"
        return 'a list: comma-separated (A, B) or JSON (["A", "B"])'
    if "object" in types:
        return 'a JSON object, e.g. {"key": "value"}'
    return {
        "date-time": "an ISO 8601 date or date-time, e.g. 2026-01-31 or 2026-01-31T00:00:00Z",
        "date": "an ISO 8601 date, e.g. 2026-01-31",
        "uri": f"a URL with its scheme, e.g. {schema.get('default', 'http://localhost:8086')}",
    }.get(fmt or "", "text")


def _bounds(schema: Mapping[str, t.Any]) -> str:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" of {low} or more"
    return f" of {high} or less" if high is not None else ""


def canonical(value: object) -> str:
    """A typed value as Meltano reads it from a variable."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _problem(found: Found, schema: Mapping[str, t.Any], what: str) -> str:
    """``VARIABLE='value': what``; a secret's value is not shown."""
    shown = "(hidden)" if _is_secret(schema) else repr(found.value)
    if found.where == "meltano.yml":
        return f"meltano.yml value {shown}: {what}"
    return f"{found.where}={shown}: {what}"


def _dates_in_order(
    config: Mapping[str, t.Any], sources: Mapping[str, Found], now: dt.datetime
) -> list[str]:
    """A start date in the future reads nothing; an end date before it reads nothing either."""
    problems: list[str] = []
    start, end = config.get("start_date"), config.get("end_date")
    if "start_date" not in sources or not isinstance(start, str):
        return problems
    found, first = sources["start_date"], parse_instant(start)
    if first > now:
        problems.append(
            _problem(
                found,
                {},
                f"{found.owner} `start_date` is in the future (now {now:%Y-%m-%dT%H:%MZ}): "
                "there is nothing to read after it; set a date in the past",
            )
        )
    if isinstance(end, str) and dt.date.fromisoformat(end) < first.date():
        problems.append(
            _problem(found, {}, f"{found.owner} `start_date` is after `end_date` {end}")
        )
    return problems
