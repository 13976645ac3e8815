"""Every variable an operator sets, each listed once here, secrets flagged.

Two lists: :func:`pipeline_variables`, what the pipeline's container reads (every plugin setting,
the ``${VARIABLE}`` names ``meltano.yml`` fills in, the runner's variables, the Meltano variables
an operator sets), and :func:`stack_variables`, what only the docker compose stack reads (the
admin logins of InfluxDB and Grafana, where alerts go, how long backups are kept).

``scripts/sync_from_plugins.py`` writes from them the pipeline's ``environment:`` list in
``docker-compose.yml``, ``deploy/variables.json`` (what the deploy writes to the host) and the
README's table of settings for production.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass

from data_imports.options import OPTIONS
from data_imports.project import ROOT, Plugin, Project

if t.TYPE_CHECKING:
    from pathlib import Path

_REFERENCE = re.compile(r"\$\{(\w+)\}")
MELTANO_OWN = frozenset({"MELTANO_PROJECT_ROOT"})
"""Variables Meltano sets itself when it fills in meltano.yml."""
STACK_PROVIDED = frozenset(
    {"INFLUXDB_URL", "INFLUXDB_TOKEN", "TARGET_INFLUXDB_URL", "TARGET_INFLUXDB_TOKEN"}
)
"""Pipeline variables the compose stack sets itself: its own InfluxDB, the token it created."""


@dataclass(frozen=True)
class Variable:
    """One variable: its name, what it does, whether its value is a secret."""

    name: str
    description: str
    secret: bool = False


MELTANO = (
    Variable(
        "MELTANO_ENVIRONMENT",
        "Environment of `meltano.yml`: `prod` (the image's and compose's default) or `dev` "
        "(the default of `run-etl.sh` on a machine).",
    ),
    Variable(
        "MELTANO_STATE_BACKEND_URI",
        "Where bookmarks live: unset, Meltano's system database on the data volume; "
        "e.g. `s3://bucket/prefix` (state that outlives the host).",
    ),
    Variable(
        "MELTANO_STATE_BACKEND_LOCK_TIMEOUT_SECONDS",
        "Seconds a state backend's lock on a state ID is held valid (Meltano's default 10).",
    ),
    Variable(
        "MELTANO_STATE_BACKEND_LOCK_RETRY_SECONDS",
        "Seconds between attempts to take a locked state ID (Meltano's default 1).",
    ),
    Variable(
        "MELTANO_STATE_BACKEND_S3_AWS_ACCESS_KEY_ID",
        "S3 state backend: access key ID; unset with an EC2 instance role.",
        secret=True,
    ),
    Variable(
        "MELTANO_STATE_BACKEND_S3_AWS_SECRET_ACCESS_KEY",
        "S3 state backend: secret access key; unset with an EC2 instance role.",
        secret=True,
    ),
    Variable(
        "MELTANO_STATE_BACKEND_S3_ENDPOINT_URL",
        "S3 state backend: the URL of an S3-compatible service other than AWS.",
    ),
    Variable("AWS_REGION", "AWS region of the S3 state backend's bucket."),
    Variable("AWS_DEFAULT_REGION", "AWS region, as older AWS clients read it."),
)

STACK = (
    Variable(
        "INFLUXDB_ADMIN_USER",
        "InfluxDB's admin user, created on the stack's first start (default `admin`).",
    ),
    Variable(
        "INFLUXDB_ADMIN_PASSWORD",
        "That user's password, at least 8 characters; the stack refuses to start on an empty "
        "one or one starting `change-me`.",
        secret=True,
    ),
    Variable("GRAFANA_ADMIN_USER", "Grafana's admin user (default `admin`)."),
    Variable(
        "GRAFANA_ADMIN_PASSWORD",
        "That user's password; the stack refuses to start on an empty one or one starting "
        "`change-me`.",
        secret=True,
    ),
    Variable(
        "GRAFANA_ALERT_EMAIL",
        "Addresses (separated by `;`) the GB gas alerts are e-mailed to; needs the `GF_SMTP_*` "
        "settings. Unset (with no webhook): no contact point is provisioned.",
    ),
    Variable(
        "GRAFANA_ALERT_WEBHOOK_URL",
        "URL the GB gas alerts are posted to (Grafana's webhook contact point).",
        secret=True,
    ),
    Variable("GF_SMTP_HOST", "Grafana's SMTP server as `host:port`; set, e-mail is on."),
    Variable("GF_SMTP_USER", "Grafana's SMTP login."),
    Variable("GF_SMTP_PASSWORD", "Grafana's SMTP password.", secret=True),
    Variable("GF_SMTP_FROM_ADDRESS", "Sender address of Grafana's e-mails."),
    Variable(
        "DATA_IMPORTS_BACKUP_KEEP_DAYS",
        "Days of daily backups (`backup` service) kept on the `backups` volume.",
    ),
)


def plugin_variables(project: Project) -> list[Variable]:
    """Each setting of the project's own plugins (not the ones inheriting), as its variable."""
    found = []
    for plugin in _base_plugins(project):
        properties = plugin.schema.get("properties", {})
        for name in plugin.declared:
            prop = properties.get(name, {})
            found.append(
                Variable(
                    plugin.env_prefix + name.upper(),
                    f"{plugin.name} `{name}`: {prop.get('description', '')}".strip(),
                    secret=bool(prop.get("secret") or prop.get("writeOnly")),
                )
            )
    return found


def referenced_variables(project: Project) -> list[Variable]:
    """The ``${VARIABLE}`` names of meltano.yml's plugin ``config``, described by their setting."""
    found: dict[str, Variable] = {}
    for plugin in _base_plugins(project):
        properties = plugin.schema.get("properties", {})
        for setting, value in (plugin.entry.get("config") or {}).items():
            for name in _REFERENCE.findall(value) if isinstance(value, str) else []:
                if name in MELTANO_OWN or name in found:
                    continue
                prop = properties.get(setting, {})
                found[name] = Variable(
                    name,
                    f"{plugin.name} `{setting}` (through `meltano.yml`): "
                    f"{prop.get('description', '')}".strip(),
                    secret=bool(prop.get("secret") or prop.get("writeOnly")),
                )
    return list(found.values())


BACKUP_ONLY = frozenset({"DATA_IMPORTS_BACKUP_KEEP_DAYS", "INFLUXDB_BACKUP_TOKEN"})
"""Options of the backup alone: the stack's backup service gets them, the pipeline does not."""


def runner_variables() -> list[Variable]:
    """The runner's and the scheduler's variables (``data_imports.options``)."""
    return [Variable(o.name, o.description) for o in OPTIONS if o.name not in BACKUP_ONLY]


def pipeline_variables(root: Path = ROOT) -> list[Variable]:
    """Every variable the pipeline's container reads, each once."""
    project = Project.load(root)
    found: dict[str, Variable] = {}
    for variable in (
        *referenced_variables(project),
        *plugin_variables(project),
        *runner_variables(),
        *MELTANO,
    ):
        found.setdefault(variable.name, variable)
    return list(found.values())


def stack_variables() -> list[Variable]:
    """The variables only the compose stack reads (InfluxDB, Grafana, the backup service)."""
    return list(STACK)


def _base_plugins(project: Project) -> list[Plugin]:
    plugins = project.data.get("plugins") or {}
    return [
        project.plugin(str(entry["name"]))
        for kind in ("extractors", "loaders")
        for entry in plugins.get(kind) or []
        if "inherit_from" not in entry
    ]
