"""Tables of the README that list tests: each row's last cell names the test that shows it."""

from __future__ import annotations

import typing as t

from testkit.processes import REPO_ROOT

if t.TYPE_CHECKING:
    from collections.abc import Sequence


def missing_table(section: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """'' when README.md holds this table and no test is a row twice; else what is wrong."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += [f"| {' | '.join(row[:-1])} | `{row[-1]}` |" for row in rows]
    table = "\n".join(lines)
    if table not in (REPO_ROOT / "README.md").read_text():
        return f"README.md '{section}' must hold this table:\n{table}"
    if len(rows) != len({row[-1] for row in rows}):
        return f"README.md '{section}': a test is named by two rows"
    return ""
