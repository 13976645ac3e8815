"""Check a data-imports installation and print a pass/fail table; exit 0 only when all pass.

Checks the Python version, the variables the pipeline needs (naming the missing ones, never
printing a value), every plugin setting against its kind (the runner's own check: a number, a
list, an ISO 8601 date, a URL with its scheme...), the installed plugins, InfluxDB (reachable,
and the token allowed to write to the bucket) and the National Gas API. ``--offline`` skips the
two network checks.

Run: ``.venv/bin/python test_setup.py [--offline] [--env-file .env]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import typing as t
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent
REQUIRED = ("INFLUXDB_TOKEN", "INFLUXDB_ORG", "INFLUXDB_BUCKET")
PLACEHOLDER = "change-me"
PLUGINS = (("extractors", "tap-nationalgas"), ("loaders", "target-influxdb"))
DEFAULT_API_URL = "https://api.nationalgas.com/operationaldata/v1"
TIMEOUT = 15


@dataclass
class Result:
    """One line of the table."""

    status: str  # PASS, FAIL or SKIP
    check: str
    detail: str


try:
    from data_imports import settings
    from data_imports.project import Project, ProjectError
    from data_imports.runner import load_env
except ImportError as missing:
    sys.exit(f"{missing}: run ./setup.sh, then .venv/bin/python test_setup.py")


def check_python() -> Result:
    """Python 3.11 or newer."""
    version = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info >= (3, 11)
    return Result("PASS" if ok else "FAIL", "Python 3.11 or newer", version)


def output_folder(env: dict[str, str]) -> Path:
    """Where file mode writes line protocol."""
    return Path(env.get("TARGET_INFLUXDB_OUTPUT_PATH") or PROJECT_DIR / "output")


def check_variables(env: dict[str, str]) -> Result:
    """With INFLUXDB_URL set, the other InfluxDB variables are set too (values never shown)."""
    if not env.get("INFLUXDB_URL"):
        return Result("PASS", "required variables", "INFLUXDB_URL is empty: file mode")
    missing = [name for name in REQUIRED if not env.get(name)]
    if missing:
        return Result(
            "FAIL", "required variables", f"not set: {', '.join(missing)} (see .env.example)"
        )
    if PLACEHOLDER in env["INFLUXDB_TOKEN"]:
        return Result(
            "FAIL",
            "required variables",
            "INFLUXDB_TOKEN is the placeholder of .env.example: replace it with an API token",
        )
    return Result("PASS", "required variables", f"INFLUXDB_URL, {', '.join(REQUIRED)} are set")


def check_settings(env: dict[str, str]) -> Result:
    """Every setting of every job's plugins, checked as a run checks it."""
    try:
        project = Project.load(PROJECT_DIR)
        plugins = {p.name: p for job in project.job_names for p in project.job(job).plugins}
        checked = settings.check(project, plugins.values(), env, dt.datetime.now(dt.UTC))
    except ProjectError as exc:
        return Result("FAIL", "settings", str(exc))
    if checked.problems:
        return Result("FAIL", "settings", "; ".join(checked.problems))
    return Result("PASS", "settings", f"of {', '.join(plugins)}")


