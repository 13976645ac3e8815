"""Singer input reader tuned for InfluxDB, whose numbers are 64-bit floats and integers.

The reader is also where the target hooks into each message: the SDK hands the reader's public
``process_lines`` its handlers keyed by message type, and a :class:`MessageHooks` (the target)
wraps them. The target overrides no private message handler of the SDK; the behaviour relied on
(``process_lines`` gets every message type's handler and reads the whole input) is pinned by
``tests/test_sinks.py::test_every_message_type_reaches_the_target_through_the_reader``.
"""

from __future__ import annotations

import contextlib
import logging
import typing as t
from collections import Counter

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecReader
from singer_sdk.singerlib.exceptions import InvalidInputLine
from typing_extensions import override

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

logger = logging.getLogger(__name__)
_DECODER = msgspec.json.Decoder(float_hook=float)

Handler = t.Callable[[dict], None]


class MessageHooks(t.Protocol):
    """What a reader asks of the plugin it reads for."""

    def handlers(self, sdk_handlers: Mapping[str, Handler]) -> dict[str, Handler]:
        """The handler of each message type, given the SDK's."""

    def unknown_message(self, message_dict: dict) -> None:
        """Handle a message of a type no handler takes (it raises)."""

    def reading(self) -> t.ContextManager[None]:
        """Wraps the reading of the whole input (a failure ends the run as failed)."""


class FloatSingerReader(MsgSpecReader):
    """Decode each line with msgspec, numbers with a fraction or exponent as floats.

    Every ``number`` field is written as a float anyway, so decoding straight to ``float``
    gives the same points as ``Decimal`` would, faster. Integers stay exact Python ints.
    """

    hooks: MessageHooks | None = None
    """The target's hooks; without them, the SDK's handlers as given, unknown types refused."""

    @override
    def deserialize_json(self, line: str) -> dict:
        try:
            return t.cast("dict", _DECODER.decode(line))
        except msgspec.DecodeError as exc:
            logger.exception("Unable to parse:\n%s", line)
            raise InvalidInputLine(f"Unable to parse line as JSON: {line}") from exc

    @override
    def process_lines(
        self, file_input: t.IO[str] | None, callbacks: dict[str, Callable[[dict], None]]
    ) -> Counter[str]:
        """Read every line and hand each message to the handler of its type.

        Returns:
            How many messages of each type were read.
        """
        hooks = self.hooks
        handlers = hooks.handlers(callbacks) if hooks else dict(callbacks)
        unknown = hooks.unknown_message if hooks else refuse_unknown
        counts: Counter[str] = Counter()
        with hooks.reading() if hooks else contextlib.nullcontext():
            for line in file_input or self.default_input:
                message = self.deserialize_json(line)
                self.assert_line_requires(message, requires={"type"})
                kind = message["type"]
                handlers.get(kind, unknown)(message)
                counts[kind] += 1
        return counts


def refuse_unknown(message_dict: dict) -> None:
    """Refuse a message of a type no handler takes.

    Raises:
        ValueError: naming the type.
    """
    msg = f"Unknown message type '{message_dict['type']}' in message."
    raise ValueError(msg)
