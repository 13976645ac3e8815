"""Deploy an image to the EC2 host over SSH: the deploy workflow's one step on its runner.

Standard library only. It reads the GitHub environment's variables and secrets as JSON
(``toJSON(vars)``, ``toJSON(secrets)``), keeps the settings ``deploy/variables.json`` lists for
the chosen shape, and refuses, before connecting, a setting that is misspelt, a secret given as a
plain variable, a value with a CR or LF, an unknown shape or a missing host key fingerprint.

It connects only to a host whose key has the SHA256 fingerprint ``EC2_HOST_FINGERPRINT`` (what
``ssh-keygen -lf`` prints for one of the host's public keys), copies ``host.py`` and
``run-on-host.sh`` to ``~/data-imports``, and runs ``run-on-host.sh deploy`` there with the
image, the shape, the settings and the registry login as JSON on stdin: no secret is on a command
line, here or on the host.

Environment: ``DEPLOY_IMAGE`` (the image by digest), ``DEPLOY_VARS``, ``DEPLOY_SECRETS``,
``REGISTRY_USER``, ``REGISTRY_TOKEN``; from the variables ``DEPLOY_SHAPE`` (``pipeline`` or
``stack``, default ``pipeline``) and ``EC2_PORT`` (22); from the secrets ``EC2_HOST``,
``EC2_USER``, ``EC2_SSH_KEY``, ``EC2_HOST_FINGERPRINT``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHAPES = ("pipeline", "stack")
PREFIXES = (
    "TAP_NATIONALGAS_",
    "TARGET_INFLUXDB_",
    "INFLUXDB_",
    "DATA_IMPORTS_",
    "GRAFANA_",
    "GF_",
    "MELTANO_",
)
DEPLOY_NAMES = frozenset(
    {"DEPLOY_SHAPE", "EC2_HOST", "EC2_USER", "EC2_SSH_KEY", "EC2_HOST_FINGERPRINT", "EC2_PORT"}
)
REMOTE_HOME = "$HOME/data-imports"
REGISTRY = "ghcr.io"


class ShipError(Exception):
    """The deploy cannot go on; the message says what to set or fix."""


def load_variables(path: Path = HERE / "variables.json") -> list[dict[str, object]]:
    """The settings a deploy may carry: name, secret, shape."""
    return list(json.loads(path.read_text(encoding="utf-8")))


def settings(
    shape: str,
    plain: dict[str, str],
    secret: dict[str, str],
    known: list[dict[str, object]],
) -> dict[str, str]:
    """The host's environment for ``shape`` from the GitHub variables and secrets."""
    wanted = {str(v["name"]): v for v in known if shape == "stack" or v["shape"] == "pipeline"}
    every = {str(v["name"]) for v in known}
    problems = []
    for name in sorted({*plain, *secret}):
        if name in DEPLOY_NAMES or name not in every:
            if name.startswith(PREFIXES) and name not in every:
                problems.append(f"{name}: not a setting of data-imports (check the spelling)")
            continue
        if name in plain and name in secret:
            problems.append(f"{name}: set both as a variable and as a secret; keep one")
        elif name in plain and wanted.get(name, {}).get("secret"):
            problems.append(f"{name}: a secret, set as a plain variable; make it a secret")
    env = {name: value for name, value in {**plain, **secret}.items() if name in wanted}
    problems += [
        f"{name}: the value holds a line break (CR or LF); remove it"
        for name, value in sorted(env.items())
        if "\r" in value or "\n" in value
    ]
    if problems:
        raise ShipError("; ".join(problems))
    return env


