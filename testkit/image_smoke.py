"""Smoke test of the real image, on a Debian machine that cannot reach Docker Hub.

Starts Debian's Docker engine with no bridge network and without touching the host's firewall
or forwarding, builds a stand-in for the ``python`` base image with debootstrap and one for
``influxdb:2.7`` (the image's ``influx`` CLI comes from it; the stand-in holds a script at the
same path), builds the project's image from the unchanged Dockerfile, and runs it with
``--network host`` against the local fake National Gas API and a real InfluxDB engine on loopback:

0. the app user cannot write the code (``touch /project/meltano.yml`` fails) and ``influx`` is on
the PATH; 1. ``run`` loads points, in a read-only container with no capabilities and
``no-new-privileges``, and ``dashboards``, as Grafana's user, writes the dashboards with the
sites' names; 2. ``check`` passes with the token read from ``INFLUXDB_TOKEN_FILE``; 3. a
missing variable is named and any other command (``meltano state list``) runs as given;
4. ``schedule`` with a one-minute test schedule runs the job, reports healthy and stops
gracefully; 5. ``deploy/run-on-host.sh`` deploys the image, waits until it is healthy, and
``--rollback`` brings back the previous one.

Everything it starts is stopped and its images are removed. Needs root and the apt packages
``docker.io`` and ``debootstrap`` (``--install`` installs them).

Run from the repository root: ``.venv/bin/python -m testkit.image_smoke [--install]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from testkit import expected
from testkit.fake_nationalgas import FakeNationalGasProcess
from testkit.fixtures import FAKE_END_DATE, FAKE_NOW, FAKE_START_DATE
from testkit.influx import LocalInfluxDB
from testkit.nationalgas_data import GAS_QUALITY_SITES
from testkit.processes import REPO_ROOT, stop_process, wait_until

DOCKER = "/usr/bin/docker"  # Debian's client: BuildKit built in, no buildx plugin needed
IMAGE = "data-imports:smoke"
PREVIOUS = "data-imports:smoke-previous"
BASE_PACKAGES = "python3,python3-venv,python3-pip,python-is-python3,ca-certificates,passwd"
INFLUX_STAND_IN = "influxdb:2.7"
GAS_QUALITY = expected.measurement("gas_quality")  # meltano.yml's measurement of the streams
FLOWS = expected.measurement("instantaneous_flows")
GRAFANA_UID = 472
"""Grafana's user: the compose stack's dashboards service runs as it."""
# the container's own /tmp, on a tmpfs
HARDENED = ("--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL")  # noqa: S108
HARDENED_OPTIONS = (*HARDENED, "--security-opt", "no-new-privileges:true")


def say(message: str) -> None:
    """Progress on stdout."""
    print(f"smoke: {message}", flush=True)  # noqa: T201


def base_image() -> str:
    """The ``FROM`` image of the Dockerfile's last stage (the image built)."""
    found = re.findall(r"^FROM\s+(\S+)", (REPO_ROOT / "Dockerfile").read_text(), re.MULTILINE)
    if not found:
        raise RuntimeError("Dockerfile has no FROM line")
    return str(found[-1])


def debian_mirror() -> str:
    """The machine's own Debian mirror, from its apt sources."""
    sources = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for source in sources:
        if source.is_file():
            for line in source.read_text().splitlines():
                if not line.lstrip().startswith("#"):
                    found = re.search(r"https?://\S+/debian/?(?=\s|$)", line)
                    if found:
                        return found.group(0)
    raise RuntimeError("no Debian mirror found in the apt sources")


