"""Start data-imports on a Docker host, check it turns healthy, roll back by itself when not.

Runs on the host with its own ``python3`` (3.9 or newer, standard library only) and Docker.
``deploy/run-on-host.sh`` is its entry point; the deploy workflow (``deploy/ship.py``) copies both
to ``~/data-imports`` and runs ``host.py deploy`` there with the deploy's data on stdin, so no
secret is ever on a command line.

Two shapes, started, health-checked and rolled back the same way:

* ``pipeline``: the image alone, as the container ``data-imports`` in schedule mode, with the
  environment file ``prod.env`` and the volume ``data-imports-state``; InfluxDB runs elsewhere.
* ``stack``: ``docker compose`` with the compose file and ``grafana/`` taken from the image
  itself (the same files as on a laptop), the environment file ``stack/.env``: InfluxDB,
  Grafana, the pipeline, the daily backup.

Commands::

    host.py deploy          the deploy's JSON on stdin: image, shape, env, registry login
    host.py IMAGE           start IMAGE (already on the host) in the shape deployed last
    host.py --rollback      start the image that ran before the last deploy

Files in ``$DATA_IMPORTS_HOME`` (default ``~/data-imports``), owner only: ``shape``,
``current-image``, ``previous-image``, ``images`` (every image a deploy pulled, oldest first),
``prod.env`` or ``stack/.env``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from collections.abc import Callable

SHAPES = ("pipeline", "stack")
LOG_OPTIONS = ("--log-driver", "json-file", "--log-opt", "max-size=10m", "--log-opt", "max-file=5")
HARDENING = (
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges:true",
    "--read-only",
    "--tmpfs",
    "/tmp",  # noqa: S108 (the container's own tmpfs)
)
STOP_SECONDS = "150"
COMPOSE_PROJECT = "data-imports"
BUNDLE = ("docker-compose.yml", "grafana")


class DeployError(Exception):
    """A deploy step failed; the message says which and what to do."""


def say(message: str) -> None:
    """Print one line of the deploy's log."""
    print(f"run-on-host: {message}", flush=True)


def annotate(message: str) -> None:
    """Print an error the workflow's log shows as an annotation, and as a plain line."""
    print(f"::error title=deploy::{message}", flush=True)


