"""Each stream and setting has one home, the plugins' code: the README tables and meltano.yml
follow it."""

from __future__ import annotations

from testkit.processes import run_script


def test_readme_tables_and_meltano_yml_are_written_from_the_plugins():
    # a fresh interpreter: the SDK's test suites add their own settings to the plugin classes
    check = run_script("sync_from_plugins.py", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
