"""Each stream and setting has one home, the plugins' code: the README tables and meltano.yml
follow it."""

from __future__ import annotations

import subprocess
import sys

from testkit.processes import REPO_ROOT


def test_readme_tables_and_meltano_yml_are_written_from_the_plugins():
    # a fresh interpreter: the SDK's test suites add their own settings to the plugin classes
    check = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "sync_from_plugins.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
