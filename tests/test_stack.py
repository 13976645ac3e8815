"""The docker compose stack as files and scripts: prod by default, each service its own settings
only, least-privilege tokens from InfluxDB's init script, placeholders refused, bounded logs,
hardened containers, and the image's entry point reading a token from a file.

Compose files are read through ``docker-compose config`` (the Compose binary of the dev tools),
which resolves ``.env`` as ``docker compose up`` does; no container engine is needed.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
import yaml
from dotenv import dotenv_values

from data_imports import preflight
from data_imports.project import Project
from data_imports.variables import STACK_PROVIDED, pipeline_variables, stack_variables
from testkit import fake_influx_cli
from testkit.processes import REPO_ROOT

COMPOSE = Path(sys.executable).parent / "docker-compose"
SERVICES = {"preflight", "influxdb", "pipeline", "backup", "dashboards", "grafana"}
TOKEN_VOLUMES = {"pipeline-token": "pipeline", "grafana-token": "grafana", "backup-token": "backup"}
TOKEN_USERS = {"grafana-token": {"dashboards"}}
"""Other services that read a token volume: the dashboards service reads with Grafana's token,
as Grafana's user."""
IMAGE_PATHS = {
    "DATA_IMPORTS_LOG_DIR",
    "DATA_IMPORTS_LOCK_DIR",
    "DATA_IMPORTS_HEALTH_DIR",
    "TARGET_INFLUXDB_OUTPUT_PATH",
}


