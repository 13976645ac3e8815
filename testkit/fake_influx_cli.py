"""A stand-in for InfluxDB's ``influx`` CLI (2.x) that records its calls.

:func:`install` writes an ``influx`` executable into a folder (put it first on ``PATH``). Each
call is appended to ``calls.jsonl`` beside it, each authorization it created to
``answers.jsonl``. ``influx auth create ... --json`` prints what the
real CLI prints: the authorization as tab-indented JSON, its ``permissions`` as the CLI writes
them (``write:orgs/<org id>/buckets/<bucket id>``), with a new random token. With ``FAIL`` in
the environment it prints an error and exits 1, as the real one does when InfluxDB refuses.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import typing as t
from pathlib import Path

ORG_ID = "0a1b2c3d4e5f6a7b"
USER_ID = "1a2b3c4d5e6f7a8b"
OPERATOR_RESOURCES = ("authorizations", "buckets", "dashboards", "orgs", "users", "instance")


def install(folder: Path) -> Path:
    """Write the stand-in ``influx`` into ``folder``; return the file of recorded calls."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "influx"
    script.write_text(
        textwrap.dedent(f"""\
            #!{sys.executable}
            import sys
            sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
            from testkit.fake_influx_cli import main
            sys.exit(main(sys.argv[1:]))
            """)
    )
    script.chmod(0o755)
    return folder / "calls.jsonl"


def calls(record: Path) -> list[list[str]]:
    """The recorded calls, each its arguments."""
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines()]


def answers(record: Path) -> list[dict[str, t.Any]]:
    """What each ``auth create`` printed, in order."""
    path = record.with_name("answers.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _values(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == flag]


def auth_create(args: list[str]) -> dict[str, object]:
    """The authorization the real CLI prints for ``auth create`` with these flags."""
    permissions = [f"read:orgs/{ORG_ID}/buckets/{b}" for b in _values(args, "--read-bucket")]
    permissions += [f"write:orgs/{ORG_ID}/buckets/{b}" for b in _values(args, "--write-bucket")]
    if "--operator" in args:
        permissions += [f"{a}:{r}" for r in OPERATOR_RESOURCES for a in ("read", "write")]
    return {
        "id": os.urandom(8).hex(),
        "description": (_values(args, "--description") or [""])[0],
        "token": os.urandom(32).hex() + "==",
        "status": "active",
        "userName": (_values(args, "--user") or ["admin"])[0],
        "userID": USER_ID,
        "permissions": permissions,
    }


def main(args: list[str]) -> int:
    """Record the call and answer as the real CLI would."""
    record = Path(sys.argv[0]).resolve().parent / "calls.jsonl"
    with record.open("a") as out:
        out.write(json.dumps(args) + "\n")
    if os.environ.get("FAIL"):
        error = "Error: could not write auth with provided arguments: 401 Unauthorized"
        print(error, file=sys.stderr)  # noqa: T201
        return 1
    if args[:2] == ["auth", "create"] and "--json" in args:
        created = auth_create(args)
        with record.with_name("answers.jsonl").open("a") as out:
            out.write(json.dumps(created) + "\n")
        print(json.dumps(created, indent="\t"))  # noqa: T201
        return 0
    if args[:1] == ["ping"]:
        print("OK")  # noqa: T201
        return 0
    print(f"Error: the stand-in influx does not know {' '.join(args[:2])}", file=sys.stderr)  # noqa: T201
    return 1
