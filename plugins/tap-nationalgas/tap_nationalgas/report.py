"""The report logger: the INFO lines an operator reads by default.

A runner shows WARNING and above of every logger, and the INFO lines of this one; the other
INFO lines (the SDK's notices, METRIC lines) are routine. Warnings stay on the stream loggers.
"""

from __future__ import annotations

import logging

LOGGER_NAME = "tap-nationalgas.report"
"""``<plugin name>.report``: a child of the tap's logger, so it logs at the tap's level."""

logger = logging.getLogger(LOGGER_NAME)
