"""The deploy path: deploy/ship.py (the workflow's step) and deploy/host.py (run-on-host.sh).

Both run for real against stand-ins of ``ssh``, ``ssh-keyscan`` and ``docker`` that record their
calls (testkit/fake_docker.py): the stand-in ``ssh`` runs the remote command in a folder that
plays the host's home, so the files the host ends up with are read back here.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from testkit.fake_docker import FakeHost, install
from testkit.processes import REPO_ROOT

SHIP = REPO_ROOT / "deploy" / "ship.py"
RUN_ON_HOST = REPO_ROOT / "deploy" / "run-on-host.sh"
REPO = "ghcr.io/example/data-imports"
TOKEN = "influx-token-7f3a9c"
GHCR_TOKEN = "ghs_registry-token-2b8d"
ADMIN_PASSWORD = "admin-pw $HOME 'q' \"d\" \\b"


def digest(n: int) -> str:
    """An image reference by digest."""
    return f"{REPO}@sha256:{n:064x}"


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    """The stand-ins and a fake host's home."""
    return install(tmp_path)


def plain(**extra: str) -> dict[str, str]:
    """The production environment's variables."""
    return {
        "INFLUXDB_URL": "https://influx.example:8086",
        "INFLUXDB_ORG": "nationalgas",
        "INFLUXDB_BUCKET": "gas",
        "TAP_NATIONALGAS_START_DATE": "2026-01-01T00:00:00Z",
        "EC2_PORT": "2222",
        **extra,
    }


def secrets(host: FakeHost, **extra: str) -> dict[str, str]:
    """The production environment's secrets."""
    blob = base64.b64decode(host.key_line.split()[1])
    fingerprint = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return {
        "EC2_HOST": "ec2.example",
        "EC2_USER": "deploy",
        "EC2_SSH_KEY": "-----BEGIN OPENSSH PRIVATE KEY-----\nkey\n-----END",
        "EC2_HOST_FINGERPRINT": f"SHA256:{fingerprint}",
        "INFLUXDB_TOKEN": TOKEN,
        "github_token": GHCR_TOKEN,
        **extra,
    }


