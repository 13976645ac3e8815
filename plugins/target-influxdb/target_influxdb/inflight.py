"""One write in flight while the next batch is encoded."""

from __future__ import annotations

import contextlib
import sys
import time
import typing as t
from concurrent.futures import Future, ThreadPoolExecutor

if t.TYPE_CHECKING:
    from collections.abc import Callable


class OneInFlight:
    """Run one call at a time in a worker thread, so that the caller prepares the next meanwhile.

    :meth:`submit` first waits for the call before it (and raises its failure), so at most one
    call runs at a time and they run in order; :meth:`close` lets the call in flight end, then
    stops the worker.

    Having started a call, :meth:`submit` pauses for one of the interpreter's switch intervals
    (``sys.getswitchinterval()``, 5 ms), so that the worker builds and sends its request
    uncontested and then waits for the answer without the interpreter: a caller busy encoding
    would otherwise keep the interpreter until it next blocks, and the write would start only
    then (``benchmarks/target_influxdb.py`` measures the difference).
    """

    def __init__(self) -> None:
        """Start the worker thread."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="write")
        self._pending: Future[None] | None = None

    def submit(self, call: Callable[..., None], *args: t.Any) -> None:  # noqa: ANN401
        """Wait for the call in flight, then start ``call(*args)`` in the worker."""
        self.wait()
        self._pending = self._executor.submit(call, *args)
        time.sleep(sys.getswitchinterval())  # the worker's turn

    def wait(self) -> None:
        """Wait for the call in flight, if any; raise what it raised."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Wait for the call in flight (what it raised left aside: it is told), stop the worker."""
        with contextlib.suppress(Exception):
            self.wait()
        self._executor.shutdown(wait=True)
