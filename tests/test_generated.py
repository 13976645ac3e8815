"""Each stream and setting has one home, the plugins' code: the README tables and meltano.yml
follow it."""

from __future__ import annotations

import importlib.util
import sys

from testkit.processes import REPO_ROOT


def test_readme_tables_and_meltano_yml_are_written_from_the_plugins(capsys):
    spec = importlib.util.spec_from_file_location(
        "sync_from_plugins", REPO_ROOT / "scripts" / "sync_from_plugins.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["sync_from_plugins"] = module
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0, capsys.readouterr().out
