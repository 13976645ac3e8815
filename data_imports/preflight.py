"""The compose stack's start-up check, run once before InfluxDB, Grafana and the pipeline start.

``python -m data_imports.preflight --alert-rules DIR --alerting DIR --influxdb-init DIR``
(the image's ``preflight`` command):

1. refuses a stack variable left empty or at a placeholder (a value starting ``change-me``),
   naming it, one line each, without showing its value;
2. writes Grafana's alerting provisioning into ``--alerting`` (a volume Grafana mounts): the
   committed alert rules, and a contact point with the notification policy that routes the GB gas
   alerts to it when ``GRAFANA_ALERT_EMAIL`` or ``GRAFANA_ALERT_WEBHOOK_URL`` is set. Grafana's
   provisioning files have no condition (every file found is applied, and a contact point with an
   empty address fails Grafana's start), so the file exists only when a destination is set. It
   names the variables (``${GRAFANA_ALERT_EMAIL}``), which Grafana fills in from its own
   environment: no address or URL is written to the volume;
3. puts InfluxDB's init script (``influxdb/create-tokens.sh``, which creates the pipeline's write
   token and Grafana's read token on InfluxDB's first start) into ``--influxdb-init``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import typing as t
import urllib.parse
from pathlib import Path

import yaml

from data_imports.project import ROOT
from data_imports.variables import stack_variables

if t.TYPE_CHECKING:
    from collections.abc import Mapping

PLACEHOLDER = "change-me"
REQUIRED = ("INFLUXDB_ADMIN_PASSWORD", "GRAFANA_ADMIN_PASSWORD")
"""Stack secrets that must be set; the other secrets may be left unset."""
MIN_PASSWORD = {"INFLUXDB_ADMIN_PASSWORD": 8}
CONTACT_POINT = "GB gas alerts"
CONTACT_FILE = "contact-point.yaml"
FOLDER = "GB gas"
INIT_SCRIPT = ROOT / "influxdb" / "create-tokens.sh"


def problems(env: Mapping[str, str]) -> list[str]:
    """One sentence per stack variable that must not start the stack as it is."""
    found = []
    for variable in stack_variables():
        value = env.get(variable.name, "")
        if variable.secret and value.strip().lower().startswith(PLACEHOLDER):
            found.append(
                f"{variable.name} is still a placeholder ({PLACEHOLDER}...): set a value of your "
                "own in .env (or the GitHub environment)"
            )
        elif variable.name in REQUIRED and not value.strip():
            found.append(f"{variable.name} is empty: set it in .env (or the GitHub environment)")
        elif len(value) < MIN_PASSWORD.get(variable.name, 0):
            found.append(
                f"{variable.name} is shorter than {MIN_PASSWORD[variable.name]} characters, "
                "which InfluxDB refuses: set a longer one"
            )
    return found + _alert_problems(env)


def _alert_problems(env: Mapping[str, str]) -> list[str]:
    found = []
    email, url = env.get("GRAFANA_ALERT_EMAIL", ""), env.get("GRAFANA_ALERT_WEBHOOK_URL", "")
    if email and not all("@" in a for a in email.split(";") if a.strip()):
        found.append(
            f"GRAFANA_ALERT_EMAIL={email!r} is not a list of e-mail addresses separated by ';'"
        )
    if email and not env.get("GF_SMTP_HOST"):
        found.append(
            "GRAFANA_ALERT_EMAIL is set but GF_SMTP_HOST is not: Grafana cannot send e-mail; set "
            "GF_SMTP_HOST (host:port), GF_SMTP_USER, GF_SMTP_PASSWORD and GF_SMTP_FROM_ADDRESS"
        )
    parts = urllib.parse.urlsplit(url)
    if url and (parts.scheme not in {"http", "https"} or not parts.netloc):
        found.append(
            "GRAFANA_ALERT_WEBHOOK_URL is not a URL with its scheme, e.g. https://hooks.example/x"
        )
    return found


def contact_provisioning(env: Mapping[str, str]) -> dict[str, t.Any] | None:
    """Grafana's contact point and notification policy for the set destinations, else None."""
    receivers = []
    if env.get("GRAFANA_ALERT_EMAIL"):
        receivers.append(
            {
                "uid": "gb-gas-email",
                "type": "email",
                "settings": {"addresses": "${GRAFANA_ALERT_EMAIL}", "singleEmail": True},
            }
        )
    if env.get("GRAFANA_ALERT_WEBHOOK_URL"):
        receivers.append(
            {
                "uid": "gb-gas-webhook",
                "type": "webhook",
                "settings": {"url": "${GRAFANA_ALERT_WEBHOOK_URL}", "httpMethod": "POST"},
            }
        )
    if not receivers:
        return None
    route = {
        "receiver": CONTACT_POINT,
        "object_matchers": [["grafana_folder", "=", FOLDER]],
        "group_by": ["grafana_folder", "alertname"],
    }
    return {
        "apiVersion": 1,
        "contactPoints": [{"orgId": 1, "name": CONTACT_POINT, "receivers": receivers}],
        "policies": [
            {
                "orgId": 1,
                "receiver": CONTACT_POINT,
                "group_by": ["grafana_folder", "alertname"],
                "routes": [route],
            }
        ],
    }


def write_alerting(rules: Path, target: Path, env: Mapping[str, str]) -> str:
    """Fill ``target`` with the alert rules and, when a destination is set, the contact point.

    Returns:
        What was provisioned, in words.
    """
    target.mkdir(parents=True, exist_ok=True)
    for old in target.iterdir():
        if old.is_file():
            old.unlink()
    for rule_file in sorted(rules.glob("*.yaml")):
        shutil.copyfile(rule_file, target / rule_file.name)
        (target / rule_file.name).chmod(0o644)
    contact = contact_provisioning(env)
    if contact is None:
        return "no contact point (set GRAFANA_ALERT_EMAIL or GRAFANA_ALERT_WEBHOOK_URL for one)"
    path = target / CONTACT_FILE
    path.write_text(
        "# Written by the preflight service (data_imports/preflight.py) at each start.\n"
        + yaml.safe_dump(contact, sort_keys=False)
    )
    path.chmod(0o644)
    kinds = " and ".join(r["type"] for r in contact["contactPoints"][0]["receivers"])
    return f"contact point {CONTACT_POINT!r} ({kinds}) for the alerts of the folder {FOLDER!r}"


def install_init_script(target: Path, script: Path = INIT_SCRIPT) -> None:
    """Put InfluxDB's init script where the influxdb service runs it on its first start."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(script, target / script.name)
    (target / script.name).chmod(0o755)


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Check, then write; exit 2 naming every variable to set."""
    parser = argparse.ArgumentParser(prog="preflight", description=__doc__.splitlines()[0])
    parser.add_argument("--alert-rules", type=Path, required=True, help="committed alert rules")
    parser.add_argument("--alerting", type=Path, required=True, help="Grafana's alerting folder")
    parser.add_argument("--influxdb-init", type=Path, required=True, help="InfluxDB's init folder")
    args = parser.parse_args(argv)
    env = os.environ if env is None else env
    found = problems(env)
    for problem in found:
        print(f"preflight: {problem}", file=sys.stderr)  # noqa: T201
    if found:
        print("preflight: the stack does not start until these are set", file=sys.stderr)  # noqa: T201
        return 2
    provisioned = write_alerting(args.alert_rules, args.alerting, env)
    install_init_script(args.influxdb_init)
    print(f"preflight: settings checked; Grafana alerting: {provisioned}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