def compose_config(tmp_path: Path, env: dict[str, str]) -> dict[str, t.Any]:
    """The resolved compose project for a ``.env`` holding ``env``."""
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    result = subprocess.run(
        [
            str(COMPOSE),
            "--project-directory",
            str(REPO_ROOT),
            "--env-file",
            str(env_file),
            "--file",
            str(REPO_ROOT / "docker-compose.yml"),
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        # compose takes a variable of its own environment over the file's: give it none
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")},
    )
    assert result.returncode == 0, result.stderr
    return t.cast("dict[str, t.Any]", json.loads(result.stdout))


def example_env() -> dict[str, str]:
    """``.env.example`` as compose reads it, passwords filled in."""
    env = {k: v or "" for k, v in dotenv_values(REPO_ROOT / ".env.example").items()}
    return env | {"INFLUXDB_ADMIN_PASSWORD": "pw-0123456789", "GRAFANA_ADMIN_PASSWORD": "pw-abc"}


# --- prod by default ------------------------------------------------------------------------


def test_compose_and_the_image_run_prod_and_run_etl_runs_dev_unless_asked(tmp_path: Path):
    example = example_env()
    assert "MELTANO_ENVIRONMENT" not in example, ".env.example must not choose an environment"
    services = compose_config(tmp_path, example)["services"]
    assert services["pipeline"]["environment"]["MELTANO_ENVIRONMENT"] == "prod"
    assert services["backup"]["environment"]["MELTANO_ENVIRONMENT"] == "prod"
    assert "MELTANO_ENVIRONMENT=prod" in (REPO_ROOT / "Dockerfile").read_text()
    # run-etl.sh on a machine: .env as setup.sh copies it runs meltano.yml's default, dev
    assert Project.load().environment(example) == "dev"
    asked = compose_config(tmp_path, example | {"MELTANO_ENVIRONMENT": "dev"})["services"]
    assert asked["pipeline"]["environment"]["MELTANO_ENVIRONMENT"] == "dev"


# --- each service its own settings ----------------------------------------------------------


def every_variable() -> dict[str, str]:
    """Every pipeline and stack variable, each with a value of its own."""
    names = [v.name for v in (*pipeline_variables(), *stack_variables())]
    return {name: f"value-of-{name.lower()}" for name in names} | {
        "INFLUXDB_ADMIN_PASSWORD": "admin-password-1",
        "GRAFANA_ADMIN_PASSWORD": "grafana-password-1",
    }


def test_the_pipeline_gets_each_of_its_variables_and_nothing_of_the_stack(tmp_path: Path):
    services = compose_config(tmp_path, every_variable())["services"]
    pipeline = services["pipeline"]
    assert "env_file" not in pipeline
    env = pipeline["environment"]
    stack_names = {v.name for v in stack_variables()}
    assert not stack_names & set(env), "no admin password, Grafana or backup setting"
    assert "INFLUXDB_TOKEN" not in env
    assert "TARGET_INFLUXDB_TOKEN" not in env
    assert "INFLUXDB_BACKUP_TOKEN" not in env, "the backup's operator token is the backup's"
    assert env["INFLUXDB_TOKEN_FILE"] == "/run/influxdb/token"
    assert env["INFLUXDB_URL"] == "http://influxdb:8086"
    for variable in pipeline_variables():
        if variable.name in STACK_PROVIDED | IMAGE_PATHS or variable.name == "MELTANO_ENVIRONMENT":
            continue
        assert env.get(variable.name) == f"value-of-{variable.name.lower()}", variable.name
    for name in IMAGE_PATHS:
        assert name not in env, f"{name} is the image's own path"
    # the backup reads the state as the pipeline does, with its own token only
    backup = services["backup"]["environment"]
    assert backup["INFLUXDB_BACKUP_TOKEN_FILE"] == "/run/influxdb/token"
    assert backup["MELTANO_STATE_BACKEND_URI"] == "value-of-meltano_state_backend_uri"
    assert "INFLUXDB_TOKEN" not in backup
    assert "INFLUXDB_ADMIN_PASSWORD" not in backup


def test_a_variable_missing_from_env_is_left_unset(tmp_path: Path):
    env = compose_config(tmp_path, example_env())["services"]["pipeline"]["environment"]
    assert env["TAP_NATIONALGAS_START_DATE"] == "2026-01-01T00:00:00Z"
    assert env["TAP_NATIONALGAS_SITE_IDS"] is None  # not in .env: unset in the container


def test_every_variable_compose_reads_is_one_the_deploy_writes():
    listed = {e["name"] for e in json.loads((REPO_ROOT / "deploy/variables.json").read_text())}
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    read = set(re.findall(r"\$\{(\w+)", text)) - {"DATA_IMPORTS_IMAGE"}
    for service in compose["services"].values():
        environment = service.get("environment") or []
        if isinstance(environment, list):  # bare names: passed on from .env
            read |= {item for item in environment if "=" not in item}
    assert read <= listed, read - listed
    shapes = {e["shape"] for e in json.loads((REPO_ROOT / "deploy/variables.json").read_text())}
    assert shapes == {"pipeline", "stack"}


# --- tokens, logs, hardening ----------------------------------------------------------------


def mounts(service: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    """Volume name -> its mount, of one service."""
    return {m["source"]: m for m in service.get("volumes", []) if m["type"] == "volume"}


def test_each_token_volume_is_shared_by_influxdb_and_its_consumer_only_read_only_there(
    tmp_path: Path,
):
    services = compose_config(tmp_path, example_env())["services"]
    for volume, consumer in TOKEN_VOLUMES.items():
        users = {name for name, s in services.items() if volume in mounts(s)}
        others = TOKEN_USERS.get(volume, set())
        assert users == {"influxdb", consumer, *others}, volume
        for user in (consumer, *others):
            assert mounts(services[user])[volume].get("read_only") is True, (volume, user)
        assert mounts(services["influxdb"])[volume]["target"] == f"/tokens/{consumer}"
    assert services["dashboards"]["user"] == "472:0", "Grafana's user, the token file's owner"
    grafana_source = (REPO_ROOT / "grafana/provisioning/datasources/influxdb.yaml").read_text()
    assert "Token $__file{/run/influxdb/token}" in grafana_source
    assert mounts(services["grafana"])["grafana-token"]["target"] == "/run/influxdb"
    init = mounts(services["influxdb"])["influxdb-init"]
    assert init["target"] == "/docker-entrypoint-initdb.d"
    assert init.get("read_only") is True


def test_every_service_has_bounded_logs_and_drops_its_privileges(tmp_path: Path):
    services = compose_config(tmp_path, example_env())["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        logging = service["logging"]
        assert logging["driver"] == "json-file", name
        assert set(logging["options"]) == {"max-size", "max-file"}, name
        assert service["cap_drop"] == ["ALL"], name
        assert service["security_opt"] == ["no-new-privileges:true"], name
        assert set(service.get("cap_add", [])) <= {
            "CHOWN",
            "DAC_OVERRIDE",
            "FOWNER",
            "SETGID",
            "SETUID",
        }
        if name != "influxdb":
            assert not service.get("cap_add"), name
    for name in ("preflight", "pipeline", "backup", "dashboards"):
        assert services[name]["read_only"] is True, name
    for name in ("influxdb", "pipeline", "backup", "dashboards", "grafana"):
        assert services[name]["depends_on"]["preflight"]["condition"] == (
            "service_completed_successfully"
        )


def test_the_stack_runs_the_image_it_is_given(tmp_path: Path):
    digest = "ghcr.io/owner/repo@sha256:" + "a" * 64
    services = compose_config(tmp_path, example_env() | {"DATA_IMPORTS_IMAGE": digest})["services"]
    for name in ("preflight", "pipeline", "backup"):
        assert services[name]["image"] == digest
    assert services["backup"]["command"] == ["backup-daily"]
    assert mounts(services["backup"])["pipeline-data"].get("read_only") is not True
    assert mounts(services["backup"])["backups"]["target"] == "/backups"


# --- InfluxDB's init script, with a stand-in influx -----------------------------------------


def run_create_tokens(
    tmp_path: Path, **extra: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """influxdb/create-tokens.sh as the influxdb image runs it, with the stand-in influx."""
    record = fake_influx_cli.install(tmp_path / "bin")
    root = os.geteuid() == 0
    env = {
        "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
        "DOCKER_INFLUXDB_INIT_ORG": "nationalgas",
        "DOCKER_INFLUXDB_INIT_BUCKET": "nationalgas",
        "DOCKER_INFLUXDB_INIT_BUCKET_ID": "5e1f0c0ffee0b0b0",
        "DOCKER_INFLUXDB_INIT_USERNAME": "admin",
        "DATA_IMPORTS_TOKENS_DIR": str(tmp_path / "tokens"),
        "DATA_IMPORTS_PIPELINE_UID": "10001" if root else str(os.geteuid()),
        "DATA_IMPORTS_GRAFANA_UID": "472" if root else str(os.geteuid()),
        **extra,
    }
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "influxdb" / "create-tokens.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result, record


def test_init_script_asks_a_write_only_and_a_read_only_token_and_hands_each_to_its_user(
    tmp_path: Path,
):
    result, record = run_create_tokens(tmp_path)
    assert result.returncode == 0, result.stderr
    calls = fake_influx_cli.calls(record)
    common = ["auth", "create", "--json", "--org", "nationalgas", "--user", "admin"]
    assert calls == [
        [*common, "--description", "data-imports pipeline", "--write-bucket", "5e1f0c0ffee0b0b0"],
        [*common, "--description", "data-imports grafana", "--read-bucket", "5e1f0c0ffee0b0b0"],
        [*common, "--description", "data-imports backup", "--operator"],
    ]
    answers = fake_influx_cli.answers(record)
    bucket = f"orgs/{fake_influx_cli.ORG_ID}/buckets/5e1f0c0ffee0b0b0"
    assert answers[0]["permissions"] == [f"write:{bucket}"]
    assert answers[1]["permissions"] == [f"read:{bucket}"]
    root = os.geteuid() == 0
    owners = (("pipeline", 10001), ("grafana", 472), ("backup", 10001))
    for (name, owner), answer in zip(owners, answers, strict=True):
        token = tmp_path / "tokens" / name / "token"
        assert token.read_text() == answer["token"], "the token only, no newline"
        assert stat.S_IMODE(token.stat().st_mode) == 0o400, name
        assert token.stat().st_uid == (owner if root else os.geteuid()), name
        assert answer["token"] not in result.stdout + result.stderr, "a token is never printed"
    assert sorted(p.name for p in (tmp_path / "tokens").rglob("*") if p.is_file()) == ["token"] * 3


def test_init_script_fails_and_writes_nothing_when_influx_refuses(tmp_path: Path):
    result, _ = run_create_tokens(tmp_path, FAIL="1")
    assert result.returncode != 0
    assert "401 Unauthorized" in result.stderr
    assert (
        not list((tmp_path / "tokens").rglob("token*")) if (tmp_path / "tokens").exists() else True
    )


def test_the_stand_in_prints_the_permissions_asked():
    created = fake_influx_cli.auth_create(["auth", "create", "--write-bucket", "b1", "--json"])
    assert created["permissions"] == [f"write:orgs/{fake_influx_cli.ORG_ID}/buckets/b1"]
    read = fake_influx_cli.auth_create(["auth", "create", "--read-bucket", "b1"])
    assert read["permissions"] == [f"read:orgs/{fake_influx_cli.ORG_ID}/buckets/b1"]


# --- the image's entry point ----------------------------------------------------------------


def entrypoint(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """docker-entrypoint.sh on this machine, its folders under ``tmp_path``."""
    base = {
        "PATH": os.environ["PATH"],
        "DATA_IMPORTS_LOG_DIR": str(tmp_path / "logs"),
        "DATA_IMPORTS_LOCK_DIR": str(tmp_path / "locks"),
        "DATA_IMPORTS_HEALTH_DIR": str(tmp_path / "health"),
    }
    return subprocess.run(
        ["bash", str(REPO_ROOT / "docker-entrypoint.sh"), *args],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_entrypoint_reads_the_token_from_a_file(tmp_path: Path):
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    shown = entrypoint(tmp_path, "printenv", "INFLUXDB_TOKEN", INFLUXDB_TOKEN_FILE=str(token))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == "s3cret-token\n"
    # the REQUIRED check takes the file in place of the variable
    missing = entrypoint(tmp_path, "run", INFLUXDB_TOKEN_FILE=str(token))
    assert missing.returncode == 2
    assert "missing required variables: INFLUXDB_URL INFLUXDB_ORG INFLUXDB_BUCKET" in (
        missing.stderr
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "no such file readable here"), ("", "the file is empty"), ("\n", "the file is empty")],
)
def test_entrypoint_names_a_missing_or_empty_token_file(
    tmp_path: Path, content: str | None, expected: str
):
    token = tmp_path / "token"
    if content is not None:
        token.write_text(content)
    result = entrypoint(tmp_path, "printenv", INFLUXDB_TOKEN_FILE=str(token))
    assert result.returncode == 2
    assert result.stderr == f"docker-entrypoint: INFLUXDB_TOKEN_FILE={token}: {expected}\n"


def test_entrypoint_refuses_a_token_and_a_token_file_at_once(tmp_path: Path):
    token = tmp_path / "token"
    token.write_text("a")
    result = entrypoint(tmp_path, "true", INFLUXDB_TOKEN="b", INFLUXDB_TOKEN_FILE=str(token))  # noqa: S106
    assert result.returncode == 2
    assert "set INFLUXDB_TOKEN or INFLUXDB_TOKEN_FILE, not both" in result.stderr


# --- preflight ------------------------------------------------------------------------------


def stack_env(**changes: str) -> dict[str, str]:
    """Stack variables that pass the preflight, with changes."""
    return {
        "INFLUXDB_ADMIN_USER": "admin",
        "INFLUXDB_ADMIN_PASSWORD": "a-long-password",
        "GRAFANA_ADMIN_PASSWORD": "another-password",
    } | changes


def run_preflight(tmp_path: Path, env: dict[str, str]) -> tuple[int, Path]:
    """The preflight's main into folders under ``tmp_path``."""
    alerting = tmp_path / "alerting"
    code = preflight.main(
        [
            "--alert-rules",
            str(REPO_ROOT / "grafana/provisioning/alerting"),
            "--alerting",
            str(alerting),
            "--influxdb-init",
            str(tmp_path / "init"),
        ],
        env,
    )
    return code, alerting


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"INFLUXDB_ADMIN_PASSWORD": "change-me-local-dev-password"},
            "INFLUXDB_ADMIN_PASSWORD is still a placeholder (change-me...)",
        ),
        ({"GRAFANA_ADMIN_PASSWORD": ""}, "GRAFANA_ADMIN_PASSWORD is empty"),
        ({"INFLUXDB_ADMIN_PASSWORD": "pw12345"}, "INFLUXDB_ADMIN_PASSWORD is shorter than 8"),
        ({"GF_SMTP_PASSWORD": "Change-Me-smtp"}, "GF_SMTP_PASSWORD is still a placeholder"),
        (
            {"GRAFANA_ALERT_EMAIL": "ops@example.com"},
            "GRAFANA_ALERT_EMAIL is set but GF_SMTP_HOST is not",
        ),
        (
            {"GRAFANA_ALERT_WEBHOOK_URL": "hooks.example/x"},
            "GRAFANA_ALERT_WEBHOOK_URL is not a URL",
        ),
    ],
)
def test_preflight_refuses_a_placeholder_or_empty_secret_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, str], expected: str
):
    code, alerting = run_preflight(tmp_path, stack_env(**changes))
    err = capsys.readouterr().err
    assert code == 2
    assert f"preflight: {expected}" in err
    for value in changes.values():
        if value and "@" not in value and "/" not in value:
            assert value not in err, "a secret's value is never shown"
    assert not alerting.exists(), "nothing is written before the check passes"


def test_preflight_without_a_destination_provisions_the_rules_and_no_contact_point(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    code, alerting = run_preflight(tmp_path, stack_env())
    assert code == 0
    rules = {p.name for p in (REPO_ROOT / "grafana/provisioning/alerting").glob("*.yaml")}
    assert {p.name for p in alerting.iterdir()} == rules
    assert "no contact point" in capsys.readouterr().out
    script = tmp_path / "init" / "create-tokens.sh"
    assert script.read_bytes() == (REPO_ROOT / "influxdb/create-tokens.sh").read_bytes()
    assert stat.S_IMODE(script.stat().st_mode) == 0o755


def test_preflight_removes_a_contact_point_once_its_destination_is_unset(tmp_path: Path):
    with_email = stack_env(GRAFANA_ALERT_EMAIL="ops@example.com", GF_SMTP_HOST="smtp:587")
    assert run_preflight(tmp_path, with_email)[0] == 0
    assert (tmp_path / "alerting" / preflight.CONTACT_FILE).exists()
    assert run_preflight(tmp_path, stack_env())[0] == 0
    assert not (tmp_path / "alerting" / preflight.CONTACT_FILE).exists()