def docker(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    """Run ``docker ARGS`` and return its output; a failure raises DeployError with its stderr."""
    done = subprocess.run(
        ["docker", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        detail = done.stderr.strip() or done.stdout.strip()
        raise DeployError(f"docker {args[0]} failed (exit {done.returncode}): {detail}")
    return done.stdout.strip()


def refuse_line_breaks(env: dict[str, str]) -> None:
    """Refuse names or values holding a CR or LF, naming the variable, never the value."""
    bad = sorted(name for name, value in env.items() if {"\r", "\n"} & set(name + value))
    if bad:
        raise DeployError(
            f"{', '.join(bad)}: a value holds a line break (CR or LF), which would add a line "
            "to the environment file; remove it"
        )
    odd = sorted(name for name in env if not name.replace("_", "a").isalnum() or name[0].isdigit())
    if odd:
        raise DeployError(f"not a variable name: {', '.join(odd)}")


def docker_env_file(env: dict[str, str]) -> str:
    """``docker run --env-file`` text: NAME=value, the value taken literally to the line's end."""
    return "".join(f"{name}={value}\n" for name, value in sorted(env.items()))


def compose_env_file(env: dict[str, str]) -> str:
    """Compose's ``.env`` text: double-quoted values with backslash, quote and dollar escaped."""

    def quoted(value: str) -> str:
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
        return f'"{escaped}"'

    return "".join(f"{name}={quoted(value)}\n" for name, value in sorted(env.items()))


def write_private(path: Path, text: str) -> None:
    """Write ``path`` whole with mode 0600, replacing it atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(temp).chmod(0o600)
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class Host:
    """The deploy's files and settings on this host."""

    def __init__(self) -> None:
        """Read the host's settings from the environment."""
        self.home = Path(os.environ.get("DATA_IMPORTS_HOME") or Path.home() / "data-imports")
        self.container = os.environ.get("DATA_IMPORTS_CONTAINER", "data-imports")
        self.volume = os.environ.get("DATA_IMPORTS_VOLUME", "data-imports-state")
        self.network = os.environ.get("DATA_IMPORTS_NETWORK", "")
        self.wait_seconds = int(os.environ.get("DATA_IMPORTS_HEALTH_WAIT", "300"))
        self.poll_seconds = float(os.environ.get("DATA_IMPORTS_HEALTH_POLL", "3"))

    def read(self, name: str) -> str:
        """The content of one of the deploy's small files, or ''."""
        path = self.home / name
        return path.read_text(encoding="utf-8").strip() if path.exists() else ""

    def write(self, name: str, text: str) -> None:
        """Write one of the deploy's small files."""
        write_private(self.home / name, f"{text}\n" if text else "")

    @property
    def shape(self) -> str:
        """The shape deployed last (``pipeline`` when none is recorded)."""
        return self.read("shape") or "pipeline"

    @property
    def stack_dir(self) -> Path:
        """The compose project folder of the ``stack`` shape."""
        return self.home / "stack"

    @property
    def env_path(self) -> Path:
        """The environment file of the current shape."""
        return self.stack_dir / ".env" if self.shape == "stack" else self.home / "prod.env"

    def write_env(self, shape: str, env: dict[str, str]) -> None:
        """Write the shape's environment file whole, owner-only; keep the one it replaces."""
        refuse_line_breaks(env)
        self.write("shape", shape)
        if self.env_path.exists():
            shutil.copy2(self.env_path, self.env_path.with_name(f"{self.env_path.name}.previous"))
        if shape == "stack":
            write_private(self.stack_dir / ".env", compose_env_file(env))
        else:
            write_private(self.home / "prod.env", docker_env_file(env))
        say(f"wrote the environment file whole ({len(env)} variables, mode 0600)")

    def restore_env(self) -> None:
        """Put back the environment file the last deploy replaced."""
        kept = self.env_path.with_name(f"{self.env_path.name}.previous")
        if kept.exists():
            kept.replace(self.env_path)
            say("put back the environment file the running image had")

    def history(self) -> list[str]:
        """Every image a deploy pulled, oldest first."""
        return [line for line in self.read("images").splitlines() if line]

    def remember(self, image: str) -> None:
        """Add ``image`` to the history (once, newest last)."""
        images = [known for known in self.history() if known != image]
        self.write("images", "\n".join([*images, image]))


def pull(image: str, registry: dict[str, str]) -> None:
    """Pull ``image`` with a login that lives in a temporary config, removed whatever happens."""
    config = tempfile.mkdtemp(prefix="data-imports-docker-")
    try:
        if registry.get("token"):
            docker(
                "--config",
                config,
                "login",
                registry["server"],
                "--username",
                registry["user"],
                "--password-stdin",
                stdin=registry["token"],
            )
        docker("--config", config, "pull", "--quiet", image)
        say(f"pulled {image}")
    finally:
        if registry.get("token"):
            subprocess.run(
                ["docker", "--config", config, "logout", registry["server"]],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(config, ignore_errors=True)


class Pipeline:
    """The ``pipeline`` shape: one container from the image."""

    def __init__(self, host: Host) -> None:
        """Bind to the host's settings."""
        self.host = host

    def running_image(self) -> str:
        """The image the container was started from, or ''."""
        try:
            return docker("inspect", "--format", "{{.Config.Image}}", self.host.container)
        except DeployError:
            return ""

    def stop(self) -> None:
        """Stop and remove the container, letting a run in flight finish or stop cleanly."""
        if self.running_image():
            say(f"stopping {self.host.container}; a run in flight may take up to {STOP_SECONDS} s")
            docker("stop", "--time", STOP_SECONDS, self.host.container)
            docker("rm", self.host.container)

    def start(self, image: str) -> None:
        """Start ``image`` in schedule mode."""
        self.stop()
        network = ("--network", self.host.network) if self.host.network else ()
        docker(
            "run",
            "--detach",
            "--name",
            self.host.container,
            "--restart",
            "unless-stopped",
            "--env-file",
            str(self.host.home / "prod.env"),
            "--volume",
            f"{self.host.volume}:/data",
            "--stop-timeout",
            STOP_SECONDS,
            "--health-interval",
            "15s",
            *LOG_OPTIONS,
            *HARDENING,
            *network,
            image,
            "schedule",
        )

    def container_id(self) -> str:
        """The container to health-check."""
        return self.host.container


class Stack:
    """The ``stack`` shape: docker compose with the files the image carries."""

    def __init__(self, host: Host) -> None:
        """Bind to the host's settings."""
        self.host = host

    def compose(self, image: str, *args: str) -> str:
        """Run ``docker compose`` on the stack's folder with ``DATA_IMPORTS_IMAGE=image``."""
        env = {**os.environ, "DATA_IMPORTS_IMAGE": image}
        folder = str(self.host.stack_dir)
        return docker(
            "compose", "--project-directory", folder, "--project-name", COMPOSE_PROJECT, *args,
            env=env,
        )  # fmt: skip

    def running_image(self) -> str:
        """The image of the stack's pipeline service, or ''."""
        container = self.container_id()
        if not container:
            return ""
        return docker("inspect", "--format", "{{.Config.Image}}", container)

    def unpack(self, image: str) -> None:
        """Copy the compose file and ``grafana/`` out of ``image`` into the stack's folder."""
        created = docker("create", image)
        try:
            for name in BUNDLE:
                target = self.host.stack_dir / name
                if target.is_dir():
                    shutil.rmtree(target)
                docker("cp", f"{created}:/project/{name}", str(target))
        finally:
            docker("rm", created)

    def start(self, image: str) -> None:
        """Bring the stack up with ``image`` as the pipeline's image."""
        self.unpack(image)
        self.compose(image, "up", "--detach", "--no-build", "--remove-orphans")

    def stop(self) -> None:
        """Stop and remove the stack's containers; its volumes stay."""
        self.compose("", "down")

    def container_id(self) -> str:
        """The pipeline service's container, or ''."""
        try:
            return self.compose("", "ps", "--all", "--quiet", "pipeline").splitlines()[0]
        except (DeployError, IndexError):
            return ""


def runner(host: Host) -> Pipeline | Stack:
    """The start/stop logic of the host's current shape."""
    return Stack(host) if host.shape == "stack" else Pipeline(host)


def health(container: str) -> str:
    """The container's health, or its state when it has no health check."""
    if not container:
        return "missing"
    try:
        return docker(
            "inspect",
            "--format",
            "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}",
            container,
        )
    except DeployError:
        return "missing"


def wait_healthy(host: Host, container: Callable[[], str]) -> str:
    """Wait until the container is healthy; return '' then, else what it became."""
    deadline = time.monotonic() + host.wait_seconds
    status = "missing"
    while time.monotonic() < deadline:
        status = health(container())
        if status == "healthy":
            return ""
        if status in ("unhealthy", "exited", "dead"):
            return status
        time.sleep(host.poll_seconds)
    return f"not healthy within {host.wait_seconds} s (last: {status})"


def show_logs(shape: Pipeline | Stack) -> None:
    """Print the last lines of the shape's containers, for the workflow's log."""
    if isinstance(shape, Stack):
        args = ["compose", "--project-directory", str(shape.host.stack_dir)]
        args += ["--project-name", COMPOSE_PROJECT, "logs", "--no-color", "--tail", "50"]
    else:
        args = ["logs", "--tail", "50", shape.container_id()]
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    sys.stderr.write(done.stdout + done.stderr)


def start_checked(host: Host, image: str) -> str:
    """Start ``image`` in the host's shape; return '' when healthy, else why not."""
    shape = runner(host)
    current = shape.running_image()
    if current and current != image:
        host.write("previous-image", current)
    say(f"starting {image} ({host.shape})")
    try:
        shape.start(image)
    except DeployError as error:
        show_logs(shape)
        return f"not started: {error}"
    problem = wait_healthy(host, shape.container_id)
    if problem:
        show_logs(shape)
        return problem
    host.write("current-image", image)
    say(f"healthy, running {image}")
    return ""


def prune(host: Host) -> None:
    """Remove the images deploys pulled, except the running one and the one before it."""
    keep = {host.read("current-image"), host.read("previous-image")}
    for image in host.history():
        if image in keep:
            continue
        try:
            docker("image", "rm", image)
            say(f"removed the old image {image}")
        except DeployError as error:
            say(f"kept {image}: {error}")
    host.write("images", "\n".join(image for image in host.history() if image in keep))
    docker("image", "prune", "--force")


def deploy(host: Host, image: str, *, new_env: bool = False) -> None:
    """Start ``image``; when it does not turn healthy, start the image that ran before again.

    With ``new_env`` (the deploy has just written the environment file), the rollback puts the
    file that image ran with back too.
    """
    previous = host.read("current-image") or runner(host).running_image()
    before = host.read("previous-image")
    problem = start_checked(host, image)
    if not problem:
        prune(host)
        return
    if not previous or previous == image:
        raise DeployError(f"{image} is {problem}, and there is no earlier image to go back to")
    annotate(f"{image} is {problem}: rolling back to {previous}")
    if new_env:
        host.restore_env()
    back = start_checked(host, previous)
    host.write("previous-image", before)
    if back:
        raise DeployError(f"the rollback to {previous} is {back} too; look at the logs above")
    raise DeployError(f"{image} was {problem}; rolled back to {previous}, which is healthy")


def deploy_from_stdin(host: Host) -> None:
    """The workflow's deploy: read the JSON on stdin, write the env file, pull, start."""
    try:
        data = json.loads(sys.stdin.read())
        image, shape, env = data["image"], data["shape"], data["env"]
        registry = data.get("registry") or {}
    except (ValueError, KeyError, TypeError) as error:
        raise DeployError(f"the deploy's data on stdin is not valid: {error}") from None
    if shape not in SHAPES:
        raise DeployError(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")
    pull(image, registry)
    host.remember(image)
    if host.shape != shape and host.read("current-image"):
        say(f"changing shape from {host.shape} to {shape}: stopping the {host.shape}; there is no")
        say("earlier image of the new shape to roll back to")
        runner(host).stop()
        host.write("current-image", "")
        host.write("previous-image", "")
    host.write_env(shape, env)
    deploy(host, image, new_env=True)


def fail(message: str) -> NoReturn:
    """Print the failure for the workflow's log and exit 1."""
    annotate(message)
    print(f"run-on-host: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def main(argv: list[str]) -> None:
    """Run one command of the deploy."""
    if len(argv) != 1:
        fail("usage: run-on-host.sh deploy | IMAGE | --rollback")
    host = Host()
    try:
        if argv[0] == "deploy":
            deploy_from_stdin(host)
            return
        if not host.env_path.exists():
            fail(f"no environment file {host.env_path} (the deploy workflow writes it)")
        if argv[0] == "--rollback":
            image = host.read("previous-image")
            if not image:
                fail(f"no previous image recorded in {host.home / 'previous-image'}")
            say(f"rolling back to {image}")
            deploy(host, image)
            return
        image = argv[0]
        try:
            docker("image", "inspect", image)
        except DeployError:
            fail(f"image {image} is not on this host (docker pull it first)")
        deploy(host, image)
    except DeployError as error:
        fail(str(error))


if __name__ == "__main__":
    main(sys.argv[1:])
