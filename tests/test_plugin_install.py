"""Each plugin README's "Use it in another Meltano project", as a stranger would follow it.

The snippets are read from the READMEs, so the READMEs are what is tested. The GitHub URL is
replaced by this clone (``git+file://``, same ``#subdirectory=``), which installs its committed
HEAD: a clean clone, as CI runs, tests what it would publish.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
import yaml

from testkit import expected
from testkit.fixtures import FAKE_NOW, MELTANO, tap_settings
from testkit.processes import REPO_ROOT

if t.TYPE_CHECKING:
    from testkit.fake_nationalgas import FakeNationalGasProcess
    from testkit.influx import LocalInfluxDB, RemoteInfluxDB2

SECTION = "## Use it in another Meltano project"
GITHUB = "git+https://github.com/<owner>/data-imports.git#"
PLUGINS = {"tap-nationalgas": "extractors", "target-influxdb": "loaders"}
PASSED_ON = (
    "PATH",
    "HOME",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
)
"""The only variables of the test process a Meltano run gets: where programs and the home folder
(uv's cache) are, and how this machine reaches PyPI (certificates, proxies)."""


def snippet_entry(plugin: str) -> dict[str, t.Any]:
    """The plugin's entry of the ``meltano.yml`` snippet in its README's section."""
    text = (REPO_ROOT / "plugins" / plugin / "README.md").read_text()
    section = text.split(SECTION + "\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block, f"{plugin} README: no yaml block in '{SECTION}'"
    (entry,) = yaml.safe_load(block[1])["plugins"][PLUGINS[plugin]]
    return t.cast("dict[str, t.Any]", entry)


def from_this_clone(entry: dict[str, t.Any]) -> dict[str, t.Any]:
    """The entry installed from this clone instead of GitHub."""
    pip_url = entry["pip_url"]
    assert pip_url.startswith(GITHUB), pip_url
    return {**entry, "pip_url": f"git+file://{REPO_ROOT}#{pip_url.removeprefix(GITHUB)}"}


def about_capabilities(plugin: str) -> set[str]:
    """The capabilities the installed plugin reports (the SDK's names are Meltano's)."""
    about = subprocess.run(
        [str(Path(sys.executable).parent / plugin), "--about", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(json.loads(about.stdout)["capabilities"])


def project_entry(plugin: str) -> dict[str, t.Any]:
    """The plugin's entry in this repository's ``meltano.yml``."""
    project = yaml.safe_load((REPO_ROOT / "meltano.yml").read_text())
    entries = project["plugins"][PLUGINS[plugin]]
    return t.cast("dict[str, t.Any]", next(p for p in entries if p["name"] == plugin))


@pytest.mark.parametrize("plugin", PLUGINS)
def test_meltano_yml_and_the_readme_declare_what_the_plugin_reports(plugin: str) -> None:
    reported = about_capabilities(plugin)
    assert set(project_entry(plugin)["capabilities"]) == reported
    assert set(snippet_entry(plugin)["capabilities"]) == reported


def scratch_project(root: Path, api_url: str) -> None:
    """Another Meltano project: the READMEs' entries, the tap's config for the fake API."""
    tap = from_this_clone(snippet_entry("tap-nationalgas"))
    tap["config"] = {**tap.get("config", {}), **tap_settings(api_url)}
    project = {
        "default_environment": "dev",
        "send_anonymous_usage_stats": False,
        "environments": [{"name": "dev"}],
        "plugins": {
            "extractors": [tap],
            "loaders": [from_this_clone(snippet_entry("target-influxdb"))],
        },
    }
    root.mkdir()
    (root / "meltano.yml").write_text(yaml.safe_dump(project, sort_keys=False))


def run_env(engine: LocalInfluxDB | RemoteInfluxDB2, bucket: str) -> dict[str, str]:
    """The runs' environment: the target's variables as its README names them, nothing else."""
    return {
        **{name: os.environ[name] for name in PASSED_ON if name in os.environ},
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
        "TARGET_INFLUXDB_URL": engine.url,
        "TARGET_INFLUXDB_TOKEN": engine.token,
        "TARGET_INFLUXDB_ORG": engine.org,
        "TARGET_INFLUXDB_BUCKET": bucket,
    }


def meltano(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run this repository's Meltano in the scratch project."""
    return subprocess.run(
        [MELTANO, *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def latest_gas_quality() -> expected.Points:
    """What the fake's latest gas quality is, stored without mappings or static tags."""
    data = expected.fake_data(dt.datetime.fromisoformat(FAKE_NOW))
    points = expected.gas_quality(data, expected.latest_hours(data))
    static = expected.STATIC_TAGS.items()
    return {
        (tuple(tag for tag in tags if tag not in static), time): fields
        for (tags, time), fields in points.items()
    }


def test_the_readme_snippets_install_and_run_in_another_meltano_project(
    tmp_path: Path,
    fake_api: FakeNationalGasProcess,
    influxdb: LocalInfluxDB | RemoteInfluxDB2,
    bucket: str,
) -> None:
    root = tmp_path / "other-project"
    scratch_project(root, fake_api.url)
    env = run_env(influxdb, bucket)

    install = meltano(root, env, "install")
    assert install.returncode == 0, install.stderr[-3000:]
    run = meltano(root, env, "run", "tap-nationalgas", "target-influxdb")
    assert run.returncode == 0, run.stderr[-3000:]

    assert expected.snapshot(influxdb, bucket)["gas_quality"] == latest_gas_quality()
