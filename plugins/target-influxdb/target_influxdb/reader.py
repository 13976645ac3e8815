"""Singer input reader tuned for InfluxDB, whose numbers are 64-bit floats and integers."""

from __future__ import annotations

import logging
import typing as t

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecReader
from singer_sdk.singerlib.exceptions import InvalidInputLine
from typing_extensions import override

logger = logging.getLogger(__name__)
_DECODER = msgspec.json.Decoder(float_hook=float)


class FloatSingerReader(MsgSpecReader):
    """Decode each line with msgspec, numbers with a fraction or exponent as floats.

    Every ``number`` field is written as a float anyway, so decoding straight to ``float``
    gives the same points as ``Decimal`` would, faster. Integers stay exact Python ints.
    """

    @override
    def deserialize_json(self, line: str) -> dict:
        try:
            return t.cast("dict", _DECODER.decode(line))
        except msgspec.DecodeError as exc:
            logger.exception("Unable to parse:\n%s", line)
            raise InvalidInputLine(f"Unable to parse line as JSON: {line}") from exc