def ship(
    host: FakeHost,
    image: str,
    variables: dict[str, str],
    secret: dict[str, str],
) -> subprocess.CompletedProcess[str]:
    """Run the workflow's deploy step."""
    env = {
        **host.env(),
        "DEPLOY_IMAGE": image,
        "DEPLOY_VARS": json.dumps(variables),
        "DEPLOY_SECRETS": json.dumps(secret),
        "REGISTRY_USER": "octocat",
        "REGISTRY_TOKEN": GHCR_TOKEN,
        "DATA_IMPORTS_HEALTH_WAIT": "3",
        "DATA_IMPORTS_HEALTH_POLL": "0.05",
    }
    return subprocess.run(
        [sys.executable, str(SHIP)], env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


def home(host: FakeHost) -> Path:
    """The deploy's folder on the fake host."""
    return host.home / "data-imports"


def docker_calls(host: FakeHost, command: str) -> list[list[str]]:
    """The command lines of one docker command, ``--config DIR`` dropped."""
    calls = []
    for row in host.recorded("docker"):
        argv = list(row["argv"])  # type: ignore[call-overload]
        if argv[0] == "--config":
            argv = argv[2:]
        if argv[0] == command:
            calls.append(argv)
    return calls


def test_pipeline_deploy_writes_the_environment_file_whole_and_starts_the_image_by_digest(
    host: FakeHost,
) -> None:
    done = ship(host, digest(1), plain(), secrets(host))
    assert done.returncode == 0, done.stdout + done.stderr
    env_file = home(host) / "prod.env"
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    assert env_file.read_text().splitlines() == [
        "INFLUXDB_BUCKET=gas",
        "INFLUXDB_ORG=nationalgas",
        f"INFLUXDB_TOKEN={TOKEN}",
        "INFLUXDB_URL=https://influx.example:8086",
        "TAP_NATIONALGAS_START_DATE=2026-01-01T00:00:00Z",
    ]
    (run,) = docker_calls(host, "run")
    assert run[-2:] == [digest(1), "schedule"]
    for option in (
        ["--log-opt", "max-size=10m"],
        ["--log-opt", "max-file=5"],
        ["--cap-drop", "ALL"],
        ["--security-opt", "no-new-privileges:true"],
        ["--env-file", str(env_file)],
    ):
        assert any(run[i : i + 2] == option for i in range(len(run))), option
    assert "--read-only" in run
    assert (home(host) / "current-image").read_text().strip() == digest(1)
    assert "healthy, running" in done.stdout


def test_no_secret_is_on_any_command_line_and_the_registry_login_is_removed(
    host: FakeHost,
) -> None:
    done = ship(host, digest(1), plain(), secrets(host))
    assert done.returncode == 0, done.stdout + done.stderr
    for row in host.recorded():
        line = " ".join(row["argv"])  # type: ignore[arg-type]
        assert TOKEN not in line
        assert GHCR_TOKEN not in line
    logins = [r for r in host.recorded("docker") if "login" in r["argv"]]  # type: ignore[operator]
    assert [r["stdin"] for r in logins] == [GHCR_TOKEN]
    config = Path(str(logins[0]["argv"][1]))  # type: ignore[index]
    assert not config.exists(), "the temporary registry login outlived the deploy"
    ssh_args = host.recorded("ssh")[0]["argv"]
    assert "StrictHostKeyChecking=yes" in ssh_args  # type: ignore[operator]
    assert ssh_args[ssh_args.index("-p") + 1] == "2222"  # type: ignore[union-attr]


def test_the_registry_login_is_removed_when_the_pull_fails(host: FakeHost) -> None:
    host.set_state(missing=[digest(1)])
    done = ship(host, digest(1), plain(), secrets(host))
    assert done.returncode == 1
    assert "manifest unknown" in done.stdout + done.stderr
    login = next(r for r in host.recorded("docker") if "login" in r["argv"])  # type: ignore[operator]
    assert not Path(str(login["argv"][1])).exists()  # type: ignore[index]
    assert docker_calls(host, "run") == []


def test_images_older_than_the_previous_one_are_removed_after_a_healthy_deploy(
    host: FakeHost,
) -> None:
    for n in (1, 2, 3):
        done = ship(host, digest(n), plain(), secrets(host))
        assert done.returncode == 0, done.stdout + done.stderr
    assert docker_calls(host, "image")[-1] == ["image", "prune", "--force"]
    assert ["image", "rm", digest(1)] in docker_calls(host, "image")
    assert host.docker_state()["images"] == [digest(2), digest(3)]
    assert (home(host) / "previous-image").read_text().strip() == digest(2)


def test_a_deploy_that_turns_unhealthy_rolls_back_by_itself(host: FakeHost) -> None:
    for n in (1, 2):
        assert ship(host, digest(n), plain(), secrets(host)).returncode == 0
    host.set_state(unhealthy=[digest(3)])
    done = ship(host, digest(3), plain(INFLUXDB_BUCKET="gas-new"), secrets(host))
    assert done.returncode == 1
    assert f"::error title=deploy::{digest(3)} is unhealthy: rolling back to {digest(2)}" in (
        done.stdout
    )
    assert "rolled back to" in done.stdout
    assert host.docker_state()["containers"]["data-imports"]["image"] == digest(2)  # type: ignore[index]
    assert (home(host) / "current-image").read_text().strip() == digest(2)
    assert (home(host) / "previous-image").read_text().strip() == digest(1)
    # the image rolled back to runs with the settings it had
    assert "INFLUXDB_BUCKET=gas\n" in (home(host) / "prod.env").read_text()
    assert digest(3) in host.docker_state()["images"], "the failed image is kept to look at"
    # the manual rollback stays, goes to the image before, and leaves the failed one alone
    back = subprocess.run(
        [str(home(host) / "run-on-host.sh"), "--rollback"],
        env={**host.env(), "HOME": str(host.home), "DATA_IMPORTS_HEALTH_POLL": "0.05"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert back.returncode == 0, back.stdout + back.stderr
    assert host.docker_state()["containers"]["data-imports"]["image"] == digest(1)  # type: ignore[index]
    assert (home(host) / "previous-image").read_text().strip() == digest(2)


def test_a_manual_rollback_to_an_unhealthy_image_goes_back_by_itself(host: FakeHost) -> None:
    for n in (1, 2):
        assert ship(host, digest(n), plain(), secrets(host)).returncode == 0
    host.set_state(unhealthy=[digest(1)])
    back = subprocess.run(
        [str(home(host) / "run-on-host.sh"), "--rollback"],
        env={**host.env(), "HOME": str(host.home), "DATA_IMPORTS_HEALTH_POLL": "0.05"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert back.returncode == 1
    assert f"{digest(1)} is unhealthy: rolling back to {digest(2)}" in back.stdout
    assert host.docker_state()["containers"]["data-imports"]["image"] == digest(2)  # type: ignore[index]


def test_a_shape_change_forgets_the_other_shapes_images(host: FakeHost) -> None:
    for n in (1, 2):
        assert ship(host, digest(n), plain(), secrets(host)).returncode == 0
    done = ship(host, digest(3), plain(DEPLOY_SHAPE="stack"), secrets(host))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "changing shape from pipeline to stack" in done.stdout
    assert "data-imports" not in host.docker_state()["containers"]
    assert (home(host) / "previous-image").read_text().strip() == ""
    assert (home(host) / "shape").read_text().strip() == "stack"


def test_an_unhealthy_first_deploy_fails_with_nothing_to_go_back_to(host: FakeHost) -> None:
    host.set_state(unhealthy=[digest(1)])
    done = ship(host, digest(1), plain(), secrets(host))
    assert done.returncode == 1
    assert "no earlier image to go back to" in done.stdout
    assert "log lines of data-imports" in done.stderr


def test_stack_deploy_runs_compose_from_the_image_with_a_compose_env_file(
    host: FakeHost, tmp_path: Path
) -> None:
    variables = plain(DEPLOY_SHAPE="stack")
    secret = secrets(host, INFLUXDB_ADMIN_PASSWORD=ADMIN_PASSWORD)
    done = ship(host, digest(1), variables, secret)
    assert done.returncode == 0, done.stdout + done.stderr
    stack = home(host) / "stack"
    assert (stack / "docker-compose.yml").read_text() == (
        REPO_ROOT / "docker-compose.yml"
    ).read_text()
    assert (stack / "grafana").is_dir()
    ups = [r for r in host.recorded("docker") if "up" in r["argv"]]  # type: ignore[operator]
    assert [r["image_env"] for r in ups] == [digest(1)]
    assert "--no-build" in ups[0]["argv"]  # type: ignore[operator]
    assert oct((stack / ".env").stat().st_mode & 0o777) == "0o600"
    # compose reads every value back exactly, quotes, dollars and backslashes included
    names = sorted({*variables, *secret} & {"INFLUXDB_ADMIN_PASSWORD", "INFLUXDB_TOKEN"})
    probe = tmp_path / "probe.yml"
    probe.write_text(yaml.safe_dump({"services": {"p": {"image": "x", "environment": names}}}))
    config = subprocess.run(
        [str(Path(sys.executable).parent / "docker-compose"), "--project-directory", str(stack),
         "--file", str(probe), "config", "--format", "json"],
        capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"]},
    )  # fmt: skip
    # `config` prints a literal dollar as `$$`, the way a compose file writes it
    seen = {
        name: value.replace("$$", "$")
        for name, value in json.loads(config.stdout)["services"]["p"]["environment"].items()
    }
    assert seen == {"INFLUXDB_ADMIN_PASSWORD": ADMIN_PASSWORD, "INFLUXDB_TOKEN": TOKEN}


def test_a_stack_that_does_not_start_rolls_back_with_its_logs_shown(host: FakeHost) -> None:
    variables = plain(DEPLOY_SHAPE="stack")
    assert ship(host, digest(1), variables, secrets(host)).returncode == 0
    host.set_state(preflight_fails=[digest(2)])
    done = ship(host, digest(2), variables, secrets(host))
    assert done.returncode == 1
    assert f"{digest(2)} is not started: docker compose failed" in done.stdout
    assert f"rolling back to {digest(1)}" in done.stdout
    assert "log lines of the stack" in done.stderr
    ups = [r["image_env"] for r in host.recorded("docker") if "up" in r["argv"]]  # type: ignore[operator]
    assert ups == [digest(1), digest(2), digest(1)]
    assert host.docker_state()["containers"]["stack-pipeline"]["image"] == digest(1)  # type: ignore[index]


def test_stack_settings_stay_off_the_pipeline_shape(host: FakeHost) -> None:
    done = ship(host, digest(1), plain(), secrets(host, GRAFANA_ADMIN_PASSWORD=ADMIN_PASSWORD))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "GRAFANA_ADMIN_PASSWORD" not in (home(host) / "prod.env").read_text()


@pytest.mark.parametrize(
    ("variables", "secret", "message"),
    [
        ({}, {"EC2_HOST_FINGERPRINT": ""}, "EC2_HOST_FINGERPRINT is not set"),
        ({}, {"EC2_HOST_FINGERPRINT": "SHA256:AAAA"}, "no key of ec2.example:2222 has"),
        ({}, {"INFLUXDB_TOKEN": f"{TOKEN}\n"}, "INFLUXDB_TOKEN: the value holds a line break"),
        ({"INFLUXDB_ORG": "a\rb"}, {}, "INFLUXDB_ORG: the value holds a line break"),
        ({"INFLUXDB_TOKEN": "plain"}, {"INFLUXDB_TOKEN": ""}, "INFLUXDB_TOKEN: set both"),
        ({"TAP_NATIONALGAS_STARTDATE": "x"}, {}, "TAP_NATIONALGAS_STARTDATE: not a setting"),
        ({"DEPLOY_SHAPE": "cluster"}, {}, "DEPLOY_SHAPE is 'cluster'"),
        ({}, {"EC2_SSH_KEY": ""}, "set the secrets EC2_SSH_KEY"),
    ],
)
def test_bad_settings_stop_the_deploy_before_it_connects(
    host: FakeHost, variables: dict[str, str], secret: dict[str, str], message: str
) -> None:
    done = ship(host, digest(1), plain(**variables), secrets(host, **secret))
    assert done.returncode == 1
    assert "::error title=deploy::" in done.stdout
    assert message in done.stdout
    assert TOKEN not in done.stdout + done.stderr
    assert docker_calls(host, "pull") == []


def test_a_secret_set_as_a_plain_variable_is_refused(host: FakeHost) -> None:
    variables = plain(INFLUXDB_TOKEN=TOKEN)
    secret = secrets(host)
    del secret["INFLUXDB_TOKEN"]
    done = ship(host, digest(1), variables, secret)
    assert done.returncode == 1
    assert "INFLUXDB_TOKEN: a secret, set as a plain variable; make it a secret" in done.stdout
    assert host.recorded("ssh") == []


def test_an_image_by_tag_is_refused(host: FakeHost) -> None:
    done = ship(host, f"{REPO}:latest", plain(), secrets(host))
    assert done.returncode == 1
    assert "is not an image by digest" in done.stdout


def test_the_workflow_deploys_main_only_by_digest_through_ship_py() -> None:
    workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    assert "github.ref == 'refs/heads/main'" in build["if"]
    assert "github.event.workflow_run.head_branch == 'main'" in build["if"]
    assert build["outputs"]["image"].endswith("@${{ steps.build.outputs.digest }}")
    assert deploy["environment"] == "production"
    (step,) = [s for s in deploy["steps"] if "run" in s]
    assert step["run"] == "python3 deploy/ship.py"
    assert step["env"]["DEPLOY_VARS"] == "${{ toJSON(vars) }}"
    assert step["env"]["DEPLOY_SECRETS"] == "${{ toJSON(secrets) }}"
    text = (REPO_ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    assert "appleboy/ssh-action" not in text, "its envs become export lines of the remote command"


def test_host_py_runs_on_the_oldest_python3_of_a_supported_host() -> None:
    """host.py runs on the host's python3: Amazon Linux 2023 ships 3.9."""
    source = (REPO_ROOT / "deploy" / "host.py").read_text()
    ast.parse(source, feature_version=(3, 9))
    assert "from __future__ import annotations" in source
    assert os.access(RUN_ON_HOST, os.X_OK)
