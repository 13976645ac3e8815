"""Fixtures shared by every test suite live in :mod:`testkit.fixtures`."""

pytest_plugins = ["testkit.fixtures"]
