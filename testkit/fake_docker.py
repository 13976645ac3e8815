"""Stand-ins for ``docker``, ``ssh`` and ``ssh-keyscan``, for testing the deploy without a host.

:func:`install` writes three executables into a folder to put first on ``PATH``. Each records
its command line (and, for ``docker``, its stdin and ``DATA_IMPORTS_IMAGE``) as one JSON line in
``calls.jsonl``. The ``docker`` stand-in keeps images and containers in ``state.json``; a
container started from an image listed in ``unhealthy`` reports ``unhealthy``, and pulling an
image listed in ``missing`` fails. ``ssh`` checks that it was given a known_hosts file holding
the host's key and runs the remote command with ``bash`` on this machine, in the folder given as
the host's home. ``ssh-keyscan`` prints the host's key.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class FakeHost:
    """The stand-ins' folder, the fake host's home and the host's public key."""

    bin: Path
    home: Path
    state: Path
    calls: Path
    key_line: str

    def env(self) -> dict[str, str]:
        """The environment that puts the stand-ins first on PATH."""
        return {  # nothing else of this process's environment: the deploy sees only these
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "FAKE_DOCKER_STATE": str(self.state),
            "FAKE_DOCKER_CALLS": str(self.calls),
            "FAKE_HOST_HOME": str(self.home),
            "FAKE_HOST_KEY": self.key_line,
        }

    def recorded(self, program: str | None = None) -> list[dict[str, object]]:
        """Every recorded call, or those of one program."""
        if not self.calls.exists():
            return []
        rows = [json.loads(line) for line in self.calls.read_text().splitlines()]
        return [row for row in rows if program is None or row["program"] == program]

    def docker_state(self) -> dict[str, object]:
        """The stand-in docker's images and containers."""
        return dict(json.loads(self.state.read_text()))

    def set_state(self, **changes: object) -> None:
        """Change the stand-in docker's state (e.g. ``unhealthy=[image]``)."""
        state = self.docker_state()
        state.update(changes)
        self.state.write_text(json.dumps(state))


def install(folder: Path) -> FakeHost:
    """Write the stand-ins into ``folder/bin`` and make the host's home ``folder/host``."""
    bin_dir, home = folder / "bin", folder / "host"
    bin_dir.mkdir(parents=True)
    home.mkdir()
    for program in ("docker", "ssh", "ssh-keyscan"):
        path = bin_dir / program
        path.write_text(
            f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO_ROOT)!r})\n"
            f"from testkit.fake_docker import main\nmain({program!r}, sys.argv[1:])\n"
        )
        path.chmod(0o755)
    state = folder / "state.json"
    state.write_text(
        json.dumps({"images": [], "containers": {}, "unhealthy": [], "missing": [], "next": 1})
    )
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + os.urandom(32)
    key_line = f"ssh-ed25519 {base64.b64encode(blob).decode()}"
    return FakeHost(bin_dir, home, state, folder / "calls.jsonl", key_line)


def out(text: str) -> None:
    """Print a line on stdout, as docker does."""
    sys.stdout.write(f"{text}\n")


def err(text: str) -> None:
    """Print a line on stderr, as docker does."""
    sys.stderr.write(f"{text}\n")


def record(program: str, argv: list[str], stdin: str = "") -> None:
    """Append one call to the calls file."""
    row = {
        "program": program,
        "argv": argv,
        "stdin": stdin,
        "image_env": os.environ.get("DATA_IMPORTS_IMAGE"),
    }
    with Path(os.environ["FAKE_DOCKER_CALLS"]).open("a", encoding="utf-8") as calls:
        calls.write(json.dumps(row) + "\n")


def main(program: str, argv: list[str]) -> None:
    """Run one stand-in."""
    if program == "ssh-keyscan":
        record(program, argv)
        out(f"{argv[-1]} {os.environ['FAKE_HOST_KEY']}")
        return
    if program == "ssh":
        ssh(argv)
        return
    stdin = "" if sys.stdin.isatty() else sys.stdin.read()
    record(program, argv, stdin)
    sys.exit(Docker(Path(os.environ["FAKE_DOCKER_STATE"])).run(argv, stdin))


def ssh(argv: list[str]) -> None:
    """Check the pinned host key, then run the remote command in the fake host's home."""
    record("ssh", argv)
    options = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-o")
    known = Path(options.get("UserKnownHostsFile", "/nonexistent"))
    if options.get("StrictHostKeyChecking") != "yes" or not known.exists():
        sys.exit("ssh stand-in: host key checking is not strict")
    if os.environ["FAKE_HOST_KEY"] not in known.read_text():
        sys.exit("ssh stand-in: Host key verification failed.")
    command = argv[argv.index("--") + 2]
    env = {**os.environ, "HOME": os.environ["FAKE_HOST_HOME"]}
    done = subprocess.run(["bash", "-c", command], env=env, check=False)  # noqa: S607
    sys.exit(done.returncode)


