"""``run-etl.log``: one block per run, appended whole, rotated by size."""

from __future__ import annotations

import contextlib
import fcntl
import typing as t
from pathlib import Path

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

NAME = "run-etl.log"


class RunLog:
    """The log of every run, kept in ``folder``, at most ``max_bytes`` before it is rotated."""

    def __init__(self, folder: Path, max_bytes: int, keep: int) -> None:
        """Use (and create) ``folder``."""
        self.path = folder / NAME
        self.max_bytes, self.keep = max_bytes, keep
        folder.mkdir(parents=True, exist_ok=True)

    def append(self, lines: Sequence[str]) -> None:
        """Append one run's lines as a block, rotating the file first if it is too large."""
        if not lines:
            return
        with self._locked():
            self._rotate()
            text = "\n".join(lines) + "\n"
            with self.path.open("a", encoding="utf-8") as log:
                if log.tell():
                    log.write("\n")
                log.write(text)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time: runs of two jobs never interleave their blocks."""
        with (self.path.parent / f".{NAME}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _rotate(self) -> None:
        if not self.path.exists() or self.path.stat().st_size <= self.max_bytes:
            return
        for number in range(self.keep - 1, 0, -1):
            older = Path(f"{self.path}.{number}")
            if older.exists():
                older.replace(f"{self.path}.{number + 1}")
        self.path.replace(f"{self.path}.1")
