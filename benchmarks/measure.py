"""Time, CPU time and peak memory of one process."""

from __future__ import annotations

import os
import subprocess
import time
import typing as t
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Measurement:
    """What one process took."""

    seconds: float
    cpu_seconds: float
    peak_mb: float


def _peak_rss_kb(pid: int) -> int:
    """VmHWM: the peak resident memory of the process itself."""
    try:
        with Path(f"/proc/{pid}/status").open() as status:
            return next((int(line.split()[1]) for line in status if line.startswith("VmHWM:")), 0)
    except OSError:
        return 0


def run_measured(
    command: list[str], stdin: t.IO[bytes] | None, stdout: t.IO[bytes] | int
) -> Measurement:
    """Run ``command`` to the end; fail unless it exits 0.

    Peak memory is read from ``/proc`` while the process runs: ``getrusage`` would also count the
    pages this process holds, shared with the child between fork and exec.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdin=stdin, stdout=stdout, stderr=subprocess.DEVNULL)
    peak_kb = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        peak_kb = max(peak_kb, _peak_rss_kb(proc.pid))
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    if code != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed with exit code {code}")
    return Measurement(seconds, usage.ru_utime + usage.ru_stime, peak_kb / 1024)