def fingerprint(key_line: str) -> str:
    """The SHA256 fingerprint of a public key line (``type base64``), as ssh-keygen prints it."""
    blob = base64.b64decode(key_line.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def known_hosts(host: str, port: str, expected: str) -> str:
    """The host's keys that match ``expected``, as known_hosts lines; none is an error."""
    if not expected.strip():
        raise ShipError(
            "EC2_HOST_FINGERPRINT is not set: the deploy connects only to a host whose key it "
            "knows; on the host, run: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub"
        )
    wanted = expected.strip()
    wanted = wanted if wanted.startswith("SHA256:") else f"SHA256:{wanted}"
    scan = subprocess.run(
        ["ssh-keyscan", "-T", "15", "-p", port, host],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in scan.stdout.splitlines() if line and not line.startswith("#")]
    matching = [line for line in lines if fingerprint(line.split(None, 1)[1]) == wanted]
    if not matching:
        seen = ", ".join(sorted({fingerprint(line.split(None, 1)[1]) for line in lines}))
        raise ShipError(
            f"no key of {host}:{port} has the fingerprint EC2_HOST_FINGERPRINT "
            f"({wanted}); the host offered: {seen or 'nothing (is it reachable?)'}"
        )
    return "".join(f"{line}\n" for line in matching)


def bundle() -> bytes:
    """A tar of the host's deploy files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in ("host.py", "run-on-host.sh"):
            data = (HERE / name).read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o700
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Connection:
    """SSH to the host with a pinned key and a private key file that lives for the deploy."""

    def __init__(self, folder: Path, secret: dict[str, str], plain: dict[str, str]) -> None:
        """Write the key and known_hosts files into ``folder``."""
        missing = [n for n in ("EC2_HOST", "EC2_USER", "EC2_SSH_KEY") if not secret.get(n)]
        if missing:
            raise ShipError(f"set the secrets {', '.join(missing)} in the production environment")
        self.host, self.user = secret["EC2_HOST"], secret["EC2_USER"]
        self.port = plain.get("EC2_PORT") or "22"
        hosts = known_hosts(self.host, self.port, secret.get("EC2_HOST_FINGERPRINT", ""))
        self.key = folder / "key"
        self.key.write_text(secret["EC2_SSH_KEY"].strip() + "\n", encoding="utf-8")
        self.key.chmod(0o600)
        self.known = folder / "known_hosts"
        self.known.write_text(hosts, encoding="utf-8")

    def run(self, command: str, stdin: bytes) -> int:
        """Run ``command`` on the host with ``stdin``; its output goes to this log."""
        options = (
            "BatchMode=yes",
            "StrictHostKeyChecking=yes",
            f"UserKnownHostsFile={self.known}",
            "IdentitiesOnly=yes",
            "ConnectTimeout=30",
            "ServerAliveInterval=30",
        )
        argv = ["ssh", *(arg for option in options for arg in ("-o", option))]
        argv += ["-i", str(self.key), "-p", self.port, "--", f"{self.user}@{self.host}", command]
        return subprocess.run(argv, input=stdin, check=False).returncode


def read_json(name: str) -> dict[str, str]:
    """A JSON object of strings from the environment variable ``name``."""
    try:
        data = json.loads(os.environ.get(name) or "{}")
    except ValueError as error:
        raise ShipError(f"{name} is not JSON: {error}") from None
    return {str(key): str(value) for key, value in data.items() if value is not None}


def ship() -> int:
    """Check the settings, copy the host's files, run the deploy there; return its exit code."""
    plain, secret = read_json("DEPLOY_VARS"), read_json("DEPLOY_SECRETS")
    shape = plain.get("DEPLOY_SHAPE") or "pipeline"
    if shape not in SHAPES:
        raise ShipError(f"DEPLOY_SHAPE is {shape!r}; set it to pipeline or stack")
    image = os.environ.get("DEPLOY_IMAGE", "")
    if "@sha256:" not in image:
        raise ShipError(f"DEPLOY_IMAGE {image!r} is not an image by digest (name@sha256:...)")
    env = settings(shape, plain, secret, load_variables())
    payload = {
        "image": image,
        "shape": shape,
        "env": env,
        "registry": {
            "server": REGISTRY,
            "user": os.environ.get("REGISTRY_USER", ""),
            "token": os.environ.get("REGISTRY_TOKEN", ""),
        },
    }
    print(f"deploy: {image} as the {shape} shape, {len(env)} settings", flush=True)
    with tempfile.TemporaryDirectory(prefix="ship-") as folder:
        ssh = Connection(Path(folder), secret, plain)
        install = f'umask 077 && mkdir -p "{REMOTE_HOME}" && tar -x -C "{REMOTE_HOME}" -f -'
        if ssh.run(install, bundle()) != 0:
            raise ShipError(f"could not copy the deploy files to {ssh.host}")
        return ssh.run(f'"{REMOTE_HOME}/run-on-host.sh" deploy', json.dumps(payload).encode())


def main() -> None:
    """Run the deploy and exit with its status."""
    try:
        sys.exit(ship())
    except ShipError as error:
        print(f"::error title=deploy::{error}", flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
