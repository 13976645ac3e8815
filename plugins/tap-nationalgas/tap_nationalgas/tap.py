"""National Gas tap class."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import typing as t

import click
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.singerlib import StateMessage
from typing_extensions import override

from tap_nationalgas import catalogue, gaps, streams, values
from tap_nationalgas.sets import DEFAULT_SETS, SETS

if t.TYPE_CHECKING:
    from types import FrameType

MAX_HISTORY_WINDOW_DAYS = 2


class TapNationalGas(Tap):
    """Singer tap for the National Gas operational data API."""

    name = "tap-nationalgas"
    api_answered = False
    """Whether the API has answered once in this run (a first refused connection is final)."""

    config_jsonschema = th.PropertiesList(
        th.Property(
            "api_url",
            th.URIType,
            default="https://api.nationalgas.com/operationaldata/v1",
            description="Base URL of the National Gas operational data API.",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            description=(
                "Where history starts on the first run (gas_quality_history, publications, and "
                "the first poll of the other streams); a reading stamped at it is included. "
                "Unset: `lookback_days` before today."
            ),
        ),
        th.Property(
            "end_date",
            th.DateType,
            description="Last day to read history for (backfills of a past range). Unset: today.",
        ),
        th.Property(
            "publication_ids",
            th.ArrayType(th.StringType),
            description=(
                "Data items read by the publications stream, by id (`PUBOB637`). The four "
                "`publication_*` settings read the union of what they choose, each item once; "
                f"all four unset: the set {', '.join(DEFAULT_SETS)}. Empty lists read none."
            ),
        ),
        th.Property(
            "publication_names",
            th.ArrayType(th.StringType),
            description=(
                "Data items by their catalogue name (`Demand Actual, NTS, D+1`), in any case. "
                "A name the catalogue does not hold fails the run, naming the closest it holds."
            ),
        ),
        th.Property(
            "publication_categories",
            th.ArrayType(th.StringType),
            description=(
                "Every data item of a catalogue category (`Demand`) or sub-category "
                "(`Demand/Actuals`), in any case."
            ),
        ),
        th.Property(
            "publication_sets",
            th.ArrayType(th.StringType),
            description=(
                f"Ready sets of data items: {', '.join(SETS)} (the README lists their items). "
                "An item of a set that the catalogue no longer holds is a warning; the rest is "
                "read."
            ),
        ),
        th.Property(
            "site_ids",
            th.ArrayType(th.IntegerType),
            description="Gas quality sites to read (site ids). Unset: every site.",
        ),
        th.Property(
            "lookback_days",
            th.IntegerType(minimum=0),
            default=7,
            description="Days before the bookmark that publications are read again, for revisions.",
        ),
        th.Property(
            "history_window_days",
            th.IntegerType(minimum=1, maximum=MAX_HISTORY_WINDOW_DAYS),
            default=MAX_HISTORY_WINDOW_DAYS,
            description="Days per gas quality history request (1 or 2; the API limits it).",
        ),
        th.Property(
            "publication_window_days",
            th.IntegerType(minimum=1),
            default=30,
            description="Days per publications request.",
        ),
        th.Property(
            "gap_retry_days",
            th.IntegerType(minimum=1),
            default=7,
            description=(
                "Days a gap (a reading that an answer should have held and did not) is read "
                "again on every run before it is given up with a warning."
            ),
        ),
        th.Property(
            "user_agent",
            th.StringType,
            default="data-imports tap-nationalgas/0.1.0",
            description="User-Agent header sent with every request.",
        ),
        th.Property(
            "request_timeout",
            th.IntegerType(minimum=1),
            default=60,
            description="Seconds to wait for one response.",
        ),
        th.Property(
            "max_response_mb",
            th.IntegerType(minimum=1),
            default=50,
            description=(
                "Largest answer read, in MB (decoded): reading stops once an answer passes it, "
                "and the run fails naming its URL, before the answer is parsed; the bookmarks "
                "stay with the data stored."
            ),
        ),
        th.Property(
            "max_retries",
            th.IntegerType(minimum=0),
            default=5,
            description="Retries of a request after 429, 5xx, a timeout or a connection error.",
        ),
        th.Property(
            "retry_interval",
            th.NumberType,
            default=2,
            description="Seconds before the first retry (doubling), unless Retry-After says.",
        ),
        th.Property(
            "max_retry_delay",
            th.NumberType,
            default=60,
            description="Longest wait between two attempts, Retry-After included, in seconds.",
        ),
    ).to_dict()

    @override
    def discover_streams(self) -> list[streams.NationalGasStream]:
        return [stream(self) for stream in streams.STREAMS]

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:  # noqa: ANN401
        """Initialize the tap; SIGTERM and SIGINT end it as :meth:`on_signal` says."""
        super().__init__(*args, **kwargs)
        if threading.current_thread() is threading.main_thread():
            # in place of the SDK's handlers, which it sets in __init__
            signal.signal(signal.SIGTERM, self.on_signal)
            signal.signal(signal.SIGINT, self.on_signal)

    def on_signal(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        """SIGTERM or SIGINT: send the tap's whole state, as the SDK does, and exit 0.

        With `batch_config` that state can cover records still waiting for their batch file
        (the STATE would pass the BATCH that never comes): the tap then exits without it, and
        the last STATE stays the one after the last BATCH (tests/test_batch.py pins it).
        """
        if self.config.get("batch_config"):
            self.logger.info("Stopped by %s: no state beyond the last batch file", signum)
        else:
            self.logger.info("Stopped by %s: sending the state reached", signum)
            self.write_message(StateMessage(value=self.state))
        sys.exit(0)

    @override
    def load_state(self, state: dict[str, t.Any]) -> None:
        """Load the state; fail at once, before any request, on a bookmark that cannot be read.

        Raises:
            gaps.UnreadableStateError: naming the stream, the bookmark and its value.
        """
        super().load_state(state)
        bookmarks = self.state.get("bookmarks") or {}
        for stream in self.streams.values():
            if isinstance(stream, streams.NationalGasStream):
                stream.check_state(bookmarks.get(stream.name) or {})


EXPECTED_FAILURES = (
    FatalAPIError,
    RetriableAPIError,
    values.BadValueError,
    catalogue.SelectionError,
)
"""Failures this tap names in one sentence: the API unreachable, an error status after every
retry, an answer that is not what the endpoint documents, a data item that is not held."""
STATE_CAUSE = {"cause": "state"}
"""The ``extra`` of the ERROR line of a state that cannot be read: a runner that reads the
structured log can add the command that resets the job's state."""


def main() -> None:
    """Run the tap; a failure ends it with one ERROR line ``failed: ...`` and exit status 1.

    An expected failure has its traceback only in debug; an unexpected one names its type and
    carries its traceback in the log record.
    """
    logger = logging.getLogger(TapNationalGas.name)
    debug = logger.isEnabledFor(logging.DEBUG)
    try:
        code = TapNationalGas.cli.main(standalone_mode=False)
    except click.ClickException as exc:  # a usage error: click's own message
        exc.show()
        sys.exit(exc.exit_code)
    except gaps.UnreadableStateError as exc:
        extra = {**STATE_CAUSE, "stream_name": exc.stream}
        logger.error("failed: %s", exc, exc_info=debug, extra=extra)  # noqa: TRY400
        sys.exit(1)
    except EXPECTED_FAILURES as exc:
        logger.error("failed: %s", exc, exc_info=debug)  # noqa: TRY400
        sys.exit(1)
    except Exception as exc:
        # the one line names the error (read alone); the record carries its traceback
        logger.exception("failed: %s: %s", type(exc).__name__, exc)  # noqa: TRY401
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