class Docker:
    """The few docker commands the deploy uses, on a JSON state file."""

    def __init__(self, path: Path) -> None:
        """Load the state."""
        self.path = path
        self.state = json.loads(path.read_text())

    def save(self) -> None:
        """Write the state back."""
        self.path.write_text(json.dumps(self.state))

    def run(self, argv: list[str], stdin: str) -> int:
        """Run one command; return its exit code."""
        if argv[0] == "--config":
            config, argv = Path(argv[1]), argv[2:]
            if argv[0] == "login":
                (config / "config.json").write_text(json.dumps({"auths": {argv[1]: stdin}}))
                return 0
            if argv[0] == "logout":
                (config / "config.json").unlink(missing_ok=True)
                return 0
        handler = getattr(self, "do_" + argv[0].replace("-", "_"), None)
        if handler is None:
            err(f"docker stand-in: no command {argv[0]}")
            return 1
        code = int(handler(argv[1:]))
        self.save()
        return code

    def do_pull(self, args: list[str]) -> int:
        """Add an image, unless it is listed as missing."""
        image = args[-1]
        if image in self.state["missing"]:
            err(f"Error response from daemon: manifest unknown: {image}")
            return 1
        if image not in self.state["images"]:
            self.state["images"].append(image)
        return 0

    def do_image(self, args: list[str]) -> int:
        """``image inspect``, ``image rm`` (refused while a container uses it), ``image prune``."""
        if args[0] == "inspect":
            return 0 if args[1] in self.state["images"] else 1
        if args[0] == "rm":
            used = {c["image"] for c in self.state["containers"].values()}
            if args[1] in used:
                err("conflict: image is being used by a container")
                return 1
            self.state["images"].remove(args[1])
            return 0
        return 0  # prune

    def container(self, name: str) -> dict[str, str] | None:
        """A container by name, or None."""
        return self.state["containers"].get(name)

    def do_inspect(self, args: list[str]) -> int:
        """A container's image or health."""
        found = self.container(args[-1])
        if found is None:
            err(f"Error: No such object: {args[-1]}")
            return 1
        if "Config.Image" in args[1]:
            out(found["image"])
        else:
            out("unhealthy" if found["image"] in self.state["unhealthy"] else "healthy")
        return 0

    def do_stop(self, args: list[str]) -> int:
        """Stop a container (it stays until removed)."""
        return 0 if self.container(args[-1]) else 1

    def do_rm(self, args: list[str]) -> int:
        """Remove a container."""
        return 0 if self.state["containers"].pop(args[-1], None) else 1

    def start(self, name: str, image: str) -> int:
        """Start a container from an image on the host."""
        if image not in self.state["images"]:
            err(f"Unable to find image '{image}' locally")
            return 125
        self.state["containers"][name] = {"image": image}
        return 0

    def do_run(self, args: list[str]) -> int:
        """``run --name N ... IMAGE CMD``."""
        name = args[args.index("--name") + 1]
        if name in self.state["containers"]:
            return 125
        return self.start(name, args[-2])

    def do_create(self, args: list[str]) -> int:
        """Create a container and print its name."""
        name = f"created-{self.state['next']}"
        self.state["next"] += 1
        out(name)
        return self.start(name, args[-1])

    def do_cp(self, args: list[str]) -> int:
        """Copy a file or folder out of the image: the repository's own."""
        source = args[0].split(":", 1)[1].removeprefix("/project/")
        target = Path(args[1])
        if (REPO_ROOT / source).is_dir():
            target.mkdir(parents=True)
            (target / "from-image").write_text(source)
        else:
            target.write_text((REPO_ROOT / source).read_text())
        return 0

    def do_logs(self, args: list[str]) -> int:
        """A container's last lines."""
        out(f"log lines of {args[-1]}")
        return 0

    def do_compose(self, args: list[str]) -> int:
        """``compose up`` starts the pipeline service, ``ps``/``down`` find and remove it."""
        if "up" in args:
            image = os.environ["DATA_IMPORTS_IMAGE"]
            if image in self.state.get("preflight_fails", []):
                err('service "preflight" didn\'t complete successfully: exit 1')
                return 1
            return self.start("stack-pipeline", image)
        if "ps" in args:
            if "stack-pipeline" in self.state["containers"]:
                out("stack-pipeline")
            return 0
        if "logs" in args:
            out("log lines of the stack")
            return 0
        if "down" in args:
            self.state["containers"].pop("stack-pipeline", None)
        return 0