def check_plugin(kind: str, name: str) -> Result:
    """The plugin is installed by Meltano and answers ``--about``."""
    executable = PROJECT_DIR / ".meltano" / kind / name / "venv" / "bin" / name
    check = f"plugin {name}"
    if not executable.exists():
        return Result("FAIL", check, "not installed: run ./setup.sh (meltano install)")
    try:
        about = subprocess.run(  # noqa: S603
            [str(executable), "--about", "--format", "json"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        version = json.loads(about.stdout).get("version", "?") if about.returncode == 0 else None
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        return Result("FAIL", check, f"does not run: {exc}")
    if version is None:
        last = (about.stderr.strip().splitlines() or ["no output"])[-1]
        return Result("FAIL", check, f"does not run: {last}")
    return Result("PASS", check, f"version {version}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Follow no redirect: urllib then raises the 3xx as an ``HTTPError``."""

    def redirect_request(self, *_args: t.Any, **_kwargs: t.Any) -> None:  # noqa: ANN401
        """Answer the redirect as it is."""
        return


INFLUXDB = urllib.request.build_opener(_NoRedirect)
"""Requests to InfluxDB: they carry the token, so they never follow a redirect."""


def _request(
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    opener: urllib.request.OpenerDirector | None = None,
) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, headers=headers or {})  # noqa: S310
    open_url = (opener or urllib.request.build_opener()).open
    try:
        with open_url(request, timeout=TIMEOUT) as response:
            return int(response.status), response.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:  # noqa: PLR2004 (a redirect: where it points)
            return int(exc.code), exc.headers.get("Location") or "no Location"
        return int(exc.code), exc.read(2000).decode(errors="replace")


def _redirected(url: str, status: int, location: str) -> str:
    return (
        f"INFLUXDB_URL {url} answered {status} (redirect to {location}): not InfluxDB, which "
        "never redirects (the redirect was not followed); set INFLUXDB_URL to the URL InfluxDB "
        "itself answers on"
    )


def check_influxdb(env: dict[str, str]) -> list[Result]:
    """InfluxDB answers, and the token may write to the bucket.

    The write check sends an empty body: InfluxDB checks the token, the bucket and the
    permission first and then refuses the empty body, so nothing is written.
    """
    url = env.get("INFLUXDB_URL", "").rstrip("/")
    if not url:
        return [
            Result(
                "PASS", "InfluxDB reachable", f"file mode: writing files to {output_folder(env)}"
            ),
            Result("SKIP", "token can write", "file mode"),
        ]
    try:
        status, body = _request(f"{url}/ping", opener=INFLUXDB)
    except OSError as exc:
        return [Result("FAIL", "InfluxDB reachable", f"{url}: {getattr(exc, 'reason', exc)}")]
    if 300 <= status < 400:  # noqa: PLR2004
        return [Result("FAIL", "InfluxDB reachable", _redirected(url, status, body))]
    if status != 204:  # noqa: PLR2004
        return [
            Result(
                "FAIL",
                "InfluxDB reachable",
                f"{url}/ping answered {status}, not 204: this is not InfluxDB; check INFLUXDB_URL",
            )
        ]
    return [Result("PASS", "InfluxDB reachable", url), check_write(url, env)]


def check_write(url: str, env: dict[str, str]) -> Result:
    """The token may write to the bucket (an empty write, refused after those checks)."""
    org, bucket = env.get("INFLUXDB_ORG", ""), env.get("INFLUXDB_BUCKET", "")
    query = urllib.parse.urlencode({"org": org, "bucket": bucket, "precision": "s"})
    headers = {"Authorization": f"Token {env.get('INFLUXDB_TOKEN', '')}"}
    try:
        status, body = _request(
            f"{url}/api/v2/write?{query}", data=b"", headers=headers, opener=INFLUXDB
        )
    except OSError as exc:
        return Result("FAIL", "token can write", f"{url}: {getattr(exc, 'reason', exc)}")
    verdicts = {
        401: "token rejected (401): check INFLUXDB_TOKEN",
        403: f'token not allowed to write to bucket "{bucket}" (403)',
        404: f'bucket "{bucket}" not found in org "{org}" (404): '
        "check INFLUXDB_BUCKET and INFLUXDB_ORG",
    }
    if 300 <= status < 400:  # noqa: PLR2004
        return Result("FAIL", "token can write", _redirected(url, status, body))
    if status == 400 and "writing requires points" in body:  # noqa: PLR2004
        return Result("PASS", "token can write", f'bucket "{bucket}" in org "{org}"')
    return Result(
        "FAIL",
        "token can write",
        verdicts.get(
            status,
            f"answered {status}, not InfluxDB's 400 for an empty write: check INFLUXDB_URL",
        ),
    )


def check_api(env: dict[str, str]) -> Result:
    """The National Gas API answers with its catalogue."""
    url = env.get("TAP_NATIONALGAS_API_URL") or DEFAULT_API_URL
    endpoint = f"{url.rstrip('/')}/publications/catalogue"
    try:
        status, body = _request(endpoint, headers={"User-Agent": "data-imports test_setup"})
    except OSError as exc:
        return Result(
            "FAIL", "National Gas API reachable", f"{endpoint}: {getattr(exc, 'reason', exc)}"
        )
    if status != 200:  # noqa: PLR2004
        return Result("FAIL", "National Gas API reachable", f"{endpoint} answered {status}")
    if not body.lstrip().startswith("{"):
        return Result("FAIL", "National Gas API reachable", f"{endpoint} did not answer JSON")
    return Result("PASS", "National Gas API reachable", url)


def run_checks(env: dict[str, str], *, offline: bool) -> list[Result]:
    """Every check, in order."""
    results = [check_python(), check_variables(env), check_settings(env)]
    results += [check_plugin(kind, name) for kind, name in PLUGINS]
    if offline:
        results += [
            Result("SKIP", "InfluxDB reachable", "--offline"),
            Result("SKIP", "token can write", "--offline"),
            Result("SKIP", "National Gas API reachable", "--offline"),
        ]
    else:
        results += [*check_influxdb(env), check_api(env)]
    return results


def print_table(results: t.Sequence[Result]) -> None:
    """The results as an aligned table."""
    width = max(len(r.check) for r in results)
    print(f"{'RESULT':<6}  {'CHECK':<{width}}  DETAIL")  # noqa: T201
    for r in results:
        print(f"{r.status:<6}  {r.check:<{width}}  {r.detail}")  # noqa: T201


def main(argv: list[str] | None = None) -> int:
    """Run the checks; return 0 only when none failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offline", action="store_true", help="skip the InfluxDB and API checks")
    parser.add_argument("--env-file", type=Path, default=PROJECT_DIR / ".env", help="default: .env")
    args = parser.parse_args(argv)
    results = run_checks(load_env(env_file=args.env_file), offline=args.offline)
    print_table(results)
    failed = sum(r.status == "FAIL" for r in results)
    print(f"\n{len(results) - failed} of {len(results)} checks passed or skipped, {failed} failed")  # noqa: T201
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