class Engine:
    """Debian's dockerd in a scratch folder: no bridge, no iptables, no forwarding."""

    def __init__(self, scratch: Path) -> None:
        """Prepare paths; :meth:`start` starts it."""
        self.scratch = scratch
        self.socket = scratch / "docker.sock"
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.socket}", "DOCKER_BUILDKIT": "1"}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start dockerd and wait until it answers."""
        log = (self.scratch / "dockerd.log").open("wb")
        self.process = subprocess.Popen(
            [
                "/usr/sbin/dockerd",
                "--data-root",
                str(self.scratch / "data"),
                "--exec-root",
                str(self.scratch / "exec"),
                "--pidfile",
                str(self.scratch / "dockerd.pid"),
                "-H",
                f"unix://{self.socket}",
                "--bridge=none",
                "--iptables=false",
                "--ip-forward=false",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_until(lambda: self.docker("info", check=False).returncode == 0, "dockerd", timeout=60)

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the docker client against this engine."""
        result = subprocess.run(
            [DOCKER, *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"docker {' '.join(args[:3])} failed:\n"
                f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )
        return result

    def stop(self) -> None:
        """Stop dockerd by its PID (containerd stops with it)."""
        stop_process(self.process)


def build_base(engine: Engine, tag: str) -> None:
    """A stand-in for the official slim Python image, from Debian packages."""
    root = engine.scratch / "base"
    subprocess.run(
        [
            "/usr/sbin/debootstrap",
            "--variant=minbase",
            f"--include={BASE_PACKAGES}",
            "bookworm",
            str(root),
            debian_mirror(),
        ],
        check=True,
        capture_output=True,
    )
    (root / "usr/lib/python3.11/EXTERNALLY-MANAGED").unlink(missing_ok=True)
    shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
    for cert in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        shutil.copy(cert, root / "usr/local/share/ca-certificates" / cert.name)
    subprocess.run(
        ["/usr/sbin/chroot", str(root), "update-ca-certificates"], check=True, capture_output=True
    )
    tar = subprocess.Popen(["/bin/tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    changes = [
        "ENV LANG=C.UTF-8",
        "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
        "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt",
        "ENV UV_NATIVE_TLS=true",
        'CMD ["python3"]',
    ]
    args = [arg for change in changes for arg in ("--change", change)]
    imported = subprocess.run(
        [DOCKER, "import", *args, "-", tag],
        stdin=tar.stdout,
        env=engine.env,
        capture_output=True,
        check=False,
    )
    tar.wait()
    if imported.returncode != 0:
        raise RuntimeError(f"docker import failed: {imported.stderr.decode()[-2000:]}")
    shutil.rmtree(root, ignore_errors=True)


def build_influx_stand_in(engine: Engine, base: str) -> None:
    """``influxdb:2.7`` with an ``influx`` script where the real image has its CLI."""
    context = engine.scratch / "influx-stand-in"
    context.mkdir()
    (context / "influx").write_text('#!/bin/sh\necho "influx stand-in: $*"\n')
    (context / "influx").chmod(0o755)
    (context / "Dockerfile").write_text(f"FROM {base}\nCOPY influx /usr/local/bin/influx\n")
    engine.docker("build", "--tag", INFLUX_STAND_IN, str(context))


def check_code_is_read_only(engine: Engine) -> None:
    """The app user cannot change the project or the installed code; ``influx`` is there."""
    for path in ("/project/meltano.yml", "/project/.meltano/x", "/opt/venv/x"):
        touched = engine.docker("run", "--rm", IMAGE, "touch", path, check=False)
        if touched.returncode == 0 or "Permission denied" not in touched.stderr:
            raise RuntimeError(f"touch {path} as the app user: exit {touched.returncode}")
    found = engine.docker("run", "--rm", IMAGE, "sh", "-c", "command -v influx && influx version")
    if found.stdout.split()[:1] != ["/usr/local/bin/influx"]:
        raise RuntimeError(f"influx is not on the PATH: {found.stdout!r}")
    say("code: `touch /project/meltano.yml` refused for the app user; influx on the PATH")


def env_file(
    path: Path, influxdb: LocalInfluxDB, bucket: str, fake: FakeNationalGasProcess
) -> Path:
    """The container's environment: loopback services, this run's bucket."""
    path.write_text(
        "".join(
            f"{k}={v}\n"
            for k, v in {
                "INFLUXDB_URL": influxdb.url,
                "INFLUXDB_TOKEN": influxdb.token,
                "INFLUXDB_ORG": influxdb.org,
                "INFLUXDB_BUCKET": bucket,
                "TAP_NATIONALGAS_API_URL": fake.url,
                "TAP_NATIONALGAS_START_DATE": FAKE_START_DATE,
                "TAP_NATIONALGAS_END_DATE": FAKE_END_DATE,
            }.items()
        )
    )
    return path


def check_run(engine: Engine, influxdb: LocalInfluxDB, envs: Path) -> None:
    """``run`` loads points into InfluxDB."""
    result = engine.docker(
        "run", "--rm", *HARDENED_OPTIONS, "--network", "host", "--env-file", str(envs), IMAGE, "run"
    )
    count = len(influxdb.points("smoke_run", GAS_QUALITY))
    if count != len(GAS_QUALITY_SITES):
        raise RuntimeError(
            f"run stored {count} {GAS_QUALITY} points, {len(GAS_QUALITY_SITES)} expected:\n"
            f"{result.stdout[-2000:]}"
        )
    say(
        f"run (read-only, no capabilities): exit 0, {count} {GAS_QUALITY} points, "
        f"{len(influxdb.points('smoke_run', FLOWS))} {FLOWS} points"
    )


def check_dashboards(engine: Engine, influxdb: LocalInfluxDB) -> None:
    """``dashboards`` writes the dashboards, with the sites' names, into a new volume.

    It runs as Grafana's user with a token file only that user can read, as under compose, and
    each file is readable by all.
    """
    token_file = engine.scratch / "grafana-token"
    token_file.write_text(influxdb.token)
    os.chown(token_file, GRAFANA_UID, 0)
    token_file.chmod(0o400)
    engine.docker(
        "run",
        "--rm",
        *HARDENED_OPTIONS,
        "--network",
        "host",
        "--user",
        f"{GRAFANA_UID}:0",
        "--env",
        f"INFLUXDB_URL={influxdb.raw_url}",  # InfluxQL's /query, as InfluxDB 2.x serves it
        "--env",
        "INFLUXDB_TOKEN_FILE=/run/influxdb/token",
        "--env",
        "INFLUXDB_BUCKET=smoke_run",
        "--volume",
        f"{token_file}:/run/influxdb/token:ro",
        "--volume",
        "smoke-dashboards:/stack/grafana-dashboards",
        IMAGE,
        "dashboards",
        "--out=/stack/grafana-dashboards",
        "--every=0",
    )
    listed = engine.docker(
        "run",
        "--rm",
        "--volume",
        "smoke-dashboards:/dashboards:ro",
        IMAGE,
        "sh",
        "-c",
        "stat -c '%a %u %n' /dashboards/*.json && cat /dashboards/gas-quality.json",
    ).stdout
    modes = [line for line in listed.splitlines() if line.endswith(".json") and " /" in line]
    if not modes or any(not line.startswith(f"644 {GRAFANA_UID} ") for line in modes):
        raise RuntimeError(f"dashboards: files not written readable by all:\n{listed[:2000]}")
    if '"BACTON"' not in listed:
        raise RuntimeError("dashboards: gas-quality.json does not name site 1 BACTON")
    say(f"dashboards (as uid {GRAFANA_UID}, token file 0400): {len(modes)} files, sites named")


def check_routes(engine: Engine, envs: Path) -> None:
    """Missing variables are named; any other command runs as given."""
    missing = engine.docker("run", "--rm", IMAGE, "run", check=False)
    expected = (
        "missing required variables: INFLUXDB_URL INFLUXDB_TOKEN INFLUXDB_ORG INFLUXDB_BUCKET"
    )
    if missing.returncode != 2 or expected not in missing.stderr:
        raise RuntimeError(f"without variables: exit {missing.returncode}, {missing.stderr[-500:]}")
    states = engine.docker(
        "run",
        "--rm",
        "--env-file",
        str(envs),
        "--volume",
        "smoke-state:/data",
        IMAGE,
        "meltano",
        "state",
        "list",
    )
    listed = states.stdout.strip() or "(no state yet)"
    say(f"routes: missing variables named (exit 2); `meltano state list` ran: {listed}")


def check_check(engine: Engine, envs: Path, token: str) -> None:
    """``check`` passes, with the token read from a file."""
    token_file = engine.scratch / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o644)
    result = engine.docker(
        "run",
        "--rm",
        *HARDENED_OPTIONS,
        "--network",
        "host",
        "--env-file",
        str(envs),
        "--env",
        "INFLUXDB_TOKEN=",
        "--env",
        "INFLUXDB_TOKEN_FILE=/run/influxdb/token",
        "--volume",
        f"{token_file}:/run/influxdb/token:ro",
        IMAGE,
        "check",
    )
    say("check (token from INFLUXDB_TOKEN_FILE): exit 0\n" + result.stdout.strip())


def check_schedule(engine: Engine, influxdb: LocalInfluxDB, envs: Path) -> None:
    """``schedule`` with a one-minute schedule runs the job, reports healthy, stops gracefully."""
    schedules = json.dumps(
        [{"name": "smoke", "job": "nationalgas-to-influxdb", "interval": "* * * * *"}]
    )
    engine.docker(
        "run",
        "--detach",
        "--name",
        "smoke-schedule",
        "--network",
        "host",
        "--env-file",
        str(envs),
        "--env",
        f"DATA_IMPORTS_SCHEDULES={schedules}",
        "--health-interval",
        "5s",
        IMAGE,
    )
    try:

        def healthy_after_a_run() -> bool:
            status = engine.docker(
                "inspect", "--format", "{{.State.Health.Status}}", "smoke-schedule"
            ).stdout.strip()
            last = engine.docker(
                "exec", "smoke-schedule", "cat", "/data/health/last-run.json", check=False
            )
            return status == "healthy" and '"exit_code": 0' in last.stdout

        wait_until(healthy_after_a_run, "a scheduled run and a healthy status", timeout=180)
        count = len(influxdb.points("smoke_schedule", GAS_QUALITY))
        engine.docker("stop", "--time", "60", "smoke-schedule")
        state = engine.docker(
            "inspect", "--format", "{{.State.ExitCode}}", "smoke-schedule"
        ).stdout.strip()
        logs = engine.docker("logs", "smoke-schedule").stdout
        if state != "0" or "scheduler stopped" not in logs or count != len(GAS_QUALITY_SITES):
            raise RuntimeError(
                f"schedule: exit code {state}, {count} points; logs:\n{logs[-3000:]}"
            )
        say(
            f"schedule: ran the job, healthy, {count} {GAS_QUALITY} points, stopped with exit "
            "code 0"
        )
    finally:
        engine.docker("rm", "--force", "smoke-schedule", check=False)


def check_deploy(engine: Engine, envs: Path, scratch: Path) -> None:
    """deploy/run-on-host.sh deploys, waits for healthy, and rolls back."""
    home = scratch / "host"
    home.mkdir()
    shutil.copy(envs, home / "prod.env")
    env = {
        **engine.env,
        "DATA_IMPORTS_HOME": str(home),
        "DATA_IMPORTS_NETWORK": "host",
        "DATA_IMPORTS_CONTAINER": "smoke-deploy",
        "DATA_IMPORTS_VOLUME": "smoke-deploy-state",
        "PATH": f"{Path(DOCKER).parent}:{os.environ['PATH']}",
    }
    script = str(REPO_ROOT / "deploy" / "run-on-host.sh")
    engine.docker("tag", IMAGE, PREVIOUS)
    try:
        for image in (PREVIOUS, IMAGE):
            subprocess.run(
                [script, image], env=env, check=True, capture_output=True, text=True, timeout=400
            )
        rollback = subprocess.run(
            [script, "--rollback"],
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
            check=False,
        )
        running = engine.docker(
            "inspect", "--format", "{{.Config.Image}}", "smoke-deploy"
        ).stdout.strip()
        if rollback.returncode != 0 or running != PREVIOUS:
            raise RuntimeError(
                f"rollback: exit {rollback.returncode}, running {running}\n{rollback.stderr}"
            )
        say(
            "deploy: run-on-host.sh started the image healthy; "
            "--rollback brought back the previous one"
        )
    finally:
        engine.docker("rm", "--force", "smoke-deploy", check=False)


def unmount_below(folder: Path) -> None:
    """Unmount what dockerd left mounted under ``folder`` (network namespaces, overlays)."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(f"{folder}/")), key=len, reverse=True):
        subprocess.run(["/bin/umount", "--lazy", point], check=False, capture_output=True)


def main() -> int:
    """Build and exercise the image; clean everything up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--install", action="store_true", help="apt-get install docker.io debootstrap"
    )
    args = parser.parse_args()
    if args.install:
        subprocess.run(
            [
                "/usr/bin/apt-get",
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "docker.io",
                "debootstrap",
            ],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    scratch = Path(
        tempfile.mkdtemp(prefix="dk.", dir="/tmp")
    )  # short: dockerd's socket path is limited
    engine = Engine(scratch)
    influxdb: LocalInfluxDB | None = None
    fake: FakeNationalGasProcess | None = None
    started = time.monotonic()
    try:
        engine.start()
        say("dockerd started (no bridge, no iptables, no forwarding)")
        build_base(engine, base_image())
        say(f"stand-in {base_image()} built with debootstrap ({time.monotonic() - started:.0f}s)")
        build_influx_stand_in(engine, base_image())
        engine.docker("build", "--network", "host", "--tag", IMAGE, str(REPO_ROOT))
        say(
            f"image {IMAGE} built from the unchanged Dockerfile ({time.monotonic() - started:.0f}s)"
        )
        check_code_is_read_only(engine)
        influxdb = LocalInfluxDB(scratch / "influxdb").start()
        fake = FakeNationalGasProcess(now=FAKE_NOW)
        for bucket in ("smoke_run", "smoke_schedule", "smoke_deploy"):
            influxdb.create_bucket(bucket)
        check_run(engine, influxdb, env_file(scratch / "run.env", influxdb, "smoke_run", fake))
        check_dashboards(engine, influxdb)
        check_check(engine, scratch / "run.env", influxdb.token)
        check_routes(engine, scratch / "run.env")
        check_schedule(
            engine, influxdb, env_file(scratch / "schedule.env", influxdb, "smoke_schedule", fake)
        )
        check_deploy(
            engine, env_file(scratch / "deploy.env", influxdb, "smoke_deploy", fake), scratch
        )
    finally:
        if fake is not None:
            fake.stop()
        if influxdb is not None:
            influxdb.stop()
        if engine.process:
            engine.docker(
                "rmi", "--force", IMAGE, PREVIOUS, INFLUX_STAND_IN, base_image(), check=False
            )
        engine.stop()
        unmount_below(scratch)
        shutil.rmtree(scratch, ignore_errors=True)
    say(f"passed in {time.monotonic() - started:.0f}s; engine stopped, images removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
